"""The ingest stage: one dataset's native files → ``manifests/clips-<source>-NNNNN.parquet``.

Each source module reads its own format; this stage adds what is common: the audio check
(ok / missing / excluded), optional content hashing, duplicate-id detection, sharding with
atomic writes, resume markers, rejection files, and a report.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from qagen.audio import check_regular_file, sha256_file
from qagen.engine import ParquetSink, ShardWork, StageReport, StreamShards, run_stage
from qagen.errors import ConfigError, UnsafePathError
from qagen.manifest import write_json_atomic, write_text_atomic
from qagen.paths import safe_join
from qagen.records import AudioStatus, Clip, Rejection
from qagen.records.rejection import IngestReason
from qagen.sources import get_source, parse_options
from qagen.workdir import WorkDir

log = logging.getLogger(__name__)

#: Bump when the clip rows ingest writes change for the same input.
STAGE_VERSION = "1"
STAGE = "ingest"


class IngestConfig(BaseModel):
    """What besides the rows decides a clip shard's content (hashed into its fingerprint)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    options: dict[str, Any]
    check_audio: bool
    hash_audio: bool


def _check_audio(clip: Clip, root: Path) -> Clip:
    if clip.audio_status is AudioStatus.excluded:
        return clip
    try:
        path = safe_join(root, clip.audio_path)
    except UnsafePathError as exc:  # symlink leaving the root
        return clip.model_copy(update={"audio_status": AudioStatus.excluded,
                                       "audio_status_reason": str(exc)})
    if path.is_file():
        return clip.model_copy(update={"audio_status": AudioStatus.ok, "audio_status_reason": None})
    if path.exists():  # a FIFO, socket, device or folder named like audio: never opened
        try:
            check_regular_file(path)
        except OSError as exc:
            return clip.model_copy(update={"audio_status": AudioStatus.excluded,
                                           "audio_status_reason": f"{clip.audio_path}: "
                                                                  f"{exc.strerror}"})
    return clip.model_copy(update={"audio_status": AudioStatus.missing,
                                   "audio_status_reason": f"no file at {clip.audio_path}"})


def _identity(clips: list[Clip], rejections: list[Rejection]) -> str:
    """Content identity of one chunk of rows (after the audio check, so a file that appears
    or disappears redoes its shard)."""
    h = hashlib.sha256()
    for clip in clips:
        h.update(clip.model_dump_json().encode())
    for rej in rejections:
        h.update(rej.model_dump_json().encode())
    return h.hexdigest()


@dataclass
class _Chunker:
    """Rows of one source → shards of ``shard_size`` clips (with the rows dropped among them),
    deduplicated by clip id and audio-checked; made lazily, one shard in memory at a time."""

    source: str
    root: Path
    items: Iterator[Clip | Rejection]
    shard_size: int
    check_audio: bool
    on_progress: Callable[[int], None] | None
    missing: list[str] = field(default_factory=list)
    clips_seen: int = 0
    _started: float = 0.0

    def __iter__(self) -> Iterator[ShardWork[Clip]]:
        seen: set[str] = set()
        clips: list[Clip] = []
        rejections: list[Rejection] = []
        index = 0
        self._started = time.perf_counter()
        for item in self.items:
            if isinstance(item, Rejection):
                rejections.append(item)
                continue
            if item.clip_id in seen:
                rejections.append(Rejection(
                    stage=STAGE, source=self.source, item_id=item.clip_id,
                    reason=IngestReason.duplicate_id,
                    detail=f"second row for {item.source_id} (window {item.start_s}-"
                    f"{item.end_s} s); first one kept"))
                continue
            seen.add(item.clip_id)
            clip = _check_audio(item, self.root) if self.check_audio else item
            if clip.audio_status is AudioStatus.missing:
                self.missing.append(f"{clip.clip_id}\t{clip.audio_path}")
            clips.append(clip)
            self.clips_seen += 1
            if self.on_progress is not None:
                self.on_progress(self.clips_seen)
            if len(clips) >= self.shard_size:
                yield self._shard(index, clips, rejections)
                self._started = time.perf_counter()  # the engine's time on it is not reading
                index += 1
                clips, rejections = [], []
        if clips or rejections or index == 0:
            yield self._shard(index, clips, rejections)

    def _shard(self, index: int, clips: list[Clip],
               rejections: list[Rejection]) -> ShardWork[Clip]:
        rows = list(clips)
        read = time.perf_counter() - self._started
        return ShardWork(key=WorkDir.shard_key(self.source, index),
                         identity=_identity(rows, rejections), load=lambda: rows,
                         prior=list(rejections), read_seconds=read)

    def owns(self, key: str) -> bool:
        head, _, tail = key.rpartition("-")
        return head == self.source and tail.isdigit()


@dataclass(frozen=True)
class _AudioHasher:
    """The per-clip function: record ``audio_sha256`` (reads each readable file once)."""

    root: Path

    def __call__(self, clip: Clip) -> Clip:
        if clip.audio_status is not AudioStatus.ok:
            return clip
        try:
            sha = sha256_file(safe_join(self.root, clip.audio_path))
        except OSError as exc:  # gone or unreadable since the audio check
            return clip.model_copy(update={"audio_status": AudioStatus.excluded,
                                           "audio_status_reason": f"{clip.audio_path}: {exc}"})
        return clip.model_copy(update={"audio_sha256": sha})


def _keep(clip: Clip) -> Clip:
    return clip


def _labels(clip: Clip) -> list[str]:
    return [f"split:{clip.split.value}", f"audio:{clip.audio_status.value}"]


def ingest(
    source: str,
    root: Path,
    *,
    work: WorkDir,
    options: Mapping[str, Any] | None = None,
    shard_size: int = 500,
    check_audio: bool = True,
    hash_audio: bool = False,
    on_progress: Callable[[int], None] | None = None,
    strict: bool = False,
    allow_empty: bool = False,
) -> StageReport:
    """Ingest one dataset copy into the clip manifest of ``work``.

    Re-running on unchanged input rewrites nothing (each shard's fingerprint matches its
    marker); shards left from an earlier, longer run of the same source are removed.

    Parameters
    ----------
    root
        The dataset root (paths in its metadata are resolved under it, never outside).
    options
        Source options (see each source's ``Options``), validated before any work.
    shard_size
        Clips per manifest shard; later stages map one task over each shard.
    check_audio
        Look for each clip's file (``ok``/``missing``); False marks all ``unchecked``.
    hash_audio
        Also record ``audio_sha256`` (reads every file once).
    allow_empty
        Accept metadata without a single row (the source's manifest becomes empty); by
        default that is refused, since a 0-byte file would otherwise wipe the manifest.

    Returns
    -------
    StageReport
        ``items_in`` rows read, ``items_out`` clips; ``rejected`` the rows dropped by reason;
        ``counts`` ``split:<split>``, ``audio:<status>`` and ``repaired:<reason>`` (rows kept
        after repair); ``details`` ``roots`` (source → root) and ``manifest_paths``. Also
        saved as ``reports/ingest-<source>.json``.

    Raises
    ------
    ConfigError
        For an unknown source, bad options, a bad shard size, a missing root, or metadata
        without rows (unless ``allow_empty``).
    SourceFormatError
        When the root lacks the source's metadata files.
    """
    if shard_size < 1:
        raise ConfigError(f"shard_size must be ≥ 1, got {shard_size}")
    src = get_source(source)
    opts = parse_options(src, options)
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"dataset root for {source!r} is not a directory: {root}")
    t0 = time.perf_counter()
    items = iter(src.iter_clips(root, options=opts))
    first = next(items, None)
    if first is None and not allow_empty:
        raise ConfigError(
            f"{source}: the metadata under {root} holds no rows (an empty or truncated file?); "
            f"the manifest of {source} was left as it is. Pass --allow-empty to make it empty")
    items = itertools.chain([first] if first is not None else [], items)
    chunks = _Chunker(source=source, root=root, items=items,
                      shard_size=shard_size, check_audio=check_audio, on_progress=on_progress)
    config = IngestConfig(options=opts.model_dump(mode="json"), check_audio=check_audio,
                          hash_audio=hash_audio)
    sink = ParquetSink.manifest(work, "clips", Clip)
    # Flagged while the source's shards are rewritten: a kill in between leaves old and new
    # shards side by side, and later stages refuse that mix until ingest is run again.
    unfinished = work.ingest_unfinished(source)
    write_text_atomic(unfinished, f"{time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
    report = run_stage(work, _AudioHasher(root) if hash_audio else _keep, stage=STAGE,
                       version=STAGE_VERSION, inputs=StreamShards(chunks, chunks.owns),
                       sinks=[sink], config=config, strict=strict, label=_labels)
    unfinished.unlink(missing_ok=True)
    keys = [WorkDir.shard_key(source, i) for i in range(report.shards)]
    report = report.model_copy(update={
        "seconds": round(time.perf_counter() - t0, 3),
        "details": {"roots": {source: str(root.resolve())},
                    "manifest_paths": [str(sink.path(k)) for k in keys]}})
    write_text_atomic(work.missing_audio_list(source), "".join(f"{m}\n" for m in chunks.missing))
    write_json_atomic(work.stage_report(STAGE, source), report.model_dump(mode="json"))
    log.info("ingest %s: %d clips in %d shards (%d reused), %s", source, report.items_out,
             report.shards, report.shards_reused, report.counted("audio"))
    return report

