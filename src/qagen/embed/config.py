"""``EmbedConfig``: parameters of the embed stage (moves to ``qagen.config`` with the stage)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: The built-in encoder: a small random-initialised model of MERT's architecture.
TINY_ENCODER = "qagen/mert-tiny-random"

#: Fields that do not change the stored arrays (speed and placement only): kept out of cache
#: keys and resume fingerprints, so changing them never redoes finished work.
RUNTIME_FIELDS = frozenset({"batch_size", "threads", "device"})


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
    batch_size: int = Field(default=8, ge=1, description="Windows per forward pass.")
    frame_rate_hz: float | None = Field(
        default=10.0, gt=0,
        description="Also store a time sequence pooled to this rate (LLark: 10 Hz); None = no.")
    frame_layer: int | Literal["mean"] = Field(
        default="mean",
        description="Hidden state of the sequence: index (0 = input of layer 1, -1 = last) or "
                    "'mean' of all of them.")
    dtype: Literal["float16", "float32"] = Field(default="float16", description="Stored dtype.")
    threads: int | None = Field(
        default=None, ge=1, description="torch threads during the stage (None = all cores).")
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="auto = cuda when available, else cpu.")

    def output_params(self) -> dict[str, Any]:
        """The fields that change the stored arrays (cache key and fingerprint input)."""
        return self.model_dump(mode="json", exclude=set(RUNTIME_FIELDS))
