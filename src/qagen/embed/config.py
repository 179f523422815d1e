"""``EmbedConfig``: parameters of the embed stage (moves to ``qagen.config`` with the stage)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from qagen.devices import DTYPE_NAMES

#: The built-in encoder: a small random-initialised model of MERT's architecture.
TINY_ENCODER = "qagen/mert-tiny-random"

#: Fields that do not change the stored arrays (speed and placement only): kept out of cache
#: keys and resume fingerprints, so changing them never redoes finished work.
RUNTIME_FIELDS = frozenset({"batch_size", "threads", "device", "workers"})
#: Windows per forward pass when ``batch_size="auto"`` on the CPU (on CUDA: sized by free memory).
CPU_BATCH = 8


class EmbedConfig(BaseModel):
    """What the embed stage computes, and with how many threads.

    ``encoder`` is a Hugging Face id that is already in the local HF cache
    (``m-a-p/MERT-v1-95M``, ``m-a-p/MERT-v1-330M``), a local folder in HF format, or the
    built-in ``qagen/mert-tiny-random`` (random weights: exercises the real code path, its
    embeddings mean nothing), or ``qagen/madmom-features`` (madmom's trained chroma, chord and
    downbeat networks at 10 Hz: the embedded encoder that carries music; ``sr`` and
    ``chunk_s`` do not apply to it). Nothing is ever downloaded.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    encoder: str = Field(default=TINY_ENCODER, min_length=1)
    revision: str | None = Field(
        default=None, description="Hub branch, tag or commit of a Hub id (None = main).")
    sr: int = Field(default=24000, gt=0, description="MERT-v1 was trained on 24 kHz audio.")
    chunk_s: float = Field(
        default=5.0, gt=0, description="Audio is encoded in windows this long (memory bound).")
    batch_size: int | Literal["auto"] = Field(
        default="auto", description="Windows per forward pass; auto = 8 on the CPU, sized by "
                                    "free GPU memory on CUDA.")
    frame_rate_hz: float | None = Field(
        default=10.0, gt=0,
        description="Also store a time sequence pooled to this rate (LLark: 10 Hz); None = no.")
    frame_layer: int | Literal["mean"] = Field(
        default="mean",
        description="Hidden state of the sequence: index (0 = input of layer 1, -1 = last) or "
                    "'mean' of all of them.")
    dtype: Literal["float16", "float32"] = Field(
        default="float16", description="Stored dtype of the arrays (not the compute dtype).")
    compute_dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        default="auto",
        description="dtype the encoder computes in (fp32|fp16|bf16 accepted); auto = bfloat16 "
                    "on a CUDA device with bf16 support, else float32. Part of the cache "
                    "identity once resolved: half precision changes the arrays slightly.")
    threads: int | None = Field(
        default=None, ge=1, description="torch threads during the stage (None = all cores).")
    workers: int | Literal["auto"] = Field(
        default="auto",
        description="Clips in flight at once (threads): while one clip's windows run on the "
                    "GPU the next is decoded; auto = 4 on CUDA, 1 on the CPU (where the "
                    "forward already uses every core).")
    device: str = Field(
        default="auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$",
        description="auto = cuda when available, else cpu; cuda:N picks a GPU.")

    @field_validator("compute_dtype", mode="before")
    @classmethod
    def _dtype_alias(cls, value: object) -> object:
        """Accept the CLI's short names (fp32, fp16, bf16)."""
        return DTYPE_NAMES.get(value, value) if isinstance(value, str) else value

    def output_params(self, *, compute_dtype: str = "float32") -> dict[str, Any]:
        """The fields that change the stored arrays (cache key and fingerprint input).

        ``compute_dtype`` is the *resolved* one (``auto`` means different things on different
        machines, so the configured value cannot be keyed); float32 is left out, so caches and
        shards written before the option existed (all fp32) stay valid.
        """
        params = self.model_dump(mode="json", exclude={*RUNTIME_FIELDS, "compute_dtype"})
        if compute_dtype != "float32":
            params["compute_dtype"] = compute_dtype
        return params
