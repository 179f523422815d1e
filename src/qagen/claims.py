"""What an answer states: the tempo, key, chord and meter claims read out of free text, and
the instrument, genre and mood vocabularies.

Why a core module: the generate stage checks these claims against the measurements
(``generate.grounding``) and screens paraphrases with them; the train stage's evaluation scores
a trained model's answers with the very same readers (``train.mir``). Two copies would drift.

The readers are deliberately conservative: a mention that cannot be read with confidence (an
ambiguous "A major" at the start of a sentence, a diminished chord, 6/8) is not reported, and
negated mentions ("not 60 BPM", "without vocals") are skipped. Pure functions: text in, claims
out.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from qagen.music import pitch_class
from qagen.records.qa import QAKind

# --------------------------------------------------------------------------- text

_SENTENCE_BREAK = re.compile(r"(?<=[.!?;])\s+|\n+")
_WORD = re.compile(r"[\w']+")
_CLAUSE_BREAK = re.compile(r"[,;:()]|\b(?:but|while|whereas|however|although)\b", re.I)
_NEGATION = re.compile(
    r"\b(?:not|no|never|without|nor|isn't|aren't|wasn't|weren't|doesn't|don't|lacks?|lacking|"
    r"absence|absent|free|devoid|rather than|instead of)\b"
)
HEDGE = re.compile(
    r"\b(?:possibly|possible|likely|probably|perhaps|maybe|may|might|could|ambiguous|ambiguity|"
    r"suggests?|suggesting|seems?|appears?|relative|uncertain|either)\b",
    re.I,
)


def split_sentences(text: str) -> list[str]:
    """Split into sentences so that context, hedges and negations stay local to a claim."""
    text = text.replace("’", "'").replace("‘", "'")
    return [s for s in _SENTENCE_BREAK.split(text) if s.strip()]


def negated(sentence: str, start: int) -> bool:
    """True when one of the (up to) four words before ``start`` in its clause negates it."""
    clause = _CLAUSE_BREAK.split(sentence[:start])[-1]
    words = _WORD.findall(clause.lower())[-4:]
    return bool(_NEGATION.search(" ".join(words)))


# --------------------------------------------------------------------------- tempo

_NUM = r"(\d{2,3}(?:\.\d+)?)(?!\d|\.\d|:\d)"
_BPM_UNIT = r"(?:bpm\b|b\.p\.m\.?|beats?\s+(?:per|a|each|every)\s+minute\b)"
_BPM_RANGE = re.compile(rf"{_NUM}\s*(?:-|–|—|to|and)\s*{_NUM}\s*-?\s*{_BPM_UNIT}", re.I)
_BPM_VALUE = re.compile(rf"{_NUM}\s*-?\s*{_BPM_UNIT}", re.I)
_TEMPO_FILLER = (
    r"(?:is|of|at|around|about|approximately|approx\.?|roughly|near|nearly|close|to|sits|"
    r"hovers|set|clocks|in|somewhere|be|seems|appears|estimated|measured|just|over|under|"
    r"above|below|some|an?|the)"
)
_TEMPO_VALUE = re.compile(
    rf"\btempo\b(?:\s+{_TEMPO_FILLER}){{0,5}}\s*[~≈=:]?\s*{_NUM}"
    r"(?!\s*(?:%|percent|seconds?|secs?|s\b|minutes?|mins?|bars?|measures?|beats\b|hz|db|years?))",
    re.I,
)
_AT_LEAST = re.compile(
    r"(?:over|above|more than|greater than|faster than|at least|upwards of|exceeding|exceeds|"
    r"beyond)\s*$", re.I)
_AT_MOST = re.compile(
    r"(?:under|below|less than|slower than|at most|up to|no more than)\s*$", re.I)
_INTENSIFIER = r"(?:(?:very|extremely|really|quite|fairly|pretty|rather|super)\s+)?"
_CLAUSE_END = r"(?=\s*(?:[.,;!?]|$|and\b|but\b|with\b))"


def _speed_claim(words: str) -> re.Pattern[str]:
    """"fast tempo", "the tempo is fast", "the song is very fast." (not "a slow build")."""
    return re.compile(
        rf"\b{_INTENSIFIER}{words}(?:[- ]paced)?\s+tempo\b"
        rf"|\btempo\s+(?:is|feels|seems|sounds)\s+{_INTENSIFIER}{words}\b"
        rf"|\b(?:song|track|piece|music|it|tune|beat|rhythm|groove)\s+(?:is|feels|seems|sounds)"
        rf"\s+{_INTENSIFIER}{words}\b{_CLAUSE_END}",
        re.I,
    )


FAST_CLAIM = _speed_claim(r"(?:fast|quick|rapid|brisk|speedy|breakneck)")
SLOW_CLAIM = _speed_claim(r"(?:slow|sluggish|leisurely|plodding)")


def bpm_claims(sentence: str) -> list[tuple[float, float, str]]:
    """Stated tempi in one sentence as intervals ``(low, high, text)``.

    A single value is a point, a range an interval, "over 120 BPM" a half-line; negated values
    are dropped. Ranges are blanked out before single values are looked for.
    """
    claims: list[tuple[float, float, str]] = []
    rest = sentence
    for m in _BPM_RANGE.finditer(sentence):
        if not negated(sentence, m.start()):
            lo, hi = sorted((float(m.group(1)), float(m.group(2))))
            claims.append((lo, hi, m.group(0)))
        rest = rest[: m.start()] + " " * (m.end() - m.start()) + rest[m.end():]
    seen: set[int] = set()
    for pattern in (_BPM_VALUE, _TEMPO_VALUE):
        for m in pattern.finditer(rest):
            start = m.start(1)
            if start in seen or negated(rest, start):
                continue
            seen.add(start)
            value, before = float(m.group(1)), rest[:start]
            if _AT_MOST.search(before):
                claims.append((0.0, value, m.group(0)))
            elif _AT_LEAST.search(before):
                claims.append((value, math.inf, m.group(0)))
            else:
                claims.append((value, value, m.group(0)))
    return claims


# --------------------------------------------------------------------------- key and chords

_NOTE = r"[A-G](?:[#♯b♭]|[- ]?(?i:sharp|flat)\b)?"
_MODE = r"(?i:(major|minor|maj|min))\b"
_NOTE_MODE = re.compile(rf"(?<![\w#♯♭])({_NOTE})[\s-]+{_MODE}")
_KEY_NO_MODE = re.compile(
    rf"\b(?i:key)\s*(?:(?i:of|is)\s+|:\s*)({_NOTE})"
    r"(?![\w#♯♭+]|[- ]?(?i:sharp|flat)\b|[\s-]+(?i:major|minor|maj|min)\b)")
_MODE_ONLY = re.compile(
    r"(?:(?<!\w)(?:a|the|its)|^\s*(?:A|The|Its))\s+(?i:(major|minor))\s+(?i:key|tonality|mode)\b")
_SUFFIX = (r"(?:maj7|maj9|maj|min7|min9|min|m7b5|m7|m9|m6|m11|m|M7|7|9|6|11|13|dim7|dim|°|aug|"
           r"\+|sus2|sus4|sus|add9|ø)")
_BASS = r"(?:/[A-G][#♯b♭]?)?"
_CHORD_SYMBOL = re.compile(rf"(?<![\w#♯♭/])([A-G][#♯b♭]?)({_SUFFIX}){_BASS}(?![\w#♯♭'+°ø/])")
_SYMBOL = rf"[A-G][#♯b♭]?{_SUFFIX}?{_BASS}"
_SYMBOL_LIST = (rf"(?<![\w#♯♭/]){_SYMBOL}(?:\s*(?:,|-|–|—|→|->|>|to|and|then|\|)\s*{_SYMBOL})+"
                rf"(?![\w#♯♭'+°ø]|[\s-]+(?i:major|minor|maj|min)\b)")
_CHORD_LIST = re.compile(
    rf"(?i:\bchords?\b|\bprogression\b)[^.;]{{0,30}}?({_SYMBOL_LIST})"
    rf"|({_SYMBOL_LIST})\s+(?i:(?:chord\s+)?progression|chords|changes)\b")
_SYMBOL_TOKEN = re.compile(rf"([A-G][#♯b♭]?)({_SUFFIX})?{_BASS}")
_CHORD_NOUNS = frozenset({"chord", "chords", "triad", "triads"})
#: "scale" is in neither list: a C major scale run is common in pieces in other keys.
_KEY_NOUNS = frozenset({"key", "keys", "tonality", "mode", "tonal"})
_KEY_CUE = re.compile(
    r"(?:\bin|\bkey(?:\s+(?:of|is|signature(?:\s+of)?))?|\btonality(?:\s+(?:of|is))?"
    r"|\btonal\s+cent(?:er|re)\s+(?:of|is)|\bcent(?:er|re)d\s+(?:on|around)|\bhome\s+key\s+(?:of|is)"
    r"|\brelative(?:\s+(?:major|minor))?)\s*:?\s*(?:(?:the|an?)\s+)?$",
    re.I,
)
_CHORD_CONTEXT = re.compile(r"\b(?:chords?|triads?|progressions?|cadences?)\b", re.I)
_KEY_CONTEXT = re.compile(r"\b(?:key|tonality|tonal|tonic|relative)\b", re.I)
_MODE_WORDS = {"major": "major", "maj": "major", "minor": "minor", "min": "minor"}


@dataclass(frozen=True)
class KeyClaim:
    """A stated key; ``pc`` None for "a minor key", ``mode`` None for "the key of D"."""

    pc: int | None
    mode: str | None
    text: str
    sentence: str


@dataclass(frozen=True)
class ChordClaim:
    """A stated chord reduced to its triad: pitch class and ``maj``/``min``."""

    pc: int
    quality: str
    text: str


def _note_pc(note: str) -> int:
    """``"E-flat"`` / ``"Eb"`` / ``"E♭"`` → 3; ``"C sharp"`` → 1 (enharmonics coincide)."""
    letter, accidental = note[0], note[1:].strip(" -").lower()
    shift = {"#": 1, "♯": 1, "sharp": 1, "b": -1, "♭": -1, "flat": -1}.get(accidental, 0)
    return (pitch_class(letter) + shift) % 12


def triad_quality(suffix: str) -> str | None:
    """Reduce a chord quality to ``maj``/``min`` (sevenths count as their triad); None for
    qualities the chord recogniser cannot report (dim, aug, sus)."""
    s = "maj7" if suffix == "M7" else suffix.lower()
    if s.startswith(("dim", "aug", "sus", "°", "+", "ø", "m7b5", "hdim")):
        return None
    if s.startswith("min") or (s.startswith("m") and not s.startswith("maj")):
        return "min"
    return "maj"


def _mention_role(sentence: str, start: int, end: int, *, kind: QAKind | None) -> str | None:
    """Is "X major/minor" here a key ("in A minor") or a chord ("an A minor chord")?

    The next word decides first (chord/key/tonality), then a key cue right before ("in", "key
    of"), then chord or key vocabulary elsewhere in the sentence, then the pair's kind. None
    means undecidable: the mention is not checked.
    """
    nxt = re.match(r"[\s-]*([\w']+)", sentence[end:])
    word = nxt.group(1).lower() if nxt else ""
    if word in _CHORD_NOUNS:
        return "chord"
    if word in _KEY_NOUNS:
        return "key"
    if _KEY_CUE.search(sentence[:start]):
        return "key"
    if _CHORD_CONTEXT.search(sentence):
        return "chord"
    if _KEY_CONTEXT.search(sentence):
        return "key"
    return {QAKind.harmony: "chord", QAKind.key: "key"}.get(kind) if kind else None


def _sentence_initial_article(sentence: str, m: re.Match[str]) -> bool:
    """"A major influence…": a capital A opening a sentence is an article, not a note."""
    return m.group(1) == "A" and sentence[: m.start()].strip(" \"'(*-") == ""


def _note_mode_claims(
    sentence: str, *, kind: QAKind | None
) -> tuple[list[KeyClaim], list[ChordClaim]]:
    keys: list[KeyClaim] = []
    chords: list[ChordClaim] = []
    for m in _NOTE_MODE.finditer(sentence):
        if negated(sentence, m.start()) or _sentence_initial_article(sentence, m):
            continue
        pc, mode = _note_pc(m.group(1)), _MODE_WORDS[m.group(2).lower()]
        role = _mention_role(sentence, m.start(), m.end(), kind=kind)
        if role == "key":
            keys.append(KeyClaim(pc, mode, m.group(0), sentence))
        elif role == "chord":
            chords.append(ChordClaim(pc, "maj" if mode == "major" else "min", m.group(0)))
    return keys, chords


def _symbol_claims(sentence: str) -> tuple[list[KeyClaim], list[ChordClaim]]:
    """Chord symbols ("C#m", "G7", "Bbmaj7"; bare letters only inside a chord list). A symbol
    right after a key cue ("in Am") is read as a key."""
    keys: list[KeyClaim] = []
    chords: list[ChordClaim] = []
    for m in _CHORD_SYMBOL.finditer(sentence):
        quality = triad_quality(m.group(2))
        if quality is None or negated(sentence, m.start()):
            continue
        pc = _note_pc(m.group(1))
        if _KEY_CUE.search(sentence[: m.start()]) and m.group(2) in ("m", "min", "maj"):
            keys.append(KeyClaim(pc, "minor" if quality == "min" else "major", m.group(0),
                                  sentence))
        else:
            chords.append(ChordClaim(pc, quality, m.group(0)))
    for m in _CHORD_LIST.finditer(sentence):
        group = 1 if m.group(1) else 2
        if negated(sentence, m.start(group)):
            continue
        for tok in _SYMBOL_TOKEN.finditer(m.group(group)):
            quality = triad_quality(tok.group(2) or "")
            if quality is not None:
                chords.append(ChordClaim(_note_pc(tok.group(1)), quality, tok.group(0)))
    return keys, chords


def harmony_claims(
    answer: str, *, kind: QAKind | None = None
) -> tuple[list[KeyClaim], list[ChordClaim]]:
    """Every key and chord an answer states, sentence by sentence (negated ones dropped)."""
    keys: list[KeyClaim] = []
    chords: list[ChordClaim] = []
    for sentence in split_sentences(answer):
        k1, c1 = _note_mode_claims(sentence, kind=kind)
        k2, c2 = _symbol_claims(sentence)
        keys += k1 + k2
        chords += c1 + c2
        for m in _KEY_NO_MODE.finditer(sentence):
            if not negated(sentence, m.start()):
                keys.append(KeyClaim(_note_pc(m.group(1)), None, m.group(0), sentence))
        for m in _MODE_ONLY.finditer(sentence):
            if not negated(sentence, m.start()):
                keys.append(KeyClaim(None, m.group(1).lower(), m.group(0).strip(), sentence))
    return keys, chords


# --------------------------------------------------------------------------- meter

_TIME_SIGNATURE = re.compile(r"(?<![\d/.])(\d{1,2})\s*/\s*(2|4|8|16)(?![\d/])(?!\s+of\b)")
_TRIPLE_WORDS = re.compile(
    r"\bwaltz[- ](?:time|meter|metre|feel|rhythm)\b|\btriple[- ](?:meter|metre|time)\b"
    r"|\b(?:three|3)\s+beats\s+(?:per|to\s+the|to\s+a|in\s+(?:a|each|every))\s+(?:bar|measure)\b",
    re.I)
_QUADRUPLE_WORDS = re.compile(
    r"\bcommon\s+time\b|\bcut\s+time\b|\b(?:quadruple|duple)[- ](?:meter|metre|time)\b"
    r"|\b(?:four|two|4|2)\s+beats\s+(?:per|to\s+the|to\s+a|in\s+(?:a|each|every))"
    r"\s+(?:bar|measure)\b"
    r"|\bfour[- ]on[- ]the[- ]floor\b",
    re.I)


def _signature_group(numerator: int, denominator: int) -> int | None:
    """Beats per bar a time signature implies, as the beat tracker counts them (3 or 4).

    Duple metres count as 4 (the tracker knows only 3 and 4); compound 6/8 and 9/8 are
    skipped (their beat level is ambiguous); odd metres keep their numerator and never match.
    """
    if numerator == 3:
        return 3
    if numerator in (2, 4) or (numerator, denominator) == (12, 8):
        return 4
    if numerator in (5, 7, 10, 11, 13, 15):
        return numerator
    return None


def meter_claims(answer: str) -> list[tuple[int, str, str]]:
    """Stated metres as ``(beats per bar, text, sentence)``, negated ones dropped."""
    claims: list[tuple[int, str, str]] = []
    for sentence in split_sentences(answer):
        for m in _TIME_SIGNATURE.finditer(sentence):
            group = _signature_group(int(m.group(1)), int(m.group(2)))
            if group is not None and not negated(sentence, m.start()):
                claims.append((group, m.group(0), sentence))
        for pattern, group in ((_TRIPLE_WORDS, 3), (_QUADRUPLE_WORDS, 4)):
            claims += [(group, m.group(0), sentence) for m in pattern.finditer(sentence)
                       if not negated(sentence, m.start())]
    return claims


# --------------------------------------------------------------------------- what an answer states

def stated_tempi(answer: str) -> list[float]:
    """The single BPM values an answer states (ranges and bounds left out), in order."""
    return [lo for s in split_sentences(answer) for lo, hi, _ in bpm_claims(s) if lo == hi]


def stated_keys(answer: str, *, kind: QAKind | None = None) -> list[tuple[int, str]]:
    """The keys an answer names with tonic and mode, as (pitch class, mode), in order."""
    keys, _ = harmony_claims(answer, kind=kind)
    return [(k.pc, k.mode) for k in keys if k.pc is not None and k.mode is not None]


def stated_chords(answer: str, *, kind: QAKind | None = None) -> list[tuple[int, str]]:
    """The chords an answer names, as (pitch class, maj/min), in order."""
    _, chords = harmony_claims(answer, kind=kind)
    return [(c.pc, c.quality) for c in chords]


def stated_meters(answer: str) -> list[int]:
    """Beats per bar of every meter an answer states, in order."""
    return [beats for beats, _, _ in meter_claims(answer)]


# --------------------------------------------------------------------------- vocabularies

#: Instrument (and voice) words: what an answer says is playing.
INSTRUMENT_WORDS = re.compile(
    r"\b(?:piano|guitars?|bass|drums?|percussion|synth\w*|strings?|violins?|viola|cello|"
    r"organ|keyboards?|flute|clarinet|oboe|bassoon|sax\w*|trumpet|trombone|horns?|tuba|harp\w*|"
    r"accordion|banjo|mandolin|ukulele|sitar|tabla|marimba|xylophone|vibraphone|bells?|choir|"
    r"quartet|ensemble|orchestra\w*|brass|woodwinds?|harmonica|hi-?hats?|cymbals?|snare|kick|"
    r"vocals?|voice|singer|singing|rap\w*)\b", re.I)
#: Genre words an answer may only use when something known of the clip supports them.
GENRE_WORDS = re.compile(
    r"\b(?:jazz|blues|rock|pop|folk|country|classical|baroque|opera|hip[- ]?hop|rap|metal|punk|"
    r"reggae|techno|house|trance|edm|dubstep|disco|funk|soul|gospel|r&b|electronic|ambient|"
    r"latin|bossa nova|salsa|flamenco|swing|bluegrass|grunge|indie|orchestral|cinematic|"
    r"church|religious|sacred|hymns?|lullaby|christmas|wedding|march)\b",
    re.I)
#: Mood words (labels use them; an answer may only when the clip's labels do).
MOOD_WORDS = frozenset([
    "aggressive", "angry", "anxious", "bright", "calm", "cheerful", "chill", "dark", "dreamy",
    "emotional", "energetic", "epic", "exciting", "fun", "gentle", "happy", "haunting",
    "hopeful", "intense", "joyful", "melancholic", "melancholy", "mellow", "mysterious",
    "nostalgic", "peaceful", "playful", "relaxed", "relaxing", "romantic", "sad", "serene",
    "serious", "soft", "somber", "soothing", "tense", "tender", "triumphant", "uplifting",
    "upbeat", "warm"
])
