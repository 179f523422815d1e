"""The review app's routes through FastAPI's TestClient: pages, audio ranges, decisions and
every bad input (path traversal, unknown pair, malformed JSON, missing reason, stale review,
concurrent decisions, foreign Host, non-JSON posts)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from qagen.decisions import load_decisions
from qagen.manifest import read_records, write_records
from qagen.records import Clip
from qagen.records.review import pair_content_hash
from qagen.review.app import create_app
from qagen.workdir import WorkDir, dataset_roots
from tests.review.conftest import SCRIPT, SCRIPT_SHARD, pairs_of

N_PAIRS = 6 * 2 + 1 + 6  # accepted (2 per clip + the script pair) + one rejected per clip


def post(client: TestClient, pair_id: str, **body: object):  # type: ignore[no-untyped-def]
    return client.post(f"/api/pairs/{pair_id}/decisions", json=body)


def test_index_lists_clips_with_filters_and_progress(client: TestClient, work: WorkDir) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert f"reviewed 0 of {N_PAIRS}" in page.text
    assert page.text.count('class="clip-link"') == 6
    only_mtt = client.get("/", params={"source": "mtt", "split": "test"})
    assert only_mtt.text.count('class="clip-link"') == 1
    rejected = client.get("/", params={"status": "rejected", "reason": "junk"})
    assert rejected.text.count('class="clip-link"') == 6
    assert client.get("/", params={"kind": "instrumentation"}).text.count('class="clip-link"') == 1
    assert client.get("/", params={"min_judge": 4}).text.count('class="clip-link"') == 0
    assert client.get("/", params={"min_judge": 9}).status_code == 422
    rec = pairs_of(work, "musicnet-00000")[0]
    assert post(client, rec.qa_id, decision="accept", content_hash=pair_content_hash(
        question=rec.question, answer=rec.answer)).status_code == 201
    page = client.get("/", params={"unreviewed": "true", "status": "accepted"})
    assert f"reviewed 1 of {N_PAIRS}" in page.text
    assert page.text.count('class="clip-link"') == 6  # the clip still has an unreviewed pair


def test_clip_page_shows_timeline_facts_and_escapes_model_text(
        client: TestClient, work: WorkDir) -> None:
    rec = next(r for r in pairs_of(work, SCRIPT_SHARD) if SCRIPT in r.answer)
    page = client.get(f"/clips/{rec.clip_id}")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>alert(1)" not in page.text
    assert page.text.count("<script") == 1  # only the page's own script file
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert 'class="wave"' in page.text and 'class="chord"' in page.text
    assert f'data-pair-id="{rec.qa_id}"' in page.text and "as an AI" in page.text  # rejected
    assert "A minor" in page.text and "90.0 BPM" in page.text
    assert client.get("/clips/nope-0000").status_code == 404


def test_audio_serves_the_window_with_ranges(client: TestClient, work: WorkDir) -> None:
    clip_id = pairs_of(work, "mtt-00000")[0].clip_id
    whole = client.get(f"/audio/{clip_id}.wav")
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    assert whole.content[:4] == b"RIFF"
    assert len(whole.content) == 44 + 2 * 4000  # 0.5 s at 8 kHz, 16-bit mono
    part = client.get(f"/audio/{clip_id}.wav", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"
    tail = client.get(f"/audio/{clip_id}.wav", headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == whole.content[-10:]
    bad = client.get(f"/audio/{clip_id}.wav", headers={"Range": "bytes=99999-"})
    assert bad.status_code == 416
    assert bad.headers["content-range"] == f"bytes */{len(whole.content)}"


def test_audio_refuses_paths_outside_the_dataset(work: WorkDir, tmp_path: Path) -> None:
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"not yours")
    root = dataset_roots(work)["mtt"]
    (root / "audio" / "escape.wav").symlink_to(secret)  # inside by name, outside when resolved
    path = work.manifest_shard("clips", "mtt-00000")
    clips = read_records(path, Clip)
    clips[0] = clips[0].model_copy(update={"audio_path": "audio/escape.wav"})
    write_records(path, clips, Clip)
    client = TestClient(create_app(work, reviewer="t", allowed_hosts=("testserver",)))
    refused = client.get(f"/audio/{clips[0].clip_id}.wav")
    assert refused.status_code == 403 and "outside the dataset root" in refused.json()["detail"]
    assert b"not yours" not in refused.content
    page = client.get(f"/clips/{clips[0].clip_id}")
    assert page.status_code == 200 and 'id="audio-error"' in page.text
    for url in ("/audio/..%2F..%2Fsecret.wav", "/audio/../../secret.wav",
                "/clips/..%2F..%2Fetc%2Fpasswd", "/static/../app.py"):
        got = client.get(url)
        assert got.status_code == 404, url
        assert b"not yours" not in got.content and b"create_app" not in got.content


def test_decisions_are_kept_and_bad_posts_get_clear_4xx(client: TestClient,
                                                       work: WorkDir) -> None:
    rec = pairs_of(work, "mtt-00000")[0]
    h = pair_content_hash(question=rec.question, answer=rec.answer)
    assert post(client, "nope", decision="accept", content_hash=h).status_code == 404
    bad_json = client.post(f"/api/pairs/{rec.qa_id}/decisions", content=b"{decision: accept",
                           headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 422 and "invalid decision" in bad_json.json()["detail"]
    form = client.post(f"/api/pairs/{rec.qa_id}/decisions", data={"decision": "accept"})
    assert form.status_code == 415
    no_reason = post(client, rec.qa_id, decision="reject", content_hash=h)
    assert no_reason.status_code == 422
    assert no_reason.json()["detail"] == "invalid decision: a reject needs a reason"
    assert post(client, rec.qa_id, decision="maybe", content_hash=h).status_code == 422
    assert post(client, rec.qa_id, decision="accept").status_code == 422  # no content hash
    assert post(client, rec.qa_id, decision="accept", content_hash=h,
                admin=True).status_code == 422  # unknown field
    assert post(client, rec.qa_id, decision="edit", content_hash=h,
                answer="only half").status_code == 422
    assert load_decisions(work.reviews_shard("mtt-00000")) == []  # nothing bad was written
    ok = post(client, rec.qa_id, decision="reject", reason="wrong fact", content_hash=h)
    assert ok.status_code == 201
    assert ok.json()["review"]["reason"] == "wrong fact"
    assert ok.json()["clip_progress"] == {"reviewed": 1, "total": 4}
    state = client.get(f"/api/pairs/{rec.qa_id}").json()
    assert state["review"]["decision"] == "reject" and state["review"]["reviewer"] == "tester"
    assert client.get("/api/pairs/nope").status_code == 404


def test_stale_review_is_refused_and_flagged(client: TestClient, work: WorkDir) -> None:
    rec = pairs_of(work, "mtt-00000")[0]
    old = post(client, rec.qa_id, decision="accept", content_hash="0" * 16)
    assert old.status_code == 409 and old.json()["kind"] == "stale"
    h = pair_content_hash(question=rec.question, answer=rec.answer)
    assert post(client, rec.qa_id, decision="accept", content_hash=h).status_code == 201
    # generate re-runs and rewrites the answer: the accept no longer applies
    recs = pairs_of(work, "mtt-00000")
    recs[0] = recs[0].model_copy(update={"answer": "It moves at 200 beats per minute."})
    write_records(work.qa_shard("mtt-00000"), recs, rec.__class__)
    fresh = TestClient(create_app(work, reviewer="t", allowed_hosts=("testserver",)))
    page = fresh.get(f"/clips/{rec.clip_id}").text
    assert "STALE: accept by tester on another text, not applied" in page
    assert f"reviewed 0 of {N_PAIRS}" in page


def test_two_tabs_do_not_lose_a_decision(client: TestClient, work: WorkDir) -> None:
    rec = pairs_of(work, "mtt-00000")[1]
    h = pair_content_hash(question=rec.question, answer=rec.answer)
    tab1 = post(client, rec.qa_id, decision="accept", content_hash=h, base_id=None)
    tab2 = post(client, rec.qa_id, decision="reject", reason="vague", content_hash=h,
                base_id=None)  # loaded before tab 1 decided
    assert tab1.status_code == 201 and tab2.status_code == 409
    assert tab2.json()["kind"] == "conflict"
    assert tab2.json()["latest"]["review_id"] == tab1.json()["review"]["review_id"]
    again = post(client, rec.qa_id, decision="reject", reason="vague", content_hash=h,
                 base_id=tab2.json()["latest"]["review_id"])  # decided again, knowingly
    assert again.status_code == 201
    log = load_decisions(work.reviews_shard("mtt-00000"))
    assert [r.decision for r in log] == ["accept", "reject"]
    assert log[1].base_id == log[0].review_id


def test_foreign_host_is_refused(work: WorkDir) -> None:
    client = TestClient(create_app(work, reviewer="t"), base_url="http://evil.example")
    assert client.get("/").status_code == 400
    local = TestClient(create_app(work, reviewer="t"), base_url="http://127.0.0.1:8765")
    assert local.get("/").status_code == 200
