"""The shard engine on a toy stage: outputs, rejections, skips, resume, batches, sinks,
orphans, markers and reports."""

from pathlib import Path

import pytest
from pydantic import BaseModel

from qagen.engine import (
    ManifestShards,
    ParquetSink,
    ShardMarker,
    StageReport,
    read_marker,
    run_stage,
    sum_reports,
)
from qagen.ingest import ingest
from qagen.manifest import iter_manifest, read_records, write_json_atomic, write_records
from qagen.records import Clip, Rejection
from qagen.records.demo import DemoClip
from qagen.sources import musiccaps
from qagen.workdir import WorkDir
from tests.conftest import toy_demo_clips


class Length(BaseModel):
    clip_id: str
    n_chars: int


class Word(BaseModel):
    clip_id: str
    word: str


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
    """Two shards: [missing audio, fails], [ok]."""
    clips = [*toy_clips]
    clips[1] = DemoClip(**{**clips[1].__dict__, "caption": "this one should fail"})
    musiccaps.write_native(tmp_path / "mc", clips)
    (tmp_path / "mc" / "audio" / sorted(p.name for p in (tmp_path / "mc" / "audio").iterdir())[0]
     ).unlink()
    w = WorkDir(tmp_path / "w")
    ingest("musiccaps", tmp_path / "mc", work=w, shard_size=2)
    CALLS.clear()
    return w


@pytest.fixture
def four(tmp_path: Path) -> WorkDir:
    """Two shards of two readable clips each."""
    musiccaps.write_native(tmp_path / "mc4", toy_demo_clips(4))
    w = WorkDir(tmp_path / "w4")
    ingest("musiccaps", tmp_path / "mc4", work=w, shard_size=2)
    CALLS.clear()
    return w


def skip_missing(clip: Clip) -> str | None:
    return None if clip.audio_status.value == "ok" else f"audio_{clip.audio_status.value}"


def run(work: WorkDir, **kw: object) -> StageReport:
    return run_stage(work, measure, stage="toy", version="1", output_kind="lengths",
                     output_model=Length, skip=skip_missing, strict=True, **kw)  # type: ignore[arg-type]


def lengths(work: WorkDir) -> list[Length]:
    return list(iter_manifest(work.manifest_shards("lengths").values(), Length))


def clip_ids(work: WorkDir, key: str) -> set[str]:
    return {c.clip_id for c in read_records(work.manifest_shard("clips", key), Clip)}


def test_outputs_rejections_skips_and_resume(work: WorkDir) -> None:
    report = run(work)
    assert (report.items_in, report.items_out) == (3, 1)
    assert report.skipped == {"audio_missing": 1}
    assert report.rejected == {"too_short": 1}
    assert list(work.manifest_shards("lengths")) == ["musiccaps-00000", "musiccaps-00001"]
    rej = [r for p in work.rejects.glob("toy-*.parquet") for r in read_records(p, Rejection)]
    assert [r.reason for r in rej] == ["too_short"]
    n_calls = len(CALLS)
    again = run(work)
    assert again.shards_reused == 2 and len(CALLS) == n_calls
    assert again.items_out == 1 and again.reused


def test_markers_are_shard_markers_with_counts_and_outputs(work: WorkDir) -> None:
    report = run(work)
    markers = {k: read_marker(p) for k, p in work.markers("toy").items()}
    assert all(isinstance(m, ShardMarker) for m in markers.values())
    first = markers["musiccaps-00000"]
    assert first is not None and first.stage_version == "1"
    assert first.outputs == ["manifests/lengths-musiccaps-00000.parquet"]
    total = StageReport(stage="toy")
    for m in markers.values():
        total = total.add_marker(m, reused=True)  # type: ignore[arg-type]
    assert (total.items_in, total.items_out, total.skipped, total.rejected) == (
        report.items_in, report.items_out, report.skipped, report.rejected)


def test_version_change_redoes_work(work: WorkDir) -> None:
    run(work)
    before = len(CALLS)
    run_stage(work, measure, stage="toy", version="2", output_kind="lengths",
              output_model=Length, skip=skip_missing)
    assert len(CALLS) == 2 * before


def test_internal_errors_are_recorded_unless_strict(work: WorkDir) -> None:
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


def test_a_killed_run_never_calls_the_function_on_finished_shards(four: WorkDir) -> None:
    """Killed inside shard 1: the rerun calls the per-item function on shard 1's clips only
    (shard 0 is reused, never re-measured), and the outputs equal an uninterrupted run's."""
    first, second = list(four.manifest_shards("clips"))
    run(four)
    clean = lengths(four)
    for path in [*four.markers("toy").values(), *four.manifest_shards("lengths").values()]:
        path.unlink()

    def dying(clip: Clip) -> Length | Rejection:
        if clip.clip_id in clip_ids(four, second):
            raise KeyboardInterrupt  # killed on shard 1's first clip
        return measure(clip)

    CALLS.clear()
    with pytest.raises(KeyboardInterrupt):
        run_stage(four, dying, stage="toy", version="1", output_kind="lengths",
                  output_model=Length, strict=True)
    assert set(CALLS) == clip_ids(four, first)  # shard 0 was done …
    assert list(four.markers("toy")) == [first]  # … and only shard 0 is marked done
    CALLS.clear()
    report = run(four)
    assert set(CALLS) == clip_ids(four, second)  # shard 0's clips never reached the function
    assert (report.shards, report.shards_reused) == (2, 1)
    assert lengths(four) == clean  # no clip lost, none twice


def test_batch_function_gets_whole_shards_and_errors_reject_the_batch(four: WorkDir) -> None:
    seen: list[tuple[str, int]] = []

    def batch(key: str, clips: list[Clip]) -> list[Length | Word]:
        seen.append((key, len(clips)))
        if key.endswith("1"):
            raise ValueError("model fell over")
        return [*(Length(clip_id=c.clip_id, n_chars=len(c.caption or "")) for c in clips),
                Word(clip_id=clips[0].clip_id, word="first")]

    sinks = [ParquetSink.manifest(four, "lengths", Length), ParquetSink.manifest(four, "words",
                                                                                 Word)]
    report = run_stage(four, batch_fn=batch, stage="toy", version="1", sinks=sinks,
                       label=lambda row: type(row).__name__.lower())
    assert seen == [("musiccaps-00000", 2), ("musiccaps-00001", 2)]
    assert report.items_out == 3 and report.counts == {"length": 2, "word": 1}
    assert report.rejected == {"internal_error": 2}  # every item of the failed batch
    assert len(list(iter_manifest(four.manifest_shards("words").values(), Word))) == 1
    marker = read_marker(four.marker("toy", "musiccaps-00000"))
    assert marker is not None and marker.outputs == [
        "manifests/lengths-musiccaps-00000.parquet", "manifests/words-musiccaps-00000.parquet"]
    with pytest.raises(ValueError, match="model fell over"):
        run_stage(four, batch_fn=batch, stage="toy", version="2", sinks=sinks, strict=True)


def test_results_of_an_unknown_type_are_a_bug(four: WorkDir) -> None:
    with pytest.raises(TypeError, match="returned Word, expected Length or Rejection"):
        run_stage(four, lambda c: Word(clip_id=c.clip_id, word="x"), stage="toy",
                  version="1", output_kind="lengths", output_model=Length, strict=True)


def test_orphans_go_when_their_input_shard_goes_but_not_under_shard_keys(
        four: WorkDir) -> None:
    first, second = list(four.manifest_shards("clips"))
    run(four)
    write_json_atomic(four.rejects_shard("toy", second).with_suffix(".json"), {})  # not ours
    four.manifest_shard("clips", second).unlink()
    run(four, shard_keys=[first])  # a subset: other shards' outputs are left alone
    assert list(four.manifest_shards("lengths")) == [first, second]
    report = run(four)
    assert report.shards == 1
    assert list(four.manifest_shards("lengths")) == [first]
    assert list(four.markers("toy")) == [first]
    assert four.rejects_shard("toy", second).with_suffix(".json").is_file()


def test_missing_output_or_foreign_marker_redoes_the_shard(four: WorkDir) -> None:
    first, second = list(four.manifest_shards("clips"))
    run(four)
    four.manifest_shard("lengths", first).unlink()
    write_json_atomic(four.marker("toy", second), {"fingerprint": "x", "clips": 2})
    CALLS.clear()
    report = run(four)
    assert report.shards_reused == 0 and len(CALLS) == 4


def test_manifest_shards_refuse_unknown_keys(four: WorkDir) -> None:
    from qagen.errors import ConfigError

    with pytest.raises(ConfigError, match=r"no clips shards \['nope-00000'\]"):
        list(ManifestShards(four, keys=["nope-00000"]))


def test_reports_add_counts_extras_and_merge_details() -> None:
    a = StageReport(stage="ingest", shards=2, shards_reused=1, items_in=5, items_out=4,
                    rejected={"bad": 1}, counts={"audio:ok": 4}, seconds=1.5,
                    extras={"audio_seconds": 2.5}, details={"roots": {"a": "/a"}})
    b = StageReport(stage="ingest", shards=1, shards_reused=1, items_in=3, items_out=3,
                    counts={"audio:ok": 2, "audio:missing": 1}, seconds=0.5,
                    extras={"audio_seconds": 1.0, "files": 2}, details={"roots": {"b": "/b"}})
    total = sum_reports([a, b])
    assert (total.shards, total.shards_reused, total.items_in, total.items_out) == (3, 2, 8, 7)
    assert total.counts == {"audio:missing": 1, "audio:ok": 6}
    assert total.counted("audio") == {"missing": 1, "ok": 6}
    assert total.extras == {"audio_seconds": 3.5, "files": 2} and total.seconds == 2.0
    assert total.details == {"roots": {"a": "/a", "b": "/b"}}
    assert not total.reused and sum_reports([b]).reused
    assert sum_reports([], stage="embed") == StageReport(stage="embed")
    assert ("  audio ok", "6") in total.rows() and ("rejected: bad", "1") in total.rows()
