"""The run report from a work dir's own files: Markdown, HTML, plots, timings, throughput."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from qagen.publish.stats import collect_stats
from qagen.report import stage_timings, summary_table, write_run_report
from qagen.workdir import WorkDir
from tests.publish.conftest import N_CLIPS, make_work

pytest.importorskip("matplotlib")


def test_run_report_is_written_from_files(tmp_path: Path) -> None:
    work = make_work(tmp_path)
    path = write_run_report(work, summary={"backend": "scripted", "clips": N_CLIPS},
                            timings={"generate": 6.0, "ingest": 0.5})
    assert path == work.reports / "run.md"
    text = path.read_text(encoding="utf-8")
    # 12 pairs in 6 s; augment from its markers: 2 × 1.5 s for 6 clips of 0.5 s.
    assert "| generate | 6.00 | — | — | 2.00 | timings |" in text
    assert "| augment | 3.00 | 2.00 | 1.00 | — | markers |" in text
    assert "| ingest | 0.50 | 12.00 | — | — | timings |" in text
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


def test_empty_work_dir_still_reports(tmp_path: Path) -> None:
    path = write_run_report(WorkDir(tmp_path), summary={}, timings={})
    assert "0 clips" in path.read_text(encoding="utf-8")


def test_reused_stages_take_their_rates_from_when_the_work_was_done(tmp_path: Path) -> None:
    from qagen.manifest import write_json_atomic
    from qagen.report.run import reused_stages

    work = make_work(tmp_path)
    for key in work.manifest_shards("clips"):
        write_json_atomic(work.marker("augment", key), {"seconds": 6.0})
    summary = {"augment": {"shards": 2, "shards_reused": 2}, "train": {"reused": True},
               "generate": {"shards": 2, "shards_reused": 1},
               "ingest": {"mtt": {"shards": 1, "shards_reused": 1}}}
    assert reused_stages(summary) == {"augment", "train", "ingest"}
    stats = collect_stats(work)
    rows = {r.stage: r for r in stage_timings(work, stats, {"augment": 0.1, "generate": 2.0},
                                              reused=reused_stages(summary))}
    # 0.1 s of reuse is not a throughput: the 12 s the two shards took when measured is.
    assert rows["augment"].source == "reused" and rows["augment"].seconds == 0.1
    assert rows["augment"].clips_per_s == pytest.approx(N_CLIPS / 12.0, abs=1e-3)
    assert rows["generate"].source == "timings"
    assert rows["generate"].pairs_per_s == pytest.approx(stats.total_pairs / 2.0, abs=1e-3)
