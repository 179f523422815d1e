"""The quality section of the data card and the run report: can a reader trust these pairs?

Why: counts say how much data there is, not whether it is worth training on. A reader of the
card should decide in a minute: which kinds and question forms, how many answers state a
checkable claim and how many of those were verified against the measurements, what the gate
and the judge dropped and why, how long and how varied the answers are, how often they repeat,
and twenty random accepted pairs exactly as they are.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import re
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from qagen.records.qa import GateCalibration
from qagen.stats import read_columns
from qagen.workdir import WorkDir

#: Rejection reasons that belong to the quality gate (and the paraphrase fact check).
GATE_PREFIX = "gate_"
GATE_EXTRA = ("facts_lost",)
JUDGE_REASON = "judge_low"
_TOKEN = re.compile(r"[a-z0-9#']+")


class SamplePair(BaseModel):
    """One accepted pair shown as it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    qa_id: str
    kind: str
    question_form: str
    template_id: str
    question: str
    answer: str


class QualityStats(BaseModel):
    """Quality figures of a work directory's accepted and rejected pairs."""

    model_config = ConfigDict(extra="forbid")
    pairs: int = 0
    by_kind: dict[str, int] = Field(default_factory=dict)
    by_form: dict[str, int] = Field(default_factory=dict)
    by_template: dict[str, int] = Field(default_factory=dict)
    checkable: int = Field(default=0, description="Pairs stating facts or a parsed claim.")
    verified: int = Field(default=0, description="Pairs whose claims were verified.")
    gate_rejections: dict[str, int] = Field(default_factory=dict)
    judge_rejections: int = 0
    judged: int = 0
    judge_mean: float | None = None
    answer_words_mean: float = 0.0
    answer_words_median: float = 0.0
    answer_words_max: int = 0
    distinct_1: float = Field(default=0.0, description="Distinct unigrams / unigrams (answers).")
    distinct_2: float = Field(default=0.0, description="Distinct bigrams / bigrams (answers).")
    near_duplicates_rejected: int = 0
    repeated_answer_rate: float = Field(
        default=0.0, description="Share of accepted answers identical to another accepted one.")
    sample: list[SamplePair] = Field(default_factory=list)
    gate: GateCalibration | None = None

    def share(self, n: int) -> float:
        return n / self.pairs if self.pairs else 0.0


def _rows(path: Path, columns: list[str]) -> list[dict[str, Any]]:
    data = read_columns(path, columns)
    return [dict(zip(columns, values, strict=True)) for values in zip(*data.values(), strict=True)]


def _count_answer(answer: str, word_counts: Counter[int], grams_total: dict[int, int],
                  grams_seen: dict[int, set[int]], normalised: Counter[int]) -> None:
    """Add one answer to the streaming statistics (hashes stand for n-grams and answers)."""
    word_counts[len(answer.split())] += 1
    words = _TOKEN.findall(answer.lower())
    for n, seen in grams_seen.items():
        grams = [hash(tuple(words[i:i + n])) for i in range(len(words) - n + 1)]
        grams_total[n] += len(grams)
        seen.update(grams)
    normalised[hash(" ".join(words))] += 1


def _median(counts: Counter[int]) -> float:
    """The median of the values a histogram counts (as ``statistics.median`` would give)."""
    total = sum(counts.values())
    values = sorted(counts)
    def nth(k: int) -> int:  # the k-th smallest value, 0-based
        for v in values:
            if k < counts[v]:
                return v
            k -= counts[v]
        raise IndexError(k)
    if total % 2:
        return float(nth(total // 2))
    return (nth(total // 2 - 1) + nth(total // 2)) / 2


def load_gate_calibration() -> GateCalibration | None:
    """The measured gate figures shipped with the package (None if absent)."""
    try:
        text = resources.files("qagen.generate").joinpath("gate_calibration.json").read_text(
            encoding="utf-8")
    except FileNotFoundError:
        return None
    return GateCalibration.model_validate_json(text)


def collect_quality(work: WorkDir, *, samples: int = 20, seed: int = 0) -> QualityStats:
    """Quality figures of ``work`` (accepted pairs in ``qa/``, rejections in ``qa_rejected/``).

    The sample is the ``samples`` accepted pairs with the smallest seeded hash of their id:
    random, yet the same for the same pairs.
    """
    q = QualityStats(gate=load_gate_calibration())
    kinds: Counter[str] = Counter()
    forms: Counter[str] = Counter()
    templates: Counter[str] = Counter()
    # Streaming answer statistics: word-count histogram, n-gram totals and distinct n-gram
    # hashes, normalised-answer hashes — memory grows with distinct content, not with pairs.
    word_counts: Counter[int] = Counter()
    grams_total = {1: 0, 2: 0}
    grams_seen: dict[int, set[int]] = {1: set(), 2: set()}
    normalised: Counter[int] = Counter()
    judge_sum, judge_n = 0.0, 0
    ranked: list[tuple[bytes, str, SamplePair]] = []
    cols = ["qa_id", "kind", "question_form", "template_id", "question", "answer", "facts",
            "claims_checked", "verified", "judge"]
    for path in sorted(work.qa_dir.glob("qa-*.parquet")):
        for row in _rows(path, cols):
            q.pairs += 1
            kinds[row["kind"]] += 1
            forms[row["question_form"] or "open"] += 1
            templates[row["template_id"]] += 1
            _count_answer(row["answer"], word_counts, grams_total, grams_seen, normalised)
            facts = row["facts"] or {}
            stated = any(v not in (None, [], False) for v in facts.values())
            q.checkable += bool(stated or (row["claims_checked"] or 0) > 0)
            q.verified += bool(row["verified"])
            if row["judge"]:
                scores = [v for v in row["judge"].values() if isinstance(v, int | float)]
                judge_sum += sum(scores) / len(scores)
                judge_n += 1
            sample = SamplePair(qa_id=row["qa_id"], kind=row["kind"],
                                question_form=row["question_form"] or "open",
                                template_id=row["template_id"], question=row["question"],
                                answer=row["answer"])
            key = hashlib.blake2b(f"{seed}\x1f{row['qa_id']}".encode(), digest_size=8).digest()
            # A bounded max-heap (keys negated) of the ``samples`` smallest keys so far.
            entry = (bytes(255 - b for b in key), sample.qa_id, sample)
            if len(ranked) < samples:
                heapq.heappush(ranked, entry)
            elif samples:
                heapq.heappushpop(ranked, entry)
    q.by_kind, q.by_form = dict(kinds.most_common()), dict(forms.most_common())
    q.by_template = dict(templates.most_common())
    q.sample = [s for _, _, s in sorted(ranked, reverse=True)]
    q.judged = judge_n
    q.judge_mean = round(judge_sum / judge_n, 3) if judge_n else None
    n_answers = sum(word_counts.values())
    if n_answers:
        q.answer_words_mean = round(sum(w * n for w, n in word_counts.items()) / n_answers, 2)
        q.answer_words_median = _median(word_counts)
        q.answer_words_max = max(word_counts)
        for n in (1, 2):
            value = len(grams_seen[n]) / grams_total[n] if grams_total[n] else 0.0
            setattr(q, f"distinct_{n}", round(value, 4))
        repeated = sum(n for n in normalised.values() if n > 1)
        q.repeated_answer_rate = round(repeated / n_answers, 4)
    gate: Counter[str] = Counter()
    for path in sorted(work.qa_rejected_dir.glob("*.parquet")):
        for row in _rows(path, ["reason"]):
            reason = row["reason"]
            if reason.startswith(GATE_PREFIX) or reason in GATE_EXTRA:
                gate[reason] += 1
            elif reason == JUDGE_REASON:
                q.judge_rejections += 1
            elif reason == "near_duplicate":
                q.near_duplicates_rejected += 1
    q.gate_rejections = dict(gate.most_common())
    return q


def quality_rows(q: QualityStats) -> list[list[Any]]:
    """Key figures as (figure, value) rows, for the run report and the card."""
    rows: list[list[Any]] = [
        ["accepted pairs", q.pairs],
        ["with a checkable claim", f"{q.checkable} ({q.share(q.checkable):.1%})"],
        ["verified against measurements / labels", f"{q.verified} ({q.share(q.verified):.1%})"],
        ["answer words: mean / median / max",
         f"{q.answer_words_mean} / {q.answer_words_median} / {q.answer_words_max}"],
        ["distinct-1 / distinct-2 (answers)", f"{q.distinct_1} / {q.distinct_2}"],
        ["answers repeating another answer", f"{q.repeated_answer_rate:.1%}"],
        ["near-duplicate questions rejected", q.near_duplicates_rejected],
        ["gate rejections", sum(q.gate_rejections.values())],
        ["judged / judge mean / judge rejections",
         f"{q.judged} / {q.judge_mean if q.judge_mean is not None else '—'} / "
         f"{q.judge_rejections}"],
    ]
    if q.gate is not None:
        rows.append(["gate precision / recall on 'keep' (hand-labelled set of "
                     f"{q.gate.labelled})", f"{q.gate.precision:.3f} / {q.gate.recall:.3f}"])
    return rows


def quality_json(q: QualityStats) -> str:
    return json.dumps(q.model_dump(mode="json"), indent=1, sort_keys=True)
