"""Which torch device to run on: one rule for embed, train and evaluate.

Why a module: ``--device cuda`` on a machine without a usable GPU must be a one-line
``ConfigError`` naming the fix before any work, not a CUDA traceback minutes into a stage.
"""

from __future__ import annotations

from typing import Any

from qagen.errors import ConfigError


def resolve_device(requested: str | None, *, torch: Any = None) -> str:
    """``"cuda"``/``"cuda:N"``/``"cpu"`` for ``requested`` (``None`` or ``"auto"``: CUDA when
    available, else CPU).

    Raises
    ------
    ConfigError
        An unknown device name, or CUDA requested where torch sees no CUDA device.
    """
    if torch is None:
        import torch
    name = (requested or "auto").strip().lower()
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
