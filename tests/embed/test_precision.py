"""Compute dtype and batch sizing of the embed stage: half precision stays close to float32,
is keyed into the cache, and windows per batch follow free device memory."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from qagen.devices import resolve_dtype
from qagen.embed.config import CPU_BATCH, TINY_ENCODER, EmbedConfig
from qagen.embed.encoder import (
    EncoderShape,
    embed_audio,
    load_encoder,
    resolve_encoder,
    window_bytes,
    windows_for_memory,
)
from qagen.embed.stage import embed
from qagen.errors import ConfigError
from qagen.ingest import ingest
from qagen.workdir import WorkDir

torch = pytest.importorskip("torch")

SR = 24000
#: bf16 keeps 8 mantissa bits (unit roundoff 0.39 %): every pooled vector within 2 % of
#: float32 in relative L2 norm (measured on the tiny encoder: layers ≤ 0.5 %, frames ≤ 1 %).
BF16_REL_TOL = 0.02
#: fp16 keeps 11 bits (0.05 %): measured ≤ 0.15 %.
FP16_REL_TOL = 0.005

DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
#: MERT-v1-330M's transformer and MERT-v1's feature encoder (m-a-p/MERT-v1-330M config.json).
MERT_330M = EncoderShape(conv_dim=(512,) * 7, conv_stride=(5, 2, 2, 2, 2, 2, 2),
                         hidden_size=1024, intermediate_size=4096, num_layers=24, num_heads=16)


def _music(seconds: float) -> np.ndarray:
    """Three harmonics of 220 Hz with a little noise (not a pure tone: every filter moves)."""
    t = np.arange(int(seconds * SR)) / SR
    y = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 4))
    noise = 0.01 * np.random.default_rng(0).standard_normal(len(t))
    return (0.3 * y + noise).astype(np.float32)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    """Largest relative L2 error over the rows of ``a`` against ``b``."""
    return float((np.linalg.norm(a - b, axis=-1) / np.linalg.norm(b, axis=-1)).max())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("dtype", "tol"), [("bfloat16", BF16_REL_TOL),
                                            ("float16", FP16_REL_TOL)])
def test_half_precision_embeddings_match_float32(tiny_home: Path, device: str, dtype: str,
                                                 tol: float) -> None:
    if device == "cpu" and dtype == "float16":
        pytest.skip("fp16 is a CUDA dtype; CPU runs bf16")
    source = resolve_encoder(TINY_ENCODER, cache_root=tiny_home)
    y = _music(7.3)  # one full 5 s window and a tail: two batch shapes
    config = EmbedConfig(device=device)
    ref = embed_audio(y, encoder=load_encoder(source, sr=SR, device=device), config=config)
    enc = load_encoder(source, sr=SR, device=device, dtype=dtype)
    assert enc.dtype == dtype and next(enc.model.parameters()).dtype == getattr(torch, dtype)
    layers, frames = embed_audio(y, encoder=enc, config=config)
    assert ref[1] is not None and frames is not None
    assert layers.shape == ref[0].shape and frames.shape == ref[1].shape
    assert _rel(layers, ref[0]) < tol
    assert _rel(frames, ref[1]) < tol
    assert not np.array_equal(layers, ref[0])  # it really computed in another dtype


def test_dtype_names_and_auto() -> None:
    assert [resolve_dtype(n, device="cpu") for n in ("fp32", "FP16", "bf16", "bfloat16")] == [
        "float32", "float16", "bfloat16", "bfloat16"]
    assert resolve_dtype("auto", device="cpu") == "float32"
    assert resolve_dtype(None, device="cpu") == "float32"
    # auto on CUDA asks torch whether the card does bf16 (an A100/H100 does, a V100 not).
    for supported, expected in ((True, "bfloat16"), (False, "float32")):
        card = SimpleNamespace(cuda=SimpleNamespace(is_bf16_supported=lambda s=supported: s))
        assert resolve_dtype("auto", device="cuda:0", torch=card) == expected
    with pytest.raises(ConfigError, match="unknown dtype 'int8'"):
        resolve_dtype("int8", device="cpu")
    assert EmbedConfig(compute_dtype="bf16").compute_dtype == "bfloat16"  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="compute_dtype"):
        EmbedConfig(compute_dtype="int8")  # type: ignore[arg-type]
    assert EmbedConfig(device="cuda:1").device == "cuda:1"
    with pytest.raises(ValueError, match="device"):
        EmbedConfig(device="tpu")


def test_compute_dtype_is_keyed_but_float32_keeps_the_old_identity() -> None:
    config = EmbedConfig(compute_dtype="bfloat16")
    old = EmbedConfig().output_params()
    assert "compute_dtype" not in old  # fp32 caches from before the option stay valid
    assert config.output_params() == old
    assert config.output_params(compute_dtype="bfloat16") == {**old,
                                                              "compute_dtype": "bfloat16"}
    assert EmbedConfig(batch_size=3, device="cpu", threads=1).output_params() == old


def test_a_bf16_run_does_not_reuse_float32_results(audio_folder: Path, tmp_path: Path,
                                                   tiny_home: Path) -> None:
    work = WorkDir(tmp_path / "work")
    ingest("audiofolder", audio_folder, work=work)
    kw = {"cache_root": tiny_home, "strict": True}
    fp32 = embed(work, config=EmbedConfig(device="cpu", compute_dtype="fp32"), **kw)  # type: ignore[arg-type]
    again = embed(work, config=EmbedConfig(device="cpu"), **kw)  # auto on the CPU = fp32
    assert again.shards_reused == again.shards == fp32.shards
    bf16 = embed(work, config=EmbedConfig(device="cpu", compute_dtype="bf16"), **kw)  # type: ignore[arg-type]
    assert bf16.shards_reused == 0
    assert bf16.counts == fp32.counts  # computed again (the copy hits its twin, as before)


def test_windows_per_batch_follow_free_memory() -> None:
    five_s = 5 * SR
    per = window_bytes(window_samples=five_s, shape=MERT_330M, dtype_bytes=2)
    assert 40e6 < per < 120e6  # a 5 s window of MERT-330M in bf16: tens of MB
    gib = 1 << 30
    fit = [windows_for_memory(free_bytes=f * gib, window_samples=five_s, shape=MERT_330M,
                              dtype_bytes=2) for f in (0, 1, 4, 16, 70)]
    assert fit[0] == 1  # never zero: a full device still tries one window
    assert fit == sorted(fit) and fit[1] < fit[2] < fit[3]
    assert fit[-1] == 256  # an empty H100 is capped, not thousands
    assert fit[2] == (4 * gib // 2) // per
    fp32 = windows_for_memory(free_bytes=4 * gib, window_samples=five_s, shape=MERT_330M,
                              dtype_bytes=4)
    assert fp32 < fit[2]
    longer = windows_for_memory(free_bytes=4 * gib, window_samples=4 * five_s, shape=MERT_330M,
                                dtype_bytes=2)
    assert longer < fit[2] // 4 + 1  # attention grows with the square of the window


def test_cpu_batch_is_the_configured_or_default(tiny_home: Path) -> None:
    enc = load_encoder(resolve_encoder(TINY_ENCODER, cache_root=tiny_home), sr=SR, device="cpu")
    assert enc.batch_size(5 * SR) == CPU_BATCH
    assert enc.batch_size(5 * SR, requested=3) == 3
    assert enc.shape is not None and enc.shape.num_layers == 4
