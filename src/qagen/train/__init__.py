"""The train stage: adapters that let a frozen LLM answer questions about music embeddings
(MU-LLaMA's zero-gated prefix adapter, LLark's projector). Heavy imports happen inside."""

from qagen.train.config import TrainConfig
from qagen.train.stage import train

__all__ = ["TrainConfig", "train"]
