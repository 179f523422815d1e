"""The timeline under the player: waveform envelope, beats, downbeats and chords as SVG
coordinates (the template draws them; no JavaScript needed to see it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qagen.records import ClipFeatures

WIDTH = 1000
WAVE_H = 120
CHORD_H = 28


@dataclass(frozen=True)
class ChordBox:
    x: float
    width: float
    label: str
    spelled: str


@dataclass(frozen=True)
class Timeline:
    """Everything in SVG units: x in 0..WIDTH over the clip window, the envelope as a
    polygon's points string."""

    duration_s: float
    envelope: str
    beats: list[float]
    downbeats: list[float]
    chords: list[ChordBox]
    width: int = WIDTH
    wave_h: int = WAVE_H
    chord_h: int = CHORD_H


def build_timeline(y: np.ndarray | None, *, sr: int, features: ClipFeatures | None,
                   duration_s: float | None, bins: int = 400) -> Timeline:
    """The timeline of a clip window (``y`` None: no audio, the marks alone)."""
    duration = (len(y) / sr if y is not None and len(y) else
                (features.duration_s if features and features.duration_s else duration_s)) or 1.0
    envelope = ""
    if y is not None and len(y):
        edges = np.linspace(0, len(y), bins + 1).astype(int)
        peak = float(np.max(np.abs(y))) or 1.0
        top, bottom = [], []
        for i in range(bins):
            seg = y[edges[i]:max(edges[i + 1], edges[i] + 1)]
            x = round((i + 0.5) * WIDTH / bins, 1)
            top.append(f"{x},{round(WAVE_H / 2 * (1 - float(seg.max()) / peak), 1)}")
            bottom.append(f"{x},{round(WAVE_H / 2 * (1 - float(seg.min()) / peak), 1)}")
        envelope = " ".join(top + bottom[::-1])

    def x_of(t: float) -> float:
        return round(min(max(t / duration, 0.0), 1.0) * WIDTH, 1)

    f = features
    chords = [ChordBox(x=x_of(c.start_s), width=max(x_of(c.end_s) - x_of(c.start_s), 0.5),
                       label=c.label, spelled=c.spelled or c.label)
              for c in (f.chords if f else [])]
    return Timeline(duration_s=duration, envelope=envelope,
                    beats=[x_of(t) for t in (f.beats if f else [])],
                    downbeats=[x_of(t) for t in (f.downbeats if f else [])], chords=chords)
