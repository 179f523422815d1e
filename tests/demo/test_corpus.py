"""The demo corpus: every source's native layout, readable by its own ingester, with truth."""

import json
from pathlib import Path

import pytest

from qagen.ingest import ingest
from qagen.manifest import iter_manifest
from qagen.records import AudioStatus, Clip
from qagen.stages import write_demo_corpus
from qagen.workdir import WorkDir


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    write_demo_corpus(out)
    return out


def test_every_source_ingests_its_demo_copy_with_truth(corpus: Path, tmp_path: Path) -> None:
    truth = [json.loads(line) for line in (corpus / "truth.jsonl").read_text().splitlines()]
    work = WorkDir(tmp_path / "w")
    for source in ("musiccaps", "mtt", "fma", "musicnet", "audiofolder"):
        report = ingest(source, corpus / source, work=work)
        assert report.rejected == {} and report.counted("repaired") == {}, source
        assert report.counted("audio") == {"ok": report.items_out}, source
    clips = {c.clip_id: c for c in iter_manifest(work.manifest_shards("clips").values(), Clip)}
    assert set(clips) == {t["clip_id"] for t in truth}
    assert all(c.audio_status is AudioStatus.ok for c in clips.values())
    for t in truth:
        clip = clips[t["clip_id"]]
        assert clip.source == t["source"] and clip.split.value == t["split"]
    # The corpus is varied enough for the augment targets to mean something.
    assert len({t["key"].replace("Db", "C#").replace("Ab", "G#").replace("D#", "Eb")
                for t in truth}) >= 24
    tempi = [t["tempo_bpm"] for t in truth]
    assert min(tempi) <= 62 and max(tempi) >= 174
    assert sum(t["beats_per_bar"] == 3 for t in truth) >= 5
    assert sum(not t["has_drums"] for t in truth) >= 5
    # MTT ships 16 kHz mp3 like the real dataset; FMA mp3 at 44.1 kHz.
    import soundfile as sf

    mtt = next(c for c in clips.values() if c.source == "mtt")
    info = sf.info(str(corpus / "mtt" / mtt.audio_path))
    assert (info.samplerate, info.format) == (16000, "MP3")


def test_a_second_build_reuses_the_corpus(corpus: Path) -> None:
    before = (corpus / "truth.jsonl").stat().st_mtime_ns
    again = write_demo_corpus(corpus)
    assert again.reused and again.clips == 26
    assert (corpus / "truth.jsonl").stat().st_mtime_ns == before


def test_clips_n_renders_a_sampled_corpus_that_its_ingester_reads(tmp_path: Path) -> None:
    from qagen.errors import ConfigError

    out = tmp_path / "sampled"
    corpus = write_demo_corpus(out, clips=5, sources=["musiccaps", "audiofolder"])
    assert corpus.clips == 5 and set(corpus.sources) == {"musiccaps", "audiofolder"}
    work = WorkDir(tmp_path / "w")
    counts = {s: ingest(s, out / s, work=work).items_out for s in corpus.sources}
    assert counts == {"musiccaps": 3, "audiofolder": 2}
    assert not write_demo_corpus(out, clips=6, sources=["musiccaps", "audiofolder"]).reused
    assert write_demo_corpus(out, clips=6, sources=["musiccaps", "audiofolder"]).reused
    with pytest.raises(ConfigError, match="no clips for"):
        write_demo_corpus(tmp_path / "x", clips=3, sources=["nosuch"])


def test_a_sampled_corpus_holds_out_a_fifth() -> None:
    from collections import Counter

    from qagen.demo.corpus import _split_for

    splits = Counter(_split_for(i, 100, "mtt", sampled=True) for i in range(100))
    assert splits == {"train": 70, "test": 20, "valid": 10}
    assert Counter(_split_for(i, 50, "fma", sampled=True) for i in range(50))["test"] == 10
    # The table keeps its one test clip per source.
    assert [_split_for(i, 4, "fma") for i in range(4)] == ["train"] * 3 + ["test"]
