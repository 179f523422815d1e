"""``run_stage``: input shards → per-item function → output shards + rejections, resumable.

Stage authors write a per-item function; this module does the rest — sharding (shard k of the
output covers the clips of input shard k), atomic writes, done-markers with fingerprints,
rejection files, counts, timing and resume. A shard is done when its marker exists and its
fingerprint equals hash(stage version, config, input shard bytes); output is renamed into
place first, then the marker written, so a killed run redoes at most the shard in flight.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

from qagen.audio import sha256_file
from qagen.manifest import read_records, write_json_atomic, write_records
from qagen.records import Clip, Rejection
from qagen.workdir import WorkDir

log = logging.getLogger(__name__)

Out = TypeVar("Out", bound=BaseModel)
ItemResult = BaseModel | Rejection | Sequence[BaseModel | Rejection]

#: Map a per-item function over items, in order (builtin ``map`` or ``Pool.imap``).
Mapper = Callable[[Callable[[Clip], list[BaseModel]], Iterable[Clip]], Iterable[list[BaseModel]]]


class StageReport(BaseModel):
    """Counts of one stage run over a work directory (sum of its shard markers)."""

    stage: str
    shards: int = 0
    shards_reused: int = 0
    items_in: int = 0
    items_out: int = 0
    skipped: dict[str, int] = Field(default_factory=dict, description="Not attempted, by reason.")
    rejected: dict[str, int] = Field(default_factory=dict, description="Failed items, by reason.")
    counts: dict[str, int] = Field(
        default_factory=dict, description="Output rows by the stage's own label (e.g. status)."
    )
    seconds: float = 0.0


@dataclass(frozen=True)
class GuardedItem(Generic[Out]):
    """The per-item exception boundary (picklable, so it runs inside worker processes).

    Any exception becomes ``Rejection(reason="internal_error")`` with type and message, and
    its traceback is logged once; under ``strict`` (the tests) it is re-raised.
    """

    fn: Callable[[Clip], ItemResult]
    stage: str
    strict: bool = False

    def __call__(self, clip: Clip) -> list[BaseModel]:
        try:
            result = self.fn(clip)
        except Exception as exc:
            if self.strict:
                raise
            log.error("%s: internal error on %s\n%s", self.stage, clip.clip_id,
                      traceback.format_exc())
            return [Rejection(stage=self.stage, source=clip.source, item_id=clip.clip_id,
                              reason="internal_error", detail=f"{type(exc).__name__}: {exc}")]
        return list(result) if isinstance(result, Sequence) else [result]


def stage_fingerprint(stage: str, version: str, config: BaseModel | None, input_path: Path) -> str:
    """Identity of one shard's work: stage version + config + the input shard's bytes."""
    h = hashlib.sha256(f"{stage}\x1f{version}\x1f".encode())
    h.update((config.model_dump_json() if config is not None else "").encode())
    h.update(sha256_file(input_path).encode())
    return h.hexdigest()


def shard_done(marker: Path, fingerprint: str, output: Path) -> dict[str, object] | None:
    """The marker's contents when the shard is finished with this fingerprint, else None."""
    if not (marker.is_file() and output.is_file()):
        return None
    try:
        meta = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return meta if meta.get("fingerprint") == fingerprint else None


def run_stage(
    work: WorkDir,
    item_fn: Callable[[Clip], ItemResult],
    *,
    stage: str,
    version: str,
    output_kind: str,
    output_model: type[Out],
    config: BaseModel | None = None,
    skip: Callable[[Clip], str | None] | None = None,
    mapper: Mapper | None = None,
    shard_keys: Sequence[str] | None = None,
    strict: bool = False,
    on_item: Callable[[], None] | None = None,
    label: Callable[[Out], str] | None = None,
) -> StageReport:
    """Run ``item_fn`` over every clip of the clip manifest, shard by shard.

    Parameters
    ----------
    item_fn
        ``Clip → Out | Rejection | list[...]``; pure with respect to the work dir.
    skip
        ``Clip → reason | None``: clips not to attempt (e.g. audio missing), counted only.
    mapper
        How to map the guarded function over a shard's clips (default: in-process ``map``;
        pass ``pool.imap`` for worker processes).
    shard_keys
        Restrict to these input shards (the flow maps one task per shard); default all.
    strict
        Re-raise per-item exceptions instead of recording ``internal_error``.
    label
        ``output row → label`` counted into the report (e.g. a status field).
    """
    t0 = time.perf_counter()
    inputs = work.manifest_shards("clips")
    keys = list(inputs) if shard_keys is None else list(shard_keys)
    report = StageReport(stage=stage)
    totals = {k: Counter[str]() for k in ("skipped", "rejected", "counts")}
    guarded = GuardedItem(item_fn, stage, strict)
    do_map = mapper or map
    for key in keys:
        in_path = inputs[key]
        out_path = work.manifest_shard(output_kind, key)
        marker = work.marker(stage, key)
        fingerprint = stage_fingerprint(stage, version, config, in_path)
        meta = shard_done(marker, fingerprint, out_path)
        reused = meta is not None
        if meta is None:
            meta = _run_shard(work, key, in_path, out_path, guarded, do_map, skip, output_model,
                              on_item, label)
            meta["fingerprint"] = fingerprint
            meta["stage_version"] = version
            write_json_atomic(marker, meta)
        tally_shard(report, totals, meta, reused=reused)
    if shard_keys is None:
        _remove_orphans(work, stage, output_kind, keep=set(keys))
    return finish_report(report, totals, started=t0)


def tally_shard(report: StageReport, totals: Mapping[str, Counter[str]],
                meta: Mapping[str, object], *, reused: bool) -> None:
    """Add one shard's marker (counts by reason, items in/out) to a stage's running totals."""
    report.shards += 1
    report.shards_reused += int(reused)
    report.items_in += int(meta["items_in"])  # type: ignore[call-overload]
    report.items_out += int(meta["items_out"])  # type: ignore[call-overload]
    for kind, counter in totals.items():
        counter.update(meta.get(kind, {}))  # type: ignore[arg-type]


def finish_report(report: StageReport, totals: Mapping[str, Counter[str]], *,
                  started: float) -> StageReport:
    """Fill a stage report's per-reason counts (sorted, so reports diff cleanly) and wall
    time from the shard totals, and log the one-line summary every stage prints."""
    report.skipped = dict(sorted(totals["skipped"].items()))
    report.rejected = dict(sorted(totals["rejected"].items()))
    report.counts = dict(sorted(totals["counts"].items()))
    report.seconds = round(time.perf_counter() - started, 3)
    log.info("%s: %d shards (%d reused), %d in, %d out, skipped %s, rejected %s", report.stage,
             report.shards, report.shards_reused, report.items_in, report.items_out,
             report.skipped, report.rejected)
    return report


def _run_shard(
    work: WorkDir, key: str, in_path: Path, out_path: Path, guarded: GuardedItem[Out],
    do_map: Mapper, skip: Callable[[Clip], str | None] | None, output_model: type[Out],
    on_item: Callable[[], None] | None, label: Callable[[Out], str] | None,
) -> dict[str, object]:
    t0 = time.perf_counter()
    clips = read_records(in_path, Clip)
    skipped: Counter[str] = Counter()
    todo = []
    for clip in clips:
        reason = skip(clip) if skip else None
        if reason:
            skipped[reason] += 1
        else:
            todo.append(clip)
    outputs: list[Out] = []
    rejections: list[Rejection] = []
    for results in _iter_results(do_map, guarded, todo):
        for item in results:
            if isinstance(item, Rejection):
                rejections.append(item)
            elif isinstance(item, output_model):
                outputs.append(item)
            else:
                raise TypeError(f"{guarded.stage} returned {type(item).__name__}, expected "
                                f"{output_model.__name__} or Rejection")
        if on_item is not None:
            on_item()
    write_records(out_path, outputs, output_model)
    rej_path = work.rejects_shard(guarded.stage, key)
    if rejections:
        write_records(rej_path, rejections, Rejection)
    else:
        rej_path.unlink(missing_ok=True)
    return {"items_in": len(clips), "items_out": len(outputs), "skipped": dict(skipped),
            "rejected": dict(Counter(r.reason for r in rejections)),
            "counts": dict(Counter(label(o) for o in outputs)) if label else {},
            "seconds": round(time.perf_counter() - t0, 3)}


def _iter_results(
    do_map: Mapper, guarded: GuardedItem[Out], todo: list[Clip]
) -> Iterator[list[BaseModel]]:
    yield from do_map(guarded, todo)


def _remove_orphans(work: WorkDir, stage: str, output_kind: str, *, keep: set[str]) -> None:
    """Outputs whose input shard no longer exists (the source shrank) are removed."""
    for key, path in work.manifest_shards(output_kind).items():
        if key not in keep:
            path.unlink(missing_ok=True)
            work.marker(stage, key).unlink(missing_ok=True)
            work.rejects_shard(stage, key).unlink(missing_ok=True)
