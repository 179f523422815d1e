"""Chord segments: madmom's Harte labels (sharps) plus a spelling that fits the key."""

from __future__ import annotations

from collections.abc import Sequence

from qagen.records.features import ChordSegment

PITCH_CLASSES_SHARP = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
PITCH_CLASSES_FLAT = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
_NAMES = {**{n: i for i, n in enumerate(PITCH_CLASSES_SHARP)},
          **{n: i for i, n in enumerate(PITCH_CLASSES_FLAT)}, "Cb": 11, "Fb": 4, "E#": 5,
          "B#": 0}
#: Tonics (pitch class, mode) whose key signature has flats.
_FLAT_KEYS = {(5, "major"), (10, "major"), (3, "major"), (8, "major"), (1, "major"),
              (6, "major"), (2, "minor"), (7, "minor"), (0, "minor"), (5, "minor"),
              (10, "minor"), (3, "minor")}
_QUALITY_WORDS = {"maj": "major", "min": "minor"}


def pitch_class(name: str) -> int:
    """``"Bb"`` → 10. Raises KeyError for an unknown note name."""
    return _NAMES[name]


def parse_key(key: str) -> tuple[int, str]:
    """``"Bb major"`` → (10, "major")."""
    tonic, mode = key.split()
    return pitch_class(tonic), mode


def parse_chord(label: str) -> tuple[int, str] | None:
    """Harte ``"A#:maj"`` → (10, "maj"); ``"N"``/``"X"`` → None."""
    if label in ("N", "X") or ":" not in label:
        return None
    root, quality = label.split(":", 1)
    return pitch_class(root), quality.split("/")[0]


def note_name(pc: int, *, key: str | None) -> str:
    """Spell a pitch class for a key: flats in flat keys (and for Bb/Eb/Ab in C/Am)."""
    if key is not None:
        tonic, mode = parse_key(key)
        if (tonic, mode) in _FLAT_KEYS:
            return PITCH_CLASSES_FLAT[pc]
        if (tonic, mode) in {(0, "major"), (9, "minor")}:
            return PITCH_CLASSES_FLAT[pc] if pc in (10, 3, 8) else PITCH_CLASSES_SHARP[pc]
        return PITCH_CLASSES_SHARP[pc]
    return PITCH_CLASSES_FLAT[pc] if pc in (10, 3, 8) else PITCH_CLASSES_SHARP[pc]


def spell_chord(label: str, *, key: str | None) -> str:
    """``"A#:maj"`` in Bb major or F minor → ``"Bb major"``; ``"N"`` → ``"no chord"``."""
    parsed = parse_chord(label)
    if parsed is None:
        return "no chord"
    pc, quality = parsed
    return f"{note_name(pc, key=key)} {_QUALITY_WORDS.get(quality, quality)}"


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
