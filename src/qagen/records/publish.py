"""Rows of the published dataset: flat, Hub-friendly views of clips, features and QA pairs.

Why separate models: the work-dir records keep everything a stage needs (raw output, estimator
trails); a published row keeps what a dataset user reads, flattened to scalars and lists so
the Hub viewer, pandas and ``datasets`` show it without custom code. Nested data (chord
segments, source extras, extractor versions) travels as JSON text.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class PublishReason(StrEnum):
    """Why the publish stage left an item out. These codes are API: reports show them."""

    orphan_pair = "orphan_pair"  # a pair whose clip is not in its clip shard
    reviewer_rejected = "reviewer_rejected"  # a curator rejected it (qagen review)
    not_reviewed = "not_reviewed"  # reviewed_only: no curator accepted or edited it
    internal_error = "internal_error"  # a bug: exception type and message in detail


class PublishedClip(BaseModel):
    """One row of the ``clips`` config: a clip, its labels and its measured features."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    clip_id: str
    source: str
    source_id: str
    split: str = Field(description="Hub split name: train, validation, test or unsplit.")
    audio_path: str = Field(description="Audio file relative to the source dataset's root.")
    start_s: float
    end_s: float | None = None
    subset: str | None = None
    license: str | None = None
    caption: str | None = None
    aspects: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    genres: list[str] = Field(default_factory=list)
    instruments: list[str] = Field(default_factory=list)
    moods: list[str] = Field(default_factory=list)
    composer: str | None = None
    composition: str | None = None
    ensemble: str | None = None
    title: str | None = Field(default=None, description="For attribution only.")
    artist: str | None = Field(default=None, description="For attribution only.")
    attributes: dict[str, str] = Field(default_factory=dict)

    feature_status: str | None = Field(default=None, description="None: not measured.")
    duration_s: float | None = None
    loudness_lufs: float | None = None
    peak_dbfs: float | None = None
    tempo_bpm: float | None = None
    tempo_confidence: float | None = None
    tempo_agreement: str | None = None
    meter: int | None = None
    key: str | None = None
    key_confidence: float | None = None
    chords: list[str] = Field(default_factory=list, description="Harte labels, in time order.")
    chords_json: str | None = Field(default=None, description="Segments with times, as JSON.")
    beats: list[float] = Field(default_factory=list)
    downbeats: list[float] = Field(default_factory=list)
    extractor_versions: dict[str, str] = Field(default_factory=dict)


class PublishedQA(BaseModel):
    """One row of the ``qa`` config: a pair, its provenance, its clip's labels and features."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    qa_id: str
    clip_id: str
    source: str
    split: str
    question: str
    answer: str
    kind: str
    question_form: str = Field(default="open", description="open, yes_no or multiple_choice.")
    topic: str | None = Field(default=None, description="Facts topic (facts family and "
                              "paraphrases), e.g. tempo_open.")
    facts_json: str | None = Field(default=None, description="The facts the answer states, as "
                                   "JSON (tempo_bpm, key, meter, chords, instruments, …).")
    verified: bool = Field(default=False, description="Its claims were checked against the "
                           "measurements and labels and hold.")
    derived_from: str | None = Field(default=None, description="qa_id a paraphrase rewrites.")
    judge_mean: float | None = Field(default=None, description="LLM judge's mean score (1–5).")
    reviewed: bool = Field(default=False, description="A curator accepted or edited this pair "
                           "(qagen review) and it has not changed since.")
    edited: bool = Field(default=False, description="The question/answer are a curator's edit.")
    template_id: str
    template_version: str
    template_hash: str
    backend: str
    model_id: str
    sampling: str = Field(description="Sampling parameters as canonical JSON.")
    seed: int
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    start_s: float
    end_s: float | None = None
    license: str | None = None
    caption: str | None = None
    tags: list[str] = Field(default_factory=list)
    genres: list[str] = Field(default_factory=list)
    instruments: list[str] = Field(default_factory=list)
    moods: list[str] = Field(default_factory=list)

    duration_s: float | None = None
    loudness_lufs: float | None = None
    tempo_bpm: float | None = None
    tempo_agreement: str | None = None
    meter: int | None = None
    key: str | None = None
    chords: list[str] = Field(default_factory=list)
