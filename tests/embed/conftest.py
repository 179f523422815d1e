"""Embed-stage fixtures: the built-in tiny encoder (built once) and a small audio folder."""

from pathlib import Path

import numpy as np
import pytest

from qagen.audio import write_audio
from qagen.embed.tiny import tiny_model_dir

SR = 22050


@pytest.fixture(scope="session")
def tiny_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A qagen cache root holding the built-in random MERT (built once per session)."""
    root = tmp_path_factory.mktemp("qagen-home")
    tiny_model_dir(cache_root=root)
    return root


def tone(seconds: float, *, freq: float, sr: int = SR) -> np.ndarray:
    """A decaying tone with overtones (distinct per frequency)."""
    t = np.arange(int(sr * seconds)) / sr
    y = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, 4))
    return (0.3 * y * np.exp(-0.5 * t)).astype(np.float32)


@pytest.fixture
def audio_folder(tmp_path: Path) -> Path:
    """Good files of different lengths, a byte copy of one, and three kinds of trouble."""
    import soundfile as sf

    root = tmp_path / "data"
    write_audio(root / "a_good.wav", tone(2.0, freq=220), sr=SR)
    (root / "b_copy.wav").write_bytes((root / "a_good.wav").read_bytes())
    write_audio(root / "c_long.flac", tone(6.3, freq=330), sr=SR)  # two 5 s-windows' worth
    write_audio(root / "d_mp3.mp3", tone(1.5, freq=440), sr=SR)
    (root / "e_corrupt.mp3").write_bytes(np.random.default_rng(0).bytes(20000))
    sf.write(str(root / "f_empty.wav"), np.zeros((0,), np.float32), SR)
    write_audio(root / "g_tiny.wav", tone(0.01, freq=440), sr=SR)  # < one encoder frame
    return root
