"""``reports/run.md`` (+ ``run.html``): counts, plots, per-stage timings and throughput.

Why from files: a build resumed in a new process (or a flow whose tasks ran elsewhere) has no
in-memory state; counts come from the manifests, and a stage missing from ``timings`` falls
back to the seconds of its stage report, else of its done-markers. Counts, quality figures
and plots come from the core modules ``qagen.stats``, ``qagen.quality`` and ``qagen.plots``,
which the publish stage's data card reads too.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from rich.table import Table

from qagen.engine import StageReport, read_marker, summary_rows
from qagen.manifest import write_bytes_if_changed
from qagen.plots import render_plots
from qagen.quality import QualityStats, collect_quality, quality_rows
from qagen.stats import WorkStats, collect_stats
from qagen.workdir import WorkDir

STAGES = ("ingest", "augment", "generate", "embed", "train", "evaluate", "publish")


class StageTiming(BaseModel):
    """Wall time of one stage and what it processed per second (None where unknown)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    stage: str
    seconds: float
    source: str  # "timings" (measured by the caller), "report" (the stage report's),
    # "markers" (summed from .done/) or "reused" (rates from the markers)
    clips_per_s: float | None = None
    audio_s_per_s: float | None = None
    pairs_per_s: float | None = None


def _marker_seconds(work: WorkDir, stage: str) -> float | None:
    """Seconds the stage's shard markers recorded (None when it has none)."""
    markers = [m for m in map(read_marker, work.markers(stage).values()) if m is not None]
    return sum(m.seconds for m in markers) if markers else None


def reused_stages(reports: Mapping[str, StageReport]) -> set[str]:
    """Stages whose every shard (or whole run) this run found done and reused."""
    return {stage for stage, report in reports.items() if report.reused}


def stage_timings(work: WorkDir, stats: WorkStats, timings: Mapping[str, float],
                  *, reports: Mapping[str, StageReport] | None = None,
                  reused: set[str] | frozenset[str] = frozenset()) -> list[StageTiming]:
    """Timing rows in stage order: ``timings`` first, else the stage report's seconds, else
    the seconds its markers recorded.

    A stage in ``reused`` did no work this run, so its rates come from the seconds its
    markers recorded when the work was done (or are left out), never from the reuse time.
    """
    reports = reports or {}
    rows = []
    extra = sorted((set(timings) | set(reports)) - set(STAGES))
    for stage in [*STAGES, *extra]:
        seconds, source = timings.get(stage), "timings"
        if seconds is None and stage in reports:
            seconds, source = reports[stage].seconds, "report"
        if seconds is None:
            seconds, source = _marker_seconds(work, stage), "markers"
        if seconds is None:
            continue
        work_seconds = seconds
        if stage in reused:
            source = "reused"
            work_seconds = _marker_seconds(work, stage) or 0.0
        rate = _rate(work_seconds)
        rows.append(StageTiming(
            stage=stage, seconds=round(seconds, 3), source=source,
            clips_per_s=rate(stats.total_clips) if stage in ("ingest", "augment", "embed")
            else None,
            audio_s_per_s=rate(stats.audio_seconds) if stage in ("augment", "embed") else None,
            pairs_per_s=rate(stats.total_pairs) if stage == "generate" else None,
        ))
    return rows


def _rate(seconds: float) -> Callable[[float], float | None]:
    return lambda n: round(n / seconds, 3) if seconds > 0 and n else None


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:,.2f}"


def summary_table(stats: WorkStats, timings: list[StageTiming], *, title: str = "run") -> Table:
    """A terminal table: per-stage time and throughput, then the main counts."""
    table = Table(title=title)
    for col in ("stage", "seconds", "clips/s", "audio s/s", "pairs/s"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for t in timings:
        table.add_row(t.stage, _fmt(t.seconds), _fmt(t.clips_per_s), _fmt(t.audio_s_per_s),
                      _fmt(t.pairs_per_s))
    table.add_section()
    table.add_row("clips", str(stats.total_clips), "", "", "")
    table.add_row("audio minutes", f"{stats.audio_seconds / 60:.1f}", "", "", "")
    table.add_row("accepted pairs", str(stats.total_pairs), "", "", "")
    for stage, reasons in stats.rejections.items():
        table.add_row(f"rejected ({stage})", str(sum(reasons.values())), "", "", "")
    return table


def _md_table(head: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    def cell(c: Any) -> str:  # model text may hold pipes and newlines
        return str(c).replace("|", "\\|").replace("\n", " ")

    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _quality_sections(q: QualityStats) -> list[tuple[str, list[str], list[list[Any]]]]:
    return [
        ("Quality", ["figure", "value"], quality_rows(q)),
        ("Pairs by question form and family", ["group", "value", "pairs"],
         [["form", f, n] for f, n in q.by_form.items()]
         + [["family", t, n] for t, n in q.by_template.items()]),
        ("Gate rejections", ["reason", "count"], [[r, n] for r, n in q.gate_rejections.items()]),
        (f"{len(q.sample)} random accepted pairs", ["kind", "form", "family", "question",
                                                    "answer"],
         [[p.kind, p.question_form, p.template_id, p.question, p.answer] for p in q.sample]),
    ]


def _sections(stats: WorkStats, timings: list[StageTiming],
              reports: Mapping[str, StageReport], facts: Mapping[str, Any]
              ) -> list[tuple[str, list[str], list[list[Any]]]]:
    stage_rows = summary_rows(reports)
    return [
        ("Stages", ["stage", "seconds", "clips/s", "audio s/s", "pairs/s",
                    "timed by (reused: rates from when the work was done)"],
         [[t.stage, _fmt(t.seconds), _fmt(t.clips_per_s), _fmt(t.audio_s_per_s),
           _fmt(t.pairs_per_s), t.source] for t in timings]),
        ("Clips and pairs", ["source", "split", "clips", "pairs"],
         [[src, split, n, stats.pairs.get(src, {}).get(split, 0)]
          for src, by in stats.clips.items() for split, n in by.items()]),
        ("Pairs by kind", ["kind", "pairs"], [[k, n] for k, n in stats.pairs_by_kind.items()]),
        ("Rejections", ["stage", "reason", "count"],
         [[s, r, n] for s, by in stats.rejections.items() for r, n in by.items()]),
        ("Stage reports", list(stage_rows[0]) if stage_rows else ["stage"],
         [list(r.values()) for r in stage_rows]),
        ("Summary", ["key", "value"],
         [[k, json.dumps(v, sort_keys=True, default=str) if not isinstance(v, str) else v]
          for k, v in sorted(facts.items())]),
    ]


def write_run_report(work: WorkDir, *, reports: Mapping[str, StageReport] | None = None,
                     timings: Mapping[str, float] | None = None,
                     facts: Mapping[str, Any] | None = None) -> Path:
    """Write ``reports/run.md`` and ``reports/run.html`` with plots under ``reports/assets/``.

    Parameters
    ----------
    reports
        Stage → its report for this run (the table of stage reports; reuse and seconds).
    timings
        Stage → wall seconds measured by the caller; missing stages use their report's
        seconds, else their markers'.
    facts
        Free-form facts of the run (parameters, backend) shown as a key/value table.

    Returns
    -------
    Path
        The Markdown report.
    """
    reports = reports or {}
    stats = collect_stats(work)
    rows = stage_timings(work, stats, timings or {}, reports=reports,
                         reused=reused_stages(reports))
    plots = {}
    for name, data in render_plots(stats).items():
        write_bytes_if_changed(work.reports / "assets" / name, data)
        plots[name] = f"assets/{name}"
    sections = _sections(stats, rows, reports, facts or {})
    sections[3:3] = _quality_sections(collect_quality(work))
    intro = (f"{stats.total_clips} clips ({stats.audio_seconds / 60:.1f} min of audio measured), "
             f"{stats.total_pairs} accepted pairs"
             + (" — synthetic demo corpus." if stats.synthetic else "."))
    md = ["# Run report", "", intro, ""]
    for title, head, body in sections:
        md += [f"## {title}", "", _md_table(head, body) if body else "(none)", ""]
    md += ["## Plots", "", *[f"![{n}]({p})" for n, p in plots.items()], ""]
    path = work.reports / "run.md"
    write_bytes_if_changed(path, "\n".join(md).encode())
    page = [f"<!doctype html><meta charset='utf-8'><title>qagen run</title><h1>Run report</h1>"
            f"<p>{html.escape(intro)}</p>"]
    for title, head, body in sections:
        page.append(f"<h2>{html.escape(title)}</h2><table border='1' cellpadding='3'><tr>"
                    + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
                    + "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r)
                              + "</tr>" for r in body) + "</table>")
    page += ["<h2>Plots</h2>", *[f"<img src='{p}' alt='{n}'>" for n, p in plots.items()]]
    write_bytes_if_changed(work.reports / "run.html", "\n".join(page).encode())
    return path
