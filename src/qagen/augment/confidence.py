"""Calibrated tempo confidence: a monotone map from the decision's evidence to P(right).

Why: the octave decision's softmax share is a score, not a probability — on the hard set
clips it put above 0.95 were right 0.87–0.94 of the time, and generation reads
``tempo_confidence`` as the chance the stated tempo is right (it hedges below 0.5). The
evidence (:func:`tempo_evidence`: how many estimators land on the chosen tempo, then the
share) is mapped by isotonic regression (pool adjacent violators) fitted on the hard set's
**dev** half: a clip with more evidence never gets a lower confidence. It is
stored as data (``tempo_calibration.json`` beside this module) and refitted with
``python bench/hardset.py --fit-calibration``; the test half reports how well it holds.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

#: Where the fitted map lives (package data).
CALIBRATION_FILE = Path(__file__).with_name("tempo_calibration.json")
#: Bump when the evidence the map reads changes meaning (a refit is then required).
CALIBRATION_VERSION = "1"
#: Confidence is kept inside these bounds: a few dozen clips never justify 0 or 1.
FLOOR, CEILING = 0.05, 0.98


class CalibrationBin(BaseModel):
    """One pooled block of the isotonic fit: its evidence range, size and accuracy."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    lo: float
    hi: float
    n: int
    correct: int
    p: float = Field(description="Smoothed accuracy of the block (what the map returns).")


class TempoCalibration(BaseModel):
    """Piecewise-linear monotone map: tempo evidence → P(tempo Acc1 right)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    version: str = CALIBRATION_VERSION
    evidence: str = Field(default="tempo_evidence(): estimators agreeing with the chosen "
                          "tempo (0-3) + its raw softmax share after the metrical-level doubt")
    fitted_on: str = Field(description="Which clips the map was fitted on.")
    clips: int
    accuracy: float = Field(description="Acc1 over the fitted clips.")
    bins: list[CalibrationBin]

    def apply(self, evidence: float) -> float:
        """P(right) for an evidence value: a block's value across its range, linear in the
        gaps between blocks, flat outside."""
        if not self.bins:
            raise ValueError("an empty tempo calibration maps nothing")
        xs: list[float] = []
        ys: list[float] = []
        for b in self.bins:
            for x in ((b.lo,) if b.hi <= b.lo else (b.lo, b.hi)):
                xs.append(x)
                ys.append(b.p)
        return round(float(np.interp(evidence, xs, ys)), 4)

    @property
    def fingerprint(self) -> str:
        """Short content hash: part of the augment stage's version, so a refit redoes it."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def tempo_evidence(bpm: float, raw_confidence: float, estimates: Sequence[float | None], *,
                   tolerance: float = 0.04) -> float:
    """One number that orders clips by how much the tempo decision rests on.

    Why: the softmax share alone hardly separates right from wrong (on the dev half its
    0.95+ bin was right 0.94 of the time, its 0.7–0.9 bin, where the chords moved the level,
    every time); how many of the three estimators (TCN, beat tracker, librosa) land on the
    chosen tempo does. The count comes first, the share breaks ties within a count:
    ``count + 0.999 × share``, in [0, 4).
    """
    agreeing = sum(1 for e in estimates if e and abs(e - bpm) <= tolerance * bpm)
    return round(agreeing + 0.999 * min(max(raw_confidence, 0.0), 1.0), 4)


def fit_tempo_calibration(
    pairs: Sequence[tuple[float, bool]], *, fitted_on: str, prior: float = 2.0,
) -> TempoCalibration:
    """Isotonic fit of correctness on raw confidence, each block shrunk toward the mean.

    Parameters
    ----------
    pairs
        (evidence from :func:`tempo_evidence`, tempo right) per clip.
    prior
        Pseudo-clips at the overall accuracy added to every block: a block of 3 right
        clips says "likely", not "certain".

    Returns
    -------
    TempoCalibration
        Blocks in increasing evidence with non-decreasing ``p`` in [FLOOR, CEILING].
    """
    data = sorted((float(x), bool(y)) for x, y in pairs)
    if not data:
        return TempoCalibration(fitted_on=fitted_on, clips=0, accuracy=0.0, bins=[])
    mean = sum(y for _, y in data) / len(data)
    # Pool adjacent violators; equal evidence values always share a block.
    blocks: list[list[float]] = []  # [lo, hi, n, correct]
    for x, y in data:
        if blocks and blocks[-1][1] == x:
            blocks[-1][2] += 1
            blocks[-1][3] += y
        else:
            blocks.append([x, x, 1, float(y)])
        while len(blocks) > 1 and blocks[-2][3] / blocks[-2][2] >= blocks[-1][3] / blocks[-1][2]:
            lo, _, n, c = blocks.pop(-2)
            blocks[-1] = [lo, blocks[-1][1], blocks[-1][2] + n, blocks[-1][3] + c]
    bins = []
    running = FLOOR
    for lo, hi, n, c in blocks:
        p = (c + prior * mean) / (n + prior)
        running = min(max(running, p), CEILING)  # shrinkage may not break monotonicity
        bins.append(CalibrationBin(lo=round(lo, 4), hi=round(hi, 4), n=int(n), correct=int(c),
                                   p=round(max(running, FLOOR), 4)))
    return TempoCalibration(fitted_on=fitted_on, clips=len(data), accuracy=round(mean, 4),
                            bins=bins)


def load_tempo_calibration() -> TempoCalibration | None:
    """The fitted map shipped with the package (None when absent or of another version)."""
    try:
        text = resources.files("qagen.augment").joinpath(CALIBRATION_FILE.name).read_text(
            encoding="utf-8")
    except FileNotFoundError:
        return None
    cal = TempoCalibration.model_validate_json(text)
    return cal if cal.version == CALIBRATION_VERSION and cal.bins else None


def reliability(
    pairs: Sequence[tuple[float, bool]], *, edges: Sequence[float] = (0.0, 0.5, 0.7, 0.8, 0.9,
                                                                      0.95, 1.0),
) -> list[tuple[float, float, int, float, float]]:
    """Reliability table: (lo, hi, n, mean confidence, accuracy) per confidence bin."""
    out = []
    for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
        last = i == len(edges) - 2
        sel = [(x, y) for x, y in pairs if lo <= x < hi or (last and x == hi)]
        if sel:
            out.append((lo, hi, len(sel), sum(x for x, _ in sel) / len(sel),
                        sum(y for _, y in sel) / len(sel)))
    return out
