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
    dynamics = "dynamics"  # loudness
    duration = "duration"


class QuestionForm(StrEnum):
    """How a question asks: open, yes/no, or multiple choice (LLark / MuChoMusic style)."""

    open = "open"
    yes_no = "yes_no"
    multiple_choice = "multiple_choice"


class StatedFacts(BaseModel):
    """The facts a pair states, structured, so any claim can be checked later.

    Facts pairs fill it by construction; a paraphrase inherits its source pair's facts. Keys
    and chords are stored as written (``A minor``; Harte ``A#:maj``), tempos in BPM.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    tempo_bpm: float | None = None
    tempo_alt_bpm: float | None = Field(
        default=None, description="The other octave named as an alternative (half/double time).")
    meter: int | None = Field(default=None, description="Beats per bar.")
    key: str | None = None
    key_alt: str | None = Field(default=None, description="A hedged alternative key.")
    chords: list[str] = Field(default_factory=list, description="Harte labels stated.")
    loudness_lufs: float | None = None
    duration_s: float | None = None
    instruments: list[str] = Field(default_factory=list)
    genres: list[str] = Field(default_factory=list)
    moods: list[str] = Field(default_factory=list)
    vocals: bool | None = None
    ensemble: str | None = None
    aspects: list[str] = Field(default_factory=list)
    caption: bool = Field(default=False, description="The answer is the human caption.")

    def is_empty(self) -> bool:
        return self == StatedFacts()


class JudgeScores(BaseModel):
    """An LLM judge's rubric scores of one pair (1–5 each), as the judge must return them."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    relevance: int = Field(ge=1, le=5, description="Does the answer answer the question?")
    faithfulness: int = Field(ge=1, le=5, description="Does it agree with the clip's facts?")
    specificity: int = Field(ge=1, le=5, description="Is it specific and checkable?")
    fluency: int = Field(ge=1, le=5, description="Is it fluent, natural English?")

    @property
    def mean(self) -> float:
        return (self.relevance + self.faithfulness + self.specificity + self.fluency) / 4


class Paraphrase(BaseModel):
    """Output of paraphrase families: one rewritten question–answer pair."""

    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=8, max_length=400)
    answer: str = Field(min_length=2, max_length=1500)


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
    "Paraphrase": Paraphrase, "JudgeScores": JudgeScores,
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
    created_at: str | None = Field(
        default=None, description="UTC ISO-8601 time the completion was produced (None for "
        "deterministic facts pairs, so a rebuild is byte-identical).")


class QARecord(Provenance):
    """One accepted pair in ``WORKDIR/qa/qa-<shard>.parquet``."""

    qa_id: str
    clip_id: str
    source: str
    split: str
    question: str
    answer: str
    kind: QAKind
    question_form: QuestionForm = QuestionForm.open
    topic: str | None = Field(default=None, description="Facts topic (facts and paraphrases).")
    facts: StatedFacts = Field(default_factory=StatedFacts)
    derived_from: str | None = Field(
        default=None, description="qa_id of the facts pair a paraphrase rewrites.")
    claims_checked: int = Field(
        default=0, description="Tempo/key/meter/chord claims grounding read and verified.")
    verified: bool = Field(
        default=False, description="A claim grounding verified, or stated facts re-checked "
        "against the clip's measurements and labels (qagen.generate.facts.verify_facts).")
    judge: JudgeScores | None = None
    judge_model: str | None = None

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
    # the quality gate (qagen.generate.gate): pairs a curator would not keep
    gate_non_answer = "gate_non_answer"  # does not answer, or asks back
    gate_off_topic = "gate_off_topic"  # drifts off the music (release, sales, stories, visuals)
    gate_format = "gate_format"  # list markers, JSON or template debris in the text
    gate_language = "gate_language"  # not English
    gate_vague = "gate_vague"  # nothing checkable or specific about this clip
    gate_unsupported = "gate_unsupported"  # names an instrument/genre nothing known supports
    gate_inconsistent = "gate_inconsistent"  # a yes/no that contradicts the value it states
    facts_lost = "facts_lost"  # a paraphrase dropped or changed a fact of its source pair
    judge_low = "judge_low"  # the LLM judge scored it below the threshold


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


class GateCalibration(BaseModel):
    """The gate's precision and recall on the hand-labelled set (``qagen gate-eval``)."""

    model_config = ConfigDict(extra="forbid")
    labelled: int
    keep_labelled: int
    kept: int
    true_keep: int
    precision: float = Field(description="Share of gate-kept pairs labelled keep.")
    recall: float = Field(description="Share of keep-labelled pairs the gate kept.")
    by_split: dict[str, dict[str, float]] = Field(default_factory=dict)
    labels_sha256: str = ""
