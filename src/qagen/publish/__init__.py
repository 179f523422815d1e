"""The publish stage: a Hugging Face dataset folder (parquet configs, card, plots, exports) and
its push to the Hub. Heavy imports (datasets, matplotlib, huggingface_hub) happen at use."""

from qagen.publish.config import PublishConfig
from qagen.publish.hub import PushError, PushReport, push
from qagen.publish.stage import PublishReport, publish

__all__ = ["PublishConfig", "PublishReport", "PushError", "PushReport", "publish", "push"]
