"""Grounding: does a generated answer agree with what was measured and labelled?

Why: an LLM writing about music it cannot hear fills gaps with plausible stock facts (120 BPM,
C major, 4/4, "a female vocalist"). Every tempo, key, meter and chord an answer states is parsed
and compared with the clip's ``ClipFeatures``; instrument and genre claims are compared with the
dataset's labels only where the labels say something explicit (vocals absent, "no drums",
mutually exclusive genre families), because a missing label does not mean absence.

The claims are read by ``qagen.claims`` (shared with the evaluation of trained models), which
is deliberately conservative: a mention that cannot be read with confidence (an ambiguous
"A major" at the start of a sentence, a diminished chord, 6/8) passes, and negated mentions
("not 60 BPM", "without vocals") are skipped. Claims are looked for in the answer only: a
question may legitimately name alternatives ("Is it in 3/4 or 4/4?").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qagen.claims import (
    FAST_CLAIM,
    HEDGE,
    SLOW_CLAIM,
    KeyClaim,
    bpm_claims,
    harmony_claims,
    meter_claims,
    negated,
    split_sentences,
    triad_quality,
)
from qagen.music import note_name, parse_chord, parse_key
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


def _usable(features: ClipFeatures | None) -> bool:
    return features is not None and features.status == FeatureStatus.ok


# --------------------------------------------------------------------------- tempo


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
    sentences = split_sentences(answer)
    claims = [c for s in sentences for c in bpm_claims(s)]
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
        for pattern, wrong in ((FAST_CLAIM, tempo < FAST_CLAIM_MIN_BPM),
                               (SLOW_CLAIM, tempo > SLOW_CLAIM_MAX_BPM)):
            m = pattern.search(sentence)
            if wrong and m and not negated(sentence, m.start()):
                return Finding(GenerateReason.grounding_tempo,
                               f"answer says {m.group(0)!r}; measured {tempo:.1f} BPM")
    return None


# --------------------------------------------------------------------------- key and chords


def _key_relation(claim: KeyClaim, tonic: int, mode: str) -> str:
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
    claims, _ = harmony_claims(answer, kind=kind)
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
                                  and HEDGE.search(claim.sentence)):
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
        if parsed is not None and (quality := triad_quality(parsed[1])) is not None:
            out.setdefault((parsed[0], quality), seg.spelled)
    return out


def check_chords(
    answer: str, *, features: ClipFeatures | None, kind: QAKind | None = None
) -> Finding | None:
    """Every stated chord (reduced to its triad) must be among the recognised chords."""
    _, claims = harmony_claims(answer, kind=kind)
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


def check_meter(answer: str, *, features: ClipFeatures | None) -> Finding | None:
    """Stated metre ("3/4", "waltz time", "common time") must match ``features.meter``.

    A hedged other metre passes when the metre confidence is low.
    """
    claims = meter_claims(answer)
    if not claims:
        return None
    if not _usable(features) or features is None or features.meter is None:
        return Finding(GenerateReason.grounding_meter,
                       f"answer states a meter ({claims[0][1]!r}) but no measured meter")
    measured = 4 if features.meter == 2 else features.meter
    conf = features.meter_confidence
    unsure = conf is not None and conf < LOW_METER_CONFIDENCE
    for group, text, sentence in claims:
        if group == measured or (unsure and HEDGE.search(sentence)):
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
    for sentence in split_sentences(answer):
        for m in pattern.finditer(sentence):
            if not negated(sentence, m.start()) and not _ABSENT_AFTER.match(sentence[m.end():]):
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
    for sentence in split_sentences(answer):
        if _GENRE_HEDGE.search(sentence):
            continue
        for family, pattern in _GENRE_CLAIMS.items():
            m = pattern.search(sentence)
            if m is None or family in labelled or negated(sentence, m.start()):
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
    sentences = split_sentences(item.answer)
    keys, chords = harmony_claims(item.answer, kind=item.kind)
    return (sum(len(bpm_claims(s)) for s in sentences) + len(keys) + len(chords)
            + len(meter_claims(item.answer)))


