"""Every discovered source honours the contract (STYLE.md): metadata, round trip, stable ids."""

from pathlib import Path

import pytest

from qagen.ingest import ingest
from qagen.manifest import iter_manifest
from qagen.records import AudioStatus, Clip, Rejection
from qagen.records.demo import DemoClip
from qagen.sources import get_source, list_sources
from qagen.workdir import WorkDir

SOURCES = list_sources()


def test_all_five_sources_are_registered() -> None:
    assert {"musiccaps", "mtt", "fma", "musicnet", "audiofolder"} <= set(SOURCES)


@pytest.mark.parametrize("name", SOURCES)
def test_source_declares_metadata(name: str) -> None:
    src = get_source(name)
    assert name == src.NAME
    assert src.HOMEPAGE.startswith("https://")
    assert src.LICENSE and src.CITATION
    assert src.__doc__ and len(src.__doc__) > 80  # type: ignore[attr-defined]
    src.Options()  # defaults are valid


@pytest.mark.parametrize("name", SOURCES)
def test_write_native_then_iter_clips_round_trips(
    name: str, tmp_path: Path, toy_clips: list[DemoClip]
) -> None:
    src = get_source(name)
    ids = src.write_native(tmp_path / name, toy_clips)
    assert set(ids) == {c.name for c in toy_clips}
    items = list(src.iter_clips(tmp_path / name, options=src.Options()))
    assert [i for i in items if isinstance(i, Rejection) and not i.kept] == []
    clips = {c.clip_id: c for c in items if isinstance(c, Clip)}
    assert set(clips) == set(ids.values())
    by_name = {n: clips[i] for n, i in ids.items()}
    for demo in toy_clips:
        clip = by_name[demo.name]
        assert clip.source == name
        assert clip.split.value == demo.split
        assert (tmp_path / name / clip.audio_path).is_file()
        labels = {*clip.tags, *clip.genres, *clip.instruments, *clip.aspects,
                  *(clip.caption or "").lower().split()}
        assert labels, f"{name} lost every label of {demo.name}"
    # Stable ids across runs.
    again = [c.clip_id for c in src.iter_clips(tmp_path / name, options=src.Options())
             if isinstance(c, Clip)]
    assert sorted(again) == sorted(clips)


@pytest.mark.parametrize("name", SOURCES)
def test_ingest_stage_on_native_copy(name: str, tmp_path: Path, toy_clips: list[DemoClip]) -> None:
    get_source(name).write_native(tmp_path / name, toy_clips)
    work = WorkDir(tmp_path / "work")
    report = ingest(name, tmp_path / name, work=work, shard_size=2, hash_audio=True)
    assert report.items_out == len(toy_clips)
    assert report.counted("audio") == {"ok": len(toy_clips)}
    clips = list(iter_manifest(work.manifest_shards("clips").values(), Clip))
    assert len(clips) == len(toy_clips)
    assert all(c.audio_status is AudioStatus.ok and c.audio_sha256 for c in clips)
    again = ingest(name, tmp_path / name, work=work, shard_size=2, hash_audio=True)
    assert again.shards_reused == again.shards == report.shards
