"""The run report from a work dir's own files: Markdown, HTML, plots, timings, throughput."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from qagen.engine import ShardMarker, StageReport
from qagen.report import stage_timings, summary_table, write_run_report
from qagen.stats import collect_stats
from qagen.workdir import WorkDir
from tests.publish.conftest import N_CLIPS, make_work

pytest.importorskip("matplotlib")


def test_run_report_is_written_from_files(tmp_path: Path) -> None:
    work = make_work(tmp_path)
    reports = {"ingest": StageReport(stage="ingest", shards=2, items_in=8, items_out=N_CLIPS,
                                     rejected={"malformed_row": 2}, seconds=0.5)}
    path = write_run_report(work, reports=reports, facts={"backend": "scripted"},
                            timings={"generate": 6.0})
    assert path == work.reports / "run.md"
    text = path.read_text(encoding="utf-8")
    # 12 pairs in 6 s; augment from its markers: 2 × 1.5 s for 6 clips of 0.5 s.
    assert "| generate | 6.00 | — | — | 2.00 | timings |" in text
    assert "| augment | 3.00 | 2.00 | 1.00 | — | markers |" in text
    assert "| ingest | 0.50 | 12.00 | — | — | report |" in text  # its seconds: the report's
    assert "| ingest | 0.5 | 2 | 0 | 8 | 6 | 0 | 2 | 6 out of 8 in; 0/2 shards reused; " \
        "rejected 2 |" in text
    assert "| generate | junk | 6 |" in text and "| backend | scripted |" in text
    for name in ("tempo.png", "key.png", "answer_length.png"):
        assert (work.reports / "assets" / name).read_bytes()[:4] == b"\x89PNG"
        assert f"](assets/{name})" in text
    page = (work.reports / "run.html").read_text(encoding="utf-8")
    assert "<td>generate</td>" in page and "assets/tempo.png" in page


def test_summary_table_renders(tmp_path: Path) -> None:
    work = make_work(tmp_path)
    stats = collect_stats(work)
    rows = stage_timings(work, stats, {"generate": 4.0})
    assert [r.stage for r in rows] == ["augment", "generate"]
    console = Console(record=True, width=120)
    console.print(summary_table(stats, rows))
    out = console.export_text()
    assert "accepted pairs" in out and "3.00" in out and "12" in out


def test_ingest_seconds_come_from_its_markers_without_a_report(tmp_path: Path) -> None:
    """A build made with the CLI (no flow timings, no reports passed) still times ingest."""
    from qagen.ingest import ingest
    from qagen.records.demo import DemoClip
    from qagen.sources import musiccaps
    from tests.conftest import toy_demo_clips

    clips: list[DemoClip] = toy_demo_clips()
    musiccaps.write_native(tmp_path / "mc", clips)
    work = WorkDir(tmp_path / "w")
    ingest("musiccaps", tmp_path / "mc", work=work, shard_size=2)
    rows = {r.stage: r for r in stage_timings(work, collect_stats(work), {})}
    assert rows["ingest"].source == "markers" and rows["ingest"].seconds > 0
    assert rows["ingest"].clips_per_s is not None


def test_empty_work_dir_still_reports(tmp_path: Path) -> None:
    path = write_run_report(WorkDir(tmp_path))
    assert "0 clips" in path.read_text(encoding="utf-8")


def test_reused_stages_take_their_rates_from_when_the_work_was_done(tmp_path: Path) -> None:
    from qagen.manifest import write_json_atomic
    from qagen.report.run import reused_stages

    work = make_work(tmp_path)
    for key in work.manifest_shards("clips"):
        write_json_atomic(work.marker("augment", key), ShardMarker(
            fingerprint="f", stage_version="1", seconds=6.0).model_dump(mode="json"))
    reports = {"augment": StageReport(stage="augment", shards=2, shards_reused=2),
               "train": StageReport(stage="train", shards=1, shards_reused=1),
               "generate": StageReport(stage="generate", shards=2, shards_reused=1),
               "ingest": StageReport(stage="ingest", shards=1, shards_reused=1)}
    assert reused_stages(reports) == {"augment", "train", "ingest"}
    stats = collect_stats(work)
    rows = {r.stage: r for r in stage_timings(work, stats, {"augment": 0.1, "generate": 2.0},
                                              reused=reused_stages(reports))}
    # 0.1 s of reuse is not a throughput: the 12 s the two shards took when measured is.
    assert rows["augment"].source == "reused" and rows["augment"].seconds == 0.1
    assert rows["augment"].clips_per_s == pytest.approx(N_CLIPS / 12.0, abs=1e-3)
    assert rows["generate"].source == "timings"
    assert rows["generate"].pairs_per_s == pytest.approx(stats.total_pairs / 2.0, abs=1e-3)
