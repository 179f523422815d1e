"""The ingest stage: one dataset's native files → ``manifests/clips-<source>-NNNNN.parquet``.

Each source module reads its own format; this stage adds what is common: the audio check
(ok / missing / excluded), optional content hashing, duplicate-id detection, sharding with
atomic writes, resume markers, rejection files, and a report.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from qagen.audio import check_regular_file, sha256_file
from qagen.errors import ConfigError, UnsafePathError
from qagen.manifest import write_json_atomic, write_records
from qagen.paths import safe_join
from qagen.records import AudioStatus, Clip, Rejection
from qagen.records.rejection import IngestReason
from qagen.sources import get_source, parse_options
from qagen.workdir import WorkDir

log = logging.getLogger(__name__)

#: Bump when the clip rows ingest writes change for the same input.
STAGE_VERSION = "1"
STAGE = "ingest"


class IngestReport(BaseModel):
    """What one ingest run did; printed by the CLI, posted by the flow, saved as JSON."""

    source: str
    root: str
    clips: int = 0
    shards: int = 0
    shards_reused: int = 0
    by_split: dict[str, int] = Field(default_factory=dict)
    by_audio_status: dict[str, int] = Field(default_factory=dict)
    dropped: dict[str, int] = Field(default_factory=dict, description="Rows dropped, by reason.")
    repaired: dict[str, int] = Field(default_factory=dict, description="Rows kept after repair.")
    seconds: float = 0.0
    manifest_paths: list[str] = Field(default_factory=list)


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


def _fingerprint(options_json: str, hash_audio: bool, clips: list[Clip]) -> str:
    h = hashlib.sha256()
    h.update(f"{STAGE_VERSION}\x1f{options_json}\x1f{hash_audio}".encode())
    for clip in clips:
        h.update(clip.model_dump_json().encode())
    return h.hexdigest()


def _marker_matches(marker: Path, shard: Path, fingerprint: str) -> bool:
    if not (marker.is_file() and shard.is_file()):
        return False
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("fingerprint") == fingerprint
    except (OSError, json.JSONDecodeError):
        return False


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
) -> IngestReport:
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

    Raises
    ------
    ConfigError
        For an unknown source, bad options, a bad shard size or a missing root.
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
    report = IngestReport(source=source, root=str(root.resolve()))
    options_json = opts.model_dump_json()
    seen: set[str] = set()
    clips: list[Clip] = []
    rejections: list[Rejection] = []
    missing: list[str] = []
    counts = {"split": Counter[str](), "audio": Counter[str](), "dropped": Counter[str](),
              "repaired": Counter[str]()}

    def flush() -> None:
        key = WorkDir.shard_key(source, report.shards)
        shard = work.manifest_shard("clips", key)
        marker = work.marker(STAGE, key)
        fingerprint = _fingerprint(options_json, hash_audio, clips)
        if _marker_matches(marker, shard, fingerprint):
            report.shards_reused += 1
        else:
            rows = clips
            if hash_audio:
                rows = [c.model_copy(update={"audio_sha256": sha256_file(root / c.audio_path)})
                        if c.audio_status is AudioStatus.ok else c for c in clips]
            write_records(shard, rows, Clip)
            rej_path = work.rejects_shard(STAGE, key)
            if rejections:
                write_records(rej_path, rejections, Rejection)
            else:
                rej_path.unlink(missing_ok=True)
            write_json_atomic(marker, {
                "fingerprint": fingerprint, "stage_version": STAGE_VERSION, "clips": len(rows),
                "rejections": dict(Counter(r.reason for r in rejections)),
            })
        report.manifest_paths.append(str(shard))
        report.shards += 1
        clips.clear()
        rejections.clear()

    for item in src.iter_clips(root, options=opts):
        if isinstance(item, Rejection):
            counts["repaired" if item.kept else "dropped"][item.reason] += 1
            rejections.append(item)
            continue
        if item.clip_id in seen:
            rej = Rejection(stage=STAGE, source=source, item_id=item.clip_id,
                            reason=IngestReason.duplicate_id,
                            detail=f"second row for {item.source_id} (window {item.start_s}-"
                            f"{item.end_s} s); first one kept")
            counts["dropped"][rej.reason] += 1
            rejections.append(rej)
            continue
        seen.add(item.clip_id)
        clip = _check_audio(item, root) if check_audio else item
        if clip.audio_status is AudioStatus.missing:
            missing.append(f"{clip.clip_id}\t{clip.audio_path}")
        counts["split"][clip.split.value] += 1
        counts["audio"][clip.audio_status.value] += 1
        clips.append(clip)
        report.clips += 1
        if on_progress is not None:
            on_progress(report.clips)
        if len(clips) >= shard_size:
            flush()
    if clips or rejections or report.shards == 0:
        flush()
    _remove_stale(work, source, keep=report.shards)
    report.by_split = dict(sorted(counts["split"].items()))
    report.by_audio_status = dict(sorted(counts["audio"].items()))
    report.dropped = dict(sorted(counts["dropped"].items()))
    report.repaired = dict(sorted(counts["repaired"].items()))
    report.seconds = round(time.perf_counter() - t0, 3)
    missing_list = work.missing_audio_list(source)
    missing_list.parent.mkdir(parents=True, exist_ok=True)
    missing_list.write_text("".join(f"{m}\n" for m in missing), encoding="utf-8")
    write_json_atomic(work.stage_report(STAGE, source), report.model_dump(mode="json"))
    log.info("ingest %s: %d clips in %d shards (%d reused), %s", source, report.clips,
             report.shards, report.shards_reused, report.by_audio_status)
    return report


def _remove_stale(work: WorkDir, source: str, *, keep: int) -> None:
    """Drop shards (and their markers/rejections) beyond the ``keep`` this run wrote."""
    for key, path in work.manifest_shards("clips", source=source).items():
        if int(key.rsplit("-", 1)[1]) >= keep:
            path.unlink(missing_ok=True)
            work.marker(STAGE, key).unlink(missing_ok=True)
            work.rejects_shard(STAGE, key).unlink(missing_ok=True)


def dataset_roots(work: WorkDir) -> dict[str, Path]:
    """Source → dataset root, as recorded by ingest in ``reports/ingest-<source>.json``."""
    roots = {}
    for path in sorted(work.reports.glob("ingest-*.json")):
        meta = json.loads(path.read_text(encoding="utf-8"))
        roots[meta["source"]] = Path(meta["root"])
    return roots
