"""Loudness (ITU-R BS.1770 integrated, via pyloudnorm), peak level and the silence gate."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Below this integrated loudness (or with no gated block at all) a clip counts as silent.
SILENCE_LUFS = -60.0
#: BS.1770 measures 400 ms blocks; shorter audio has no integrated loudness.
MIN_LOUDNESS_S = 0.4


@dataclass(frozen=True)
class Loudness:
    """Integrated loudness (LUFS; None when too short), sample peak (dBFS), silence flag."""

    lufs: float | None
    peak_dbfs: float
    is_silent: bool


def estimate_loudness(y: np.ndarray, *, sr: int) -> Loudness:
    """Measure integrated loudness and peak of mono float audio.

    Why both: LUFS describes perceived level for answers ("a quiet recording"); the peak
    catches digital silence that BS.1770 gating reports as -inf.
    """
    import pyloudnorm

    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    peak_dbfs = 20 * math.log10(peak) if peak > 0 else -math.inf
    lufs: float | None = None
    if len(y) >= MIN_LOUDNESS_S * sr:
        value = float(pyloudnorm.Meter(sr).integrated_loudness(y.astype(np.float64)))
        lufs = value if math.isfinite(value) else None
    silent = peak_dbfs < SILENCE_LUFS or (lufs is None and len(y) >= MIN_LOUDNESS_S * sr) or (
        lufs is not None and lufs < SILENCE_LUFS)
    return Loudness(lufs=None if lufs is None else round(lufs, 2),
                    peak_dbfs=round(peak_dbfs, 2) if math.isfinite(peak_dbfs) else -120.0,
                    is_silent=bool(silent))
