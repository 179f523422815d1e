"""What a curator reviews: every clip of the work dir with its features and all its pairs
(accepted and rejected, with reasons), read once when the server starts.

Why in memory: the pages filter and count over every pair on each request; a work dir's pairs
are text only (the demo's 465 take well under a megabyte). Decisions are not cached here: they
are re-read from the logs on each request, so two tabs (or two servers) see each other's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from qagen.decisions import PairReview, latest_by_pair, load_decisions, pair_review
from qagen.manifest import iter_records
from qagen.records import Clip, ClipFeatures, QARecord, QARejected
from qagen.records.review import pair_content_hash, rejected_pair_id
from qagen.stats import hub_split
from qagen.workdir import WorkDir, dataset_roots


@dataclass(frozen=True)
class PairView:
    """One pair as the review page shows it; ``status`` is the generate stage's verdict."""

    pair_id: str
    clip_id: str
    shard: str
    status: str  # accepted | rejected
    question: str
    answer: str
    kind: str
    question_form: str
    template_id: str
    reason: str | None = None  # the generate stage's rejection reason
    detail: str | None = None
    judge_mean: float | None = None
    verified: bool = False

    @property
    def content_hash(self) -> str:
        return pair_content_hash(question=self.question, answer=self.answer)


@dataclass
class ClipView:
    """One clip, its measured features (None: not measured) and its pairs in file order."""

    clip: Clip
    shard: str
    features: ClipFeatures | None
    pairs: list[PairView] = field(default_factory=list)

    @property
    def split(self) -> str:
        return hub_split(self.clip.split.value)


def _accepted(rec: QARecord, shard: str) -> PairView:
    return PairView(pair_id=rec.qa_id, clip_id=rec.clip_id, shard=shard, status="accepted",
                    question=rec.question, answer=rec.answer, kind=rec.kind.value,
                    question_form=rec.question_form.value, template_id=rec.template_id,
                    judge_mean=rec.judge.mean if rec.judge else None, verified=rec.verified)


def _rejected(rej: QARejected, shard: str) -> PairView:
    pair_id = rejected_pair_id(clip_id=rej.clip_id, template_id=rej.template_id,
                               reason=rej.reason.value, question=rej.question, answer=rej.answer,
                               request_id=rej.request_id, attempt=rej.attempt)
    return PairView(pair_id=pair_id, clip_id=rej.clip_id, shard=shard, status="rejected",
                    question=rej.question or "", answer=rej.answer or "",
                    kind=rej.kind or "", question_form="", template_id=rej.template_id,
                    reason=rej.reason.value, detail=rej.detail)


class Catalog:
    """Clips and pairs of one work dir, by id, in manifest order."""

    def __init__(self, work: WorkDir) -> None:
        self.work = work
        self.roots: dict[str, Path] = dataset_roots(work)
        self.clips: dict[str, ClipView] = {}
        self.pairs: dict[str, PairView] = {}
        for key, path in work.manifest_shards("clips").items():
            feats_path = work.manifest_shard("features", key)
            feats = ({f.clip_id: f for f in iter_records(feats_path, ClipFeatures)}
                     if feats_path.is_file() else {})
            for clip in iter_records(path, Clip):
                self.clips[clip.clip_id] = ClipView(clip=clip, shard=key,
                                                    features=feats.get(clip.clip_id))
            views: list[PairView] = []
            if work.qa_shard(key).is_file():
                views += [_accepted(r, key) for r in iter_records(work.qa_shard(key), QARecord)]
            if work.qa_rejected_shard(key).is_file():
                views += [_rejected(r, key)
                          for r in iter_records(work.qa_rejected_shard(key), QARejected)]
            for view in views:
                if view.clip_id in self.clips and view.pair_id not in self.pairs:
                    self.pairs[view.pair_id] = view
                    self.clips[view.clip_id].pairs.append(view)

    def reviews(self) -> dict[str, PairReview]:
        """The review state of every pair that has a decision (logs re-read on each call)."""
        out: dict[str, PairReview] = {}
        for key in self.work.manifest_shards("clips"):
            latest = latest_by_pair(load_decisions(self.work.reviews_shard(key)))
            for pair_id, rec in latest.items():
                view = self.pairs.get(pair_id)
                review = pair_review(rec, content_hash=view.content_hash) if view else None
                if review is not None:
                    out[pair_id] = review
        return out

    def reviews_of(self, clip: ClipView) -> dict[str, PairReview]:
        """The review state of the pairs of one clip (its shard's log only)."""
        latest = latest_by_pair(load_decisions(self.work.reviews_shard(clip.shard)))
        out = {}
        for view in clip.pairs:
            review = pair_review(latest.get(view.pair_id), content_hash=view.content_hash)
            if review is not None:
                out[view.pair_id] = review
        return out
