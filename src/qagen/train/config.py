"""``TrainConfig``: every parameter of a train run that changes its weights; ``EvaluateConfig``:
how a trained run is asked to answer its held-out questions.

The train config is hashed into the run's fingerprint, so a re-run with the same config
returns the finished run and a different config under the same run name is refused.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from qagen.model_cache import PACKAGED_MODEL
from qagen.records.qa import QAKind


class TrainConfig(BaseModel):
    """Parameters of the train stage (the embeddings come from the embed stage's store)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    run: str = Field(default="demo", pattern=r"^[A-Za-z0-9_.-]+$",
                     description="Run name: output goes to WORKDIR/train/<run>/.")
    arch: Literal["mu_llama", "llark"] = Field(
        default="mu_llama",
        description="mu_llama: pooled MERT layers → zero-gated prefix adapter in the last"
                    " layers; llark: frame sequence → projected audio tokens before the text.")
    lm: str = Field(default=PACKAGED_MODEL,
                    description="Frozen causal LM: HF id or folder (packaged SmolLM2 default).")
    encoder: str | None = Field(
        default=None, description="Encoder that made the embeddings, for the model card when the "
        "embedding source does not say (the embed stage's store does).")
    steps: int = Field(default=300, ge=1,
                       description="Optimizer steps (2 cores, MU-LLaMA defaults: ~2 s each;"
                                   " make dataset runs 160, the hearing bench 2,000).")
    batch_size: int = Field(default=4, ge=1)
    grad_accum: int = Field(default=1, ge=1, description="Micro-batches per optimizer step.")
    lr: float = Field(default=3e-3, gt=0, description="Peak LR. On the demo (SmolLM2, batch 4, "
                      "150 steps) 1e-3 barely moved the loss, 3e-3 lowered it most, 1e-2 diverged.")
    warmup_steps: int = Field(default=10, ge=0)
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1, description="Cosine floor / peak.")
    weight_decay: float = Field(default=0.02, ge=0)
    max_grad_norm: float | None = Field(default=1.0, gt=0)
    seed: int = 0
    max_len: int = Field(default=160, ge=16, description="Tokens per example (text part).")
    # MU-LLaMA adapter
    adapter_layers: int = Field(default=32, ge=1,
                                description="Last N LM layers that attend to the adapter"
                                            " (capped at the LM's depth: all of SmolLM2's 30)."
                                            " MU-LLaMA uses 20 of Llama-2-7B's 32. On the"
                                            " hearing bench (SmolLM2-135M) 8 layers left the"
                                            " held-out loss at 1.50 and key accuracy at 0.21;"
                                            " all 30 reached 0.80 and 0.39, at ~1.7x the step"
                                            " time (backward runs through these layers).")
    prefix_len: int = Field(default=10, ge=1,
                            description="Prefix queries per layer (MU-LLaMA: 1; LLaMA-Adapter:"
                                        " 10). With one, every token receives the same music"
                                        " vector; with ten, each token's query chooses what to"
                                        " read. Hearing bench (480 clips, 800 steps): held-out"
                                        " loss 0.83 → 0.59, tempo within 8 % 0.43 → 0.67,"
                                        " meter 0.64 → 0.74.")
    adapter_blocks: int = Field(default=3, ge=0, description="Residual gated dense blocks.")
    adapter_ffn_mult: int = Field(default=4, ge=1, description="Dense block width / LM width.")
    # LLark projector
    projector: Literal["linear", "mlp"] = "mlp"
    projector_hidden: int | None = Field(default=None, ge=1,
                                         description="MLP hidden width (None = LM width).")
    max_audio_tokens: int = Field(default=256, ge=1, description="Frames kept per clip.")
    qa_kinds: list[QAKind] | None = Field(
        default=None, description="Train (and evaluate) on pairs of these kinds only, e.g. the "
        "MIR kinds key, tempo, rhythm, instrumentation, genre; None = every pair.")
    # data split
    eval_fraction: float = Field(default=0.2, gt=0, lt=1,
                                 description="Held-out share of clips for the hash split.")
    # bookkeeping
    loss_eval_max: int | None = Field(
        default=128, ge=1, description="Before/after answer loss on at most this many examples "
        "of each set, spread over clips (None = all; every example costs a forward pass).")
    log_every: int = Field(default=5, ge=1)
    save_every: int = Field(default=50, ge=1)
    keep_checkpoints: int = Field(default=2, ge=1)
    device: str | None = Field(default=None, description="None = cuda when available, else cpu.")
    threads: int | None = Field(default=None, ge=1,
                                description="CPU intra-op threads (None = torch's default).")

    @model_validator(mode="after")
    def _warmup_fits(self) -> TrainConfig:
        if self.warmup_steps >= self.steps and self.steps > 1:
            raise ValueError(f"warmup_steps ({self.warmup_steps}) must be < steps ({self.steps})")
        if self.save_every % self.log_every:
            # A log line holds the mean loss since the previous one; checkpoints on log steps
            # keep that window whole across a resume.
            raise ValueError(f"save_every ({self.save_every}) must be a multiple of log_every "
                             f"({self.log_every})")
        return self

    def trained_kinds(self) -> frozenset[str] | None:
        """The QA kinds this run learns from (None = all)."""
        return None if self.qa_kinds is None else frozenset(k.value for k in self.qa_kinds)

    def fingerprint(self) -> str:
        """Hash of the fields that change the weights (not logging, saving or device)."""
        fields = self.model_dump(exclude={"log_every", "save_every", "keep_checkpoints",
                                          "device", "threads"})
        blob = json.dumps(fields, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


class EvaluateConfig(BaseModel):
    """Parameters of the evaluation of a train run (greedy decoding, so no sampling fields)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_new_tokens: int = Field(default=64, ge=1)
    batch_size: int = Field(default=8, ge=1)
    baseline: bool = Field(default=True, description="Also answer with the LM alone (zero gate /"
                                                     " no audio) so the delta is visible.")
    shuffled_audio: bool = Field(
        default=True, description="Also answer with every pair fed another clip's audio: the "
        "ablation that shows whether answers come from the audio.")
    max_pairs: int | None = Field(default=None, ge=1,
                                  description="Cap held-out pairs (quick runs).")
    device: str | None = Field(default=None, description="None = cuda when available, else cpu.")
    threads: int | None = Field(default=None, ge=1,
                                description="CPU intra-op threads (None = torch's default).")

    def fingerprint(self) -> str:
        """Hash of the fields that change the predictions."""
        fields = self.model_dump(exclude={"device", "batch_size", "threads"})
        blob = json.dumps(fields, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
