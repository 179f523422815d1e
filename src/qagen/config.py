"""One Pydantic config model per stage. Configs are hashed into resume fingerprints and
cache keys, so every field that changes output belongs here (and nothing secret does)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AugmentConfig(BaseModel):
    """Parameters of the augment stage that change its output."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    sr: int = Field(default=44100, description="Analysis rate: madmom's models expect 44.1 kHz.")
    min_duration_s: float = Field(default=3.0, gt=0, description="Shorter → too_short.")
    max_duration_s: float | None = Field(
        default=None, description="Analyse at most this much of each window (None = all)."
    )
    use_librosa_tempo: bool = Field(default=True, description="Third tempo estimator.")
    chord_min_s: float = Field(default=0.25, ge=0, description="Shorter chords are merged.")
    key_from_chords: bool = Field(default=True, description="Re-rank keys with the chords.")
    tempo_octave_decision: bool = Field(
        default=True, description="Choose the tempo octave by votes (False: TCN's top peak)."
    )


class GenerateConfig(BaseModel):
    """Parameters of the generate stage that change its output (the backend is separate)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    templates: list[str] | None = Field(
        default_factory=lambda: ["paraphrase"],
        description="LLM template ids; None = every family in prompts/. The default rewrites "
        "facts pairs only: free-form families need a large model (configs/full-gpu.yaml).")
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    max_tokens: int | None = Field(
        default=None, ge=16,
        description="Completion budget; None: each template's output length bound, so no "
        "completion is ever truncated (see qagen.generate.bounds).",
    )
    repetition_penalty: float = Field(default=1.05, ge=1.0)
    seed: int = 0
    max_attempts: int = Field(default=3, ge=1, description="Tries per request on parse failure.")
    request_batch: int = Field(
        default=512, ge=1,
        description="Requests outstanding at once: the window of shards sharing one stream.")
    max_clips_per_shard: int | None = Field(
        default=None, ge=1, description="Cap clips per shard (quick demo runs)."
    )
    near_duplicate_threshold: float = Field(default=0.85, gt=0, le=1)
    facts: bool = Field(default=True, description="Write the facts family (no LLM): pairs "
                        "straight from measurements and labels, prompts/facts.yaml.")
    paraphrase_per_clip: int = Field(
        default=2, ge=0, description="Facts pairs per clip a paraphrase family rewrites.")
    paraphrase_questions: bool = Field(
        default=False, description="Reword questions too and keep a rewrite as one more pair "
        "(a large model). Off: reword the answer only; a kept rewrite replaces its template "
        "answer (measured: a 135M model's reworded questions are mostly malformed).")
    gate: bool = Field(default=True, description="Apply the quality gate (qagen.generate.gate).")
    judge: str | None = Field(
        default=None, description="Template id of an LLM judge (e.g. 'judge'); None = off.")
    judge_min_score: float = Field(
        default=3.5, ge=1, le=5, description="Mean rubric score (1–5) a judged pair needs.")
    judge_facts: bool = Field(
        default=False, description="Judge facts pairs too (they are verified by rule anyway).")
