"""``EvaluateConfig``: how a trained run is asked to answer its held-out questions."""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict, Field


class EvaluateConfig(BaseModel):
    """Parameters of the evaluate stage (greedy decoding, so no sampling fields)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_new_tokens: int = Field(default=64, ge=1)
    batch_size: int = Field(default=8, ge=1)
    baseline: bool = Field(default=True, description="Also answer with the LM alone (zero gate /"
                                                     " no audio) so the delta is visible.")
    shuffled_audio: bool = Field(
        default=True, description="Also answer with every pair fed another clip's audio: the "
        "ablation that shows whether answers come from the audio.")
    max_pairs: int | None = Field(default=None, ge=1,
                                  description="Cap held-out pairs (quick runs).")
    device: str | None = Field(default=None, description="None = cuda when available, else cpu.")
    threads: int | None = Field(default=None, ge=1,
                                description="CPU intra-op threads (None = torch's default).")

    def fingerprint(self) -> str:
        """Hash of the fields that change the predictions."""
        fields = self.model_dump(exclude={"device", "batch_size", "threads"})
        blob = json.dumps(fields, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
