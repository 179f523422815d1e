"""Encoder families: what the embed stage asks of a kind of encoder, in one place per kind.

Why: the stage must know some things before it loads anything — the rate to decode audio at,
whether the settings make sense, the compute dtype (part of the cache key), how many clips to
keep in flight — and then how to turn audio into (layers, frames). A MERT checkpoint and
madmom's networks answer all of these differently; an encoder family answers them for its
kind, so the stage has no per-encoder branches and a new kind (e.g. Jukebox features) is one
class here plus its own module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from qagen.devices import resolve_device, resolve_dtype
from qagen.embed.config import EmbedConfig
from qagen.embed.encoder import EncoderSource, load_encoder
from qagen.embed.madmom_features import (
    MADMOM_ENCODER,
    NATIVE_FRAME_RATE_HZ,
    MadmomFeatureEncoder,
)
from qagen.embed.madmom_features import SR as MADMOM_SR
from qagen.errors import ConfigError


class Encoder(Protocol):
    """A loaded encoder, as the stage uses it."""

    min_samples: int  # the shortest input that gives one frame

    def embed(self, y: np.ndarray, *, config: EmbedConfig
              ) -> tuple[np.ndarray, np.ndarray | None]:
        """float32 (layers [n, dim], frames [time, dim] or None) of mono audio."""
        ...


class EncoderFamily(Protocol):
    """What the stage needs from a kind of encoder, before and at loading."""

    #: Whether loading runs torch (the stage sets and restores torch's thread count).
    uses_torch: bool

    def sample_rate(self, config: EmbedConfig) -> int:
        """The rate audio is decoded at for this encoder."""
        ...

    def check(self, source: EncoderSource, config: EmbedConfig) -> None:
        """Raise ConfigError for settings the encoder cannot honour (no model loaded)."""
        ...

    def compute_dtype(self, config: EmbedConfig) -> str:
        """The resolved compute dtype (never ``auto``): it names what the arrays are."""
        ...

    def auto_workers(self, config: EmbedConfig) -> int:
        """Clips in flight when ``config.workers`` is ``auto``."""
        ...

    def load(self, source: EncoderSource, config: EmbedConfig, *, dtype: str) -> Encoder:
        """Load the encoder (once per stage run)."""
        ...


class MertFamily:
    """MERT / HuBERT checkpoints in Hugging Face format (:mod:`qagen.embed.encoder`)."""

    uses_torch = True

    def sample_rate(self, config: EmbedConfig) -> int:
        return config.sr

    def check(self, source: EncoderSource, config: EmbedConfig) -> None:
        """``frame_rate_hz`` above the encoder's frame rate at ``config.sr`` (from the conv
        strides), or ``frame_layer`` outside its hidden states (reads config.json only)."""
        meta = _read_config(source.path)
        strides = meta.get("conv_stride", [5, 2, 2, 2, 2, 2, 2])
        native = config.sr / float(np.prod(strides))
        if config.frame_rate_hz is not None and config.frame_rate_hz > native:
            raise ConfigError(f"frame_rate_hz={config.frame_rate_hz} exceeds the encoder's "
                              f"{native:g} frames/s at {config.sr} Hz; choose ≤ {native:g}")
        states = int(meta.get("num_hidden_layers", 12)) + 1
        if isinstance(config.frame_layer, int) and not -states <= config.frame_layer < states:
            raise ConfigError(f"frame_layer={config.frame_layer} is out of range: "
                              f"{source.name!r} returns {states} hidden states "
                              f"(0..{states - 1}, or negative from the end, or 'mean')")

    def compute_dtype(self, config: EmbedConfig) -> str:
        """Only a CUDA ``auto`` imports torch (to ask for bf16 support); ``cpu`` and explicit
        dtypes do not."""
        device = config.device
        if config.compute_dtype == "auto" and device != "cpu":
            device = resolve_device(device)
        return resolve_dtype(config.compute_dtype, device=device)

    def auto_workers(self, config: EmbedConfig) -> int:
        """4 on CUDA, else 1. On a GPU, decoding, resampling and pooling a clip are CPU work
        of the same order as its forward pass, so with one clip at a time the GPU waits
        (threads suffice: soundfile, soxr, numpy and torch release the GIL); on the CPU the
        forward pass already uses every core."""
        return 4 if resolve_device(config.device).startswith("cuda") else 1

    def load(self, source: EncoderSource, config: EmbedConfig, *, dtype: str) -> Encoder:
        return load_encoder(source, sr=config.sr, device=config.device, dtype=dtype)


class MadmomFamily:
    """``qagen/madmom-features``: madmom's networks (:mod:`qagen.embed.madmom_features`),
    fixed at 44.1 kHz, 10 frames/s, float32, one feature vector per frame."""

    uses_torch = False

    def sample_rate(self, config: EmbedConfig) -> int:
        return MADMOM_SR

    def check(self, source: EncoderSource, config: EmbedConfig) -> None:
        if config.frame_rate_hz is not None and config.frame_rate_hz > NATIVE_FRAME_RATE_HZ:
            raise ConfigError(f"frame_rate_hz={config.frame_rate_hz} exceeds {MADMOM_ENCODER}'s "
                              f"{NATIVE_FRAME_RATE_HZ:g} frames/s; choose ≤ "
                              f"{NATIVE_FRAME_RATE_HZ:g}")
        if config.frame_layer != "mean":
            raise ConfigError(f"{MADMOM_ENCODER} has one feature vector per frame, not layers: "
                              f"frame_layer={config.frame_layer!r} does not apply (use 'mean')")

    def compute_dtype(self, config: EmbedConfig) -> str:
        return "float32"  # the networks run in float32 whatever the device

    def auto_workers(self, config: EmbedConfig) -> int:
        return 1  # single-threaded networks; parallelism is across processes, not threads

    def load(self, source: EncoderSource, config: EmbedConfig, *, dtype: str) -> Encoder:
        return MadmomFeatureEncoder.load()


def family_of(source: EncoderSource) -> EncoderFamily:
    """The family of a resolved encoder: madmom's features by name, else a MERT folder."""
    return MadmomFamily() if source.name == MADMOM_ENCODER else MertFamily()


def _read_config(folder: Path) -> dict[str, Any]:
    try:
        meta = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"encoder folder {folder} has no readable config.json: "
                          f"{exc}") from exc
    if not isinstance(meta, dict):
        raise ConfigError(f"encoder folder {folder}: config.json is not an object")
    return meta
