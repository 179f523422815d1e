"""Which torch device to run on: one rule for embed, train and evaluate.

Why a module: ``--device cuda`` on a machine without a usable GPU must be a one-line
``ConfigError`` naming the fix before any work, not a CUDA traceback minutes into a stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qagen.errors import ConfigError

#: Device nodes a GPU driver creates (NVIDIA, ROCm); with none of them CUDA is unavailable.
GPU_DRIVER_NODES = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/kfd")


def gpu_driver_present() -> bool:
    """Whether a GPU driver is loaded, checked without importing torch.

    Why: resolving ``auto`` decides cache keys before any work, and a re-run with nothing to
    do should not pay torch's import (1-2 s) to learn that a CPU machine has no GPU.
    """
    return any(Path(node).exists() for node in GPU_DRIVER_NODES)


def resolve_device(requested: str | None, *, torch: Any = None) -> str:
    """``"cuda"``/``"cuda:N"``/``"cpu"`` for ``requested`` (``None`` or ``"auto"``: CUDA when
    available, else CPU).

    Raises
    ------
    ConfigError
        An unknown device name, or CUDA requested where torch sees no CUDA device.
    """
    name = (requested or "auto").strip().lower()
    if name == "auto" and torch is None and not gpu_driver_present():
        return "cpu"  # without a driver torch sees no GPU: no need to import it to know
    if torch is None:
        import torch
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    kind, _, index = name.partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()) or (kind == "cpu" and index):
        raise ConfigError(f"unknown device {requested!r}: use auto, cpu, cuda or cuda:N")
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"device {requested!r} asked for, but torch sees no CUDA GPU "
                              f"(torch {torch.__version__}); use --device cpu or auto")
        if index and int(index) >= count:
            raise ConfigError(f"device {requested!r}: torch sees {count} CUDA GPU(s); "
                              f"use cuda:0 … cuda:{count - 1}")
    return name


#: Accepted compute-dtype spellings → torch dtype names.
DTYPE_NAMES = {"fp32": "float32", "float32": "float32", "fp16": "float16", "float16": "float16",
               "half": "float16", "bf16": "bfloat16", "bfloat16": "bfloat16"}


def resolve_dtype(requested: str | None, *, device: str, torch: Any = None) -> str:
    """The torch dtype name (``float32``/``float16``/``bfloat16``) a model computes in.

    ``auto`` (or ``None``) is bfloat16 on a CUDA device that supports it, else float32: bf16
    keeps fp32's range (no overflow in long sums, unlike fp16) at half the memory and several
    times the tensor-core throughput. On ``cpu`` nothing is imported.

    Raises
    ------
    ConfigError
        An unknown dtype name.
    """
    name = (requested or "auto").strip().lower()
    if name != "auto":
        if name not in DTYPE_NAMES:
            raise ConfigError(f"unknown dtype {requested!r}: use auto, fp32, fp16 or bf16")
        return DTYPE_NAMES[name]
    if not device.startswith("cuda"):
        return "float32"
    if torch is None:
        import torch
    return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
