"""MIR accuracy of generated answers: key, tempo, meter, instruments and genre, scored
against the facts each reference pair states.

Why: BLEU / ROUGE / BERTScore reward wording; a model that answers every key question with
"It is in C major." scores well on them. LLark and MU-LLaMA report what matters for music
questions — is the key right, the tempo within 4 %, the meter, the instruments — so every
held-out pair that states such a fact (``QARecord.facts``, written by the facts family) is
scored by reading the same claim out of the model's answer with ``qagen.claims``, the
readers the generate stage grounds pairs with.

Pure functions: answers and facts in, accuracies out. A metric with no scorable pair is None.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from qagen.claims import GENRE_WORDS, INSTRUMENT_WORDS, stated_keys, stated_meters, stated_tempi
from qagen.music import key_name, parse_key
from qagen.records.qa import QAKind

#: Tempo within this relative distance counts as right (MIREX Acc1 uses 4 %).
TEMPO_TOLERANCE = 0.04
#: A looser tolerance, octave errors forgiven: what a listener's "about 120 BPM" means.
TEMPO_LOOSE_TOLERANCE = 0.08
_OCTAVE_FACTORS = (1.0, 2.0, 0.5, 3.0, 1 / 3)
#: The QA kinds that ask about a measured or labelled fact (what MIR accuracy scores).
MIR_KINDS = ("key", "tempo", "rhythm", "instrumentation", "genre")


def _first(values: list[Any]) -> Any:
    return values[0] if values else None


def _words(pattern: Any, text: str) -> set[str]:
    return {m.group(0).lower().rstrip("s") for m in pattern.finditer(text)}


def _f1(predicted: set[str], reference: set[str]) -> float:
    if not predicted and not reference:
        return 1.0
    hits = len(predicted & reference)
    if not hits:
        return 0.0
    precision, recall = hits / len(predicted), hits / len(reference)
    return 2 * precision * recall / (precision + recall)


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


_POLARITY = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)


def polarity(text: str) -> str | None:
    """"yes" or "no" when an answer opens with it, else None."""
    m = _POLARITY.match(text)
    return m.group(1).lower() if m else None


def score_mir(answers: Sequence[str], facts: Sequence[Mapping[str, Any] | None],
              kinds: Sequence[str], *, forms: Sequence[str] | None = None,
              references: Sequence[str] | None = None) -> dict[str, float | None]:
    """MIR metrics over the pairs whose reference states the fact their kind asks about.

    Parameters
    ----------
    answers
        The model's answers, one per pair.
    facts
        Each reference pair's stated facts (``StatedFacts`` as a dict; None or {} when it
        states none).
    kinds
        Each pair's ``QAKind`` value: a key fact is scored on ``key`` pairs, a tempo on
        ``tempo`` pairs, a meter on ``rhythm`` pairs, instruments on ``instrumentation``
        pairs, genres on ``genre`` pairs.
    forms, references
        Each pair's question form and reference answer. A yes/no pair ("Is this music in a
        major key?") is scored on whether the answer's yes or no matches the reference's
        (``mir_yes_no_acc``), not on the fact: "No, it is in a minor key." is right for D minor
        though it names no key. Without ``forms`` every pair counts as open.

    Returns
    -------
    dict
        ``mir_key_acc``, ``mir_key_weighted`` (MIREX: fifth 0.5, relative 0.3, parallel 0.2),
        ``mir_tempo_acc1`` (within 4 %), ``mir_tempo_acc2`` (also at ×2, ×½, ×3, ×⅓),
        ``mir_tempo_octave8`` (within 8 % at any of those),
        ``mir_meter_acc``, ``mir_instruments_f1``, ``mir_genre_f1``, ``mir_yes_no_acc``, and
        ``mir_*_n``: how many pairs each was scored on.
    """
    import mir_eval

    key_acc: list[float] = []
    key_weighted: list[float] = []
    acc1: list[float] = []
    acc2: list[float] = []
    loose: list[float] = []
    meter: list[float] = []
    inst: list[float] = []
    genre: list[float] = []
    yes_no: list[float] = []
    forms = forms if forms is not None else ["open"] * len(answers)
    references = references if references is not None else [""] * len(answers)
    for answer, f, kind, form, ref_text in zip(answers, facts, kinds, forms, references,
                                               strict=True):
        f = f or {}
        if form == "yes_no":
            ref_polarity = polarity(ref_text)
            if ref_polarity is not None and kind in MIR_KINDS:
                yes_no.append(float(polarity(answer) == ref_polarity))
        elif kind == "key" and f.get("key") and not f.get("key_alt"):
            ref = parse_key(f["key"])
            est = _first(stated_keys(answer, kind=QAKind.key))
            key_acc.append(float(est == ref))
            key_weighted.append(0.0 if est is None else float(mir_eval.key.weighted_score(
                key_name(*ref), key_name(*est))))
        elif kind == "tempo" and f.get("tempo_bpm") and not f.get("tempo_alt_bpm"):
            ref_bpm = float(f["tempo_bpm"])
            est_bpm = _first(stated_tempi(answer))
            acc1.append(float(est_bpm is not None
                              and abs(est_bpm / ref_bpm - 1) <= TEMPO_TOLERANCE))
            acc2.append(float(est_bpm is not None and any(
                abs(est_bpm / (ref_bpm * k) - 1) <= TEMPO_TOLERANCE for k in _OCTAVE_FACTORS)))
            loose.append(float(est_bpm is not None and any(
                abs(est_bpm / (ref_bpm * k) - 1) <= TEMPO_LOOSE_TOLERANCE
                for k in _OCTAVE_FACTORS)))
        elif kind == "rhythm" and f.get("meter"):
            meter.append(float(_first(stated_meters(answer)) == int(f["meter"])))
        elif kind == "instrumentation" and f.get("instruments"):
            ref_words = _words(INSTRUMENT_WORDS, " ".join(f["instruments"]))
            if ref_words:
                inst.append(_f1(_words(INSTRUMENT_WORDS, answer), ref_words))
        elif kind == "genre" and f.get("genres"):
            ref_words = _words(GENRE_WORDS, " ".join(f["genres"]))
            if ref_words:
                genre.append(_f1(_words(GENRE_WORDS, answer), ref_words))
    out: dict[str, float | None] = {
        "mir_key_acc": _mean(key_acc), "mir_key_weighted": _mean(key_weighted),
        "mir_tempo_acc1": _mean(acc1), "mir_tempo_acc2": _mean(acc2),
        "mir_tempo_octave8": _mean(loose),
        "mir_meter_acc": _mean(meter), "mir_instruments_f1": _mean(inst),
        "mir_genre_f1": _mean(genre), "mir_yes_no_acc": _mean(yes_no)}
    out.update({"mir_key_n": float(len(key_acc)), "mir_tempo_n": float(len(acc1)),
                "mir_meter_n": float(len(meter)), "mir_instruments_n": float(len(inst)),
                "mir_genre_n": float(len(genre)),
                "mir_yes_no_n": float(len(yes_no))})
    return out
