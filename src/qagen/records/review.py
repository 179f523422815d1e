"""Curator decisions on QA pairs (``qagen review``), appended to ``reviews/reviews-<shard>.jsonl``.

Why typed and append-only: a decision is evidence about the dataset (who kept or dropped which
pair, when, why), so none is ever overwritten; the latest decision on a pair is the one that
counts, and it counts only while the pair still holds the text the reviewer saw
(``content_hash``), so a re-generated pair is never silently accepted or edited.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ReviewDecision(StrEnum):
    """What a reviewer decided. ``edit`` keeps the pair with the reviewer's text."""

    accept = "accept"
    reject = "reject"
    edit = "edit"


def pair_content_hash(*, question: str | None, answer: str | None) -> str:
    """Hash of the text a reviewer judges (question and answer, as generated): 16 hex."""
    key = f"{question or ''}\x1f{answer or ''}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def rejected_pair_id(*, clip_id: str, template_id: str, reason: str, question: str | None,
                     answer: str | None, request_id: str | None, attempt: int) -> str:
    """Stable id of a pair the generate stage rejected (``QARejected`` has no ``qa_id``);
    prefixed ``r`` so it can never equal an accepted pair's id."""
    key = "\x1f".join((clip_id, template_id, reason, question or "", answer or "",
                       request_id or "", str(attempt)))
    return "r" + hashlib.blake2b(key.encode(), digest_size=10).hexdigest()


class ReviewRecord(BaseModel):
    """One decision on one pair, one line of ``reviews/reviews-<shard>.jsonl``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    review_id: str = Field(description="Unique id of this decision (hex).")
    pair_id: str = Field(description="qa_id of an accepted pair, or rejected_pair_id().")
    clip_id: str
    reviewer: str = Field(min_length=1, max_length=100)
    created_at: str = Field(description="UTC ISO-8601 time of the decision.")
    decision: ReviewDecision
    reason: str | None = Field(default=None, max_length=500,
                               description="Why rejected (required for reject).")
    question: str | None = Field(default=None, max_length=2000,
                                 description="Edited question (edit only).")
    answer: str | None = Field(default=None, max_length=4000,
                               description="Edited answer (edit only).")
    content_hash: str = Field(description="pair_content_hash of the pair as the reviewer saw it.")
    base_id: str | None = Field(default=None, description="review_id of the latest decision on "
                                "this pair the reviewer saw (None: none).")

    @model_validator(mode="after")
    def _decision_fields(self) -> ReviewRecord:
        if self.decision is ReviewDecision.reject and not (self.reason or "").strip():
            raise ValueError("a reject needs a reason")
        if self.decision is ReviewDecision.edit:
            if not (self.question or "").strip() or not (self.answer or "").strip():
                raise ValueError("an edit needs the edited question and answer")
        elif self.question is not None or self.answer is not None:
            raise ValueError(f"only an edit carries text, not a {self.decision.value}")
        return self
