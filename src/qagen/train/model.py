"""``MusicLM``: a frozen causal LM plus the trainable music module of one architecture.

One interface for both architectures, so the loop and the evaluator never branch on arch:
``loss(examples)`` (answer-token cross-entropy) and ``generate(examples)`` (greedy answers).
Sequences are left-padded: ``[pad…][audio tokens (llark)][prompt][answer]``, so generation
continues every row from its last real token.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from qagen.devices import resolve_device
from qagen.errors import MissingDependencyError
from qagen.train.adapter import MuLlamaAdapter, decoder_layers
from qagen.train.config import TrainConfig
from qagen.train.data import IGNORE_INDEX, Example
from qagen.train.projector import LlarkProjector

log = logging.getLogger(__name__)


def pick_device(requested: str | None, *, threads: int | None = None) -> torch.device:
    """``requested``, else CUDA when available, else CPU; on CPU, ``threads`` intra-op
    threads when given (1 is fastest on a busy 2-core machine)."""
    device = torch.device(resolve_device(requested, torch=torch))
    if device.type == "cpu" and threads is not None:
        torch.set_num_threads(threads)
    return device


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 autocast on CUDA devices that support it; None (plain fp32) elsewhere."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def load_lm(model: str, *, device: torch.device) -> tuple[nn.Module, Any]:
    """Load a causal LM frozen (eval mode, no grads) and its tokenizer.

    Weights are bf16 on CUDA (a 7B model fits one GPU), fp32 on CPU. ``model`` is resolved
    by ``qagen.model_cache.resolve_model`` (the packaged SmolLM2 name → its HF folder).
    """
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise MissingDependencyError("training needs: pip install 'qagen[train]'") from exc
    from qagen.model_cache import resolve_model

    path = resolve_model(model)
    dtype = torch.bfloat16 if autocast_dtype(device) is not None else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(path)
    lm = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    return freeze(lm).to(device), tokenizer


def freeze(lm: nn.Module) -> nn.Module:
    """Eval mode (no dropout) and ``requires_grad=False`` on every LM parameter."""
    lm.eval()
    for p in lm.parameters():
        p.requires_grad_(False)
    return lm


class MusicLM(nn.Module):
    """A frozen LM with a MU-LLaMA adapter or a LLark projector.

    Only ``self.music`` is trainable and saved; the LM is held but never updated.
    """

    def __init__(self, lm: nn.Module, tokenizer: Any, *, arch: str, music: nn.Module) -> None:
        super().__init__()
        self.lm = lm
        self.tokenizer = tokenizer
        self.arch = arch
        self.music = music
        self._handles = music.attach(lm) if isinstance(music, MuLlamaAdapter) else []
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (tokenizer.eos_token_id or 0)

    @classmethod
    def build(cls, lm: nn.Module, tokenizer: Any, *, config: TrainConfig,
              feature_shape: Sequence[int]) -> MusicLM:
        """Create the music module for ``config.arch`` sized for ``lm`` and the features.

        ``feature_shape`` is one clip's array shape: [L+1, H] (mu_llama) or [T, H] (llark).
        """
        cfg = lm.config
        if config.arch == "mu_llama":
            music: nn.Module = MuLlamaAdapter(
                enc_layers=int(feature_shape[0]), enc_dim=int(feature_shape[1]),
                lm_dim=cfg.hidden_size, lm_heads=cfg.num_attention_heads,
                lm_layers=len(decoder_layers(lm)), n_layers=config.adapter_layers,
                prefix_len=config.prefix_len, blocks=config.adapter_blocks,
                ffn_mult=config.adapter_ffn_mult)
        else:
            music = LlarkProjector(enc_dim=int(feature_shape[-1]), lm_dim=cfg.hidden_size,
                                   kind=config.projector, hidden=config.projector_hidden)
        device = next(lm.parameters()).device
        return cls(lm, tokenizer, arch=config.arch, music=music.to(device))

    def detach_hooks(self) -> None:
        """Remove the adapter's hooks from the LM (the LM is then the plain LM again)."""
        for h in self._handles:
            h.remove()
        self._handles = []

    @property
    def device(self) -> torch.device:
        return next(self.lm.parameters()).device

    def train(self, mode: bool = True) -> MusicLM:
        """Train mode applies to the music module only: the frozen LM stays in eval mode."""
        self.training = mode
        self.music.train(mode)
        return self

    # -- batching --------------------------------------------------------------------
    def _features(self, examples: Sequence[Example], *, max_audio: int) -> torch.Tensor:
        arrays = [np.asarray(e.features, dtype=np.float32) for e in examples]
        if self.arch == "mu_llama":
            return torch.from_numpy(np.stack(arrays)).to(self.device)
        # llark: [B, T_max, H], zero padded; lengths tracked by the caller
        arrays = [a[:max_audio] for a in arrays]
        t_max = max(a.shape[0] for a in arrays)
        out = np.zeros((len(arrays), t_max, arrays[0].shape[-1]), dtype=np.float32)
        for i, a in enumerate(arrays):
            out[i, : a.shape[0]] = a
        return torch.from_numpy(out).to(self.device)

    def compose(self, examples: Sequence[Example], *, with_answer: bool,
                max_audio: int = 256, use_music: bool = True) -> dict[str, torch.Tensor]:
        """Left-padded ``inputs_embeds``, ``attention_mask``, ``position_ids`` and ``labels``
        (answer tokens only) for a batch; the music module's outputs are part of the graph.
        ``use_music=False`` leaves the audio tokens out (the LM-alone baseline)."""
        embed = self.lm.get_input_embeddings()
        feats = self._features(examples, max_audio=max_audio)
        audio = self.music(feats) if self.arch == "llark" and use_music else None
        seqs: list[torch.Tensor] = []
        labels: list[list[int]] = []
        for i, ex in enumerate(examples):
            answer = ex.answer_ids if with_answer else []
            ids = torch.tensor(ex.prompt_ids + answer, device=self.device)
            parts = [embed(ids)]
            lab = [IGNORE_INDEX] * len(ex.prompt_ids) + list(answer)
            if audio is not None:
                n_audio = min(ex.features.shape[0], max_audio)
                parts.insert(0, audio[i, :n_audio].to(parts[0].dtype))
                lab = [IGNORE_INDEX] * n_audio + lab
            seqs.append(torch.cat(parts))
            labels.append(lab)
        width = max(s.shape[0] for s in seqs)
        dim = seqs[0].shape[-1]
        inputs = seqs[0].new_zeros((len(seqs), width, dim))
        mask = torch.zeros((len(seqs), width), dtype=torch.long, device=self.device)
        lab_t = torch.full((len(seqs), width), IGNORE_INDEX, dtype=torch.long, device=self.device)
        for i, (s, lab) in enumerate(zip(seqs, labels, strict=True)):
            n = s.shape[0]
            inputs[i, width - n:] = s
            mask[i, width - n:] = 1
            lab_t[i, width - n:] = torch.tensor(lab, device=self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return {"inputs_embeds": inputs, "attention_mask": mask, "position_ids": positions,
                "labels": lab_t, "features": feats}

    @contextlib.contextmanager
    def _conditioned(self, feats: torch.Tensor, *, use_music: bool = True) -> Iterator[None]:
        if use_music and isinstance(self.music, MuLlamaAdapter):
            with self.music.conditioned(feats):
                yield
        else:
            yield

    # -- the two things the stages do ------------------------------------------------
    def loss(self, examples: Sequence[Example], *, max_audio: int = 256) -> torch.Tensor:
        """Mean cross-entropy over the answer tokens of a batch."""
        batch = self.compose(examples, with_answer=True, max_audio=max_audio)
        feats = batch.pop("features")
        with self._conditioned(feats):
            return self.lm(**batch, use_cache=False).loss

    @torch.no_grad()
    def generate(self, examples: Sequence[Example], *, max_new_tokens: int,
                 max_audio: int = 256, use_music: bool = True) -> list[str]:
        """Greedy answers to the examples' prompts; ``use_music=False`` answers with the LM
        alone (what the zero-gate adapter does before training)."""
        batch = self.compose(examples, with_answer=False, max_audio=max_audio,
                             use_music=use_music)
        feats = batch.pop("features")
        batch.pop("labels")
        batch.pop("position_ids")
        eos = self.tokenizer.eos_token_id
        with self._conditioned(feats, use_music=use_music):
            out = self.lm.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                   pad_token_id=self.pad_id, eos_token_id=eos)
        return [self.tokenizer.decode(row, skip_special_tokens=True).strip() for row in out]
