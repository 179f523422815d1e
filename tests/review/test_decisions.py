"""The append-only decision log (``qagen.decisions``): conflicts, torn lines, stale rule."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pydantic import ValidationError

from qagen.decisions import (
    DecisionConflictError,
    ReviewTally,
    append_decision,
    latest_by_pair,
    load_decisions,
    pair_review,
)
from qagen.records.review import ReviewRecord, pair_content_hash

HASH = pair_content_hash(question="Q?", answer="A.")


def record(review_id: str, *, base: str | None = None, decision: str = "accept",
           **kw: str) -> ReviewRecord:
    return ReviewRecord(review_id=review_id, pair_id=kw.pop("pair_id", "p1"), clip_id="c",
                        reviewer="r", created_at="2026-12-06T00:00:00+00:00", decision=decision,
                        content_hash=kw.pop("content_hash", HASH), base_id=base, **kw)


def test_record_rules() -> None:
    with pytest.raises(ValidationError, match="a reject needs a reason"):
        record("x", decision="reject")
    with pytest.raises(ValidationError, match="a reject needs a reason"):
        record("x", decision="reject", reason="   ")
    with pytest.raises(ValidationError, match="an edit needs"):
        record("x", decision="edit", answer="only the answer")
    with pytest.raises(ValidationError, match="only an edit carries text"):
        record("x", decision="accept", answer="sneaked in")
    assert record("x", decision="reject", reason="wrong fact").reason == "wrong fact"


def test_append_checks_the_base_and_keeps_every_decision(tmp_path: Path) -> None:
    log = tmp_path / "reviews" / "reviews-x-00000.jsonl"
    append_decision(log, record("a"))
    with pytest.raises(DecisionConflictError, match="decided meanwhile") as err:
        append_decision(log, record("b"))  # a second tab that saw no decision
    assert err.value.latest is not None and err.value.latest.review_id == "a"
    append_decision(log, record("b", base="a", decision="reject", reason="vague"))
    append_decision(log, record("c", pair_id="p2"))  # another pair: its own chain
    assert [r.review_id for r in load_decisions(log)] == ["a", "b", "c"]
    assert latest_by_pair(load_decisions(log))["p1"].decision == "reject"
    with pytest.raises(DecisionConflictError, match="not in the log"):
        append_decision(log, record("d", pair_id="p3", base="nonexistent"))


def test_racing_appends_let_exactly_one_win(tmp_path: Path) -> None:
    log = tmp_path / "reviews-x-00000.jsonl"
    won: list[str] = []

    def post(i: int) -> None:
        try:
            append_decision(log, record(f"t{i}"))
            won.append(f"t{i}")
        except DecisionConflictError:
            pass

    threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    assert [r.review_id for r in load_decisions(log)] == won


def test_a_torn_line_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = tmp_path / "reviews-x-00000.jsonl"
    append_decision(log, record("a"))
    with log.open("a", encoding="utf-8") as fh:
        fh.write('{"review_id": "b", "pair_id"')  # a crash mid-write
    assert [r.review_id for r in load_decisions(log)] == ["a"]
    assert "skipped an unreadable decision" in caplog.text


def test_stale_decisions_are_flagged_and_not_applied() -> None:
    rec = record("a", decision="reject", reason="wrong fact")
    fresh = pair_review(rec, content_hash=HASH)
    stale = pair_review(rec, content_hash=pair_content_hash(question="Q?", answer="B."))
    assert fresh is not None and fresh.applied is rec and not fresh.stale
    assert stale is not None and stale.stale and stale.applied is None
    tally = ReviewTally()
    for review in (fresh, stale, None):
        tally.add(review)
    assert (tally.pairs, tally.reviewed, tally.rejected, tally.stale) == (3, 1, 1, 1)
    assert tally.reasons == {"wrong fact": 1}
