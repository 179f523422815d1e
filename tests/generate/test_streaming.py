"""The generate stage over a streaming backend: completions are cached as they arrive,
retries join the running stream, output does not depend on completion order, a kill loses
only the requests in flight, shards of vanished clips are removed, progress is reported."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from qagen.config import GenerateConfig
from qagen.generate.backends import GenRequest, GenResult, RequestQueue
from qagen.generate.stage import generate
from qagen.progress import ProgressSink, ProgressState
from qagen.workdir import WorkDir
from tests.generate.scripted import ScriptedBackend

#: Facts pairs plus two LLM families: many requests per shard, some of them retried.
CONFIG = GenerateConfig(templates=["paraphrase", "llark_mir"], gate=False)


class StreamingBackend(ScriptedBackend):
    """Holds ``width`` requests in flight and finishes them in reverse order of arrival."""

    def __init__(self, *, width: int = 4, reverse: bool = True, die_after: int | None = None,
                 **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.width, self.reverse, self.die_after = width, reverse, die_after
        self.streams = 0
        self.yielded = 0

    def stream(self, queue: RequestQueue) -> Iterator[GenResult]:
        self.streams += 1
        live: list[GenRequest] = []
        while len(queue) or live:
            live += queue.take(self.width - len(live))
            req = live.pop() if self.reverse else live.pop(0)
            if self.die_after is not None and self.yielded >= self.die_after:
                raise KeyboardInterrupt  # kill -INT mid-stage
            self.yielded += 1
            yield self.generate([req])[0]


@pytest.fixture
def work(measured: Path, tmp_path: Path) -> WorkDir:
    shutil.copytree(measured, tmp_path / "w")
    return WorkDir(tmp_path / "w")


def _shards(work: WorkDir) -> dict[str, list[dict]]:
    """Every qa / qa_rejected row, in file order, less the wall-clock ``created_at``."""
    import pyarrow.parquet as pq

    return {p.name: [{k: v for k, v in row.items() if k != "created_at"}
                     for row in pq.read_table(p).to_pylist()]
            for p in sorted(work.root.glob("qa*/*.parquet"))}


def _ids(work: WorkDir) -> list[str]:
    import pyarrow.parquet as pq

    return sorted(i for p in work.root.glob("qa/*.parquet")
                  for i in pq.read_table(p, columns=["qa_id"]).column("qa_id").to_pylist())


def test_retries_join_the_running_stream(work: WorkDir) -> None:
    bad: set[str] = set()

    def once_invalid(req: GenRequest, _n: int) -> str | None:
        if len(bad) < 3 and req.request_id not in bad:
            bad.add(req.request_id)
            return "{not json"
        return None

    backend = StreamingBackend(misbehave=once_invalid)
    report = generate(work, backend=backend, config=CONFIG, cache=False)
    assert backend.streams == 1  # the three retries were taken by the same stream call
    assert report.requests + 3 == len(backend.calls)
    assert report.responses_valid_first_try == report.requests - 3
    assert report.rejected.get("invalid_json", 0) == 0 and report.accepted > 0


def test_output_does_not_depend_on_completion_order(tmp_path: Path, measured: Path) -> None:
    outputs = []
    for reverse, width in ((False, 1), (True, 5)):
        work = WorkDir(tmp_path / f"w{reverse}")
        shutil.copytree(measured, work.root)
        generate(work, backend=StreamingBackend(reverse=reverse, width=width), config=CONFIG,
                 cache=False)
        outputs.append(_shards(work))
    assert outputs[0].keys() == outputs[1].keys() and len(outputs[0]) >= 2
    assert outputs[0] == outputs[1]


def test_a_kill_loses_only_the_requests_in_flight(work: WorkDir, tmp_path: Path,
                                                   measured: Path) -> None:
    reference = WorkDir(tmp_path / "ref")
    shutil.copytree(measured, reference.root)
    full = StreamingBackend()
    generate(reference, backend=full, config=CONFIG)
    total = len(full.calls)
    dying = StreamingBackend(die_after=total // 2)
    with pytest.raises(KeyboardInterrupt):
        generate(work, backend=dying, config=CONFIG)
    assert dying.yielded == total // 2
    resumed = StreamingBackend()
    report = generate(work, backend=resumed, config=CONFIG)
    # Every completion that reached the stage was cached at once; only the rest is asked
    # again (the requests held in flight at the kill are among them).
    assert len(resumed.calls) == total - total // 2
    assert report.shards_reused >= 1  # shards finished before the kill were kept
    assert _ids(work) == _ids(reference)


def test_pairs_of_vanished_clip_shards_are_removed(work: WorkDir) -> None:
    generate(work, backend=StreamingBackend(), config=CONFIG)
    shards = work.manifest_shards("clips")
    gone = next(iter(shards))
    assert work.qa_shard(gone).is_file()
    shards[gone].unlink()
    report = generate(work, backend=StreamingBackend(), config=CONFIG)
    assert not work.qa_shard(gone).exists()
    assert not work.qa_rejected_shard(gone).exists()
    assert not work.marker("generate", gone).exists()
    assert report.shards == report.shards_reused == len(shards) - 1


def test_progress_reports_done_total_and_tokens(work: WorkDir) -> None:
    states: list[ProgressState] = []
    backend = StreamingBackend()
    generate(work, backend=backend, config=CONFIG, cache=False,
             progress=[ProgressSink(states.append)])
    assert len(states) > 10
    final = states[-1]
    assert final.final and final.done == final.total == len(backend.calls)
    assert final.tokens == 50 * len(backend.calls)  # the scripted backend's completion tokens
    assert [s.done for s in states] == sorted(s.done for s in states)
    assert all(s.total >= s.done for s in states)
    assert "requests" in final.describe() and final.unit == "requests"


class OutageBackend(StreamingBackend):
    """A backend whose server is down for the first ``down`` requests (error results)."""

    def __init__(self, *, down: int, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.down = down

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        out = []
        for req in requests:
            if self.down > 0:
                self.down -= 1
                self.calls.append(req.request_id)
                out.append(GenResult(request_id=req.request_id, text="", finish_reason="error",
                                     error="ConnectError: [Errno 111] Connection refused"))
            else:
                out.extend(super().generate([req]))
        return out


def test_a_backend_outage_never_marks_a_shard_done(work: WorkDir) -> None:
    from qagen.errors import BackendError
    from qagen.generate.stage import check_answered

    outage = OutageBackend(down=10**6)
    report = generate(work, backend=outage, config=CONFIG)
    assert report.unanswered == len(outage.calls) == report.requests > 0  # not retried
    assert not work.markers("generate")
    with pytest.raises(BackendError, match="re-run generate"):
        check_answered(report)
    flaky = OutageBackend(down=3)
    report = generate(work, backend=flaky, config=CONFIG)
    assert report.unanswered == 3 and report.shards_reused == 0
    undone = set(work.manifest_shards("clips")) - set(work.markers("generate"))
    assert len(undone) in (1, 2, 3)  # the three failed requests fall in one to three shards
    healed = StreamingBackend()
    report = generate(work, backend=healed, config=CONFIG)
    assert len(healed.calls) == 3  # exactly the failed requests are asked again
    assert report.unanswered == 0 and report.shards_reused == report.shards - len(undone)
    assert set(work.markers("generate")) == set(work.manifest_shards("clips"))
    check_answered(report)


def test_a_deeply_nested_completion_is_a_rejection_not_a_crash(work: WorkDir) -> None:
    def brackets(_req: GenRequest, _n: int) -> str:
        return "[" * 1500

    for run in range(2):  # the second run re-parses the same completions from the cache
        for marker in work.markers("generate").values():
            marker.unlink()
        report = generate(work, backend=StreamingBackend(misbehave=brackets), config=CONFIG)
        assert report.rejected["invalid_json"] == report.requests > 0
        assert report.cache_hits == (0 if run == 0 else report.requests * CONFIG.max_attempts)
        assert report.accepted > 0  # the facts pairs of the same clips are kept
