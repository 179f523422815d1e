"""The curators' decision log: ``reviews/reviews-<shard>.jsonl``, append-only, one file per shard.

Why core: the review stage writes it and the publish stage reads it, and stages never import
each other. Why one file per shard: shard k of every manifest covers the same clips, so the
publish stage takes shard k's log as an input of shard k (a new decision redoes only that
shard). Appends hold an exclusive ``flock`` on the file while they check the pair's latest
decision and write one line, so two tabs (or two servers) never interleave or lose a decision.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from qagen.records.review import ReviewDecision, ReviewRecord

log = logging.getLogger(__name__)


class DecisionConflictError(Exception):
    """Another decision on the pair was appended since the reviewer loaded it."""

    def __init__(self, latest: ReviewRecord | None) -> None:
        super().__init__(
            "the decision you based this on is not in the log" if latest is None else
            f"pair {latest.pair_id} was decided meanwhile ({latest.decision.value} by "
            f"{latest.reviewer} at {latest.created_at}); reload and decide again")
        self.latest = latest


def load_decisions(path: Path) -> list[ReviewRecord]:
    """Every decision in one log, in append order; a torn or invalid line (a crash mid-write,
    a hand edit) is skipped with a warning, never fatal."""
    if not path.is_file():
        return []
    out = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                out.append(ReviewRecord.model_validate_json(line))
            except ValidationError as exc:
                log.warning("%s:%d: skipped an unreadable decision (%s)", path, n,
                            exc.errors()[0]["msg"])
    return out


def latest_by_pair(records: Iterable[ReviewRecord]) -> dict[str, ReviewRecord]:
    """The latest decision on each pair (the last appended)."""
    return {r.pair_id: r for r in records}


def append_decision(path: Path, record: ReviewRecord) -> ReviewRecord:
    """Append ``record`` unless the pair's latest decision is not ``record.base_id``.

    Raises
    ------
    DecisionConflictError
        The pair has a newer decision than the one the reviewer saw; nothing is written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (record.model_dump_json() + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        latest = latest_by_pair(r for r in load_decisions(path)
                                if r.pair_id == record.pair_id).get(record.pair_id)
        if (latest.review_id if latest else None) != record.base_id:
            raise DecisionConflictError(latest)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)  # releases the lock
    return record


@dataclass(frozen=True)
class PairReview:
    """Where one pair stands: its latest decision, and whether that decision is stale (made on
    another text than the pair holds now: then it is shown, flagged, and never applied)."""

    latest: ReviewRecord
    stale: bool

    @property
    def applied(self) -> ReviewRecord | None:
        """The decision that counts, or None when stale."""
        return None if self.stale else self.latest


def pair_review(latest: ReviewRecord | None, *, content_hash: str) -> PairReview | None:
    """The review state of a pair whose current text hashes to ``content_hash``."""
    if latest is None:
        return None
    return PairReview(latest=latest, stale=latest.content_hash != content_hash)


@dataclass
class ReviewTally:
    """Counts of the decisions that apply to a set of pairs (the card's review section)."""

    pairs: int = 0
    reviewed: int = 0
    accepted: int = 0
    edited: int = 0
    rejected: int = 0
    stale: int = 0
    reasons: Counter[str] | None = None

    def add(self, review: PairReview | None) -> None:
        """Count one pair."""
        self.pairs += 1
        if review is None:
            return
        if review.stale:
            self.stale += 1
            return
        self.reviewed += 1
        decision = review.latest.decision
        if decision is ReviewDecision.reject:
            self.rejected += 1
            self.reasons = self.reasons or Counter()
            self.reasons[(review.latest.reason or "").strip()] += 1
        elif decision is ReviewDecision.edit:
            self.edited += 1
        else:
            self.accepted += 1
