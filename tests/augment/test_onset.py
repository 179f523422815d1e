"""The numpy restatement of librosa's onset envelope and tempo equals librosa's own output."""

import numpy as np
import pytest

from qagen.augment.onset import autocorrelation_tempo, mel_basis, onset_strength
from tests.conftest import SHARED

librosa = pytest.importorskip("librosa")

SR = 22050


def _clicks(bpm: float, seconds: float = 10.0, *, offbeats: bool = False) -> np.ndarray:
    """Decaying 2 kHz clicks on every beat (and softer ones half-way, for ``offbeats``)."""
    y = np.zeros(int(SR * seconds), dtype=np.float32)
    click = (np.sin(2 * np.pi * 2000 * np.arange(800) / SR) * np.exp(-np.arange(800) / 120))
    step = 60.0 / bpm / (2 if offbeats else 1)
    for i, t in enumerate(np.arange(0.05, seconds - 0.1, step)):
        at = int(t * SR)
        y[at: at + 800] += (0.4 if offbeats and i % 2 else 1.0) * click.astype(np.float32)
    return y


def _signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    sigs = {"noise": (0.1 * rng.standard_normal(SR * 6)).astype(np.float32),
            "silence": np.zeros(SR * 2, dtype=np.float32),
            "shorter than a frame": rng.standard_normal(1500).astype(np.float32),
            "clicks 96": _clicks(96.0), "clicks 150 with off-beats": _clicks(150.0, offbeats=True)}
    real = SHARED / "realaudio" / "librosa"
    for name in ("Kevin_MacLeod_-_Vibe_Ace.hq.ogg", "5703-47212-0000.hq.ogg"):
        if (real / name).is_file():
            sigs[name] = librosa.load(real / name, sr=SR, duration=20.0)[0]
    return sigs


def test_mel_basis_is_librosas() -> None:
    np.testing.assert_allclose(mel_basis(SR), librosa.filters.mel(sr=SR, n_fft=2048),
                               atol=1e-7)


@pytest.mark.parametrize(("name", "y"), list(_signals().items()))
def test_envelope_and_tempo_equal_librosa(name: str, y: np.ndarray) -> None:
    ref = librosa.onset.onset_strength(y=y, sr=SR)
    env = onset_strength(y, sr=SR)
    assert env.shape == ref.shape
    np.testing.assert_allclose(env, ref, atol=1e-5 * max(float(ref.max()), 1.0))
    expected = float(librosa.feature.tempo(onset_envelope=ref, sr=SR)[0])
    assert autocorrelation_tempo(env, sr=SR) == pytest.approx(expected, rel=1e-9)


def test_click_track_tempo_is_found() -> None:
    """Not only equal to librosa: right on a track whose tempo is known (within its lag grid)."""
    assert autocorrelation_tempo(onset_strength(_clicks(96.0), sr=SR), sr=SR) == pytest.approx(
        96.0, rel=0.03)


def test_empty_envelope_has_no_tempo() -> None:
    assert autocorrelation_tempo(np.zeros(0, dtype=np.float32), sr=SR) is None
