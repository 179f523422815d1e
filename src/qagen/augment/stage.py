"""The augment stage over a work directory: worker processes, a content-addressed cache.

Workers are processes with one thread each (OMP / onnxruntime threads = 1: on 2 cores two
single-threaded workers beat one two-threaded process), each loading the madmom models once.
Results are cached by audio content hash + window + config + extractor versions, so an
unchanged corpus re-runs almost free and one recording under two clip ids is analysed once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import multiprocessing as mp
import os
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qagen.audio import sha256_file
from qagen.augment.confidence import TempoCalibration, load_tempo_calibration
from qagen.augment.extract import MEASURE_VERSION, Measurement, decide_features, measure_clip
from qagen.augment.models import MadmomModels, extractor_versions
from qagen.config import AugmentConfig
from qagen.engine import StageReport, run_stage
from qagen.errors import ConfigError
from qagen.manifest import write_json_atomic
from qagen.paths import safe_join
from qagen.records import AudioStatus, Clip, ClipFeatures, FeatureStatus
from qagen.workdir import WorkDir, dataset_roots

log = logging.getLogger(__name__)

STAGE = "augment"
#: Bump when ClipFeatures change for the same audio, config and extractor versions.
# 3: meter from the chords' bar period (6/8, half/double time), time_signature
STAGE_VERSION = "4"  # 4: calibrated tempo confidence, 6/8 hemiola rules, chords snapped to beats
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMBA_NUM_THREADS")


@dataclass
class ClipAnalyser:
    """The per-item function: cache lookup, else analyse and store. One per process.

    Models load lazily on first use, so constructing it in the parent costs nothing.
    """

    roots: dict[str, Path]
    config: AugmentConfig
    cache_dir: Path | None
    versions: dict[str, str]
    tempo_calibration: TempoCalibration | None = None
    _models: MadmomModels | None = None

    @property
    def models(self) -> MadmomModels:
        if self._models is None:
            self._models = MadmomModels()
        return self._models

    def cache_key(self, clip: Clip, audio_sha256: str) -> str:
        """Content address of a measurement: what was heard, how, and by which versions."""
        measure_params = self.config.model_dump(
            mode="json", include={"sr", "min_duration_s", "max_duration_s", "use_librosa_tempo"})
        payload = json.dumps([MEASURE_VERSION, audio_sha256, clip.start_s, clip.end_s,
                              measure_params, self.versions], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()

    def measure(self, clip: Clip, root: Path) -> Measurement:
        """The cached expensive part."""
        path = None
        if self.cache_dir is not None and clip.audio_sha256:
            key = self.cache_key(clip, clip.audio_sha256)
            path = self.cache_dir / key[:2] / f"{key}.json"
            if path.is_file():
                return Measurement.model_validate_json(path.read_text(encoding="utf-8"))
        m = measure_clip(clip, root=root, models=self.models, config=self.config)
        if path is not None and m.status is not FeatureStatus.decode_error:
            write_json_atomic(path, m.model_dump(mode="json"))
        return m

    def __call__(self, clip: Clip) -> ClipFeatures:
        root = self.roots.get(clip.source)
        if root is None:
            raise ConfigError(f"no dataset root recorded for source {clip.source!r}; "
                              "re-run ingest for it")
        try:
            sha = clip.audio_sha256 or sha256_file(safe_join(root, clip.audio_path))
        except OSError as exc:
            m = Measurement(status=FeatureStatus.decode_error,
                            error=f"{type(exc).__name__}: {exc}")
        else:
            clip = clip.model_copy(update={"audio_sha256": sha})
            m = self.measure(clip, root)
        return decide_features(m, clip=clip, config=self.config, versions=self.versions,
                               tempo_calibration=self.tempo_calibration)


def skip_unreadable(clip: Clip) -> str | None:
    """Clips whose audio is missing or excluded are not attempted (counted by reason)."""
    if clip.audio_status in (AudioStatus.missing, AudioStatus.excluded):
        return f"audio_{clip.audio_status.value}"
    return None


# Per-process worker state: a process pool can only hand each worker its models this way.
_WORKER: dict[str, ClipAnalyser] = {}


def _init_worker(analyser: ClipAnalyser) -> None:
    for var in _THREAD_VARS:
        os.environ[var] = "1"
    _WORKER["analyser"] = analyser
    analyser.models  # noqa: B018 - load the networks once, before the first clip


def _analyse_in_worker(clip: Clip, *, strict: bool = False) -> list[Any]:
    """The per-clip exception boundary inside a worker process (the runner's GuardedItem).

    Under ``strict`` the exception travels back to the parent, where ``Pool.imap`` re-raises
    it with its type and message (the worker's traceback becomes its ``__cause__``). One
    that cannot be rebuilt there (a class whose ``__init__`` does not take its own ``args``)
    would kill the pool's result thread and hang the run, so it is sent as a
    ``RuntimeError`` naming its type and message instead.
    """
    from qagen.engine import GuardedItem

    try:
        return GuardedItem(_WORKER["analyser"], STAGE, strict=strict)(clip)
    except Exception as exc:  # only under strict: GuardedItem re-raised it
        exc.add_note(f"{STAGE}: clip {clip.clip_id} (in worker process {os.getpid()})")
        if _survives_pickling(exc):
            raise
        raise RuntimeError(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}") from exc


def _survives_pickling(exc: BaseException) -> bool:
    """Whether the parent can unpickle ``exc`` (what ``Pool`` does with a worker's error)."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # any failure to rebuild it counts: unpickling runs arbitrary __init__
        return False
    return True


@contextmanager
def _pool_mapper(
    analyser: ClipAnalyser, workers: int, *, strict: bool = False
) -> Iterator[Callable[..., Any] | None]:
    if workers <= 1:
        yield None
        return
    ctx = mp.get_context("spawn")
    saved = {v: os.environ.get(v) for v in _THREAD_VARS}
    for var in _THREAD_VARS:  # spawned children read these before importing numpy
        os.environ[var] = "1"
    try:
        with ctx.Pool(workers, initializer=_init_worker, initargs=(analyser,)) as pool:
            analyse = functools.partial(_analyse_in_worker, strict=strict)

            def mapper(_guarded: Any, clips: Any) -> Any:
                return pool.imap(analyse, clips, chunksize=1)

            yield mapper
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def augment(
    work: WorkDir, *, config: AugmentConfig | None = None, workers: int = 2, cache: bool = True,
    shard_keys: list[str] | None = None, strict: bool = False,
    on_item: Callable[[], None] | None = None,
) -> StageReport:
    """Measure every readable clip of the manifest into ``manifests/features-*.parquet``.

    Parameters
    ----------
    workers
        Worker processes (each single-threaded, models loaded once). 1 = in this process.
    cache
        Reuse results keyed by audio hash + window + config + extractor versions.
    strict
        Re-raise per-clip internal errors (tests), from worker processes too (same type and
        message); otherwise they are recorded as ``internal_error``.
    """
    config = config or AugmentConfig()
    roots = dataset_roots(work)
    if not roots:
        raise ConfigError(f"no ingested sources in {work.root}; run `qagen ingest` first")
    calibration = load_tempo_calibration()
    analyser = ClipAnalyser(roots=roots, config=config,
                            cache_dir=(work.cache / STAGE) if cache else None,
                            versions=extractor_versions(), tempo_calibration=calibration)
    # A refitted calibration changes the output: it is part of the stage's version.
    version = STAGE_VERSION + (f"+cal-{calibration.fingerprint}" if calibration else "")
    with _pool_mapper(analyser, workers, strict=strict) as mapper:
        return run_stage(work, analyser, stage=STAGE, version=version,
                         output_kind="features", output_model=ClipFeatures, config=config,
                         skip=skip_unreadable, mapper=mapper, shard_keys=shard_keys,
                         strict=strict, on_item=on_item, label=lambda f: f.status.value)
