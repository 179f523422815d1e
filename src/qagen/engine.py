"""``run_stage``: the one shard loop. Input shards → per-item (or per-batch) function → sinks.

Stage authors write a function over items (``Clip → ClipFeatures | Rejection``) or over a whole
shard (``(key, clips) → rows``, for a stage that batches a model); this module does the rest:
sharding (output shard k covers the items of input shard k), fingerprints, atomic writes
through the sinks, rejection files, done-markers (:class:`ShardMarker`), counts, timing,
resume, progress, and the removal of outputs whose input shard is gone.

A shard is done when its marker parses, its fingerprint equals hash(stage, stage version,
config, input identity) and its outputs exist. Outputs are renamed into place first, then the
marker written, so a killed run redoes at most the shard in flight.
"""

from __future__ import annotations

import hashlib
import logging
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError

from qagen.audio import sha256_file
from qagen.errors import ConfigError
from qagen.manifest import atomic_path, read_records, write_json_atomic, write_records
from qagen.records import Clip, Rejection
from qagen.records.stage import ShardMarker, StageReport, sum_reports, summary_rows
from qagen.workdir import WorkDir

log = logging.getLogger(__name__)

__all__ = [
    "ArraysSink", "GuardedBatch", "GuardedItem", "ManifestShards", "ParquetSink",
    "ShardMarker", "ShardWork", "Sink", "StageReport", "StreamShards", "files_identity",
    "finished_marker", "read_marker", "remove_orphans", "run_stage",
    "stage_fingerprint", "sum_reports", "summary_rows",
]

In = TypeVar("In")
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
ItemResult = Any  # Out | Rejection | Sequence[Out | Rejection]

#: Map a per-item function over items, in order (builtin ``map`` or ``Pool.imap``).
Mapper = Callable[[Callable[[Any], list[Any]], Iterable[Any]], Iterable[list[Any]]]


# --- the exception boundary -------------------------------------------------------------


def item_identity(item: Any) -> tuple[str | None, str]:
    """``(source, id)`` of an input item for its rejection: a clip's id, a pair's id, else
    the item's text."""
    ident = getattr(item, "clip_id", None) or getattr(item, "qa_id", None) or repr(item)[:80]
    return getattr(item, "source", None), str(ident)


@dataclass(frozen=True)
class GuardedItem(Generic[In]):
    """The per-item exception boundary (picklable, so it runs inside worker processes).

    Any exception becomes ``Rejection(reason="internal_error")`` with type and message, and
    its traceback is logged once; under ``strict`` (the tests) it is re-raised.
    """

    fn: Callable[[In], ItemResult]
    stage: str
    strict: bool = False

    def __call__(self, item: In) -> list[Any]:
        try:
            result = self.fn(item)
        except Exception as exc:
            if self.strict:
                raise
            source, ident = item_identity(item)
            log.error("%s: internal error on %s\n%s", self.stage, ident, traceback.format_exc())
            return [Rejection(stage=self.stage, source=source, item_id=ident,
                              reason="internal_error", detail=f"{type(exc).__name__}: {exc}")]
        return list(result) if isinstance(result, Sequence) else [result]


@dataclass(frozen=True)
class GuardedBatch(Generic[In]):
    """The exception boundary of a per-batch function: an exception rejects every item of
    the batch as ``internal_error`` (re-raised under ``strict``)."""

    fn: Callable[[str, list[In]], Iterable[Any]]
    stage: str
    strict: bool = False

    def __call__(self, key: str, items: list[In]) -> list[Any]:
        try:
            return list(self.fn(key, items))
        except Exception as exc:
            if self.strict:
                raise
            log.error("%s: internal error on shard %s\n%s", self.stage, key,
                      traceback.format_exc())
            out = []
            for item in items:
                source, ident = item_identity(item)
                out.append(Rejection(stage=self.stage, source=source, item_id=ident,
                                     reason="internal_error",
                                     detail=f"{type(exc).__name__}: {exc} (shard {key})"))
            return out


# --- fingerprints and markers -----------------------------------------------------------


def files_identity(paths: Sequence[Path]) -> str:
    """Content identity of a shard's input files: the first file's sha256, then each further
    file's (``absent`` where it does not exist), so a companion appearing redoes the shard."""
    parts = [sha256_file(paths[0])]
    parts += [sha256_file(p) if p.is_file() else "absent" for p in paths[1:]]
    return "\x1f".join(parts)


def stage_fingerprint(stage: str, version: str, config: BaseModel | None,
                      identity: str | Path) -> str:
    """Identity of one shard's work: stage version + config + the input's identity (a file's
    bytes when given a path)."""
    ident = sha256_file(identity) if isinstance(identity, Path) else identity
    h = hashlib.sha256(f"{stage}\x1f{version}\x1f".encode())
    h.update((config.model_dump_json() if config is not None else "").encode())
    h.update(ident.encode())
    return h.hexdigest()


def read_marker(path: Path) -> ShardMarker | None:
    """A marker file as :class:`ShardMarker`; None when absent, unreadable or of another
    shape (an older version's: the shard is then redone)."""
    try:
        return ShardMarker.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError):
        return None


def finished_marker(path: Path, fingerprint: str, *, root: Path) -> ShardMarker | None:
    """The marker when it has this fingerprint and every output it names exists."""
    marker = read_marker(path)
    if marker is None or marker.fingerprint != fingerprint:
        return None
    if not all((root / p).is_file() for p in marker.outputs):
        return None
    return marker


# --- inputs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardWork(Generic[In]):
    """One input shard: its key, the identity of its content, how to read its items, and
    rejections found while reading it (rows that never became items; ``kept`` ones were
    repaired and are among the items)."""

    key: str
    identity: str
    load: Callable[[], list[In]]
    prior: Sequence[Rejection] = ()
    read_seconds: float = 0.0  # time already spent making the shard (counted in its seconds)


@runtime_checkable
class ShardInputs(Protocol[In]):
    """The shards a stage run covers. ``complete``: they are all the shards the stage owns
    (not a subset picked by ``shard_keys``), so outputs of other keys it ``owns`` are
    orphans."""

    complete: bool

    def __iter__(self) -> Iterator[ShardWork[In]]: ...

    def owns(self, key: str) -> bool: ...


@dataclass
class ManifestShards(Generic[M]):
    """Shard k of a manifest (default: the clip manifest) as input.

    ``folder`` holds ``<kind>-<key>.parquet`` (default ``manifests/``; ``qa/`` for pairs).
    ``also`` gives companion files of shard k (the features or QA shard) whose bytes join the
    fingerprint, so a stage reading them redoes a shard when they change.

    Raises
    ------
    ConfigError
        (on iteration) a ``keys`` entry that is not a shard of the manifest.
    """

    work: WorkDir
    kind: str = "clips"
    model: type[M] = Clip  # type: ignore[assignment]
    keys: Sequence[str] | None = None
    also: Sequence[Callable[[str], Path]] = ()
    folder: Path | None = None

    @property
    def complete(self) -> bool:
        return self.keys is None

    def owns(self, key: str) -> bool:
        return True

    def shards(self) -> dict[str, Path]:
        """The input's shard files, by key."""
        return WorkDir.shard_files(self.folder or self.work.manifests, self.kind)

    def __iter__(self) -> Iterator[ShardWork[M]]:
        self.work.check_manifest_complete()
        shards = self.shards()
        keys = list(shards) if self.keys is None else list(self.keys)
        unknown = [k for k in keys if k not in shards]
        if unknown:
            raise ConfigError(f"no {self.kind} shards {unknown} in "
                              f"{self.folder or self.work.manifests}; have {list(shards)}")
        for key in keys:
            paths = [shards[key], *(f(key) for f in self.also)]
            yield ShardWork(key=key, identity=files_identity(paths),
                            load=partial(read_records, shards[key], self.model))


@dataclass
class StreamShards(Generic[In]):
    """Shards made on the fly (ingest: chunks of a source's rows); ``owns`` says which keys
    belong to this stream (one source's), so orphans of other sources are never touched."""

    shards: Iterable[ShardWork[In]]
    owns_key: Callable[[str], bool]
    complete: bool = True

    def __iter__(self) -> Iterator[ShardWork[In]]:
        return iter(self.shards)

    def owns(self, key: str) -> bool:
        return self.owns_key(key)


# --- sinks ------------------------------------------------------------------------------


@runtime_checkable
class Sink(Protocol):
    """Where one kind of output goes. ``accepts``: the type of result routed here."""

    accepts: type

    def write(self, key: str, items: list[Any], *, tag: str) -> list[Path]:
        """Write shard ``key``'s items atomically; returns the files written."""
        ...

    def ready(self, key: str) -> bool:
        """Whether shard ``key``'s output is in place."""
        ...

    def keys(self) -> set[str]:
        """Shard keys that have output."""
        ...

    def remove(self, key: str) -> None:
        """Delete shard ``key``'s output (its input is gone)."""
        ...

    def finish(self, *, changed: bool) -> None:
        """After every shard (``changed``: some shard was redone or removed)."""
        ...


@dataclass
class ParquetSink(Generic[M]):
    """Rows of one record model → ``<folder>/<prefix>-<key>.parquet`` (today's manifests)."""

    model: type[M]
    folder: Path
    prefix: str

    @classmethod
    def manifest(cls, work: WorkDir, kind: str, model: type[M]) -> ParquetSink[M]:
        """The sink of manifest ``kind`` (``manifests/<kind>-<key>.parquet``)."""
        return cls(model, work.manifests, kind)

    @property
    def accepts(self) -> type:
        return self.model

    def path(self, key: str) -> Path:
        return self.folder / f"{self.prefix}-{key}.parquet"

    def write(self, key: str, items: list[Any], *, tag: str) -> list[Path]:
        path = self.path(key)
        write_records(path, items, self.model)
        return [path]

    def ready(self, key: str) -> bool:
        return self.path(key).is_file()

    def keys(self) -> set[str]:
        return set(WorkDir.shard_files(self.folder, self.prefix))

    def remove(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def finish(self, *, changed: bool) -> None:
        return None


class ArrayLayout(Protocol):
    """File names of an arrays sink (the embed stage's ``EmbeddingPaths`` is one)."""

    @property
    def root(self) -> Path: ...

    def index_part(self, key: str) -> Path: ...

    def index_parts(self) -> dict[str, Path]: ...

    @staticmethod
    def array_name(kind: Any, key: str, tag: str) -> str: ...

    def arrays_of(self, key: str) -> list[Path]: ...


def write_array_atomic(path: Path, array: Any) -> None:
    """Save a 2-D ``.npy`` atomically, so a reader never maps half an array."""
    import numpy as np

    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        np.save(fh, np.ascontiguousarray(array), allow_pickle=False)


@dataclass
class ArraysSink(Generic[T, M]):
    """Per-item 2-D arrays → one ``.npy`` per (shard, array name), blocks stacked on axis 0,
    plus an index part (one ``index_model`` row per item and array) naming each block.

    Array files carry the shard fingerprint's start as a tag, so a redone shard writes new
    files beside the old ones and the index in place always points at complete arrays; the
    old files go in :meth:`finish`, after ``merge`` has rebuilt the merged index. Items with
    the same ``block_of`` share their rows (one recording under two clip ids).
    """

    accepts: type[T]
    layout: ArrayLayout
    names: Sequence[Any]
    index_model: type[M]
    arrays_of: Callable[[T], Mapping[Any, Any]]
    block_of: Callable[[T], str]
    index_row: Callable[[T, Any, str, int, Any], M]  # item, name, file, offset, array
    empty_dtype: str = "float32"
    merge: Callable[[], object] | None = None  # rebuild the merged index from the parts
    merged: Path | None = None  # the merged index: rebuilt also when it is missing
    _redone: dict[str, set[str]] = field(default_factory=dict, repr=False)

    def write(self, key: str, items: list[T], *, tag: str) -> list[Path]:
        import numpy as np

        files = {name: self.layout.array_name(name, key, tag) for name in self.names}
        blocks: dict[Any, list[Any]] = {name: [] for name in self.names}
        offsets: dict[Any, int] = dict.fromkeys(self.names, 0)
        placed: dict[str, dict[Any, int]] = {}
        rows: list[M] = []
        for item in items:
            arrays = self.arrays_of(item)
            block = self.block_of(item)
            if block not in placed:
                placed[block] = {}
                for name in self.names:
                    placed[block][name] = offsets[name]
                    blocks[name].append(arrays[name])
                    offsets[name] += arrays[name].shape[0]
            for name in self.names:
                rows.append(self.index_row(item, name, files[name], placed[block][name],
                                           arrays[name]))
        written = []
        for name in self.names:
            data = (np.concatenate(blocks[name], axis=0) if blocks[name]
                    else np.zeros((0, 0), dtype=self.empty_dtype))
            path = self.layout.root / files[name]
            write_array_atomic(path, data)
            written.append(path)
        part = self.layout.index_part(key)
        write_records(part, rows, self.index_model)
        self._redone[key] = {p.name for p in written}
        return [*written, part]

    def ready(self, key: str) -> bool:
        return self.layout.index_part(key).is_file()

    def keys(self) -> set[str]:
        return set(self.layout.index_parts())

    def remove(self, key: str) -> None:
        self.layout.index_part(key).unlink(missing_ok=True)
        for path in self.layout.arrays_of(key):
            path.unlink(missing_ok=True)

    def finish(self, *, changed: bool) -> None:
        if self.merge is not None and (
                changed or (self.merged is not None and not self.merged.is_file())):
            self.merge()
        for key, keep in self._redone.items():
            for path in self.layout.arrays_of(key):
                if path.name not in keep:
                    path.unlink(missing_ok=True)
        self._redone.clear()


# --- the loop ---------------------------------------------------------------------------


def run_stage(
    work: WorkDir,
    item_fn: Callable[[Any], ItemResult] | None = None,
    *,
    stage: str,
    version: str,
    batch_fn: Callable[[str, list[Any]], Iterable[Any]] | None = None,
    inputs: ShardInputs[Any] | None = None,
    sinks: Sequence[Sink] | None = None,
    output_kind: str | None = None,
    output_model: type[BaseModel] | None = None,
    config: BaseModel | None = None,
    skip: Callable[[Any], str | None] | None = None,
    mapper: Mapper | None = None,
    shard_keys: Sequence[str] | None = None,
    strict: bool = False,
    on_item: Callable[[], None] | None = None,
    label: Callable[[Any], str | Iterable[str]] | None = None,
    measure: Callable[[Any], Mapping[str, float | int]] | None = None,
    namespace: str | None = None,
) -> StageReport:
    """Run a stage's function over every input shard; write outputs, rejections, markers.

    Parameters
    ----------
    item_fn
        ``item → Out | Rejection | list[...]``, pure with respect to the work dir. Either this
        or ``batch_fn``.
    batch_fn
        ``(shard key, items) → iterable of Out | Rejection``: for a stage that needs a whole
        shard at once (to batch a model, or to join companion shards).
    inputs
        The shards to cover (default: the clip manifest, restricted to ``shard_keys``).
    sinks
        Where results go, routed by type (``Sink.accepts``); default one parquet manifest
        ``output_kind`` of ``output_model``.
    config
        Everything besides the input that decides the output; hashed into the fingerprint.
    skip
        ``item → reason | None``: items not to attempt (e.g. audio missing), counted only.
    mapper
        How to map the guarded per-item function over a shard's items (default in-process
        ``map``; pass ``pool.imap`` for worker processes).
    shard_keys
        Restrict the default input to these shards (the flow maps one task per shard);
        outputs of other shards are then left alone.
    strict
        Re-raise exceptions of the function instead of recording ``internal_error``.
    label
        ``output → label(s)`` counted into ``counts`` (``'group:label'`` for several groups).
    measure
        ``output → {name: number}`` summed into ``extras`` (e.g. audio seconds).
    namespace
        Folder of the markers and prefix of the rejection files (default ``stage``): a stage
        run once per training run (evaluate) keeps each run's markers apart.

    Returns
    -------
    StageReport
        The sum of the shards' markers; ``seconds`` is this call's wall time.
    """
    if (item_fn is None) == (batch_fn is None):
        raise TypeError("run_stage needs exactly one of item_fn and batch_fn")
    if sinks is None:
        if output_kind is None or output_model is None:
            raise TypeError("run_stage needs sinks, or output_kind and output_model")
        sinks = [ParquetSink.manifest(work, output_kind, output_model)]
    if inputs is None:
        inputs = ManifestShards(work, keys=shard_keys)
    t0 = time.perf_counter()
    ns = namespace or stage
    work_fn: _ShardFn = (
        _ShardFn(stage=stage, sinks=list(sinks), skip=skip, on_item=on_item, label=label,
                 measure=measure, batch=GuardedBatch(batch_fn, stage, strict)
                 if batch_fn is not None else None,
                 item=GuardedItem(item_fn, stage, strict) if item_fn is not None else None,
                 mapper=mapper or map))
    report = StageReport(stage=stage)
    done: set[str] = set()
    changed = False
    for shard in inputs:
        fingerprint = stage_fingerprint(stage, version, config, shard.identity)
        marker_path = work.marker(ns, shard.key)
        found = finished_marker(marker_path, fingerprint, root=work.root)
        reused = found is not None and all(s.ready(shard.key) for s in sinks)
        if found is not None and reused:
            marker = found
        else:
            marker = work_fn(work, shard, fingerprint=fingerprint, version=version,
                             rejects=work.rejects_shard(ns, shard.key))
            write_json_atomic(marker_path, marker.model_dump(mode="json"))
            changed = True
        report = report.add_marker(marker, reused=reused)
        done.add(shard.key)
    if inputs.complete:
        changed |= bool(remove_orphans(work, ns, sinks, keep=done, owns=inputs.owns))
    for sink in sinks:
        sink.finish(changed=changed)
    report.seconds = round(time.perf_counter() - t0, 3)
    log.info("%s: %d shards (%d reused), %d in, %d out, skipped %s, rejected %s", stage,
             report.shards, report.shards_reused, report.items_in, report.items_out,
             report.skipped, report.rejected)
    return report


@dataclass
class _ShardFn:
    """Does one shard: read, skip, map, route results to sinks, write, count."""

    stage: str
    sinks: list[Sink]
    skip: Callable[[Any], str | None] | None
    on_item: Callable[[], None] | None
    label: Callable[[Any], str | Iterable[str]] | None
    measure: Callable[[Any], Mapping[str, float | int]] | None
    batch: GuardedBatch[Any] | None
    item: GuardedItem[Any] | None
    mapper: Mapper

    def __call__(self, work: WorkDir, shard: ShardWork[Any], *, fingerprint: str,
                 version: str, rejects: Path) -> ShardMarker:
        t0 = time.perf_counter()
        items = shard.load()
        skipped: Counter[str] = Counter()
        todo = []
        for item in items:
            reason = self.skip(item) if self.skip else None
            if reason:
                skipped[reason] += 1
            else:
                todo.append(item)
        outputs: list[list[Any]] = [[] for _ in self.sinks]
        rejections: list[Rejection] = list(shard.prior)
        for results in self._results(shard.key, todo):
            for result in results:
                if isinstance(result, Rejection):
                    rejections.append(result)
                    continue
                for i, sink in enumerate(self.sinks):
                    if isinstance(result, sink.accepts):
                        outputs[i].append(result)
                        break
                else:
                    expected = " or ".join(s.accepts.__name__ for s in self.sinks)
                    raise TypeError(f"{self.stage} returned {type(result).__name__}, expected "
                                    f"{expected} or Rejection")
        files: list[Path] = []
        for sink, rows in zip(self.sinks, outputs, strict=True):
            files += sink.write(shard.key, rows, tag=fingerprint)
        if rejections:
            write_records(rejects, rejections, Rejection)
        else:
            rejects.unlink(missing_ok=True)
        produced = [row for rows in outputs for row in rows]
        counts: Counter[str] = Counter()
        extras: Counter[str] = Counter()
        for row in produced:
            if self.label is not None:
                labels = self.label(row)
                counts.update([labels] if isinstance(labels, str) else labels)
            if self.measure is not None:
                extras.update(self.measure(row))
        counts.update(f"repaired:{r.reason}" for r in rejections if r.kept)
        dropped_before = sum(1 for r in shard.prior if not r.kept)
        return ShardMarker(
            fingerprint=fingerprint, stage_version=version,
            items_in=len(items) + dropped_before, items_out=len(produced),
            skipped=dict(sorted(skipped.items())),
            rejected=dict(sorted(Counter(r.reason for r in rejections if not r.kept).items())),
            counts=dict(sorted(counts.items())),
            seconds=round(time.perf_counter() - t0 + shard.read_seconds, 3),
            extras={k: round(v, 6) if isinstance(v, float) else v
                    for k, v in sorted(extras.items())},
            outputs=[_relative(p, work.root) for p in files],
        )

    def _results(self, key: str, todo: list[Any]) -> Iterator[list[Any]]:
        if self.batch is not None:
            results = self.batch(key, todo)
            if self.on_item is not None:
                for _ in todo:
                    self.on_item()
            yield results
            return
        if self.item is None:
            raise TypeError(f"{self.stage}: neither a per-item nor a per-batch function")
        for results in self.mapper(self.item, todo):
            yield results
            if self.on_item is not None:
                self.on_item()


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def remove_orphans(work: WorkDir, namespace: str, sinks: Sequence[Sink], *, keep: set[str],
                   owns: Callable[[str], bool] = lambda _k: True) -> list[str]:
    """Remove outputs, markers and rejections of shards whose input is gone (the source
    shrank); returns their keys. Only keys ``owns`` claims are candidates."""
    found: set[str] = set(work.markers(namespace))
    found |= set(WorkDir.shard_files(work.rejects, namespace))
    for sink in sinks:
        found |= sink.keys()
    orphans = sorted(k for k in found if k not in keep and owns(k))
    for key in orphans:
        for sink in sinks:
            sink.remove(key)
        work.marker(namespace, key).unlink(missing_ok=True)
        work.rejects_shard(namespace, key).unlink(missing_ok=True)
    if orphans:
        log.info("%s: removed the outputs of %d shards whose input is gone: %s", namespace,
                 len(orphans), ", ".join(orphans))
    return orphans
