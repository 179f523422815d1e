from pathlib import Path

import pytest
from pydantic import BaseModel

from qagen.demo.spec import DemoClip
from qagen.ingest import ingest
from qagen.manifest import iter_manifest, read_records
from qagen.records import Clip, Rejection
from qagen.runner import run_stage
from qagen.sources import musiccaps
from qagen.workdir import WorkDir


class Length(BaseModel):
    clip_id: str
    n_chars: int


CALLS: list[str] = []


def measure(clip: Clip) -> Length | Rejection:
    CALLS.append(clip.clip_id)
    if "fail" in (clip.caption or ""):
        return Rejection(stage="toy", item_id=clip.clip_id, reason="too_short")
    if "boom" in (clip.caption or ""):
        raise RuntimeError("boom")
    return Length(clip_id=clip.clip_id, n_chars=len(clip.caption or ""))


@pytest.fixture
def work(tmp_path: Path, toy_clips: list[DemoClip]) -> WorkDir:
    clips = [*toy_clips]
    clips[1] = DemoClip(**{**clips[1].__dict__, "caption": "this one should fail"})
    musiccaps.write_native(tmp_path / "mc", clips)
    (tmp_path / "mc" / "audio" / sorted(p.name for p in (tmp_path / "mc" / "audio").iterdir())[0]
     ).unlink()
    w = WorkDir(tmp_path / "w")
    ingest("musiccaps", tmp_path / "mc", work=w, shard_size=2)
    CALLS.clear()
    return w


def skip_missing(clip: Clip) -> str | None:
    return None if clip.audio_status.value == "ok" else f"audio_{clip.audio_status.value}"


def run(work: WorkDir, **kw: object) -> object:
    return run_stage(work, measure, stage="toy", version="1", output_kind="lengths",
                     output_model=Length, skip=skip_missing, strict=True, **kw)  # type: ignore[arg-type]


def test_outputs_rejections_skips_and_resume(work: WorkDir) -> None:
    report = run(work)
    assert (report.items_in, report.items_out) == (3, 1)  # type: ignore[attr-defined]
    assert report.skipped == {"audio_missing": 1}  # type: ignore[attr-defined]
    assert report.rejected == {"too_short": 1}  # type: ignore[attr-defined]
    assert list(work.manifest_shards("lengths")) == ["musiccaps-00000", "musiccaps-00001"]
    rej = [r for p in work.rejects.glob("toy-*.parquet") for r in read_records(p, Rejection)]
    assert [r.reason for r in rej] == ["too_short"]
    n_calls = len(CALLS)
    again = run(work)
    assert again.shards_reused == 2 and len(CALLS) == n_calls  # type: ignore[attr-defined]
    assert again.items_out == 1  # type: ignore[attr-defined]


def test_version_change_redoes_work(work: WorkDir) -> None:
    run(work)
    before = len(CALLS)
    run_stage(work, measure, stage="toy", version="2", output_kind="lengths",
              output_model=Length, skip=skip_missing)
    assert len(CALLS) == 2 * before


def test_internal_errors_are_recorded_unless_strict(work: WorkDir, tmp_path: Path) -> None:
    from qagen.manifest import write_records

    for shard in work.manifest_shards("clips").values():
        clips = read_records(shard, Clip)
        clips = [c.model_copy(update={"caption": "boom"})
                 if c.audio_status.value == "ok" and "fail" not in (c.caption or "") else c
                 for c in clips]
        write_records(shard, clips, Clip)
    with pytest.raises(RuntimeError, match="boom"):
        run(work)
    report = run_stage(work, measure, stage="toy", version="1", output_kind="lengths",
                       output_model=Length, skip=skip_missing)
    assert report.rejected.get("internal_error") == 1
    rej = [r for p in work.rejects.glob("toy-*.parquet") for r in read_records(p, Rejection)]
    assert any(r.detail == "RuntimeError: boom" for r in rej)


def test_killed_run_loses_and_duplicates_nothing(work: WorkDir) -> None:
    clean = [r.clip_id for r in run_and_collect(work)]

    def dying(clip: Clip) -> Length | Rejection:
        if len(CALLS) >= 1:
            raise KeyboardInterrupt
        return measure(clip)

    for marker in work.markers("toy").values():
        marker.unlink()
    (work.root / ".done" / "toy").rmdir()
    with pytest.raises(KeyboardInterrupt):
        CALLS.clear()
        run_stage(work, dying, stage="toy", version="1", output_kind="lengths",
                  output_model=Length, skip=skip_missing)
    assert [r.clip_id for r in run_and_collect(work)] == clean


def run_and_collect(work: WorkDir) -> list[Length]:
    run(work)
    return list(iter_manifest(work.manifest_shards("lengths").values(), Length))
