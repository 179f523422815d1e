"""MERT encoders: resolve an encoder name to a local folder, load it, run windows of audio.

Every encoder is loaded the same way, from a local folder in Hugging Face format, with
transformers' own ``HubertModel``: MERT-v1 checkpoints use its parameter names, and the Hub's
``trust_remote_code`` MERT class returns ``hidden_states=None`` under transformers 5. Three
kinds of name resolve to such a folder:

- ``qagen/mert-tiny-random``: the built-in random model (:mod:`qagen.embed.tiny`);
- a local folder;
- a Hub id (``m-a-p/MERT-v1-95M``), only when already in the local HF cache: qagen never
  downloads at run time, and says how to fetch it once.

``qagen/madmom-features`` is not a MERT: madmom's trained chroma, chord and downbeat networks
(:mod:`qagen.embed.madmom_features`), the embedded encoder that carries music when no MERT
weights are present. Jukebox (LLark's encoder) is refused with what it would need; there is
no silent fallback.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qagen.audio import sha256_file
from qagen.devices import resolve_device, resolve_dtype
from qagen.embed.config import CPU_BATCH, TINY_ENCODER, EmbedConfig
from qagen.embed.madmom_features import MADMOM_ENCODER, features_identity
from qagen.embed.madmom_features import models_dir as madmom_models_dir
from qagen.embed.pooling import MIN_TAIL_S, chunk_bounds, pool_frames
from qagen.embed.tiny import PROVENANCE_FILE, tiny_model_dir
from qagen.errors import ConfigError, MissingDependencyError

log = logging.getLogger(__name__)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
#: Parameters a HubertModel may lack in a checkpoint: used only in training (SpecAugment).
_OPTIONAL_PARAMS = frozenset({"masked_spec_embed"})
JUKEBOX_MESSAGE = (
    "encoder 'jukebox' (LLark's Jukebox-5B features) is not supported: it needs jukemirlib "
    "(not on PyPI; install from its git repository), ~10 GB of OpenAI Jukebox weights and a "
    "CUDA GPU, and transformers 5 removed its Jukebox model. Use a MERT encoder instead, e.g. "
    "--encoder m-a-p/MERT-v1-330M after `hf download m-a-p/MERT-v1-330M`."
)


@dataclass(frozen=True)
class EncoderSource:
    """A resolved encoder: the folder to load and its identity for cache keys."""

    name: str  # as configured
    path: Path  # local folder in HF format
    revision: str | None  # Hub commit of a cached snapshot; None for local folders
    weights_sha256: str  # over every weight file: a changed checkpoint is a new encoder
    random_init: bool


def resolve_encoder(
    name: str, *, revision: str | None = None, cache_root: Path | None = None
) -> EncoderSource:
    """Turn a configured encoder name into a local folder, without any network access.

    Raises
    ------
    MissingDependencyError
        ``jukebox``: what it would need (never a silent fallback).
    ConfigError
        A folder that does not exist or holds no weights, or a Hub id not in the local cache
        (the message gives the ``hf download`` command).
    """
    if name.strip().lower() == "jukebox":
        raise MissingDependencyError(JUKEBOX_MESSAGE)
    if name == MADMOM_ENCODER:
        return EncoderSource(name=name, path=madmom_models_dir(), revision=None,
                             weights_sha256=features_identity(), random_init=False)
    if name == TINY_ENCODER:
        path = tiny_model_dir(cache_root=cache_root)
        return EncoderSource(name=name, path=path, revision=None,
                             weights_sha256=weights_sha256(path), random_init=True)
    local = Path(name).expanduser()
    if local.is_dir():
        path = local.resolve()
        return EncoderSource(name=name, path=path, revision=None,
                             weights_sha256=weights_sha256(path),
                             random_init=_is_random(path))
    if name.startswith((".", "/", "~")) or not _HUB_ID.match(name):
        raise ConfigError(f"encoder {name!r} is neither an existing folder nor a Hugging Face "
                          f"id (org/name); pass a folder with config.json and weights, a cached "
                          f"id such as m-a-p/MERT-v1-95M, or {TINY_ENCODER!r}")
    path = _cached_snapshot(name, revision=revision)
    return EncoderSource(name=name, path=path, revision=path.name,
                         weights_sha256=weights_sha256(path), random_init=_is_random(path))


def weights_sha256(folder: Path) -> str:
    """sha256 over the names and contents of a folder's weight files (sorted).

    Raises
    ------
    ConfigError
        The folder holds no ``*.safetensors`` / ``*.bin`` / ``*.pt`` file.
    """
    import hashlib

    files = sorted(p for p in folder.iterdir()
                   if p.suffix in _WEIGHT_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise ConfigError(f"encoder folder {folder} holds no weights (*.safetensors or *.bin)")
    h = hashlib.sha256()
    for path in files:
        h.update(f"{path.name}\x1f{sha256_file(path)}\x1f".encode())
    return h.hexdigest()


def _is_random(folder: Path) -> bool:
    prov = folder / PROVENANCE_FILE
    if not prov.is_file():
        return False
    return bool(json.loads(prov.read_text(encoding="utf-8")).get("random_init", False))


def _cached_snapshot(repo_id: str, *, revision: str | None) -> Path:
    """The local snapshot of a Hub repo (``local_files_only``: never a network call)."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.constants import HF_HUB_CACHE
    except ImportError as exc:
        raise MissingDependencyError(
            "loading a Hub encoder needs huggingface_hub: pip install 'qagen[embed]'") from exc
    try:
        path = Path(snapshot_download(repo_id=repo_id, revision=revision,
                                      local_files_only=True))
    except (OSError, ValueError) as exc:  # LocalEntryNotFoundError is an OSError
        rev = f" --revision {revision}" if revision else ""
        raise ConfigError(
            f"encoder {repo_id!r}{f' at {revision!r}' if revision else ''} is not in the local "
            f"Hugging Face cache ({HF_HUB_CACHE}); qagen never downloads at run time. Fetch it "
            f"once with `hf download {repo_id}{rev}` (set HF_HOME to choose where), or pass a "
            f"local folder. ({type(exc).__name__})"
        ) from exc
    if not (path / "config.json").is_file():
        raise ConfigError(f"cached snapshot {path} of {repo_id!r} has no config.json; "
                          f"re-fetch it with `hf download {repo_id}`")
    return path


@dataclass
class MertEncoder:
    """A loaded encoder: feature extractor + ``HubertModel``, and what its output looks like."""

    source: EncoderSource
    model: Any
    processor: Any
    device: str
    sr: int
    frame_rate_hz: float  # encoder frames per second (75 for MERT-v1 at 24 kHz)
    num_states: int  # hidden states returned: layers + 1
    hidden_size: int
    min_samples: int  # shortest input giving one frame (the receptive field)
    dtype: str = "float32"  # compute dtype (torch name)
    shape: EncoderShape | None = None  # for sizing batches by free device memory

    def batch_size(self, window_samples: int, *, requested: int | str = "auto") -> int:
        """Windows per forward pass: ``requested`` if a number; on the CPU 8; on CUDA as
        many as half the free device memory holds (:func:`windows_for_memory`).

        Why half: the allocator fragments, and another process (or the next, longer
        window) may need the rest; an OOM mid-stage costs far more than a smaller batch.
        """
        if requested != "auto":
            return int(requested)
        if not self.device.startswith("cuda") or self.shape is None:
            return CPU_BATCH
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(self.device))
        return windows_for_memory(free_bytes=free, window_samples=window_samples,
                                  shape=self.shape, dtype_bytes=_DTYPE_BYTES[self.dtype])

    def embed(self, y: np.ndarray, *, config: EmbedConfig
              ) -> tuple[np.ndarray, np.ndarray | None]:
        """(layers, frames) of mono audio at :attr:`sr`: :func:`embed_audio`."""
        return embed_audio(y, encoder=self, config=config)

    def forward(
        self, batch: list[np.ndarray], *, frame_layer: int | str | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Encode equal-length windows; reduce on the device before copying back.

        Returns
        -------
        (sums, frames)
            ``sums`` float64 [batch, layers + 1, hidden]: each hidden state summed over time
            (the caller divides by the total frame count); ``frames`` float32
            [batch, time, hidden] of ``frame_layer`` (an index or ``"mean"``), or None.
        """
        import torch

        if len({len(x) for x in batch}) != 1:
            raise ValueError("forward() takes windows of equal length (no padding: padding "
                             "would change group-norm statistics and attention)")
        inputs = self.processor(batch, sampling_rate=self.sr, return_tensors="pt",
                                return_attention_mask=False)
        values = inputs["input_values"].to(self.device, dtype=getattr(torch, self.dtype))
        with torch.inference_mode():
            out = self.model(input_values=values, output_hidden_states=True)
        states = out.hidden_states
        if states is None or len(states) != self.num_states:
            raise RuntimeError(f"{self.source.name} returned {0 if states is None else len(states)}"
                               f" hidden states, expected {self.num_states}")
        sums = torch.stack([h.sum(dim=1, dtype=torch.float64) for h in states], dim=1)
        frames = None
        if frame_layer == "mean":  # accumulated in float32 whatever the compute dtype
            acc = torch.zeros_like(states[0], dtype=torch.float32)
            for h in states:
                acc += h
            frames = acc / len(states)
        elif frame_layer is not None:
            frames = states[int(frame_layer)]
        return (sums.cpu().numpy(),
                None if frames is None else frames.float().cpu().numpy())


def load_encoder(source: EncoderSource, *, sr: int, device: str = "auto",
                 dtype: str = "float32") -> MertEncoder:
    """Load a resolved encoder folder with ``HubertModel`` (eval mode) in ``dtype``.

    ``dtype`` is the compute dtype (``auto``, ``float32``/``fp32``, ``float16``/``fp16``,
    ``bfloat16``/``bf16``; :func:`qagen.devices.resolve_dtype`); the default keeps float32,
    which every cached embedding before the option was computed in.

    ``config.tie_last_hidden_states = True`` makes the last hidden state the post-final-norm
    output, as MERT's own code and transformers 4 returned for pre-norm (``do_stable_layer_norm``,
    MERT-v1-330M) models; for post-norm models (95M, the tiny one) it changes nothing.

    Raises
    ------
    MissingDependencyError
        torch or transformers is not installed.
    ConfigError
        The folder is not a HuBERT/MERT checkpoint HubertModel can reproduce (CQT front end,
        DeepNorm, missing parameters), its sample rate differs from ``sr``, or an unknown
        dtype.
    """
    try:
        import torch
        from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor
    except ImportError as exc:
        raise MissingDependencyError(
            "the embed stage needs torch and transformers: pip install 'qagen[embed]'") from exc
    path = source.path
    try:
        config = HubertConfig.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"encoder folder {path} has no readable config.json: {exc}") from exc
    for flag in ("feature_extractor_cqt", "deepnorm"):
        if getattr(config, flag, False):
            raise ConfigError(f"encoder {source.name!r} sets {flag}=true, which transformers' "
                              "HubertModel cannot reproduce; use MERT-v1-95M or MERT-v1-330M")
    config.tie_last_hidden_states = True
    device = resolve_device(device, torch=torch)
    compute = resolve_dtype(dtype, device=device, torch=torch)
    fix = "is it a MERT/HuBERT checkpoint in Hugging Face format?"
    try:
        model, info = HubertModel.from_pretrained(path, config=config, output_loading_info=True,
                                                  dtype=getattr(torch, compute))
    except (OSError, RuntimeError, ValueError) as exc:  # size mismatches are RuntimeErrors
        raise ConfigError(f"encoder {source.name!r} ({path}) does not fit HubertModel: "
                          f"{str(exc).splitlines()[0]} {fix}") from exc
    missing = set(info.get("missing_keys", ())) - _OPTIONAL_PARAMS
    if missing:
        raise ConfigError(f"encoder {source.name!r} ({path}) does not fit HubertModel: its "
                          f"weights lack {sorted(missing)[:5]}; {fix}")
    if (path / "preprocessor_config.json").is_file():
        processor = Wav2Vec2FeatureExtractor.from_pretrained(path, do_normalize=True)
    else:
        processor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=sr, do_normalize=True)
    if int(processor.sampling_rate) != sr:
        raise ConfigError(f"encoder {source.name!r} expects {processor.sampling_rate} Hz audio "
                          f"but the config asks for sr={sr}; set sr={processor.sampling_rate}")
    model.eval().to(device)
    if compute == "bfloat16" and device == "cpu":
        _float32_island(model.encoder.pos_conv_embed, torch=torch)
    hop = int(np.prod(config.conv_stride))
    enc = MertEncoder(source=source, model=model, processor=processor, device=device, sr=sr,
                      frame_rate_hz=sr / hop, num_states=config.num_hidden_layers + 1,
                      hidden_size=config.hidden_size,
                      min_samples=_receptive_field(config.conv_kernel, config.conv_stride),
                      dtype=compute, shape=EncoderShape.of(config))
    log.info("loaded encoder %s (%d hidden states × %d, %.1f frames/s) on %s as %s from %s",
             source.name, enc.num_states, enc.hidden_size, enc.frame_rate_hz, device, compute,
             path)
    return enc


def embed_audio(
    y: np.ndarray, *, encoder: MertEncoder, config: EmbedConfig
) -> tuple[np.ndarray, np.ndarray | None]:
    """Encode mono audio at ``encoder.sr`` in windows; pool over time.

    Windows of equal length are batched (``config.batch_size``; ``auto``: 8 on the CPU, as
    many as fit half the free memory on CUDA); the shorter last window runs alone, so no
    window is ever padded and each window's result does not depend on what it was batched
    with.

    Returns
    -------
    (layers, frames)
        float32 [layers + 1, hidden] mean over every frame of the clip, and float32
        [ceil(duration × frame_rate_hz), hidden] (None when ``frame_rate_hz`` is None).
    """
    sr = encoder.sr
    chunk = max(encoder.min_samples, round(config.chunk_s * sr))
    min_tail = max(encoder.min_samples, min(chunk, round(MIN_TAIL_S * sr)))
    bounds = chunk_bounds(len(y), chunk_samples=chunk, min_tail_samples=min_tail)
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, (a, b) in enumerate(bounds):
        by_length[b - a].append(i)
    frame_layer = config.frame_layer if config.frame_rate_hz is not None else None
    sums: list[np.ndarray | None] = [None] * len(bounds)
    seqs: list[np.ndarray | None] = [None] * len(bounds)
    counts = [0] * len(bounds)
    for length, idxs in by_length.items():
        size = encoder.batch_size(length, requested=config.batch_size)
        for k in range(0, len(idxs), size):
            batch = idxs[k: k + size]
            s, f = encoder.forward([y[bounds[i][0]: bounds[i][1]] for i in batch],
                                   frame_layer=frame_layer)
            for j, i in enumerate(batch):
                sums[i] = s[j]
                seqs[i] = None if f is None else f[j]
                counts[i] = f.shape[1] if f is not None else _frames_of(encoder, bounds[i])
    total = sum(counts)
    layers = (np.sum([s for s in sums if s is not None], axis=0) / total).astype(np.float32)
    if config.frame_rate_hz is None:
        return layers, None
    frames = np.concatenate([f for f in seqs if f is not None], axis=0)
    times = np.concatenate([a / sr + np.arange(n) / encoder.frame_rate_hz
                            for (a, _), n in zip(bounds, counts, strict=True)])
    pooled = pool_frames(frames, times, rate_hz=config.frame_rate_hz, duration_s=len(y) / sr)
    return layers, pooled


def _frames_of(encoder: MertEncoder, bound: tuple[int, int]) -> int:
    return int(encoder.model._get_feat_extract_output_lengths(bound[1] - bound[0]))


@dataclass(frozen=True)
class EncoderShape:
    """The sizes that decide a window's activation memory (from a HubertConfig)."""

    conv_dim: tuple[int, ...]
    conv_stride: tuple[int, ...]
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int

    @classmethod
    def of(cls, config: Any) -> EncoderShape:
        return cls(conv_dim=tuple(config.conv_dim), conv_stride=tuple(config.conv_stride),
                   hidden_size=config.hidden_size, intermediate_size=config.intermediate_size,
                   num_layers=config.num_hidden_layers, num_heads=config.num_attention_heads)


#: Bytes per element of each compute dtype.
_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


def window_bytes(*, window_samples: int, shape: EncoderShape, dtype_bytes: int) -> int:
    """Peak activation bytes one window adds to a forward pass (an upper estimate).

    Counted: the first convolution's output with its norm and activation copies (the
    largest tensor of the front end: 512 channels at 1/5 of the sample rate for MERT), every
    hidden state (kept: ``output_hidden_states``), one layer's attention scores (3 copies:
    scores, softmax, dropout view), feed-forward and q/k/v, and the float32 frame mean.
    """
    first = shape.conv_dim[0] * (window_samples // shape.conv_stride[0])
    frames = max(1, window_samples // int(np.prod(shape.conv_stride)))
    states = (shape.num_layers + 1) * frames * shape.hidden_size
    attention = 3 * shape.num_heads * frames * frames
    layer = frames * (2 * shape.intermediate_size + 4 * shape.hidden_size)
    elements = 3 * first + states + attention + layer
    return elements * dtype_bytes + frames * shape.hidden_size * 4


def windows_for_memory(*, free_bytes: int, window_samples: int, shape: EncoderShape,
                       dtype_bytes: int, fraction: float = 0.5, cap: int = 256) -> int:
    """Windows per batch that fit ``fraction`` of ``free_bytes`` (at least 1, at most ``cap``).

    A pure function of the numbers (``torch.cuda.mem_get_info``'s free bytes on CUDA), so it
    is tested without a GPU. ``cap`` bounds the batch where larger ones stop paying: past a
    few hundred windows a GPU is saturated and the batch only adds latency.
    """
    per = window_bytes(window_samples=window_samples, shape=shape, dtype_bytes=dtype_bytes)
    return max(1, min(cap, int(free_bytes * fraction) // per))


def _float32_island(module: Any, *, torch: Any) -> None:
    """Run one submodule in float32 inside a half-precision model (inputs cast in, out back).

    Why: on the CPU (torch 2.13, oneDNN) the bfloat16 grouped Conv1d of HuBERT's positional
    embedding (kernel 128, 16 groups) returns wrong values: relative error 1.03 against
    float32, 0.003 with oneDNN switched off. In float32 that one layer costs ~3 % of the
    FLOPs, and every other layer stays in bf16.
    """
    module.float()
    half = torch.bfloat16

    def to_float32(_m: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(a.float() if torch.is_tensor(a) else a for a in args)

    def back(_m: Any, _args: Any, out: Any) -> Any:
        return out.to(half) if torch.is_tensor(out) else out

    module.register_forward_pre_hook(to_float32)
    module.register_forward_hook(back)


def _receptive_field(kernels: list[int], strides: list[int]) -> int:
    """Samples one output frame of the convolution stack sees (400 for MERT-v1)."""
    field_, jump = 1, 1
    for k, s in zip(kernels, strides, strict=True):
        field_ += (k - 1) * jump
        jump *= s
    return field_
