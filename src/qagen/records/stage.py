"""``ShardMarker`` and ``StageReport``: what the shard engine records per shard and per run.

Why records: a marker is a file in the work dir (``.done/<stage>/<shard>.json``) that a later
process reads to decide whether a shard is done and what it counted; a report is saved under
``reports/`` and is the one shape the CLI table, the Prefect artifact and the run report read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def _add_counts(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    total: Counter[str] = Counter(a)
    total.update(b)
    return dict(sorted(total.items()))


def _add_extras(a: Mapping[str, float | int],
                b: Mapping[str, float | int]) -> dict[str, float | int]:
    out: dict[str, float | int] = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
        if isinstance(out[k], float):
            out[k] = round(out[k], 6)
    return dict(sorted(out.items()))


def merge_details(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """``b`` laid over ``a``: mappings merge key by key, lists concatenate, other values of
    ``b`` win (details are facts, not counts: nothing is summed)."""
    out = dict(a)
    for k, v in b.items():
        old = out.get(k)
        if isinstance(old, Mapping) and isinstance(v, Mapping):
            out[k] = merge_details(old, v)
        elif isinstance(old, list) and isinstance(v, list):
            out[k] = [*old, *v]
        else:
            out[k] = v
    return out


class ShardMarker(BaseModel):
    """The done-marker of one shard of one stage (``.done/<stage>/<shard>.json``).

    Written after the shard's outputs were renamed into place; the shard is done when the
    marker parses, its ``fingerprint`` equals hash(stage version, config, input) and every
    file in ``outputs`` exists.
    """

    model_config = ConfigDict(extra="forbid")
    fingerprint: str
    stage_version: str
    items_in: int = Field(default=0, ge=0, description="Input items of the shard.")
    items_out: int = Field(default=0, ge=0, description="Output rows written.")
    skipped: dict[str, int] = Field(default_factory=dict, description="Not attempted, by reason.")
    rejected: dict[str, int] = Field(default_factory=dict, description="Failed items, by reason.")
    counts: dict[str, int] = Field(
        default_factory=dict, description="Output rows by the stage's own labels.")
    seconds: float = Field(default=0.0, ge=0, description="Wall time the shard's work took.")
    extras: dict[str, float | int] = Field(
        default_factory=dict, description="Stage-specific numbers, summed across shards.")
    outputs: list[str] = Field(
        default_factory=list, description="Files the shard wrote, relative to the work dir.")


class StageReport(BaseModel):
    """What one stage run did: the sum of its shards' markers, plus the stage's own facts.

    ``extras`` are numbers that add up across shards or runs (audio seconds, requests);
    ``details`` are facts that do not (output folder, metrics, roots) and merge by key.
    """

    model_config = ConfigDict(extra="forbid")
    stage: str
    shards: int = 0
    shards_reused: int = 0
    items_in: int = 0
    items_out: int = 0
    skipped: dict[str, int] = Field(default_factory=dict, description="Not attempted, by reason.")
    rejected: dict[str, int] = Field(default_factory=dict, description="Failed items, by reason.")
    counts: dict[str, int] = Field(
        default_factory=dict, description="Output rows by the stage's own labels (e.g. status);"
        " 'group:label' for several groups (ingest: 'split:train', 'audio:ok').")
    seconds: float = 0.0
    extras: dict[str, float | int] = Field(
        default_factory=dict, description="Stage-specific numbers, summed by add().")
    details: dict[str, Any] = Field(
        default_factory=dict, description="Stage-specific facts (paths, metrics), not summed.")

    @property
    def reused(self) -> bool:
        """True when every shard was found done (the run did no work)."""
        return self.shards > 0 and self.shards_reused == self.shards

    def counted(self, group: str) -> dict[str, int]:
        """The ``group:label`` counts of one group, by label (``counted("split")``)."""
        prefix = f"{group}:"
        return {k[len(prefix):]: n for k, n in self.counts.items() if k.startswith(prefix)}

    def add(self, other: StageReport) -> StageReport:
        """This report and ``other`` together (a new report; the stage name of this one)."""
        return StageReport(
            stage=self.stage, shards=self.shards + other.shards,
            shards_reused=self.shards_reused + other.shards_reused,
            items_in=self.items_in + other.items_in, items_out=self.items_out + other.items_out,
            skipped=_add_counts(self.skipped, other.skipped),
            rejected=_add_counts(self.rejected, other.rejected),
            counts=_add_counts(self.counts, other.counts),
            seconds=round(self.seconds + other.seconds, 3),
            extras=_add_extras(self.extras, other.extras),
            details=merge_details(self.details, other.details),
        )

    def add_marker(self, marker: ShardMarker, *, reused: bool) -> StageReport:
        """This report with one more shard counted (seconds are the run's, not the shard's)."""
        shard = StageReport(stage=self.stage, shards=1, shards_reused=int(reused),
                            items_in=marker.items_in, items_out=marker.items_out,
                            skipped=marker.skipped, rejected=marker.rejected,
                            counts=marker.counts, extras=marker.extras)
        return self.add(shard)

    def headline(self) -> str:
        """One line: ``26 out of 26 in; 5/5 shards reused; rejected 2``."""
        parts = [f"{self.items_out} out of {self.items_in} in"]
        if self.shards:
            parts.append(f"{self.shards_reused}/{self.shards} shards reused")
        if self.rejected:
            parts.append(f"rejected {sum(self.rejected.values())}")
        if self.skipped:
            parts.append(f"skipped {sum(self.skipped.values())}")
        return "; ".join(parts)

    def rows(self) -> list[tuple[str, str]]:
        """``(what, value)`` rows: the table the CLI prints and the flow posts."""
        rows = [("items in", str(self.items_in)), ("items out", str(self.items_out))]
        rows += [(f"  {label.replace(':', ' ')}", str(n)) for label, n in self.counts.items()]
        rows += [(f"skipped: {reason}", str(n)) for reason, n in self.skipped.items()]
        rows += [(f"rejected: {reason}", str(n)) for reason, n in self.rejected.items()]
        rows += [(name, _number(v)) for name, v in self.extras.items()]
        rows.append(("shards (reused)", f"{self.shards} ({self.shards_reused})"))
        rows.append(("seconds", f"{self.seconds:.1f}"))
        return rows


def _number(v: float | int) -> str:
    return str(v) if isinstance(v, int) else f"{v:,.3f}".rstrip("0").rstrip(".")


def sum_reports(reports: Iterable[StageReport], *, stage: str | None = None) -> StageReport:
    """Add up reports of one stage (shards of a flow, sources of ingest) with
    :meth:`StageReport.add`; an empty input gives an empty report named ``stage``."""
    total: StageReport | None = None
    for report in reports:
        total = report if total is None else total.add(report)
    if total is None:
        return StageReport(stage=stage or "")
    return total if stage is None else total.model_copy(update={"stage": stage})


def summary_rows(reports: Mapping[str, StageReport]) -> list[dict[str, Any]]:
    """One row per stage (in the order given): the table the Prefect flow posts as its
    artifact and the run report shows."""
    return [{"stage": stage, "seconds": round(r.seconds, 3), "shards": r.shards,
             "reused": r.shards_reused, "in": r.items_in, "out": r.items_out,
             "skipped": sum(r.skipped.values()), "rejected": sum(r.rejected.values()),
             "result": r.headline()} for stage, r in reports.items()]
