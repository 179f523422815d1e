"""librosa's onset envelope and autocorrelation tempo, in plain numpy and scipy.

Why not call librosa: the first librosa call in a process imports it whole and loads its
numba kernels, 1.4 s in every augment worker (a tenth of a 100-clip run on 2 cores), and a
cold parallel numba compile once corrupted the kernel cache (FACTS.md). The two functions
used here are short; they are re-stated with librosa 0.11's defaults, step by step, and
``tests/augment/test_onset.py`` holds them to librosa's own output on real and rendered
audio. The estimate keeps the name ``tempo_librosa_bpm``: it is librosa's algorithm.

- :func:`onset_strength` = ``librosa.onset.onset_strength(y=y, sr=sr)``: spectral flux of
  the log-power mel spectrogram (2048-point STFT, hop 512, 128 Slaney mel bands).
- :func:`autocorrelation_tempo` = ``librosa.feature.tempo(onset_envelope=env, sr=sr)``:
  the mean of 8-s windowed, max-normalised autocorrelations, weighted by a log-normal
  prior around 120 BPM (one octave wide), below 320 BPM.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

N_FFT = 2048
HOP = 512
N_MELS = 128
#: librosa.feature.tempo's defaults.
AC_SIZE_S = 8.0
START_BPM = 120.0
STD_BPM = 1.0
MAX_TEMPO = 320.0


#: Slaney's mel scale (librosa's ``htk=False``): linear to 1 kHz, logarithmic above.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def _hz_to_mel(hz: float) -> float:
    return hz / _F_SP if hz < _MIN_LOG_HZ else _MIN_LOG_MEL + math.log(hz / _MIN_LOG_HZ) / _LOGSTEP


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    return np.where(mels >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (mels - _MIN_LOG_MEL)),
                    _F_SP * mels)


@lru_cache(maxsize=4)
def mel_basis(sr: int, *, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """[n_mels, 1 + n_fft // 2] float32 triangular filters, Slaney area-normalised
    (``librosa.filters.mel(sr=sr, n_fft=n_fft, fmax=sr / 2)``)."""
    fftfreqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2.0), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32)
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None].astype(np.float32)
    return weights


@lru_cache(maxsize=4)
def _hann(n: int, dtype: str = "float64") -> np.ndarray:
    """Periodic Hann window (``scipy.signal.get_window("hann", n, fftbins=True)``)."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(dtype)


def onset_strength(y: np.ndarray, *, sr: int) -> np.ndarray:
    """The onset strength envelope, one value per 512-sample hop (``1 + len(y) // 512``)."""
    import scipy.fft

    y = np.ascontiguousarray(y, dtype=np.float32)
    padded = np.pad(y, N_FFT // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    spec = scipy.fft.rfft(frames * _hann(N_FFT, "float32"), axis=1)
    power = np.abs(spec) ** 2  # [frames, bins]
    mel = power @ mel_basis(sr).T  # [frames, n_mels]
    db = 10.0 * np.log10(np.maximum(np.float32(1e-10), mel))
    db = np.maximum(db, db.max() - 80.0)
    flux = np.maximum(0.0, db[1:] - db[:-1]).mean(axis=1)
    # The first frame has no predecessor; the STFT's centring shifts onsets by half a frame.
    env = np.concatenate([np.zeros(1 + N_FFT // (2 * HOP), dtype=flux.dtype), flux])
    return env[: len(frames)]


def autocorrelation_tempo(env: np.ndarray, *, sr: int) -> float | None:
    """librosa's global tempo (BPM) of an onset envelope; None when it has no frames."""
    import scipy.fft

    env = np.asarray(env)
    n = env.shape[-1]
    if n == 0:
        return None
    win = math.floor(AC_SIZE_S * sr / HOP)
    half = win // 2
    padded = np.pad(env, (half, half), mode="linear_ramp", end_values=(0, 0))
    frames = np.lib.stride_tricks.sliding_window_view(padded, win)[:n] * _hann(win)
    n_pad = scipy.fft.next_fast_len(2 * win - 1, real=True)
    spec = scipy.fft.rfft(frames, n=n_pad, axis=1)
    ac = scipy.fft.irfft(spec.real ** 2 + spec.imag ** 2, n=n_pad, axis=1)[:, :win]
    peak = np.abs(ac).max(axis=1, keepdims=True)
    peak[peak < np.finfo(ac.dtype).tiny] = 1.0
    tg = (ac / peak).mean(axis=0)
    with np.errstate(divide="ignore"):
        bpms = np.concatenate([[np.inf], 60.0 * sr / (HOP * np.arange(1.0, win))])
        logprior = -0.5 * ((np.log2(bpms) - np.log2(START_BPM)) / STD_BPM) ** 2
    logprior[: int(np.argmax(bpms < MAX_TEMPO))] = -np.inf
    return float(bpms[int(np.argmax(np.log1p(1e6 * tg) + logprior))])
