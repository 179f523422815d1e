"""QA / instruction records: what the LLM must return (sent as JSON Schema for constrained
decoding) and what the generate stage stores, with full provenance."""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class QAKind(StrEnum):
    """What a question is about: a fixed vocabulary so datasets can be sliced and balanced."""

    description = "description"
    tempo = "tempo"
    rhythm = "rhythm"  # meter, beats, downbeats, groove
    key = "key"
    harmony = "harmony"  # chords, progressions, cadences
    instrumentation = "instrumentation"
    genre = "genre"  # genre / style
    mood = "mood"
    structure = "structure"
    reasoning = "reasoning"
    caption = "caption"


class QAItem(BaseModel):
    """One generated question–answer pair, as the LLM writes it."""

    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=8, max_length=400)
    answer: str = Field(min_length=2, max_length=1500)
    kind: QAKind


class QAPairs(BaseModel):
    """Output of open QA families: several pairs per clip."""

    model_config = ConfigDict(extra="forbid")
    pairs: list[QAItem] = Field(min_length=1, max_length=12)


class FixedAnswers(BaseModel):
    """Output of fixed-question families (MU-LLaMA's four description questions): one answer
    per question listed in the template, in order."""

    model_config = ConfigDict(extra="forbid")
    answers: list[Annotated[str, Field(min_length=2, max_length=1500)]] = Field(
        min_length=1, max_length=8)


class Caption(BaseModel):
    """Output of captioning families: one paragraph describing the clip."""

    model_config = ConfigDict(extra="forbid")
    caption: str = Field(min_length=20, max_length=2000)


#: Output models a template may name in its front matter (``output:``).
OUTPUT_MODELS: dict[str, type[BaseModel]] = {
    "QAPairs": QAPairs, "FixedAnswers": FixedAnswers, "Caption": Caption,
}


class Provenance(BaseModel):
    """Where a pair came from: enough to reproduce the request exactly."""

    model_config = ConfigDict(frozen=True)
    template_id: str
    template_version: str
    template_hash: str = Field(description="sha256 of the template file's bytes (first 16 hex).")
    backend: str
    model_id: str
    sampling: str = Field(description="Sampling parameters as canonical JSON.")
    seed: int
    attempt: int = Field(ge=1, description="1 = accepted on the first try.")
    request_id: str = Field(description="Cache key of the request (hash of prompt, schema, model,"
                            " sampling, seed).")
    raw_output: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    created_at: str = Field(description="UTC ISO-8601 time the completion was produced.")


class QARecord(Provenance):
    """One accepted pair in ``WORKDIR/qa/qa-<shard>.parquet``."""

    qa_id: str
    clip_id: str
    source: str
    split: str
    question: str
    answer: str
    kind: QAKind

    @staticmethod
    def make_id(clip_id: str, template_id: str, question: str) -> str:
        """Stable id of a pair: same clip, template and question → same id across runs."""
        key = "\x1f".join((clip_id, template_id, " ".join(question.lower().split())))
        return hashlib.blake2b(key.encode(), digest_size=10).hexdigest()


class GenerateReason(StrEnum):
    """Why a generated pair (or a whole response) was rejected. These codes are API."""

    missing_features = "missing_features"  # the clip lacks fields the template requires
    backend_error = "backend_error"  # the backend failed on this request
    truncated = "truncated"  # finish_reason == length: output cut off
    cut_off = "cut_off"  # an answer closed by the grammar at its maxLength mid-sentence
    invalid_json = "invalid_json"  # not JSON at all
    schema_invalid = "schema_invalid"  # JSON, but not the template's output model
    wrong_count = "wrong_count"  # fixed-question family: answers ≠ questions
    grounding_tempo = "grounding_tempo"
    grounding_key = "grounding_key"
    grounding_meter = "grounding_meter"
    grounding_chords = "grounding_chords"
    grounding_labels = "grounding_labels"  # instruments/genres contradict the dataset labels
    leak = "leak"  # mentions metadata, tags, files, captions, artist/title
    junk = "junk"  # "as an AI", "I cannot hear", banned phrases
    near_duplicate = "near_duplicate"  # same question as another pair of this clip
    kind_mismatch = "kind_mismatch"  # kind not allowed by the template


class QARejected(BaseModel):
    """One rejected pair or response in ``WORKDIR/qa_rejected/qa_rejected-<shard>.parquet``."""

    model_config = ConfigDict(frozen=True)
    clip_id: str
    source: str
    template_id: str
    reason: GenerateReason
    detail: str
    question: str | None = None
    answer: str | None = None
    kind: str | None = None
    attempt: int = 1
    request_id: str | None = None
    raw_output: str | None = None
