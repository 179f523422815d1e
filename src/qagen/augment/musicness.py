"""Is this clip music? Pitch on a tuned grid, a steady pulse — and a decision from both.

Why: every other analyser answers for any audio. The key CNN gave LibriSpeech speech
"G# minor" at p=0.71 and the tempo head 81 BPM, so a clip must first be judged music before
key, tempo or chords are reported. Two measurements separate music from speech, animal song
and noise without a trained model:

- **pitch grid**: music's partials sit on one tuning grid (semitones from some reference),
  speech and whale song glide across it, noise has no partials. The magnitude-weighted
  resultant length of spectral-peak frequencies on the 100-cent circle is near 0 for speech
  and noise, well above it for tuned instruments.
- **pulse**: the autocorrelation of the beat network's activation at its best lag in
  50–200 BPM: drum-only music has no pitch grid but a strong pulse; speech has neither.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Tempo grid of the periodicity profiles: 30 BPM × 2^(k/24), k = 0..79 (30 → ~297 BPM).
PROFILE_BPM = tuple(round(30.0 * 2 ** (k / 24), 3) for k in range(80))
#: Spectral peaks per frame the pitch grid weighs (the strongest).
MAX_PEAKS = 8
#: The rate the pitch grid (and, in extract, the onset envelope) analyses: librosa's default.
ANALYSIS_SR = 22050


def periodicity_profile(activation: np.ndarray, *, fps: float) -> list[float]:
    """Normalised autocorrelation of an activation at the lag of each ``PROFILE_BPM`` tempo.

    Parameters
    ----------
    activation
        (frames,) onset or beat activation.
    fps
        Its frame rate.

    Returns
    -------
    list[float]
        80 values in [-1, 1] (0 for a flat activation), rounded to 4 decimals.
    """
    x = np.asarray(activation, dtype=np.float64).reshape(-1)
    x = x - x.mean()
    energy = float(np.dot(x, x))
    if x.size < 4 or energy <= 0:
        return [0.0] * len(PROFILE_BPM)
    n = 1 << math.ceil(math.log2(2 * x.size))
    spec = np.fft.rfft(x, n)
    acf = np.fft.irfft(spec * np.conj(spec), n)[: x.size] / energy
    lags = 60.0 * fps / np.asarray(PROFILE_BPM)
    values = np.interp(lags, np.arange(x.size), acf, right=0.0)
    return [round(float(v), 4) for v in values]


def profile_at(profile: list[float] | np.ndarray, bpm: float) -> float:
    """The profile's value at ``bpm`` (linear in log-tempo); 0 outside the grid or if empty."""
    if len(profile) != len(PROFILE_BPM) or bpm <= 0:
        return 0.0
    pos = 24.0 * math.log2(bpm / PROFILE_BPM[0])
    if pos < 0 or pos > len(PROFILE_BPM) - 1:
        return 0.0
    lo = int(pos)
    hi = min(lo + 1, len(PROFILE_BPM) - 1)
    frac = pos - lo
    return float((1 - frac) * profile[lo] + frac * profile[hi])


def pulse_strength(profile: list[float] | np.ndarray) -> float:
    """Best autocorrelation in 50–200 BPM: how steady the pulse is (0 = none)."""
    vals = [v for b, v in zip(PROFILE_BPM, profile, strict=False) if 50.0 <= b <= 200.0]
    return round(max(0.0, max(vals, default=0.0)), 4)


def estimate_pitch_grid(y: np.ndarray, *, sr: int) -> float | None:
    """How tightly spectral peaks sit on one semitone grid, 0 (none) to 1 (all on it).

    Peaks of a 4096-point STFT (at 22.05 kHz, 200–5000 Hz, within 30 dB of the frame's
    loudest, at most ``MAX_PEAKS`` a frame) are located by parabolic interpolation; their
    offsets from A440's semitone grid, as angles on the 100-cent circle, are averaged weighted by
    magnitude. A global detuning leaves the length unchanged. None for silent audio.
    """
    import scipy.fft
    import soxr

    y22 = (soxr.resample(y, sr, ANALYSIS_SR) if sr != ANALYSIS_SR
           else np.asarray(y, dtype=np.float32))
    n_fft, hop = 4096, 1024
    if y22.size < n_fft:
        return None
    frames = np.lib.stride_tricks.sliding_window_view(y22, n_fft)[::hop]
    # float32 FFT (scipy): 5× faster than numpy's float64 and equal to the 4 decimals kept.
    mag = np.abs(scipy.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=1)
                 ).astype(np.float64)
    freqs = np.fft.rfftfreq(n_fft, 1 / ANALYSIS_SR)
    band = (freqs >= 200) & (freqs <= 5000)
    lo_bin, hi_bin = int(np.argmax(band)), int(len(band) - np.argmax(band[::-1]) - 1)
    sub = mag[:, lo_bin - 1: hi_bin + 2]
    frame_max = mag.max(axis=1, keepdims=True)
    if not np.any(frame_max > 0):
        return None
    c = sub[:, 1:-1]
    is_peak = (c > sub[:, :-2]) & (c >= sub[:, 2:]) & (c > 10 ** (-30 / 20) * frame_max)
    if c.shape[1] > MAX_PEAKS:
        # The MAX_PEAKS strongest peaks of each frame (all frames at once).
        strongest = np.argsort(np.where(is_peak, c, -np.inf), axis=1)[:, -MAX_PEAKS:]
        keep = np.zeros_like(is_peak)
        np.put_along_axis(keep, strongest, True, axis=1)
        is_peak &= keep
    rows, cols = np.nonzero(is_peak)
    if rows.size == 0:
        return None
    a = np.log(sub[rows, cols] + 1e-12)
    b = np.log(sub[rows, cols + 1] + 1e-12)
    g = np.log(sub[rows, cols + 2] + 1e-12)
    denom = a - 2 * b + g
    shift = np.where(np.abs(denom) > 1e-12, 0.5 * (a - g) / np.where(denom == 0, 1, denom), 0.0)
    f = (lo_bin + cols + np.clip(shift, -0.5, 0.5)) * ANALYSIS_SR / n_fft
    cents = 1200.0 * np.log2(f / 440.0)
    w = sub[rows, cols + 1]
    total = complex(np.sum(w * np.exp(2j * np.pi * cents / 100.0)))
    weight = float(w.sum())
    if weight <= 0:
        return None
    return round(abs(total) / weight, 4)


@dataclass(frozen=True)
class MusicWeights:
    """Logistic decision: z = grid·(pitch_grid − grid_centre) + pulse·(pulse − pulse_centre)."""

    grid: float = 25.0
    grid_centre: float = 0.30
    pulse: float = 12.0
    pulse_centre: float = 0.45


@dataclass(frozen=True)
class MusicDecision:
    """Music or not, how sure, and the evidence behind it."""

    is_music: bool
    confidence: float
    evidence: dict[str, float]


def decide_music(
    pitch_grid: float | None, pulse: float | None, *, weights: MusicWeights | None = None
) -> MusicDecision:
    """Music if either its partials sit on a tuning grid or it has a steady pulse.

    The two cues are combined by a soft OR: the larger of the two logistic scores wins, so a
    drum loop (pulse, no pitch) and a rubato solo (pitch, weak pulse) both count as music,
    while speech, whale song and noise (neither) do not.
    """
    w = weights or MusicWeights()
    grid = 0.0 if pitch_grid is None else pitch_grid
    pul = 0.0 if pulse is None else pulse
    z_grid = w.grid * (grid - w.grid_centre)
    z_pulse = w.pulse * (pul - w.pulse_centre)
    z = max(z_grid, z_pulse)
    p = 1.0 / (1.0 + math.exp(-z))
    return MusicDecision(is_music=p >= 0.5, confidence=round(max(p, 1 - p), 4),
                         evidence={"pitch_grid": round(grid, 4), "pulse": round(pul, 4)})
