"""Every screen a pair passes, in one pure function: the stage and the gate calibration
(``qagen gate-eval``) run exactly the same checks.

Order: kind allowed by the family, cut-off, leak, junk, kind vocabulary, grounding against
the measurements and labels, the facts a rewrite must keep, the quality gate. The first
failure is the pair's one reason code. Near-duplicates need the clip's other pairs and are
the stage's business.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qagen.claims import (
    INSTRUMENT_WORDS,
    stated_chords,
    stated_keys,
    stated_meters,
    stated_tempi,
)
from qagen.generate.facts import clip_words, loudness_word
from qagen.generate.filters import check_cut_off, check_junk, check_kind, check_leak
from qagen.generate.gate import check_quality
from qagen.generate.grounding import Finding, count_claims, ground_pair
from qagen.records import Clip, ClipFeatures
from qagen.records.qa import GenerateReason, QAItem, QAKind, StatedFacts

#: Words that set what a yes/no or either/or question asks ("a *minor* key?", "*faster* than").
_POLARITY = re.compile(r"\b(major|minor|faster|slower|more|less|above|below|over|under|loud|"
                       r"quiet|three|four|3/4|4/4)\b", re.I)
_SAME = {"faster": "more", "above": "more", "over": "more", "slower": "less", "below": "less",
         "under": "less", "three": "3/4", "four": "4/4"}
#: Words that weaken a stated fact ("No, it's *primarily* instrumental").
_HEDGES = re.compile(r"\b(primarily|mostly|mainly|largely|partly|partially|somewhat|maybe|"
                     r"perhaps|might|possibly|probably|likely|seems?|sort of|kind of)\b", re.I)
_YES_NO = re.compile(r"^\W*(yes|no)\b", re.I)
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")


def facts_kept(facts: StatedFacts, item: QAItem, *, source_answer: str | None = None,
               source_question: str | None = None) -> str | None:
    """What a rewrite lost of its source pair's facts, or added (None: it kept them all and
    added none).

    Grounding already rejects a *changed* tempo, key, meter or chord; this catches one that
    was dropped (each stated number, key, chord, label and loudness word must still appear)
    and one that was added: a number, or an instrument, the source answer did not state.
    """
    answer = item.answer
    low = answer.lower()
    if source_question is not None:
        asked = {_SAME.get(w.lower(), w.lower()) for w in _POLARITY.findall(source_question)}
        asks = {_SAME.get(w.lower(), w.lower()) for w in _POLARITY.findall(item.question)}
        if asked != asks:
            return (f"the question changed what it asks: {sorted(asked)} → {sorted(asks)}")
    if source_answer is not None:
        said_yes = _YES_NO.match(source_answer)
        says = _YES_NO.match(answer)
        if said_yes and (says is None or says.group(1).lower() != said_yes.group(1).lower()):
            return (f"the source answers {said_yes.group(1)!r}, the rewrite "
                    f"{says.group(1) if says else 'neither yes nor no'!r}")
        hedges = {w.lower() for w in _HEDGES.findall(answer)} - {
            w.lower() for w in _HEDGES.findall(source_answer)}
        if hedges:
            return f"the rewrite weakens its facts with {sorted(hedges)}"
        new = set(_NUMBER.findall(answer)) - set(_NUMBER.findall(source_answer)) - set(
            _NUMBER.findall(source_question or ""))
        if new:
            return f"the rewrite adds numbers the source did not state: {sorted(new)}"
        said = {m.lower() for m in INSTRUMENT_WORDS.findall(source_answer)}
        added = {m.lower() for m in INSTRUMENT_WORDS.findall(answer)} - said
        if added and not any(a.rstrip("s") in w or w in a for a in added for w in said):
            return f"the rewrite adds instruments: {sorted(added)}"
    if facts.loudness_lufs is not None and loudness_word(facts.loudness_lufs) not in low:
        return f"the loudness ({loudness_word(facts.loudness_lufs)}) is no longer stated"
    if facts.duration_s is not None and f"{facts.duration_s:.0f}" not in answer:
        return f"the duration ({facts.duration_s:.0f} s) is no longer stated"
    stated = stated_tempi(answer)
    for bpm in (facts.tempo_bpm, facts.tempo_alt_bpm):
        if bpm is not None and not any(abs(x / bpm - 1) <= 0.04 for x in stated):
            return f"the tempo {bpm:.0f} BPM is no longer stated"
    if source_answer is not None and "lufs" in source_answer.lower() and "lufs" not in low:
        return "the loudness unit (LUFS) is no longer stated"
    if facts.key is not None and not stated_keys(answer, kind=QAKind.key):
        return f"the key {facts.key} is no longer stated"
    if facts.meter is not None and item.kind is QAKind.rhythm and not stated_meters(answer):
        return f"the meter ({facts.meter} beats per bar) is no longer stated"
    if facts.chords:
        chords = stated_chords(answer, kind=QAKind.harmony)
        if len(chords) < len(facts.chords):
            return f"{len(facts.chords)} chords stated, {len(chords)} kept"
    for name in (*facts.instruments, *facts.genres, *facts.moods):
        if name.lower().split()[-1] not in low:
            return f"{name!r} is no longer stated"
    if facts.vocals is not None:
        says_no = any(w in low for w in ("no vocal", "instrumental", "nobody", "no one",
                                         "no singing", "without vocals", "not sung"))
        if says_no == facts.vocals:
            return "the answer about vocals changed"
    return None


def screen_pair(item: QAItem, *, clip: Clip, features: ClipFeatures | None,
                banned: Sequence[str], kinds: Sequence[QAKind] | None = None,
                answer_limit: int | None = None, facts: StatedFacts | None = None,
                rewrite: str | None = None, rewrite_question: str | None = None,
                gate: bool = True) -> Finding | int:
    """Run every screen on one pair.

    Parameters
    ----------
    kinds
        Kinds the family may write (None: any).
    answer_limit
        The family's answer maxLength (an answer that long and unfinished was cut off).
    facts
        Facts the pair states (facts pairs) or must keep (a paraphrase).
    rewrite, rewrite_question
        For a paraphrase: the answer and question it rewrites (it must keep its facts, add
        none, and ask the same thing).

    Returns
    -------
    Finding | int
        The first failure, or the number of tempo/key/chord/meter claims grounding verified.
    """
    if kinds is not None and item.kind not in kinds:
        return Finding(GenerateReason.kind_mismatch,
                       f"kind {item.kind.value!r} not among {[k.value for k in kinds]}")
    checks = [check_cut_off(item, limit=answer_limit) if answer_limit else None,
              check_leak(item, clip=clip), check_junk(item, banned=banned),
              check_kind(item), ground_pair(item, clip=clip, features=features)]
    for check in checks:
        if check is not None:
            return check
    claims = count_claims(item)
    if rewrite is not None and facts is not None and (
            lost := facts_kept(facts, item, source_answer=rewrite,
                               source_question=rewrite_question)) is not None:
        return Finding(GenerateReason.facts_lost, lost)
    if gate:
        quality = check_quality(item, clip_words=clip_words(clip, features), claims=claims,
                                facts=facts)
        if quality is not None:
            return quality
    return claims
