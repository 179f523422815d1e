"""Grounding: does a generated answer agree with what was measured and labelled?

Why: an LLM writing about music it cannot hear fills gaps with plausible stock facts (120 BPM,
C major, 4/4, "a female vocalist"). Every tempo, key, meter and chord an answer states is parsed
and compared with the clip's ``ClipFeatures``; instrument and genre claims are compared with the
dataset's labels only where the labels say something explicit (vocals absent, "no drums",
mutually exclusive genre families), because a missing label does not mean absence.

The parsers are deliberately conservative: a mention that cannot be read with confidence (an
ambiguous "A major" at the start of a sentence, a diminished chord, 6/8) passes, and negated
mentions ("not 60 BPM", "without vocals") are skipped. Claims are looked for in the answer only:
a question may legitimately name alternatives ("Is it in 3/4 or 4/4?").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from qagen.music import note_name, parse_chord, parse_key, pitch_class
from qagen.records.clip import Clip
from qagen.records.features import ClipFeatures, FeatureStatus, TempoAgreement
from qagen.records.qa import GenerateReason, QAItem, QAKind

#: A stated BPM passes within this relative distance of an accepted tempo.
TEMPO_TOLERANCE = 0.08
#: Below this tempo confidence half and double tempo are accepted too.
LOW_TEMPO_CONFIDENCE = 0.5
#: Below this key confidence a hedged relative key ("possibly F major") is accepted.
LOW_KEY_CONFIDENCE = 0.6
#: Below this meter confidence a hedged other meter is accepted.
LOW_METER_CONFIDENCE = 0.5
#: "fast tempo" is rejected below this measured tempo, "slow tempo" above the next.
FAST_CLAIM_MIN_BPM = 80.0
SLOW_CLAIM_MAX_BPM = 140.0
#: Octave relatives and estimator values outside this band are never accepted (a "300 BPM"
#: claim is not excused by a measured 150 BPM with half/double ambiguity).
PLAUSIBLE_BPM = (30.0, 250.0)


@dataclass(frozen=True)
class Finding:
    """Why one pair fails a check: a reason code (API) and a readable detail naming the claim."""

    reason: GenerateReason
    detail: str


# --------------------------------------------------------------------------- text helpers

_SENTENCE_BREAK = re.compile(r"(?<=[.!?;])\s+|\n+")
_WORD = re.compile(r"[\w']+")
_CLAUSE_BREAK = re.compile(r"[,;:()]|\b(?:but|while|whereas|however|although)\b", re.I)
_NEGATION = re.compile(
    r"\b(?:not|no|never|without|nor|isn't|aren't|wasn't|weren't|doesn't|don't|lacks?|lacking|"
    r"absence|absent|free|devoid|rather than|instead of)\b"
)
_HEDGE = re.compile(
    r"\b(?:possibly|possible|likely|probably|perhaps|maybe|may|might|could|ambiguous|ambiguity|"
    r"suggests?|suggesting|seems?|appears?|relative|uncertain|either)\b",
    re.I,
)


def _sentences(text: str) -> list[str]:
    """Split into sentences so that context, hedges and negations stay local to a claim."""
    text = text.replace("’", "'").replace("‘", "'")
    return [s for s in _SENTENCE_BREAK.split(text) if s.strip()]


def _negated(sentence: str, start: int) -> bool:
    """True when one of the (up to) four words before ``start`` in its clause negates it."""
    clause = _CLAUSE_BREAK.split(sentence[:start])[-1]
    words = _WORD.findall(clause.lower())[-4:]
    return bool(_NEGATION.search(" ".join(words)))


def _usable(features: ClipFeatures | None) -> bool:
    return features is not None and features.status == FeatureStatus.ok


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


_FAST_CLAIM = _speed_claim(r"(?:fast|quick|rapid|brisk|speedy|breakneck)")
_SLOW_CLAIM = _speed_claim(r"(?:slow|sluggish|leisurely|plodding)")


def _bpm_claims(sentence: str) -> list[tuple[float, float, str]]:
    """Stated tempi in one sentence as intervals ``(low, high, text)``.

    A single value is a point, a range an interval, "over 120 BPM" a half-line; negated values
    are dropped. Ranges are blanked out before single values are looked for.
    """
    claims: list[tuple[float, float, str]] = []
    rest = sentence
    for m in _BPM_RANGE.finditer(sentence):
        if not _negated(sentence, m.start()):
            lo, hi = sorted((float(m.group(1)), float(m.group(2))))
            claims.append((lo, hi, m.group(0)))
        rest = rest[: m.start()] + " " * (m.end() - m.start()) + rest[m.end():]
    seen: set[int] = set()
    for pattern in (_BPM_VALUE, _TEMPO_VALUE):
        for m in pattern.finditer(rest):
            start = m.start(1)
            if start in seen or _negated(rest, start):
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


def _tempo_ambiguous(features: ClipFeatures) -> bool:
    """Half/double time is plausible: the estimators disagree or the tempo is unsure."""
    conf = features.tempo_confidence
    return features.tempo_agreement in (TempoAgreement.octave, TempoAgreement.disagree) or (
        conf is not None and conf < LOW_TEMPO_CONFIDENCE)


def accepted_tempi(features: ClipFeatures) -> list[float]:
    """Tempi an answer may state: the measured one, plus octave relatives when ambiguous.

    Why: half/double-time errors are the commonest tempo error, and the augment stage records
    when they are plausible (``tempo_agreement`` octave/disagree, low confidence). Then the
    individual estimators' values and, in triple meter, third/triple tempo are accepted too,
    as long as they lie in the plausible band :data:`PLAUSIBLE_BPM`.
    """
    tempo = features.tempo_bpm
    if tempo is None:
        return []
    out = [tempo]
    if _tempo_ambiguous(features):
        out += [tempo / 2, tempo * 2]
        if features.meter == 3:
            out += [tempo / 3, tempo * 3]
        out += [t for t in (features.tempo_tcn_bpm, features.tempo_beats_bpm,
                            features.tempo_librosa_bpm) if t]
        lo, hi = PLAUSIBLE_BPM
        out = [tempo] + [t for t in out[1:] if lo <= t <= hi]
    return out


def check_tempo(answer: str, *, features: ClipFeatures | None) -> Finding | None:
    """Reject stated BPM values more than 8 % from every accepted tempo, and "fast"/"slow tempo"
    claims that clearly contradict an unambiguous measurement.

    Returns
    -------
    Finding | None
        ``grounding_tempo`` with the offending phrase, or None when the answer passes.
    """
    sentences = _sentences(answer)
    claims = [c for s in sentences for c in _bpm_claims(s)]
    usable = _usable(features) and features is not None and features.tempo_bpm is not None
    if claims and not usable:
        return Finding(GenerateReason.grounding_tempo,
                       f"answer states a tempo ({claims[0][2]!r}) but no measured tempo")
    if not usable or features is None or features.tempo_bpm is None:
        return None
    accepted = accepted_tempi(features)
    for lo, hi, text in claims:
        if not any(lo <= t * (1 + TEMPO_TOLERANCE) and hi >= t * (1 - TEMPO_TOLERANCE)
                   for t in accepted):
            return Finding(GenerateReason.grounding_tempo,
                           f"answer says {text!r}; measured {features.tempo_bpm:.1f} BPM "
                           f"({features.tempo_agreement or 'no agreement info'})")
    return _check_speed_words(sentences, features=features)


def _check_speed_words(sentences: list[str], *, features: ClipFeatures) -> Finding | None:
    """"fast tempo" under 80 BPM or "slow tempo" over 140 BPM, unless half/double is plausible."""
    tempo = features.tempo_bpm
    if tempo is None or _tempo_ambiguous(features):
        return None
    for sentence in sentences:
        for pattern, wrong in ((_FAST_CLAIM, tempo < FAST_CLAIM_MIN_BPM),
                               (_SLOW_CLAIM, tempo > SLOW_CLAIM_MAX_BPM)):
            m = pattern.search(sentence)
            if wrong and m and not _negated(sentence, m.start()):
                return Finding(GenerateReason.grounding_tempo,
                               f"answer says {m.group(0)!r}; measured {tempo:.1f} BPM")
    return None


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
class _KeyClaim:
    """A stated key; ``pc`` None for "a minor key", ``mode`` None for "the key of D"."""

    pc: int | None
    mode: str | None
    text: str
    sentence: str


@dataclass(frozen=True)
class _ChordClaim:
    """A stated chord reduced to its triad: pitch class and ``maj``/``min``."""

    pc: int
    quality: str
    text: str


def _note_pc(note: str) -> int:
    """``"E-flat"`` / ``"Eb"`` / ``"E♭"`` → 3; ``"C sharp"`` → 1 (enharmonics coincide)."""
    letter, accidental = note[0], note[1:].strip(" -").lower()
    shift = {"#": 1, "♯": 1, "sharp": 1, "b": -1, "♭": -1, "flat": -1}.get(accidental, 0)
    return (pitch_class(letter) + shift) % 12


def _triad_quality(suffix: str) -> str | None:
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
) -> tuple[list[_KeyClaim], list[_ChordClaim]]:
    keys: list[_KeyClaim] = []
    chords: list[_ChordClaim] = []
    for m in _NOTE_MODE.finditer(sentence):
        if _negated(sentence, m.start()) or _sentence_initial_article(sentence, m):
            continue
        pc, mode = _note_pc(m.group(1)), _MODE_WORDS[m.group(2).lower()]
        role = _mention_role(sentence, m.start(), m.end(), kind=kind)
        if role == "key":
            keys.append(_KeyClaim(pc, mode, m.group(0), sentence))
        elif role == "chord":
            chords.append(_ChordClaim(pc, "maj" if mode == "major" else "min", m.group(0)))
    return keys, chords


def _symbol_claims(sentence: str) -> tuple[list[_KeyClaim], list[_ChordClaim]]:
    """Chord symbols ("C#m", "G7", "Bbmaj7"; bare letters only inside a chord list). A symbol
    right after a key cue ("in Am") is read as a key."""
    keys: list[_KeyClaim] = []
    chords: list[_ChordClaim] = []
    for m in _CHORD_SYMBOL.finditer(sentence):
        quality = _triad_quality(m.group(2))
        if quality is None or _negated(sentence, m.start()):
            continue
        pc = _note_pc(m.group(1))
        if _KEY_CUE.search(sentence[: m.start()]) and m.group(2) in ("m", "min", "maj"):
            keys.append(_KeyClaim(pc, "minor" if quality == "min" else "major", m.group(0),
                                  sentence))
        else:
            chords.append(_ChordClaim(pc, quality, m.group(0)))
    for m in _CHORD_LIST.finditer(sentence):
        group = 1 if m.group(1) else 2
        if _negated(sentence, m.start(group)):
            continue
        for tok in _SYMBOL_TOKEN.finditer(m.group(group)):
            quality = _triad_quality(tok.group(2) or "")
            if quality is not None:
                chords.append(_ChordClaim(_note_pc(tok.group(1)), quality, tok.group(0)))
    return keys, chords


def _harmony_claims(
    answer: str, *, kind: QAKind | None = None
) -> tuple[list[_KeyClaim], list[_ChordClaim]]:
    """Every key and chord an answer states, sentence by sentence (negated ones dropped)."""
    keys: list[_KeyClaim] = []
    chords: list[_ChordClaim] = []
    for sentence in _sentences(answer):
        k1, c1 = _note_mode_claims(sentence, kind=kind)
        k2, c2 = _symbol_claims(sentence)
        keys += k1 + k2
        chords += c1 + c2
        for m in _KEY_NO_MODE.finditer(sentence):
            if not _negated(sentence, m.start()):
                keys.append(_KeyClaim(_note_pc(m.group(1)), None, m.group(0), sentence))
        for m in _MODE_ONLY.finditer(sentence):
            if not _negated(sentence, m.start()):
                keys.append(_KeyClaim(None, m.group(1).lower(), m.group(0).strip(), sentence))
    return keys, chords


def _key_relation(claim: _KeyClaim, tonic: int, mode: str) -> str:
    """``same``, ``relative`` (C major ↔ A minor) or ``other`` for a claim vs the measured key.

    A mode-only claim of the other mode counts as relative (it names no tonic); a tonic-only
    claim is compared by pitch class, the relative tonic counting as relative.
    """
    relative_tonic = (tonic + 9) % 12 if mode == "major" else (tonic + 3) % 12
    if claim.pc is None:
        return "same" if claim.mode == mode else "relative"
    if claim.mode is None:
        return {tonic: "same", relative_tonic: "relative"}.get(claim.pc, "other")
    if claim.pc == tonic and claim.mode == mode:
        return "same"
    if claim.pc == relative_tonic and claim.mode != mode:
        return "relative"
    return "other"


def _measured_key(features: ClipFeatures | None) -> tuple[int, str] | None:
    if not _usable(features) or features is None or not features.key:
        return None
    try:
        return parse_key(features.key)
    except (KeyError, ValueError):
        return None


def check_key(
    answer: str, *, features: ClipFeatures | None, kind: QAKind | None = None
) -> Finding | None:
    """Every stated key must equal the measured one (enharmonics equal: Db = C#).

    The relative key passes only when the key is unsure (confidence < 0.6) and the sentence
    hedges ("possibly", "or its relative", "suggests"); parallel and other keys never pass.
    """
    claims, _ = _harmony_claims(answer, kind=kind)
    if not claims:
        return None
    measured = _measured_key(features)
    if measured is None or features is None:
        return Finding(GenerateReason.grounding_key,
                       f"answer states a key ({claims[0].text!r}) but no measured key")
    conf = features.key_confidence
    unsure = conf is not None and conf < LOW_KEY_CONFIDENCE
    for claim in claims:
        relation = _key_relation(claim, *measured)
        if relation == "same" or (relation == "relative" and unsure
                                  and _HEDGE.search(claim.sentence)):
            continue
        conf_text = "?" if conf is None else f"{conf:.2f}"
        return Finding(GenerateReason.grounding_key,
                       f"answer says {claim.text!r} ({relation} key); measured {features.key} "
                       f"(confidence {conf_text})")
    return None


def _measured_chords(features: ClipFeatures) -> dict[tuple[int, str], str]:
    """Measured chords as (pitch class, maj/min) → spelled name, for comparison and detail."""
    out: dict[tuple[int, str], str] = {}
    for seg in features.chords:
        try:
            parsed = parse_chord(seg.label)
        except KeyError:
            continue
        if parsed is not None and (quality := _triad_quality(parsed[1])) is not None:
            out.setdefault((parsed[0], quality), seg.spelled)
    return out


def check_chords(
    answer: str, *, features: ClipFeatures | None, kind: QAKind | None = None
) -> Finding | None:
    """Every stated chord (reduced to its triad) must be among the recognised chords."""
    _, claims = _harmony_claims(answer, kind=kind)
    if not claims:
        return None
    if not _usable(features) or features is None:
        return Finding(GenerateReason.grounding_chords,
                       f"answer names a chord ({claims[0].text!r}) but no measured chords")
    measured = _measured_chords(features)
    for claim in claims:
        if (claim.pc, claim.quality) not in measured:
            quality = "major" if claim.quality == "maj" else "minor"
            key = features.key if _measured_key(features) else None
            name = f"{note_name(claim.pc, key=key)} {quality}"
            heard = ", ".join(sorted(set(measured.values()))) or "none"
            return Finding(GenerateReason.grounding_chords,
                           f"answer names {claim.text!r} ({name}); measured chords: {heard}")
    return None


# --------------------------------------------------------------------------- meter

_TIME_SIGNATURE = re.compile(r"(?<![\d/.])(\d{1,2})\s*/\s*(2|4|8|16)(?![\d/])(?!\s+of\b)")
_TRIPLE_WORDS = re.compile(
    r"\bwaltz[- ](?:time|meter|metre|feel|rhythm)\b|\btriple[- ](?:meter|metre|time)\b"
    r"|\bthree\s+beats\s+(?:per|to\s+the|to\s+a|in\s+(?:a|each|every))\s+(?:bar|measure)\b",
    re.I)
_QUADRUPLE_WORDS = re.compile(
    r"\bcommon\s+time\b|\bcut\s+time\b|\b(?:quadruple|duple)[- ](?:meter|metre|time)\b"
    r"|\b(?:four|two)\s+beats\s+(?:per|to\s+the|to\s+a|in\s+(?:a|each|every))\s+(?:bar|measure)\b"
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


def _meter_claims(answer: str) -> list[tuple[int, str, str]]:
    """Stated metres as ``(beats per bar, text, sentence)``, negated ones dropped."""
    claims: list[tuple[int, str, str]] = []
    for sentence in _sentences(answer):
        for m in _TIME_SIGNATURE.finditer(sentence):
            group = _signature_group(int(m.group(1)), int(m.group(2)))
            if group is not None and not _negated(sentence, m.start()):
                claims.append((group, m.group(0), sentence))
        for pattern, group in ((_TRIPLE_WORDS, 3), (_QUADRUPLE_WORDS, 4)):
            claims += [(group, m.group(0), sentence) for m in pattern.finditer(sentence)
                       if not _negated(sentence, m.start())]
    return claims


def check_meter(answer: str, *, features: ClipFeatures | None) -> Finding | None:
    """Stated metre ("3/4", "waltz time", "common time") must match ``features.meter``.

    A hedged other metre passes when the metre confidence is low.
    """
    claims = _meter_claims(answer)
    if not claims:
        return None
    if not _usable(features) or features is None or features.meter is None:
        return Finding(GenerateReason.grounding_meter,
                       f"answer states a meter ({claims[0][1]!r}) but no measured meter")
    measured = 4 if features.meter == 2 else features.meter
    conf = features.meter_confidence
    unsure = conf is not None and conf < LOW_METER_CONFIDENCE
    for group, text, sentence in claims:
        if group == measured or (unsure and _HEDGE.search(sentence)):
            continue
        return Finding(GenerateReason.grounding_meter,
                       f"answer says {text!r} ({group} beats per bar); measured "
                       f"{features.meter} beats per bar")
    return None


# --------------------------------------------------------------------------- labels

_VOCAL_CLAIM = re.compile(
    r"\bvocals?\b(?![- ](?:like|free|less)\b)|\bvocalists?\b|\bsingers?\b|\brappers?\b"
    r"|\brapping\b|\bchoirs?\b|\blyrics?\b|\bsung\b|\bcrooning\b"
    r"|\b(?:female|male|human|child'?s|children'?s|woman'?s|man'?s|boy'?s|girl'?s)\s+voices?\b"
    r"|\b(?:he|she|they|someone|somebody|a\s+(?:wo)?man|a\s+(?:fe)?male|the\s+(?:wo)?man)"
    r"\s+(?:is\s+|are\s+)?sing(?:s|ing)?\b",
    re.I)
_ABSENT_AFTER = re.compile(r"^\s*(?:is|are)\s+(?:absent|missing|not\b)", re.I)
_NO_VOCAL_LABELS = frozenset({"no vocals", "no vocal", "no voice", "no voices", "no singing",
                              "no singer", "instrumental", "no singer(s)"})
_VOCAL_LABEL = re.compile(
    r"\b(?:vocals?|voices?|singers?|singing|choir|chorus|rap|rapping|vocalist|soprano|tenor|"
    r"alto|baritone|opera|female|male)\b")

#: Genre families whose members an answer may name (answer side: strict phrasing so that
#: "classical guitar", "metal chimes" or "a house party" are not read as genres).
_GENRE_CLAIMS: dict[str, re.Pattern[str]] = {
    "classical": re.compile(r"\b(?:classical(?![- ]guitar)|baroque|opera|operatic)\b", re.I),
    "hip_hop": re.compile(r"\b(?:hip[- ]?hop|rap)\b", re.I),
    "metal": re.compile(
        r"\b(?:heavy|death|black|thrash|doom|nu|speed|power|symphonic|progressive|folk)\s+metal\b"
        r"|\bmetalcore\b|\bmetal\s+(?:song|track|music|band|genre|style|tune|anthem)\b", re.I),
    "electronic_dance": re.compile(
        r"\b(?:techno|trance(?!-like)|edm|dubstep|drum\s+(?:and|&|n)\s+bass|"
        r"(?:deep|tech|progressive)\s+house|house\s+(?:music|track|beat))\b", re.I),
    "punk": re.compile(r"\bpunk\b", re.I),
    "reggae": re.compile(r"\breggae\b", re.I),
    "country": re.compile(
        r"\bcountry\s+(?:music|song|track|ballad|style|genre|tune)\b|\bbluegrass\b", re.I),
}
#: Dataset genre labels → family (label side: labels are genre names, so bare words are safe).
_GENRE_LABELS: dict[str, re.Pattern[str]] = {
    "classical": re.compile(r"\b(?:classical|baroque|opera|medieval|romantic|chamber)\b", re.I),
    "hip_hop": re.compile(r"\b(?:hip[- ]?hop|rap|trap)\b", re.I),
    "metal": re.compile(r"\bmetal\b", re.I),
    "electronic_dance": re.compile(
        r"\b(?:techno|trance|house|edm|dubstep|drum\s*(?:and|&|n)\s*bass|dnb|jungle)\b", re.I),
    "punk": re.compile(r"\bpunk\b", re.I),
    "reggae": re.compile(r"\breggae\b", re.I),
    "country": re.compile(r"\b(?:country|bluegrass)\b", re.I),
}
#: Families that cannot describe the same clip (fusions such as rap metal are left out).
_EXCLUSIVE_GENRES = frozenset(frozenset(pair) for pair in (
    ("classical", "hip_hop"), ("classical", "metal"), ("classical", "electronic_dance"),
    ("classical", "punk"), ("classical", "reggae"), ("classical", "country"),
    ("metal", "reggae"),
))
#: A sentence with these words talks about influences or samples, not the clip's genre.
_GENRE_HEDGE = re.compile(
    r"\b(?:influenc\w*|elements?|inspired|fusion|crossover|reminiscent|nod|hints?|touch(?:es)?|"
    r"blend\w*|mix\w*|sampl\w*|unlike|than|tinged|flavou?r\w*|like|meets)\b",
    re.I)


def vocals_absent(clip: Clip) -> bool:
    """True when the labels say "no vocals" and nothing in them says otherwise.

    Why both: crowd tags contradict each other (MTT tags ``no vocals`` next to ``singing``);
    only an uncontradicted absence is evidence enough to reject an answer.
    """
    attr = {v.lower() for v in clip.vocals}
    labels = [s.lower() for s in (*clip.tags, *clip.aspects, *clip.instruments)]
    says_none = attr == {"none"} or any(label in _NO_VOCAL_LABELS for label in labels)
    says_some = bool(attr - {"none"}) or any(
        label not in _NO_VOCAL_LABELS and not label.startswith("no ") and _VOCAL_LABEL.search(label)
        for label in labels)
    return says_none and not says_some


def _claimed(pattern: re.Pattern[str], answer: str) -> str | None:
    """The first non-negated match of ``pattern`` in ``answer`` (None if there is none)."""
    for sentence in _sentences(answer):
        for m in pattern.finditer(sentence):
            if not _negated(sentence, m.start()) and not _ABSENT_AFTER.match(sentence[m.end():]):
                return m.group(0)
    return None


def _check_vocals(answer: str, *, clip: Clip) -> Finding | None:
    if not vocals_absent(clip):
        return None
    claim = _claimed(_VOCAL_CLAIM, answer)
    if claim is None:
        return None
    return Finding(GenerateReason.grounding_labels,
                   f"answer mentions {claim!r} but the dataset labels the clip without vocals")


def _check_absent_instruments(answer: str, *, clip: Clip) -> Finding | None:
    present = [i.lower() for i in clip.instruments]
    for name in sorted({v.lower() for v in clip.absent_instruments}):
        if any(name in p or p in name for p in present):
            continue  # contradictory labels: no evidence either way
        stem = name[:-1] if name.endswith("s") else name
        claim = _claimed(re.compile(rf"\b{re.escape(stem)}s?\b", re.I), answer)
        if claim is not None:
            return Finding(GenerateReason.grounding_labels,
                           f"answer mentions {claim!r} but the dataset labels it absent")
    return None


def _genre_families(labels: list[str] | set[str]) -> set[str]:
    return {fam for label in labels for fam, pat in _GENRE_LABELS.items() if pat.search(label)}


def _check_genres(answer: str, *, clip: Clip) -> Finding | None:
    labelled = _genre_families(clip.genres)
    denied = _genre_families({v.lower() for v in clip.not_genres}) - labelled
    if not labelled and not denied:
        return None
    for sentence in _sentences(answer):
        if _GENRE_HEDGE.search(sentence):
            continue
        for family, pattern in _GENRE_CLAIMS.items():
            m = pattern.search(sentence)
            if m is None or family in labelled or _negated(sentence, m.start()):
                continue
            exclusive = labelled and all(frozenset((family, g)) in _EXCLUSIVE_GENRES
                                         for g in labelled)
            if exclusive or family in denied:
                return Finding(GenerateReason.grounding_labels,
                               f"answer calls it {m.group(0)!r}; dataset genres: "
                               f"{', '.join(clip.genres) or 'none'}"
                               + (f"; not: {', '.join(sorted(denied))}" if denied else ""))
    return None


def check_labels(answer: str, *, clip: Clip) -> Finding | None:
    """Instrument, vocal and genre claims that contradict explicit dataset labels.

    Only explicit evidence counts: vocals labelled absent (uncontradicted), instruments in
    ``Clip.absent_instruments``, genres of a mutually exclusive family or listed in
    ``Clip.not_genres``. Instruments merely missing from the labels pass.
    """
    return (_check_vocals(answer, clip=clip) or _check_absent_instruments(answer, clip=clip)
            or _check_genres(answer, clip=clip))


# --------------------------------------------------------------------------- entry point

def ground_pair(item: QAItem, *, clip: Clip, features: ClipFeatures | None) -> Finding | None:
    """Check one generated pair against the clip's measurements and labels.

    Why: the instruction data must not teach a model facts about the audio that the audio
    contradicts. Checks run in a fixed order (tempo, key, meter, chords, labels) and the first
    failure is returned, so one pair gets one reason code.

    Returns
    -------
    Finding | None
        None when the answer passes every check.
    """
    answer = item.answer
    return (check_tempo(answer, features=features)
            or check_key(answer, features=features, kind=item.kind)
            or check_meter(answer, features=features)
            or check_chords(answer, features=features, kind=item.kind)
            or check_labels(answer, clip=clip))


def count_claims(item: QAItem) -> int:
    """How many tempo, key, chord and meter claims grounding reads in the answer.

    Why: a pair whose answer states something checkable, and passed grounding, is *verified*
    against the measurements; the data card reports that share. Speed words and label claims
    are not counted (they are checked only against explicit contradictions).
    """
    sentences = _sentences(item.answer)
    keys, chords = _harmony_claims(item.answer, kind=item.kind)
    return (sum(len(_bpm_claims(s)) for s in sentences) + len(keys) + len(chords)
            + len(_meter_claims(item.answer)))


def stated_tempi(answer: str) -> list[float]:
    """The single BPM values an answer states (ranges and bounds left out), in order."""
    return [lo for s in _sentences(answer) for lo, hi, _ in _bpm_claims(s) if lo == hi]


def stated_keys(answer: str, *, kind: QAKind | None = None) -> list[tuple[int, str]]:
    """The keys an answer names with tonic and mode, as (pitch class, mode), in order."""
    keys, _ = _harmony_claims(answer, kind=kind)
    return [(k.pc, k.mode) for k in keys if k.pc is not None and k.mode is not None]


def stated_chords(answer: str, *, kind: QAKind | None = None) -> list[tuple[int, str]]:
    """The chords an answer names, as (pitch class, maj/min), in order."""
    _, chords = _harmony_claims(answer, kind=kind)
    return [(c.pc, c.quality) for c in chords]


def stated_meters(answer: str) -> list[int]:
    """Beats per bar of every meter an answer states, in order."""
    return [beats for beats, _, _ in _meter_claims(answer)]
