"""What the curators decided (``qagen review``), as the publish stage applies it.

Rules (the card states them): the latest decision on a pair applies unless it is stale (made on
another text than the pair holds now); ``reject`` leaves the pair out, ``edit`` publishes the
reviewer's text, ``accept`` the generated one; both mark the row ``reviewed``. Decisions on
pairs the generate stage rejected are labels for the gate and publish nothing.
"""

from __future__ import annotations

from qagen.decisions import PairReview, ReviewTally, latest_by_pair, load_decisions, pair_review
from qagen.records import QARecord, ReviewRecord
from qagen.records.review import pair_content_hash
from qagen.stats import read_columns
from qagen.workdir import WorkDir


def shard_decisions(work: WorkDir, key: str) -> dict[str, ReviewRecord]:
    """The latest decision on each pair of shard ``key`` (empty without a log)."""
    return latest_by_pair(load_decisions(work.reviews_shard(key)))


def review_of(rec: QARecord, decisions: dict[str, ReviewRecord]) -> PairReview | None:
    """The review state of one accepted pair."""
    return pair_review(decisions.get(rec.qa_id),
                       content_hash=pair_content_hash(question=rec.question, answer=rec.answer))


def review_tally(work: WorkDir) -> ReviewTally:
    """Decisions over every accepted pair of the work dir (three columns read per shard)."""
    tally = ReviewTally()
    for key in work.manifest_shards("clips"):
        path = work.qa_shard(key)
        if not path.is_file():
            continue
        decisions = shard_decisions(work, key)
        cols = read_columns(path, ["qa_id", "question", "answer"])
        for qa_id, question, answer in zip(*cols.values(), strict=True):
            tally.add(pair_review(decisions.get(qa_id), content_hash=pair_content_hash(
                question=question, answer=answer)))
    return tally
