"""The embed stage: every readable clip → MERT hidden states, pooled, in shard arrays.

(Or, with ``encoder="qagen/madmom-features"``, madmom's frame features at 10 Hz, pooled the
same way: :mod:`qagen.embed.madmom_features`.)

Per clip: decode the window at 24 kHz, cut it into ``chunk_s`` windows, run equal-length
windows in batches through the encoder, and keep (a) every hidden state mean-pooled over time
([layers + 1, hidden], what MU-LLaMA feeds its adapter) and (b) optionally one hidden state
(or their mean) pooled to ``frame_rate_hz`` ([frames, hidden], LLark-style). Results are
cached under ``cache/embed/`` by audio content hash + window + encoder weights + parameters,
so one recording under two clip ids is encoded once and a redone shard costs only I/O.

The shard loop is :func:`qagen.engine.run_stage`'s; its arrays sink writes each shard's
arrays and index part (file names from :class:`EmbeddingPaths`), then the marker.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from qagen.audio import load_audio, sha256_file
from qagen.embed.config import EmbedConfig
from qagen.embed.encoder import EncoderSource, resolve_encoder
from qagen.embed.families import Encoder, EncoderFamily, family_of
from qagen.embedding_store import EmbeddingPaths, write_embedding_index
from qagen.engine import ArraysSink, ManifestShards, StageReport, run_stage
from qagen.errors import ConfigError
from qagen.manifest import atomic_path
from qagen.paths import safe_join
from qagen.records import AudioStatus, Clip, Rejection
from qagen.records.embedding import EmbeddingKind, EmbeddingRow, EmbedReason
from qagen.workdir import WorkDir, dataset_roots

log = logging.getLogger(__name__)

STAGE = "embed"
#: Bump when the stored arrays change for the same audio, encoder and parameters.
STAGE_VERSION = "1"


class EmbedIdentity(BaseModel):
    """What determines the stored arrays: hashed into cache keys and resume fingerprints."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    params: dict[str, Any]
    encoder_sha256: str
    encoder_revision: str | None


class ClipEmbedding(BaseModel):
    """One clip's result in memory (arrays already in the stored dtype)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    clip: Clip
    audio_sha256: str
    seconds: float
    cache_key: str
    cached: bool
    layers: np.ndarray
    frames: np.ndarray | None


def skip_unreadable(clip: Clip) -> str | None:
    """Clips whose audio is missing or excluded are not attempted (counted by reason)."""
    if clip.audio_status in (AudioStatus.missing, AudioStatus.excluded):
        return f"audio_{clip.audio_status.value}"
    return None


@dataclass
class ClipEmbedder:
    """The per-item function: cache lookup, else decode + encode + store in the cache.

    The encoder loads on :meth:`load` (the stage calls it before the first shard with work),
    so a re-run with nothing to do never imports torch or reads the weights.
    """

    roots: dict[str, Path]
    config: EmbedConfig
    source: EncoderSource
    cache_dir: Path | None
    identity: EmbedIdentity
    compute_dtype: str = "float32"  # resolved (never "auto"): the one in the identity
    _encoder: Encoder | None = field(default=None, repr=False)
    _threads_before: int | None = field(default=None, repr=False)
    _loading: threading.Lock = field(default_factory=threading.Lock, repr=False)
    family: EncoderFamily = field(init=False, repr=False)
    sr: int = field(init=False)  # the rate audio is decoded at (the encoder family's)

    def __post_init__(self) -> None:
        self.family = family_of(self.source)
        self.sr = self.family.sample_rate(self.config)

    @property
    def encoder(self) -> Encoder:
        return self.load()

    def load(self) -> Encoder:
        """Set torch's thread count (restored by :meth:`close`) and load the encoder once
        (under a lock: with ``workers`` > 1 several clips ask for it at once)."""
        if self._encoder is not None:
            return self._encoder
        with self._loading:
            return self._load()

    def _load(self) -> Encoder:
        if self._encoder is None:
            family = self.family
            if family.uses_torch:
                import torch

                self._threads_before = torch.get_num_threads()
                torch.set_num_threads(self.config.threads or os.cpu_count() or 1)
            self._encoder = family.load(self.source, self.config, dtype=self.compute_dtype)
        return self._encoder

    def close(self) -> None:
        """Give back torch's previous thread count (the stage leaves no global change)."""
        if self._threads_before is not None:
            import torch

            torch.set_num_threads(self._threads_before)
            self._threads_before = None

    def cache_key(self, clip: Clip, audio_sha256: str) -> str:
        """Content address: what was heard (audio bytes + window), by which encoder, how."""
        payload = json.dumps([STAGE_VERSION, audio_sha256, clip.start_s, clip.end_s,
                              self.identity.model_dump(mode="json")], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()

    def __call__(self, clip: Clip) -> ClipEmbedding | Rejection:
        root = self.roots[clip.source]
        try:
            path = safe_join(root, clip.audio_path)
            sha = clip.audio_sha256 or sha256_file(path)
        except OSError as exc:
            return self._reject(clip, EmbedReason.decode_error, f"{type(exc).__name__}: {exc}")
        key = self.cache_key(clip, sha)
        cached = self._read_cache(key)
        if cached is not None:
            layers, frames, seconds = cached
            return ClipEmbedding(clip=clip, audio_sha256=sha, seconds=seconds, cache_key=key,
                                 cached=True, layers=layers, frames=frames)
        try:
            y, _ = load_audio(path, sr=self.sr, start_s=clip.start_s, end_s=clip.end_s)
        except (OSError, RuntimeError, ValueError) as exc:  # LibsndfileError is a RuntimeError
            return self._reject(clip, EmbedReason.decode_error,
                                f"{clip.audio_path}: {type(exc).__name__}: {exc}")
        if len(y) == 0:
            return self._reject(clip, EmbedReason.empty, f"{clip.audio_path}: no samples in "
                                f"window {clip.start_s}-{clip.end_s} s")
        if len(y) < self.encoder.min_samples:
            return self._reject(clip, EmbedReason.too_short,
                                f"{clip.audio_path}: {len(y)} samples at {self.sr} Hz, "
                                f"the encoder needs {self.encoder.min_samples}")
        layers32, frames32 = self.encoder.embed(np.nan_to_num(y), config=self.config)
        layers = layers32.astype(self.config.dtype)
        frames = None if frames32 is None else frames32.astype(self.config.dtype)
        if not (np.isfinite(layers).all() and (frames is None or np.isfinite(frames).all())):
            return self._reject(clip, EmbedReason.non_finite,
                                f"{clip.audio_path}: NaN/inf in the {self.config.dtype} output")
        seconds = round(len(y) / self.sr, 6)
        self._write_cache(key, layers, frames, seconds)
        return ClipEmbedding(clip=clip, audio_sha256=sha, seconds=seconds, cache_key=key,
                             cached=False, layers=layers, frames=frames)

    def _reject(self, clip: Clip, reason: EmbedReason, detail: str) -> Rejection:
        return Rejection(stage=STAGE, source=clip.source, item_id=clip.clip_id,
                         reason=reason.value, detail=detail)

    def _cache_path(self, key: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / key[:2] / f"{key}.npz"

    def _read_cache(self, key: str) -> tuple[np.ndarray, np.ndarray | None, float] | None:
        path = self._cache_path(key)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                frames = z["frames"] if "frames" in z.files else None
                return z["layers"], frames, float(z["seconds"])
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            log.warning("ignoring unreadable cache entry %s: %s", path, exc)
            return None

    def _write_cache(self, key: str, layers: np.ndarray, frames: np.ndarray | None,
                     seconds: float) -> None:
        path = self._cache_path(key)
        if path is None:
            return
        arrays = {"layers": layers, "seconds": np.float64(seconds)}
        if frames is not None:
            arrays["frames"] = frames
        with atomic_path(path) as tmp, tmp.open("wb") as fh:
            np.savez(fh, **arrays)


def embed(
    work: WorkDir, *, config: EmbedConfig | None = None, shard_keys: list[str] | None = None,
    cache: bool = True, strict: bool = False, cache_root: Path | None = None,
    on_item: Callable[[], None] | None = None,
) -> StageReport:
    """Embed every readable clip of the manifest into ``embeddings/`` (+ ``index.parquet``).

    Parameters
    ----------
    shard_keys
        Restrict to these clip shards (the flow maps one task per shard); default all.
    cache
        Reuse embeddings keyed by audio hash + window + encoder weights + parameters.
    strict
        Re-raise per-clip internal errors (tests); otherwise they are recorded.
    cache_root
        qagen's model cache, where the built-in encoder is built (default ``$QAGEN_HOME``
        or ``~/.cache/qagen``).

    Raises
    ------
    ConfigError
        No ingested sources, an unknown shard key, or an encoder that cannot be used (its
        message says how to fix it: e.g. the ``hf download`` command for an uncached id).
    MissingDependencyError
        ``encoder="jukebox"``, or torch/transformers absent.
    """
    config = config or EmbedConfig()
    inputs = work.manifest_shards("clips")
    keys = list(inputs) if shard_keys is None else list(shard_keys)
    unknown = [k for k in keys if k not in inputs]
    if unknown:
        raise ConfigError(f"no clip shards {unknown} in {work.manifests}; have {list(inputs)}")
    roots = dataset_roots(work)
    lacking = sorted({k.rsplit("-", 1)[0] for k in keys} - set(roots))
    if lacking:
        raise ConfigError(f"no dataset root recorded for sources {lacking} in {work.reports}; "
                          "run `qagen ingest` for them first")
    source = resolve_encoder(config.encoder, revision=config.revision, cache_root=cache_root)
    family = family_of(source)
    family.check(source, config)
    compute = family.compute_dtype(config)
    identity = EmbedIdentity(params=config.output_params(compute_dtype=compute),
                             encoder_sha256=source.weights_sha256,
                             encoder_revision=source.revision)
    embedder = ClipEmbedder(roots=roots, config=config, source=source,
                            cache_dir=(work.cache / STAGE) if cache else None, identity=identity,
                            compute_dtype=compute)
    try:
        with clip_mapper(workers_of(source, config)) as mapper:
            return run_stage(work, embedder, stage=STAGE, version=STAGE_VERSION,
                             inputs=ManifestShards(work, keys=shard_keys),
                             sinks=[arrays_sink(work, embedder)], config=identity,
                             skip=skip_unreadable, strict=strict, on_item=on_item,
                             mapper=mapper,
                             label=lambda r: "cache_hit" if r.cached else "computed",
                             measure=lambda r: {"audio_seconds": r.seconds})
    finally:
        embedder.close()


def workers_of(source: EncoderSource, config: EmbedConfig) -> int:
    """Clips in flight: ``config.workers``, or the encoder family's choice for ``auto``
    (4 for a MERT on CUDA, else 1: :mod:`qagen.embed.families`)."""
    if config.workers != "auto":
        return int(config.workers)
    return family_of(source).auto_workers(config)


@contextmanager
def clip_mapper(workers: int) -> Iterator[Callable[..., Any] | None]:
    """``map`` over ``workers`` threads, results in input order (None: the engine's own)."""
    if workers <= 1:
        yield None
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embed") as pool:
        yield pool.map


def arrays_sink(work: WorkDir, embedder: ClipEmbedder) -> ArraysSink[ClipEmbedding, EmbeddingRow]:
    """The engine's arrays sink for embeddings: ``layers`` (and ``frames``) arrays per shard,
    an ``EmbeddingRow`` per clip and kind, the merged ``index.parquet`` rebuilt at the end."""
    config, source, sr = embedder.config, embedder.source, embedder.sr
    kinds = [EmbeddingKind.layers] + ([EmbeddingKind.frames] if config.frame_rate_hz else [])

    def row(res: ClipEmbedding, kind: EmbeddingKind, file: str, offset: int,
            array: np.ndarray) -> EmbeddingRow:
        return EmbeddingRow(
            clip_id=res.clip.clip_id, source=res.clip.source, kind=kind, file=file,
            offset=offset, shape=list(array.shape), dtype=str(array.dtype), encoder=source.name,
            encoder_revision=source.revision, encoder_sha256=source.weights_sha256,
            random_init=source.random_init,
            layer="all" if kind is EmbeddingKind.layers else str(config.frame_layer),
            frame_rate_hz=config.frame_rate_hz if kind is EmbeddingKind.frames else None,
            sr=sr, chunk_s=config.chunk_s, audio_sha256=res.audio_sha256,
            start_s=res.clip.start_s, end_s=res.clip.end_s, seconds=res.seconds,
            cache_key=res.cache_key)

    def merge() -> None:
        rows = write_embedding_index(work)
        log.info("%s: index of %d rows in %s", STAGE, rows, EmbeddingPaths(work).index)

    return ArraysSink(
        accepts=ClipEmbedding, layout=EmbeddingPaths(work), names=kinds,
        index_model=EmbeddingRow, arrays_of=lambda r: {k: _array_of(r, k) for k in kinds},
        block_of=lambda r: r.cache_key, index_row=row, empty_dtype=config.dtype, merge=merge,
        merged=EmbeddingPaths(work).index)


def compute_dtype_of(source: EncoderSource, config: EmbedConfig) -> str:
    """The compute dtype the arrays will come from, resolved before any work.

    Why resolved here: ``auto`` is bf16 on one machine and fp32 on another, and the cache
    key must name what was computed.

    Raises
    ------
    ConfigError
        ``device`` is CUDA where torch sees none.
    """
    return family_of(source).compute_dtype(config)


def _array_of(res: ClipEmbedding, kind: EmbeddingKind) -> np.ndarray:
    arr = res.layers if kind is EmbeddingKind.layers else res.frames
    if arr is None:
        raise ValueError(f"{res.clip.clip_id}: no {kind.value} array (stale cache entry?)")
    return arr
