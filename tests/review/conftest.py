"""A small finished work dir for the review app: the publish tests' ``make_work`` plus a pair
whose answer is markup (``<script>``), which every page must show as text."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qagen.manifest import read_records, write_records
from qagen.records import QARecord
from qagen.records.qa import QAKind
from qagen.review.app import create_app
from qagen.workdir import WorkDir
from tests.publish.conftest import make_work

SCRIPT = "<script>alert(1)</script>"
SCRIPT_SHARD = "mtt-00000"


def make_review_work(root: Path) -> WorkDir:
    """``make_work`` with one more pair, on the first mtt clip, answering ``SCRIPT``."""
    work = make_work(root)
    path = work.qa_shard(SCRIPT_SHARD)
    recs = read_records(path, QARecord)
    first = recs[0]
    question = "Which instrument carries the melody here?"
    recs.append(first.model_copy(update={
        "qa_id": QARecord.make_id(first.clip_id, "llark_mir", question), "question": question,
        "answer": f"A piano. {SCRIPT}", "kind": QAKind.instrumentation}))
    write_records(path, recs, QARecord)
    return work


@pytest.fixture
def work(tmp_path: Path) -> WorkDir:
    return make_review_work(tmp_path)


@pytest.fixture
def client(work: WorkDir) -> TestClient:
    return TestClient(create_app(work, reviewer="tester", allowed_hosts=("testserver",)))


def pairs_of(work: WorkDir, key: str) -> list[QARecord]:
    return read_records(work.qa_shard(key), QARecord)
