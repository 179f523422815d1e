import json
from pathlib import Path

import pytest

from qagen import manifest
from qagen.errors import ConfigError
from qagen.ingest import ingest
from qagen.manifest import iter_manifest, read_records
from qagen.records import AudioStatus, Clip, Rejection
from qagen.records.demo import DemoClip
from qagen.sources import musiccaps
from qagen.workdir import WorkDir


def demo_musiccaps(tmp_path: Path, toy_clips: list[DemoClip]) -> Path:
    root = tmp_path / "mc"
    musiccaps.write_native(root, toy_clips)
    return root


def all_clips(work: WorkDir) -> list[Clip]:
    return list(iter_manifest(work.manifest_shards("clips").values(), Clip))


def test_missing_audio_is_kept_listed_and_counted(
    tmp_path: Path, toy_clips: list[DemoClip]
) -> None:
    root = demo_musiccaps(tmp_path, toy_clips)
    gone = sorted((root / "audio").iterdir())[0]
    gone.unlink()
    work = WorkDir(tmp_path / "w")
    report = ingest("musiccaps", root, work=work)
    assert report.counted("audio") == {"missing": 1, "ok": 2}
    clips = all_clips(work)
    assert len(clips) == 3
    missing = [c for c in clips if c.audio_status is AudioStatus.missing]
    assert len(missing) == 1 and gone.name in (missing[0].audio_status_reason or "")
    listed = work.missing_audio_list("musiccaps").read_text().splitlines()
    assert listed == [f"{missing[0].clip_id}\t{missing[0].audio_path}"]
    saved = json.loads(work.stage_report("ingest", "musiccaps").read_text())
    assert saved["counts"]["audio:missing"] == 1 and saved["counts"]["audio:ok"] == 2


def test_duplicates_are_rejected_once(tmp_path: Path, toy_clips: list[DemoClip]) -> None:
    root = demo_musiccaps(tmp_path, toy_clips)
    csv_path = root / "musiccaps-public.csv"
    lines = csv_path.read_text().splitlines(keepends=True)
    csv_path.write_text("".join([*lines, lines[1]]))
    work = WorkDir(tmp_path / "w")
    report = ingest("musiccaps", root, work=work)
    assert report.items_out == 3 and report.rejected == {"duplicate_id": 1}
    assert report.items_in == 4  # every row read, the dropped one too
    rej = [r for p in work.rejects.glob("ingest-*.parquet") for r in read_records(p, Rejection)]
    assert [r.reason for r in rej] == ["duplicate_id"]


def test_killed_run_resumes_and_matches_an_uninterrupted_one(
    tmp_path: Path, toy_clips: list[DemoClip], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = demo_musiccaps(tmp_path, toy_clips)
    clean = WorkDir(tmp_path / "clean")
    ingest("musiccaps", root, work=clean, shard_size=1, hash_audio=True)

    work = WorkDir(tmp_path / "w")
    real_write = manifest.write_records
    calls = {"n": 0}

    def dying_write(path: Path, records: list, model: type) -> int:
        if model is Clip:
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt  # killed while writing shard 1
        return real_write(path, records, model)

    monkeypatch.setattr("qagen.engine.write_records", dying_write)
    with pytest.raises(KeyboardInterrupt):
        ingest("musiccaps", root, work=work, shard_size=1, hash_audio=True)
    monkeypatch.setattr("qagen.engine.write_records", real_write)
    report = ingest("musiccaps", root, work=work, shard_size=1, hash_audio=True)
    assert report.shards == 3 and report.shards_reused == 1
    assert all_clips(work) == all_clips(clean)
    assert not list(work.manifests.glob(".*tmp"))


def test_rerun_with_fewer_rows_drops_stale_shards(
    tmp_path: Path, toy_clips: list[DemoClip]
) -> None:
    root = demo_musiccaps(tmp_path, toy_clips)
    work = WorkDir(tmp_path / "w")
    ingest("musiccaps", root, work=work, shard_size=1)
    csv_path = root / "musiccaps-public.csv"
    csv_path.write_text("".join(csv_path.read_text().splitlines(keepends=True)[:2]))
    report = ingest("musiccaps", root, work=work, shard_size=1)
    assert report.items_out == 1
    assert list(work.manifest_shards("clips")) == ["musiccaps-00000"]
    assert list(work.markers("ingest")) == ["musiccaps-00000"]


def test_sources_share_one_manifest(tmp_path: Path, toy_clips: list[DemoClip]) -> None:
    from qagen.sources import get_source

    work = WorkDir(tmp_path / "w")
    for name in ("musiccaps", "musicnet"):
        get_source(name).write_native(tmp_path / name, toy_clips)
        ingest(name, tmp_path / name, work=work)
    clips = all_clips(work)
    assert sorted({c.source for c in clips}) == ["musiccaps", "musicnet"]
    assert len({c.clip_id for c in clips}) == 6


def test_configuration_errors_name_the_fix(tmp_path: Path) -> None:
    work = WorkDir(tmp_path / "w")
    with pytest.raises(ConfigError, match=r"unknown source .nope.; known sources: .*musiccaps"):
        ingest("nope", tmp_path, work=work)
    with pytest.raises(ConfigError, match="accepted options: csv_name"):
        ingest("musiccaps", tmp_path, work=work, options={"bogus": 1})
    with pytest.raises(ConfigError, match="not a directory"):
        ingest("musiccaps", tmp_path / "absent", work=work)
    with pytest.raises(ConfigError, match="shard_size"):
        ingest("musiccaps", tmp_path, work=work, shard_size=0)
