"""Pydantic v2 record models: the single source of truth (``schemas/`` is generated)."""

from qagen.records.clip import AudioStatus, Clip, Split
from qagen.records.embedding import EmbeddingKind, EmbeddingRow, EmbedReason
from qagen.records.features import ChordSegment, ClipFeatures, FeatureStatus, TempoAgreement
from qagen.records.publish import PublishedClip, PublishedQA
from qagen.records.qa import QARecord, QARejected
from qagen.records.rejection import Rejection
from qagen.records.review import ReviewDecision, ReviewRecord
from qagen.records.stage import ShardMarker, StageReport, sum_reports, summary_rows
from qagen.records.training import (
    EvalAnswer,
    EvalReport,
    LossLogEntry,
    Prediction,
    TrainReport,
)

#: Every record model whose JSON Schema is exported to ``schemas/``.
RECORD_MODELS = {
    "clip": Clip, "clip_features": ClipFeatures, "qa_record": QARecord,
    "qa_rejected": QARejected, "rejection": Rejection,
    "embedding_row": EmbeddingRow, "published_clip": PublishedClip, "published_qa": PublishedQA,
    "loss_log_entry": LossLogEntry, "prediction": Prediction, "train_report": TrainReport,
    "eval_report": EvalReport, "eval_answer": EvalAnswer, "shard_marker": ShardMarker,
    "stage_report": StageReport, "review_record": ReviewRecord,
}

__all__ = [
    "RECORD_MODELS", "AudioStatus", "ChordSegment", "Clip", "ClipFeatures", "EmbedReason",
    "EmbeddingKind", "EmbeddingRow", "EvalAnswer", "EvalReport", "FeatureStatus", "LossLogEntry",
    "Prediction", "PublishedClip", "PublishedQA", "QARecord", "QARejected", "Rejection",
    "ReviewDecision", "ReviewRecord",
    "ShardMarker", "Split", "StageReport", "TempoAgreement", "TrainReport", "sum_reports",
    "summary_rows",
]
