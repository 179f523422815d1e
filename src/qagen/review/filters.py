"""The clip list's filters: which clips have a pair that matches (query parameters, typed)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from qagen.decisions import PairReview
from qagen.review.catalog import ClipView, PairView


class PairFilter(BaseModel):
    """Empty fields match everything. ``unreviewed`` keeps pairs with no applied decision (none
    yet, or only a stale one)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    source: str = ""
    split: str = ""
    kind: str = ""
    status: str = Field(default="", description="accepted | rejected (the generate stage's).")
    reason: str = Field(default="", description="The generate stage's rejection reason.")
    min_judge: float | None = Field(default=None, ge=1.0, le=5.0)
    max_judge: float | None = Field(default=None, ge=1.0, le=5.0)
    unreviewed: bool = False

    def clip_matches(self, clip: ClipView) -> bool:
        return ((not self.source or clip.clip.source == self.source)
                and (not self.split or clip.split == self.split))

    def pair_matches(self, pair: PairView, review: PairReview | None) -> bool:
        if self.kind and pair.kind != self.kind:
            return False
        if self.status and pair.status != self.status:
            return False
        if self.reason and pair.reason != self.reason:
            return False
        if self.min_judge is not None and (pair.judge_mean is None
                                           or pair.judge_mean < self.min_judge):
            return False
        if self.max_judge is not None and (pair.judge_mean is None
                                           or pair.judge_mean > self.max_judge):
            return False
        return not (self.unreviewed and review is not None and review.applied is not None)

    def query(self) -> str:
        """The filter as a query string (links keep it)."""
        from urllib.parse import urlencode

        return urlencode({k: v for k, v in self.model_dump().items()
                          if v not in ("", None, False)})
