"""Music theory shared by every stage: pitch classes, key and chord parsing, spelling.

Why a core module: augment writes keys and chords, generate states and checks them, evaluate
scores them; none of them should import another stage for a pitch-class table. Keys are
written as mir_eval writes them (``A minor``, ``Bb major``), chords in Harte syntax with
sharps as madmom writes them (``A#:maj``); spelled names (``Bb major``) are for text.
"""

from __future__ import annotations

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


def key_name(pc: int, mode: str) -> str:
    """The conventional name of a key: flats where its signature has flats (Db major, not
    C# major; Eb minor), sharps otherwise."""
    flat_guess = f"{PITCH_CLASSES_FLAT[pc]} {mode}"
    return f"{note_name(pc, key=flat_guess)} {mode}"


_LETTERS = "CDEFGAB"
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
_MAJOR_DEGREES = {0: "I", 2: "II", 4: "III", 5: "IV", 7: "V", 9: "VI", 11: "VII"}
_MINOR_DEGREES = {0: "I", 2: "II", 3: "III", 5: "IV", 7: "V", 8: "VI", 10: "VII"}


def spell_in_key(pc: int, *, key: str) -> str | None:
    """Spell a diatonic pitch class by its scale degree (IV of Gb major is Cb, not B);
    None for a pitch class outside the scale (the raised leading tone of minor included:
    G# in A minor is degree 7 raised, spelled from the letter of degree 7)."""
    tonic_name = key.split()[0]
    tonic_pc, mode = parse_key(key)
    scale = _SCALES[mode]
    offset = (pc - tonic_pc) % 12
    if offset in scale:
        degree = scale.index(offset)
    elif mode == "minor" and offset == 11:
        degree = 6
    else:
        return None
    letter = _LETTERS[(_LETTERS.index(tonic_name[0]) + degree) % 7]
    diff = (pc - _LETTER_PC[letter] + 6) % 12 - 6
    if abs(diff) > 1:
        return None
    return letter + {-1: "b", 0: "", 1: "#"}[diff]


def roman_numeral(label: str, *, key: str) -> str | None:
    """Harte chord → Roman numeral in ``key`` (upper case major, lower case minor); None for
    chords whose root is not a scale degree (chromatic chords are not named by rule)."""
    parsed = parse_chord(label)
    if parsed is None:
        return None
    root, quality = parsed
    if quality not in ("maj", "min"):
        return None
    tonic, mode = parse_key(key)
    degrees = _MAJOR_DEGREES if mode == "major" else _MINOR_DEGREES
    numeral = degrees.get((root - tonic) % 12)
    if numeral is None:
        return None
    return numeral if quality == "maj" else numeral.lower()
