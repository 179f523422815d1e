"""``EmbeddingRow``: where one clip's audio embedding lies in ``WORKDIR/embeddings/``.

The arrays themselves are raw ``.npy`` files (one per shard and kind, memory-mappable); this
record is the index row that finds a clip's block in them and says what produced it.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class EmbeddingKind(StrEnum):
    """Which array of a clip: every hidden state mean-pooled, or one pooled time sequence."""

    layers = "layers"  # [hidden states (layers + 1), hidden]: MU-LLaMA's input
    frames = "frames"  # [time frames, hidden] at frame_rate_hz: LLark-style sequence


class EmbedReason(StrEnum):
    """Why the embed stage could not embed a clip. These codes are API: reports show them."""

    decode_error = "decode_error"  # unreadable, corrupt or unsupported audio file
    empty = "empty"  # zero samples in the window
    too_short = "too_short"  # shorter than the encoder's receptive field (one frame)
    non_finite = "non_finite"  # the encoder produced NaN/inf (or overflowed float16)
    internal_error = "internal_error"  # a bug: exception type and message in detail


class EmbeddingRow(BaseModel):
    """One clip's block in one embedding array file (``embeddings/index.parquet``).

    ``file`` is relative to ``embeddings/``; the block is rows ``offset : offset + shape[0]``
    of that 2-D ``.npy`` array. Two clips of the same recording in one shard share a block.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    clip_id: str
    source: str
    kind: EmbeddingKind
    file: str = Field(description="Array file under embeddings/, e.g. 'layers-fma-00000-….npy'.")
    offset: int = Field(ge=0, description="First row of this clip's block in the array.")
    shape: list[int] = Field(description="Block shape: [layers + 1, hidden] or [frames, hidden].")
    dtype: str = Field(description="numpy dtype name of the array, e.g. 'float16'.")
    encoder: str = Field(description="Configured encoder: Hub id, local folder or built-in id.")
    encoder_revision: str | None = Field(
        default=None, description="Hub commit of the cached snapshot; None for local folders.")
    encoder_sha256: str = Field(description="sha256 over the encoder's weight files.")
    random_init: bool = Field(
        description="True for the built-in random model: its embeddings carry no meaning.")
    layer: str = Field(description="'all' (layers kind), or the frames' layer index or 'mean'.")
    frame_rate_hz: float | None = Field(
        default=None, description="Rows per second of audio (frames kind); None for layers.")
    sr: int = Field(description="Sample rate the audio was resampled to for the encoder.")
    chunk_s: float = Field(description="Audio was encoded in windows of this length.")
    audio_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    start_s: float = Field(description="Clip window start within the audio file, seconds.")
    end_s: float | None = Field(default=None, description="Clip window end; None = to the end.")
    seconds: float = Field(description="Audio actually embedded, seconds.")
    cache_key: str = Field(description="Content address: audio, window, encoder, parameters.")
