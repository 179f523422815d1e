"""LLark's projector: encoder frames → vectors in the LM's token-embedding space.

LLark feeds a frame sequence of a frozen music encoder through a learned projection and
prepends the result to the text as "audio tokens"; the LM is otherwise unchanged and the loss
ignores those positions. ``linear`` is one matrix, ``mlp`` a two-layer GELU MLP (as LLaVA-1.5).
Frames are first standardised per dimension with the training clips' statistics
(:mod:`qagen.train.feature_norm`).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from qagen.train.feature_norm import FeatureNorm


class LlarkProjector(nn.Module):
    """[B, T, enc_dim] frames → [B, T, lm_dim] audio-token embeddings."""

    def __init__(self, *, enc_dim: int, lm_dim: int, kind: Literal["linear", "mlp"],
                 hidden: int | None = None) -> None:
        super().__init__()
        self.feature_norm = FeatureNorm((enc_dim,))
        self.norm = nn.LayerNorm(enc_dim)
        if kind == "linear":
            self.net: nn.Module = nn.Linear(enc_dim, lm_dim)
        else:
            width = hidden or lm_dim
            self.net = nn.Sequential(nn.Linear(enc_dim, width), nn.GELU(),
                                     nn.Linear(width, lm_dim))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.net(self.norm(self.feature_norm(frames)))
