"""Records of the train and evaluate stages: loss-log lines, predictions, run reports."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class LossLogEntry(BaseModel):
    """One line of ``WORKDIR/train/<run>/loss.jsonl``: the loss of one optimizer step."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    step: int = Field(ge=1, description="Optimizer step (1-based) this loss belongs to.")
    loss: float = Field(description="Mean answer-token cross-entropy over the step's batches.")
    lr: float = Field(description="Learning rate used by this step.")


class HeldOutPair(BaseModel):
    """The held-out pair an answer is for (the fields predictions and answers share)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    qa_id: str
    clip_id: str
    kind: str
    question: str
    reference: str


class Prediction(HeldOutPair):
    """One line of ``WORKDIR/train/<run>/eval/predictions.jsonl``."""

    prediction: str


class EvalAnswer(HeldOutPair):
    """One held-out pair answered in one evaluation (``train/<run>/eval/answers-<shard>.parquet``):
    the adapter's answer, the LM's alone and the adapter's fed another clip's audio."""

    facts: dict[str, Any] | None = Field(
        default=None, description="What the reference states (for the MIR scores).")
    question_form: str = Field(default="open", description="open, yes_no or multiple_choice: "
                               "a yes/no answer is scored on its yes or no, not on a fact.")
    prediction: str
    baseline: str | None = Field(default=None, description="The LM alone (no audio).")
    shuffled: str | None = Field(default=None, description="The adapter fed shuffled_clip_id's "
                                 "audio (the ablation).")
    shuffled_clip_id: str | None = None


class DataCounts(BaseModel):
    """What the QA pairs turned into: examples per side, and what was skipped and why."""

    model_config = ConfigDict(extra="forbid")
    pairs: int = 0
    train_pairs: int = 0
    eval_pairs: int = 0
    train_clips: int = 0
    eval_clips: int = 0
    split_rule: str = Field(default="", description="'dataset' (the records' own splits) or"
                                                    " 'hash' (clip-id hash; a split was empty).")
    skipped: dict[str, int] = Field(default_factory=dict, description="Pairs left out, by reason.")


class TrainReport(BaseModel):
    """Summary of one train run, written to ``WORKDIR/train/<run>/report.json``."""

    model_config = ConfigDict(extra="forbid")
    run: str
    arch: str
    lm: str
    encoder: str
    encoder_random_init: bool = Field(
        default=False, description="The embeddings came from random weights (no music in them).")
    fingerprint: str
    steps: int
    resumed_from_step: int = 0
    reused: bool = Field(default=False, description="True when a finished run was returned.")
    data: DataCounts
    trainable_params: int
    frozen_params: int
    first_loss: float | None = Field(default=None, description="Loss of step 1.")
    last_loss: float | None = Field(default=None, description="Mean logged loss over the last"
                                                              " fifth of the steps.")
    train_loss_before: float | None = Field(
        default=None, description="Answer-token loss over the whole training set, untrained "
        "adapter (= the LM alone): the noise-free start of the curve.")
    train_loss_after: float | None = Field(default=None, description="The same, trained.")
    heldout_loss_before: float | None = Field(
        default=None, description="Answer-token loss over the held-out pairs, untrained.")
    heldout_loss_after: float | None = Field(default=None, description="The same, trained.")
    seconds: float = 0.0
    seconds_per_step: float | None = None
    device: str = "cpu"
    precision: str = "fp32"


class EvalReport(BaseModel):
    """Summary of one evaluation, written to ``WORKDIR/train/<run>/eval/metrics.json``."""

    model_config = ConfigDict(extra="forbid")
    run: str
    fingerprint: str
    pairs: int
    metrics: dict[str, float | None]
    baseline_metrics: dict[str, float | None] | None = None
    shuffled_metrics: dict[str, float | None] | None = Field(
        default=None, description="The adapter fed another clip's audio (the ablation).")
    reused: bool = False
    seconds: float = 0.0
