"""MU-LLaMA's music adapter on a frozen Hugging Face Llama-family LM.

What MU-LLaMA does (crypto-code/MU-LLaMA, ``llama/llama_adapter.py`` and ``llama/llama.py``):
the MERT hidden states of all layers, mean-pooled over time ([L+1, H], 25×1024 for
MERT-330M), are mixed by a 1×1 ``Conv1d`` (L+1 → 1), L2-normalised (here to unit RMS:
:meth:`MuLlamaAdapter.encode` says why), projected by a ``Linear``
to the LM width and refined by residual gated dense blocks (RMSNorm → W2(SiLU(W1 x) ⊙ W3 x)).
The result plus a learned prefix query per layer is fed, as extra keys/values projected by
each layer's OWN frozen k/v projections, to the last N transformer layers (20 of 32 in
MU-LLaMA); the attention to it is scaled by ``tanh(gate)`` with one zero-initialised gate per
head (LLaMA-Adapter's zero-init attention), so the untrained adapter leaves the LM unchanged.

How it is done here: forward hooks on the ``self_attn`` modules of the chosen layers add the
gated adapter term to the attention output. The term is computed before ``o_proj`` in
MU-LLaMA; ``o_proj`` is linear, so adding ``term @ o_proj.weight.T`` after it is identical
and leaves transformers' attention kernels (eager, sdpa, flash) untouched. The LM's module
tree and state dict stay as loaded; only this module's parameters are trained and saved.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as tnf
from torch import nn

from qagen.errors import ConfigError
from qagen.train.feature_norm import FeatureNorm


class GatedDenseBlock(nn.Module):
    """Residual SwiGLU block: x + W2(SiLU(W1 n) ⊙ W3 n), n = RMSNorm(x) (MU-LLaMA's bridge)."""

    def __init__(self, dim: int, *, mult: int) -> None:
        super().__init__()
        self.norm = nn.RMSNorm(dim, eps=1e-6)
        self.w1 = nn.Linear(dim, dim * mult, bias=False)
        self.w2 = nn.Linear(dim * mult, dim, bias=False)
        self.w3 = nn.Linear(dim, dim * mult, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.norm(x)
        return x + self.w2(tnf.silu(self.w1(n)) * self.w3(n))


def decoder_layers(lm: nn.Module) -> nn.ModuleList:
    """The transformer blocks of a Llama-family causal LM (``lm.model.layers``)."""
    layers = getattr(getattr(lm, "model", None), "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise ConfigError(f"{type(lm).__name__} has no .model.layers: the adapter needs a"
                          " Llama-family causal LM (LlamaForCausalLM, Mistral, Qwen2)")
    return layers


class MuLlamaAdapter(nn.Module):
    """Music features → per-layer prefixes attended by the last ``n_layers`` of a frozen LM.

    Parameters
    ----------
    enc_layers, enc_dim
        Shape of the pooled encoder input, [L+1, H] (25, 1024 for MERT-v1-330M).
    lm_dim, lm_heads, lm_layers
        Width, attention heads and depth of the LM it attaches to.
    n_layers
        How many of the LM's last layers attend to the adapter (capped at ``lm_layers``).
    prefix_len
        Prefix queries per layer; with 1 (MU-LLaMA) the softmax over one key is 1 and the
        term reduces to tanh(gate)·V(prefix).
    blocks, ffn_mult
        Residual gated dense blocks and their width multiple (MU-LLaMA: 3 blocks, ×4).
    """

    def __init__(self, *, enc_layers: int, enc_dim: int, lm_dim: int, lm_heads: int,
                 lm_layers: int, n_layers: int, prefix_len: int, blocks: int,
                 ffn_mult: int) -> None:
        super().__init__()
        n_layers = min(n_layers, lm_layers)
        self.layer_ids = list(range(lm_layers - n_layers, lm_layers))
        self.prefix_len = prefix_len
        self.lm_dim = lm_dim
        self.feature_norm = FeatureNorm((enc_layers, enc_dim))
        self.agg = nn.Conv1d(enc_layers, 1, kernel_size=1)
        self.proj = nn.Linear(enc_dim, lm_dim)
        self.blocks = nn.ModuleList(GatedDenseBlock(lm_dim, mult=ffn_mult) for _ in range(blocks))
        self.prefix_query = nn.Embedding(n_layers * prefix_len, lm_dim)
        # Small, as an LM's own embeddings start (initializer_range 0.02): with nn.Embedding's
        # N(0, 1) the learnt queries (norm ~√lm_dim) drown the L2-normalised music feature
        # (norm ~1) they are added to, and the adapter learns a prior before it learns to hear.
        nn.init.normal_(self.prefix_query.weight, std=0.02)
        self.gates = nn.Parameter(torch.zeros(n_layers, lm_heads))
        self._prefixes: torch.Tensor | None = None

    def encode(self, layers: torch.Tensor) -> torch.Tensor:
        """[B, L+1, H] pooled encoder states → [B, 1, lm_dim] music feature (standardised
        with the training clips' statistics first: :mod:`qagen.train.feature_norm`)."""
        x = self.agg(self.feature_norm(layers)).squeeze(1)
        # MU-LLaMA L2-normalises here. At unit norm each coordinate is ~1/sqrt(dim), so after
        # ``proj`` the clip's feature is smaller than the learnt queries it is added to, and
        # the frozen v_proj (which expects RMS-normalised inputs) hears a whisper: the adapter
        # learns one answer per question, whatever the clip. Unit RMS keeps the direction.
        x = tnf.normalize(x, dim=-1).unsqueeze(1) * math.sqrt(x.shape[-1])
        x = self.proj(x)
        for block in self.blocks:
            x = block(x)
        return x

    def prefixes(self, layers: torch.Tensor) -> torch.Tensor:
        """[n_layers, B, prefix_len, lm_dim]: the music feature plus each layer's queries."""
        music = self.encode(layers)  # B, 1, D
        queries = self.prefix_query.weight.view(len(self.layer_ids), 1, self.prefix_len, -1)
        return music.unsqueeze(0) + queries

    def attach(self, lm: nn.Module) -> list[torch.utils.hooks.RemovableHandle]:
        """Hook the adapter into ``lm``'s last layers; returns the handles (``.remove()``)."""
        layers = decoder_layers(lm)
        handles = []
        for slot, idx in enumerate(self.layer_ids):
            attn = layers[idx].self_attn
            for name in ("q_proj", "k_proj", "v_proj", "o_proj", "head_dim", "scaling"):
                if not hasattr(attn, name):
                    raise ConfigError(f"layer {idx} attention of {type(lm).__name__} has no"
                                      f" {name}: not a Llama-style attention")

            def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
                     output: Any, *, slot: int = slot) -> Any:
                return self._inject(module, slot, args, kwargs, output)

            handles.append(attn.register_forward_hook(hook, with_kwargs=True))
        return handles

    @contextlib.contextmanager
    def conditioned(self, layers: torch.Tensor) -> Iterator[None]:
        """Within the block, every LM forward attends to the prefixes of this batch."""
        self._prefixes = self.prefixes(layers)
        try:
            yield
        finally:
            self._prefixes = None

    def _inject(self, attn: nn.Module, slot: int, args: tuple[Any, ...],
                kwargs: dict[str, Any], output: Any) -> Any:
        if self._prefixes is None:
            return None
        hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        attn_out, weights = output[0], output[1:]
        bsz, seqlen, _ = hidden.shape
        hd = attn.head_dim
        prefix = self._prefixes[slot].to(hidden.dtype)  # B, P, D
        if prefix.shape[0] != bsz:
            raise ValueError(f"adapter conditioned on {prefix.shape[0]} clips, LM batch is {bsz}")
        groups = attn.q_proj.out_features // attn.k_proj.out_features
        v = attn.v_proj(prefix).view(bsz, self.prefix_len, -1, hd).transpose(1, 2)
        v = v.repeat_interleave(groups, dim=1)  # B, heads, P, hd
        heads = v.shape[1]
        if self.prefix_len == 1:
            mixed = v.expand(bsz, heads, seqlen, hd)
        else:
            from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

            q = attn.q_proj(hidden).view(bsz, seqlen, -1, hd).transpose(1, 2)
            cos, sin = kwargs["position_embeddings"]
            q, _ = apply_rotary_pos_emb(q, q, cos, sin)
            k = attn.k_proj(prefix).view(bsz, self.prefix_len, -1, hd).transpose(1, 2)
            k = k.repeat_interleave(groups, dim=1)
            scores = torch.matmul(q, k.transpose(2, 3)) * attn.scaling
            mixed = torch.matmul(tnf.softmax(scores.float(), dim=-1).to(v.dtype), v)
        gate = torch.tanh(self.gates[slot]).to(mixed.dtype).view(1, heads, 1, 1)
        term = (gate * mixed).transpose(1, 2).reshape(bsz, seqlen, heads * hd)
        return (attn_out + tnf.linear(term, attn.o_proj.weight), *weights)
