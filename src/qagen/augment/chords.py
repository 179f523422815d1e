"""Chord segments: madmom's Harte labels (sharps) plus a spelling that fits the key."""

from __future__ import annotations

from collections.abc import Sequence

from qagen.music import (  # noqa: F401 - re-exported: augment's callers name them here
    PITCH_CLASSES_FLAT,
    PITCH_CLASSES_SHARP,
    note_name,
    parse_chord,
    parse_key,
    pitch_class,
    spell_chord,
)
from qagen.records.features import ChordSegment


def chord_segments(
    raw: Sequence[tuple[float, float, str]], *, key: str | None, min_duration_s: float = 0.0
) -> list[ChordSegment]:
    """Merge repeats, absorb blips shorter than ``min_duration_s`` into the previous chord."""
    merged: list[list] = []
    for start, end, label in raw:
        if merged and (merged[-1][2] == label or end - start < min_duration_s):
            merged[-1][1] = end
        else:
            merged.append([start, end, label])
    return [ChordSegment(start_s=round(s, 3), end_s=round(e, 3), label=lab,
                         spelled=spell_chord(lab, key=key)) for s, e, lab in merged]
