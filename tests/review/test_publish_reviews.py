"""The publish stage applies the curators' decisions: rejected pairs out, edits in, a
``reviewed`` flag per row, review stats in the card, stale decisions ignored, a reviewed-only
subset, and a new decision redoes only its shard's rows."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from qagen.publish import PublishConfig, publish
from qagen.records.review import pair_content_hash
from qagen.workdir import WorkDir
from tests.review.conftest import pairs_of

N_ACCEPTED = 13


def published_rows(folder: Path) -> dict[str, dict[str, object]]:
    rows = {}
    for path in sorted((folder / "data" / "qa").glob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            rows[row["qa_id"]] = row
    return rows


def decide(client: TestClient, rec, **body: object) -> None:  # type: ignore[no-untyped-def]
    h = pair_content_hash(question=rec.question, answer=rec.answer)
    got = client.post(f"/api/pairs/{rec.qa_id}/decisions", json={"content_hash": h, **body})
    assert got.status_code == 201, got.text


def test_publish_honours_decisions(client: TestClient, work: WorkDir) -> None:
    first = publish(work)
    assert len(published_rows(work.published)) == N_ACCEPTED
    assert not any(r["reviewed"] for r in published_rows(work.published).values())
    assert "No curator has reviewed these pairs yet" in (work.published / "README.md").read_text()
    mtt = pairs_of(work, "mtt-00000")
    keep, drop, fix = mtt[0], mtt[1], mtt[2]
    decide(client, keep, decision="accept")
    decide(client, drop, decision="reject", reason="wrong fact")
    decide(client, fix, decision="edit", question=fix.question, answer="Roughly 100 BPM.")
    report = publish(work)
    assert (first.shards_reused, report.shards_reused) == (0, 1)  # only mtt's shard redone
    rows = published_rows(work.published)
    assert drop.qa_id not in rows and len(rows) == N_ACCEPTED - 1
    assert rows[keep.qa_id]["reviewed"] and not rows[keep.qa_id]["edited"]
    assert rows[keep.qa_id]["answer"] == keep.answer
    assert rows[fix.qa_id]["answer"] == "Roughly 100 BPM." and rows[fix.qa_id]["edited"]
    assert sum(bool(r["reviewed"]) for r in rows.values()) == 2
    assert report.rejected == {"reviewer_rejected": 1}
    card = (work.published / "README.md").read_text(encoding="utf-8")
    assert "3 of\n13 generated pairs reviewed (1 accepted as written,\n1 edited, 1 rejected" in card
    assert "Rejected because: wrong fact 1." in card
    export = json.loads((work.published / "exports" / "musicqa" / "test.json").read_text())
    answers = [r["conversation"][1]["value"] for r in export]
    assert ("Roughly 100 BPM." in answers) == (rows[fix.qa_id]["split"] == "test")

    only = publish(work, config=PublishConfig(out_dir=work.root / "reviewed",
                                              reviewed_only=True))
    subset = published_rows(work.root / "reviewed")
    assert set(subset) == {keep.qa_id, fix.qa_id}
    assert only.rejected == {"reviewer_rejected": 1, "not_reviewed": N_ACCEPTED - 3}
    assert "holds only the reviewed pairs" in (work.root / "reviewed" / "README.md").read_text()


def test_a_stale_decision_is_not_applied(client: TestClient, work: WorkDir) -> None:
    from qagen.manifest import write_records
    from qagen.records import QARecord

    recs = pairs_of(work, "musicnet-00000")
    decide(client, recs[0], decision="reject", reason="vague")
    recs[0] = recs[0].model_copy(update={"answer": "A new answer after a re-run."})
    write_records(work.qa_shard("musicnet-00000"), recs, QARecord)
    report = publish(work)
    rows = published_rows(work.published)
    assert rows[recs[0].qa_id]["answer"] == "A new answer after a re-run."
    assert not rows[recs[0].qa_id]["reviewed"] and report.rejected == {}
    assert "1\ndecisions are stale" in (work.published / "README.md").read_text()
