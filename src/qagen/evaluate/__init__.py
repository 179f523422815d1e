"""The evaluate stage: a trained adapter answers held-out questions; answers are scored."""

from qagen.evaluate.config import EvaluateConfig
from qagen.evaluate.stage import evaluate

__all__ = ["EvaluateConfig", "evaluate"]
