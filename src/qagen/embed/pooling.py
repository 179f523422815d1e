"""Windowing audio for the encoder and pooling its frames over time (pure numpy).

Why windows: transformer attention is quadratic in length and MERT was trained on 5 s
excerpts, so a clip is encoded in ``chunk_s`` windows (each normalised on its own by the
feature extractor) and the frame outputs are put back on one time axis.
"""

from __future__ import annotations

import numpy as np

#: A final window shorter than this joins the previous one (a 20 ms tail encoded alone would
#: be normalised and attended on almost nothing).
MIN_TAIL_S = 1.0


def chunk_bounds(
    n_samples: int, *, chunk_samples: int, min_tail_samples: int
) -> list[tuple[int, int]]:
    """``[start, end)`` sample windows of length ``chunk_samples``; a short tail is merged.

    Examples
    --------
    >>> chunk_bounds(25, chunk_samples=10, min_tail_samples=6)
    [(0, 10), (10, 25)]
    """
    if n_samples <= 0:
        return []
    bounds = [(s, min(s + chunk_samples, n_samples)) for s in range(0, n_samples, chunk_samples)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_tail_samples:
        tail_end = bounds.pop()[1]
        bounds[-1] = (bounds[-1][0], tail_end)
    return bounds


def pool_frames(
    frames: np.ndarray, times_s: np.ndarray, *, rate_hz: float, duration_s: float
) -> np.ndarray:
    """Average frames into bins of ``1 / rate_hz`` seconds (bin k covers [k/rate, (k+1)/rate)).

    Row k of the result is the mean of the frames whose time falls in bin k, so row index
    maps to time whatever the windowing. There are ``ceil(duration_s * rate_hz)`` rows; a bin
    no frame fell into (only possible when ``rate_hz`` nears the encoder's frame rate) repeats
    the previous row.

    Parameters
    ----------
    frames
        [n, hidden] encoder frames (float32).
    times_s
        [n] start time of each frame within the clip, non-decreasing.
    """
    if len(frames) == 0:
        return np.zeros((0, frames.shape[1] if frames.ndim == 2 else 0), np.float32)
    n_bins = max(1, int(np.ceil(duration_s * rate_hz - 1e-9)))
    bins = np.minimum(np.floor(times_s * rate_hz + 1e-9).astype(np.int64), n_bins - 1)
    if np.any(np.diff(bins) < 0):
        raise ValueError("times_s must be non-decreasing")
    starts = np.concatenate(([0], np.flatnonzero(np.diff(bins)) + 1))
    sums = np.add.reduceat(frames.astype(np.float64, copy=False), starts, axis=0)
    counts = np.diff(np.concatenate((starts, [len(bins)])))
    out = np.zeros((n_bins, frames.shape[1]), np.float64)
    out[bins[starts]] = sums / counts[:, None]
    # Forward-fill empty bins (rare, see docstring); leading ones take the first filled bin.
    filled = np.zeros(n_bins, bool)
    filled[bins[starts]] = True
    source = np.maximum.accumulate(np.where(filled, np.arange(n_bins), -1))
    source[source < 0] = int(bins[0])
    return out[source].astype(np.float32)
