"""Shared fixtures: the real-data folder beside the repo, toy demo clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qagen.records.demo import ChordSpan, DemoClip, DemoTruth

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def realdata() -> Path:
    """``../shared/realdata`` (the public datasets' real metadata); skip when absent."""
    path = SHARED / "realdata"
    if not path.is_dir():
        pytest.skip(f"real metadata not present at {path}")
    return path


def toy_demo_clips(n: int = 3, *, sr: int = 22050, seconds: float = 1.0) -> list[DemoClip]:
    """Tiny labelled clips (a decaying A4 with overtones) for write_native round trips."""
    t = np.arange(int(sr * seconds)) / sr
    clips = []
    for i in range(n):
        y = sum(np.sin(2 * np.pi * 440 * (1 + i * 0.25) * k * t) / k for k in range(1, 4))
        y = (0.3 * y * np.exp(-2 * t)).astype(np.float32)
        truth = DemoTruth(
            tempo_bpm=120.0, beats_per_bar=4, key="A major",
            chords=[ChordSpan(start_s=0.0, end_s=seconds, label="A:maj")],
            beats=[0.0, 0.5], downbeats=[0.0], notes=[], timbres=["piano"], has_drums=False,
        )
        clips.append(DemoClip(
            name=f"toy{i}", audio=y, sr=sr, truth=truth,
            split="test" if i == n - 1 else "train",
            caption=f"A calm solo piano piece number {i}.", aspects=["piano", "calm"],
            tags=["piano", "classical", "soft"], genres=["Classical"], instruments=["piano"],
            moods=["calm"], title=f"Toy {i}", artist="qagen tests", composer="Demo Composer",
            composition=f"Toy Piece {i}", ensemble="Solo Piano",
        ))
    return clips


@pytest.fixture
def toy_clips() -> list[DemoClip]:
    """Three toy demo clips (the last one in the test split)."""
    return toy_demo_clips()
