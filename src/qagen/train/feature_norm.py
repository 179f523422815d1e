"""Per-dimension standardisation of encoder features, with statistics of the training clips.

Why: an encoder's features share a large offset across clips (every clip has some chroma,
some chord-feature activation, a lag-0 tempogram); what tells clips apart is a small variation
around it. MU-LLaMA's adapter L2-normalises the aggregated features, and LLark's projector
layer-normalises each frame: neither removes an offset common to all clips, so the projection
first sees nearly the same vector for every clip and the adapter learns a prior over the
answers instead of the audio. Subtracting the training clips' mean and dividing by their
standard deviation, per feature dimension, puts the clip-to-clip differences at unit scale.

The statistics are buffers of the music module: saved with the adapter, restored on load, fitted
once before training from the training clips only (held-out clips never leak into them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn

#: Dimensions whose standard deviation is below this are left unscaled (constant features).
MIN_STD = 1e-6


class FeatureNorm(nn.Module):
    """``(x - mean) / std`` over the trailing ``shape`` of the input (identity until fitted)."""

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(*shape))
        self.register_buffer("std", torch.ones(*shape))

    def fit(self, arrays: Iterable[np.ndarray]) -> int:
        """Set the statistics from ``arrays`` (each ``[..., *shape]``; leading axes, e.g. the
        frames of a clip, are pooled). Streams: one clip in memory at a time. Returns the
        number of vectors seen (0 leaves the identity)."""
        dims = tuple(self.mean.shape)
        total = np.zeros(dims)
        squares = np.zeros(dims)
        count = 0
        for array in arrays:
            x = np.asarray(array, dtype=np.float64).reshape(-1, *dims)
            total += x.sum(axis=0)
            squares += (x ** 2).sum(axis=0)
            count += x.shape[0]
        if count == 0:
            return 0
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean ** 2, 0.0))
        std = np.where(std < MIN_STD, 1.0, std)
        self.mean.copy_(torch.from_numpy(mean).to(self.mean))
        self.std.copy_(torch.from_numpy(std).to(self.std))
        return count

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
