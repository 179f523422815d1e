"""Measure the screens + quality gate against pairs labelled keep/drop by hand.

Why: a gate is only worth what its measured precision says. The labelled set holds this
project's own LLM outputs (the embedded SmolLM2 demo run: its accepted and rejected pairs, and
paraphrases), each labelled by a person with a reason, plus the clips they are about. Every
pair is run through :func:`qagen.generate.screen.screen_pair` exactly as the stage runs it;
"kept" means it passed. Precision on keep = kept pairs labelled keep / kept pairs.

The clips are split in two halves by a hash of their id (``dev`` / ``test``), so a rule tuned
while reading one half can be reported on the other.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from qagen.generate.filters import load_banned_phrases
from qagen.generate.grounding import Finding
from qagen.generate.prompts import load_templates
from qagen.generate.screen import screen_pair
from qagen.records import Clip, ClipFeatures
from qagen.records.qa import (
    GateCalibration,
    QAItem,
    QAKind,
    StatedFacts,
)

CALIBRATION_FILE = Path(__file__).with_name("gate_calibration.json")


class LabelledPair(BaseModel):
    """One hand-labelled pair of the calibration set."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    template_id: str
    clip_id: str
    kind: QAKind
    question: str
    answer: str
    origin: str
    label: Literal["keep", "drop"]
    reason: str = Field(description="ok, or why a curator drops it (non_answer, off_topic, …).")
    note: str = ""
    mode: Literal["as_written", "answer_only", "rewrite_question"] = Field(
        default="as_written", description="as_written: an LLM family's own pair; answer_only: a "
        "paraphrase's answer under its source's question (the default stage); "
        "rewrite_question: a paraphrase that reworded the question too (paraphrase_questions).")
    source_question: str | None = Field(default=None, description="Paraphrases: the facts pair "
                                        "it rewrote (what the stage checks it against).")
    source_answer: str | None = None
    source_facts: StatedFacts | None = None


class Verdict(BaseModel):
    """What the screens did with one labelled pair."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    split: str
    mode: str
    label: str
    kept: bool
    reason: str = Field(description="The screen's reason code, or 'kept'.")
    detail: str = ""


def clip_split(clip_id: str) -> str:
    """``dev`` or ``test``: a stable half of the clips."""
    return "dev" if hashlib.blake2b(clip_id.encode(), digest_size=1).digest()[0] % 2 else "test"


def load_labelled(path: Path) -> list[LabelledPair]:
    return [LabelledPair.model_validate_json(line)
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_clips(path: Path) -> dict[str, tuple[Clip, ClipFeatures | None]]:
    out: dict[str, tuple[Clip, ClipFeatures | None]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            features = row.get("features")
            out[row["clip_id"]] = (Clip.model_validate(row["clip"]),
                                   ClipFeatures.model_validate(features) if features else None)
    return out


def judge_pairs(pairs: list[LabelledPair],
                clips: dict[str, tuple[Clip, ClipFeatures | None]]) -> list[Verdict]:
    """Run the screens on every labelled pair, as the generate stage would."""
    banned = load_banned_phrases()
    limits = {t.meta.id: t.answer_limit() for t in load_templates()}
    verdicts = []
    for p in pairs:
        clip, features = clips[p.clip_id]
        item = QAItem.model_construct(question=p.question, answer=p.answer, kind=p.kind)
        found = screen_pair(item, clip=clip, features=features, banned=banned,
                            answer_limit=limits.get(p.template_id), facts=p.source_facts,
                            rewrite=p.source_answer, rewrite_question=p.source_question)
        kept = not isinstance(found, Finding)
        verdicts.append(Verdict(
            id=p.id, split=clip_split(p.clip_id), mode=p.mode, label=p.label, kept=kept,
            reason="kept" if kept else found.reason.value,  # type: ignore[union-attr]
            detail="" if kept else found.detail))  # type: ignore[union-attr]
    return verdicts


def _figures(verdicts: list[Verdict]) -> dict[str, float]:
    kept = [v for v in verdicts if v.kept]
    keep = [v for v in verdicts if v.label == "keep"]
    true_keep = sum(v.label == "keep" for v in kept)
    return {"labelled": len(verdicts), "keep_labelled": len(keep), "kept": len(kept),
            "true_keep": true_keep,
            "precision": round(true_keep / len(kept), 4) if kept else 0.0,
            "recall": round(true_keep / len(keep), 4) if keep else 0.0}


def calibrate(labels: Path, clips: Path) -> tuple[GateCalibration, list[Verdict]]:
    """Precision / recall of the screens on ``keep`` for what the default stage produces
    (LLM families as written, paraphrases answer-only), overall and per half of the clips;
    question-rewriting paraphrases (``paraphrase_questions``) are reported on their own."""
    pairs = load_labelled(labels)
    verdicts = judge_pairs(pairs, load_clips(clips))
    default = [v for v in verdicts if v.mode != "rewrite_question"]
    overall = _figures(default)
    by_split = {s: _figures([v for v in default if v.split == s])
                for s in sorted({v.split for v in default})}
    for mode in ("as_written", "answer_only", "rewrite_question"):
        chosen = [v for v in verdicts if v.mode == mode]
        if chosen:
            by_split[f"mode:{mode}"] = _figures(chosen)
    sha = hashlib.sha256(labels.read_bytes()).hexdigest()[:16]
    return GateCalibration(**overall, by_split=by_split, labels_sha256=sha), verdicts


def disagreements(verdicts: list[Verdict]) -> Counter[str]:
    """(label, screen reason) counts: where the screens and the curator differ."""
    return Counter(f"{v.label} → {v.reason}" for v in verdicts)
