"""``RunDir``: every path of one train run under ``WORKDIR/train/<run>/``, defined once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qagen.workdir import WorkDir


@dataclass(frozen=True)
class RunDir:
    """Layout of ``WORKDIR/train/<run>/``.

    ``config.json`` (train config, feature shape, fingerprint), ``split.json`` (clip ids per
    side), ``loss.jsonl``, ``checkpoints/step-NNNNNN.pt`` (adapter + optimizer + scheduler +
    RNG), ``adapter.safetensors`` (trained weights only), ``report.json`` (present = finished),
    ``README.md`` (model card), ``eval/`` (predictions and metrics).
    """

    root: Path

    @classmethod
    def of(cls, work: WorkDir, run: str) -> RunDir:
        return cls(work.root / "train" / run)

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def split(self) -> Path:
        return self.root / "split.json"

    @property
    def loss_log(self) -> Path:
        return self.root / "loss.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"step-{step:06d}.pt"

    @property
    def adapter(self) -> Path:
        return self.root / "adapter.safetensors"

    @property
    def report(self) -> Path:
        return self.root / "report.json"

    @property
    def card(self) -> Path:
        return self.root / "README.md"

    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"

    @property
    def predictions(self) -> Path:
        return self.eval_dir / "predictions.jsonl"

    @property
    def baseline_predictions(self) -> Path:
        return self.eval_dir / "baseline_predictions.jsonl"

    @property
    def metrics(self) -> Path:
        return self.eval_dir / "metrics.json"
