"""The OpenAI-compatible HTTP backend against a scripted local server, then a real vLLM server.

The fake server (a threading ``http.server`` on 127.0.0.1) records every request and answers
from a script chosen by a marker in the user message: flaky 500s, 429 with Retry-After, a
proxy that echoes the Authorization header into its error page. That pins down the request
body per server dialect, retries and backoff, bounded concurrency, per-request errors, and
that the API key reaches the server but never a log line or an error message.

The ``vllm`` test starts ``python -m vllm.entrypoints.openai.api_server`` from ``.venv-vllm``
(``bash scripts/venv-vllm.sh``) on a free loopback port, with the packaged SmolLM2::

    .venv-vllm/bin/python -m pytest -m vllm tests/generate/test_backend_openai.py
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from qagen.errors import ConfigError
from qagen.generate.backends import (
    BackendConfig,
    GenRequest,
    GenResult,
    RequestQueue,
    SamplingConfig,
)
from qagen.generate.backends.openai import OpenAIBackend, schema_name
from qagen.records.qa import Caption, QAPairs

REPO = Path(__file__).resolve().parents[2]
KEY_ENV = "QAGEN_TEST_OPENAI_KEY"
SECRET = "sk-test-5f3c9e1d7a2b4c60"


# -- a scripted OpenAI-compatible server ----------------------------------------------------


@dataclass
class FakeServer:
    """Records requests; answers by the ``#marker`` at the end of the last user message."""

    base_url: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    hanging: int = 0  # "#hang" requests the server holds until ``release`` is set
    release: threading.Event = field(default_factory=threading.Event)

    def respond(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict, bytes]:
        marker = body["messages"][-1]["content"].rsplit("#", 1)[-1]
        with self.lock:
            self.bodies.append(body)
            self.headers.append(headers)
            self.attempts[marker] += 1
            attempt = self.attempts[marker]
        if marker == "flaky" and attempt == 1:
            return 500, {}, b'{"error": "engine restarting"}'
        if marker == "ratelimited" and attempt == 1:
            return 429, {"Retry-After": "3"}, b'{"error": "slow down"}'
        if marker == "down":
            return 503, {}, b'{"error": "overloaded"}'
        if marker == "bad":
            return 400, {}, b'{"error": "max_tokens too large"}'
        if marker == "echo-auth":  # a proxy error page that echoes request headers
            page = f"upstream failed; request had Authorization: {headers.get('authorization')}"
            return 502, {}, page.encode()
        if marker == "garbage":
            return 200, {}, b"<html>not json</html>"
        if marker == "busy":  # always rate limited, with a long wait
            return 429, {"Retry-After": "50"}, b'{"error": "busy"}'
        if marker == "hang":  # a slow generation: answered once the test releases it
            with self.lock:
                self.hanging += 1
            self.release.wait(timeout=30)
            with self.lock:
                self.hanging -= 1
        if marker == "slow":
            with self.lock:
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            time.sleep(0.2)
            with self.lock:
                self.in_flight -= 1
        return 200, {}, json.dumps(completion_for(body)).encode()


def completion_for(body: dict[str, Any]) -> dict[str, Any]:
    """A canned chat completion whose content satisfies the requested schema."""
    fmt = body.get("response_format", {})
    schema = fmt.get("schema") or fmt.get("json_schema", {}).get("schema", {})
    if schema.get("title") == "Caption":
        content = {"caption": "A calm solo piano piece in A minor at a slow tempo."}
    else:
        content = {"pairs": [{"question": "What is the tempo?", "answer": "About 80 BPM.",
                              "kind": "tempo"}]}
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": json.dumps(content)}}],
        "usage": {"prompt_tokens": 31, "completion_tokens": 17, "total_tokens": 48},
    }


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, payload = fake.respond(body, headers)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    fake.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    try:
        yield fake
    finally:
        fake.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def make_backend(
    base_url: str, *, sleeps: list[float] | None = None, backoff_s: float = 0.0,
    real_waits: bool = False, **overrides: Any,
) -> OpenAIBackend:
    """A backend on ``base_url``; retry waits are recorded in ``sleeps`` (not waited), or
    really waited with ``real_waits`` (the backend's own interruptible wait)."""
    values: dict[str, Any] = {
        "backend": "openai", "model": "smollm2-135m-instruct", "base_url": base_url,
        "server_kind": "vllm", "api_key_env": KEY_ENV, "max_retries": 2, "concurrency": 4,
        "timeout_s": 10.0,
    }
    values.update(overrides)
    recorded = sleeps if sleeps is not None else []
    return OpenAIBackend(BackendConfig(**values), backoff_s=backoff_s,
                         sleep=None if real_waits else recorded.append)


def make_request(i: int, marker: str = "ok", *, output: type = QAPairs) -> GenRequest:
    return GenRequest(
        request_id=f"req{i}",
        messages=[{"role": "system", "content": "You write music QA data as JSON."},
                  {"role": "user", "content": f"A calm piano clip number {i}. #{marker}"}],
        json_schema=output.model_json_schema(),
        sampling=SamplingConfig(temperature=0.6, top_p=0.9, max_tokens=300,
                                repetition_penalty=1.1),
        seed=1000 + i,
    )


# -- request bodies per dialect -------------------------------------------------------------


def test_vllm_dialect_sends_json_schema_and_repetition_penalty(server: FakeServer) -> None:
    request = make_request(0)
    make_backend(server.base_url, server_kind="vllm").generate([request])
    assert server.bodies == [{
        "model": "smollm2-135m-instruct",
        "messages": request.messages,
        "temperature": 0.6, "top_p": 0.9, "max_tokens": 300, "seed": 1000, "n": 1,
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "QAPairs", "schema": QAPairs.model_json_schema(), "strict": True}},
        "repetition_penalty": 1.1,
    }]


def test_openai_dialect_sends_json_schema_without_vllm_extras(server: FakeServer) -> None:
    make_backend(server.base_url, server_kind="openai").generate([make_request(0)])
    body = server.bodies[0]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    assert "repetition_penalty" not in body and "repeat_penalty" not in body
    assert body["seed"] == 1000


def test_llamacpp_dialect_sends_json_object_with_schema(server: FakeServer) -> None:
    make_backend(server.base_url, server_kind="llamacpp").generate(
        [make_request(0, output=Caption)]
    )
    body = server.bodies[0]
    assert body["response_format"] == {"type": "json_object",
                                       "schema": Caption.model_json_schema()}
    assert body["repeat_penalty"] == 1.1 and "repetition_penalty" not in body


def test_schema_name_is_sanitised_for_the_openai_api() -> None:
    assert schema_name({"title": "QA pairs/v2"}) == "QA_pairs_v2"
    assert schema_name({}) == "output"
    assert len(schema_name({"title": "x" * 100})) == 64


# -- results, concurrency ---------------------------------------------------------------------


def test_results_in_request_order_with_usage_and_bounded_concurrency(
    server: FakeServer,
) -> None:
    requests = [make_request(i, "slow", output=QAPairs if i % 2 else Caption) for i in range(12)]
    results = make_backend(server.base_url, concurrency=3).generate(requests)
    assert [r.request_id for r in results] == [r.request_id for r in requests]
    for request, result in zip(requests, results, strict=True):
        assert (result.prompt_tokens, result.completion_tokens) == (31, 17)
        assert result.finish_reason == "stop" and result.error is None
        model = QAPairs if request.json_schema["title"] == "QAPairs" else Caption
        model.model_validate_json(result.text)
    assert 2 <= server.max_in_flight <= 3


def test_empty_batch_sends_nothing(server: FakeServer) -> None:
    assert make_backend(server.base_url).generate([]) == []
    assert server.bodies == []


# -- streaming ---------------------------------------------------------------------------------


def _request_thread(request_id: str) -> threading.Thread | None:
    """The backend's thread for a request, while it runs."""
    return next((t for t in threading.enumerate() if t.name == f"qagen-openai-{request_id}"),
                None)


def test_stream_yields_each_result_as_it_arrives_and_takes_requests_put_meanwhile(
    server: FakeServer,
) -> None:
    backend = make_backend(server.base_url, concurrency=2)
    queue = RequestQueue([make_request(0, "hang"), *(make_request(i) for i in (1, 2, 3))])
    late = make_request(4, output=Caption)
    results: list[GenResult] = []
    hanging_at_yield: list[int] = []
    for result in backend.stream(queue):
        if not results:
            assert len(queue) == 2  # one slot holds req0, the other has served req1 only
            queue.put(late)  # as the stage does with a retry
        results.append(result)
        hanging_at_yield.append(held(server) if len(results) <= 4 else server.hanging)
        if len(results) == 4:
            server.release.set()  # only now may req0 complete
    assert [r.request_id for r in results] == ["req1", "req2", "req3", "req4", "req0"]
    assert hanging_at_yield[:4] == [1, 1, 1, 1]  # each arrived while req0 was still pending
    assert all(r.finish_reason == "stop" for r in results)
    assert Counter(b["messages"][-1]["content"] for b in server.bodies).most_common(1)[0][1] == 1
    assert len(server.bodies) == 5  # every request sent exactly once


def held(server: FakeServer) -> int:
    """How many "#hang" requests the server holds, once the first has reached its handler
    (on a loaded machine a later request's answer can arrive before that handler runs)."""
    deadline = time.monotonic() + 10
    while server.hanging < 1 and time.monotonic() < deadline:
        time.sleep(0.005)
    return server.hanging


@pytest.mark.parametrize("how", ["close", "interrupt"])
def test_closing_a_stream_early_abandons_requests_in_flight_without_waiting(
    server: FakeServer, how: str
) -> None:
    backend = make_backend(server.base_url, concurrency=3, timeout_s=60.0, real_waits=True)
    queue = RequestQueue([make_request(0, "hang"), make_request(1, "busy"), make_request(2),
                          make_request(3), make_request(4)])
    stream = backend.stream(queue)
    first = next(stream)
    assert first.request_id == "req2" and held(server) == 1
    # Closing returns at once although req0 waits for the server and req1 for a 50 s
    # Retry-After (run in a thread so that a close that waits fails here, not hangs).
    if how == "close":
        closer = threading.Thread(target=stream.close)
    else:
        def interrupt() -> None:
            with pytest.raises(KeyboardInterrupt):
                stream.throw(KeyboardInterrupt)
        closer = threading.Thread(target=interrupt)
    closer.start()
    closer.join(timeout=10)
    assert not closer.is_alive(), "closing the stream waited for requests in flight"
    assert list(stream) == []
    assert len(queue) == 2 and server.hanging == 1  # req3, req4 never taken; req0 abandoned
    # The backend stays usable while the abandoned request is still out.
    assert [r.finish_reason for r in backend.generate([make_request(5)])] == ["stop"]
    # The busy request stopped retrying at once (no second attempt after its 50 s wait).
    busy = _request_thread("req1")
    if busy is not None:
        busy.join(timeout=10)
        assert not busy.is_alive()
    assert server.attempts["busy"] == 1
    # The abandoned request's thread ends once its response comes.
    server.release.set()
    hung = _request_thread("req0")
    if hung is not None:
        hung.join(timeout=10)
        assert not hung.is_alive()


def test_generate_is_the_stream_in_request_order(server: FakeServer) -> None:
    requests = [make_request(0, "hang"), make_request(1), make_request(2, "bad")]
    backend = make_backend(server.base_url, concurrency=3)
    threading.Timer(0.5, server.release.set).start()  # req0 completes last
    results = backend.generate(requests)
    assert [r.request_id for r in results] == ["req0", "req1", "req2"]
    assert [r.finish_reason for r in results] == ["stop", "stop", "error"]


# -- retries and per-request errors -----------------------------------------------------------


def test_5xx_is_retried_then_succeeds(server: FakeServer) -> None:
    sleeps: list[float] = []
    [result] = make_backend(server.base_url, sleeps=sleeps).generate([make_request(0, "flaky")])
    assert result.finish_reason == "stop" and result.error is None
    assert server.attempts["flaky"] == 2
    assert len(sleeps) == 1


def test_429_waits_for_retry_after(server: FakeServer) -> None:
    sleeps: list[float] = []
    [result] = make_backend(server.base_url, sleeps=sleeps).generate(
        [make_request(0, "ratelimited")]
    )
    assert result.finish_reason == "stop"
    assert sleeps == [3.0]


def test_backoff_is_exponential_with_full_jitter(server: FakeServer) -> None:
    sleeps: list[float] = []
    backend = make_backend(server.base_url, sleeps=sleeps, backoff_s=1.0, max_retries=3)
    [result] = backend.generate([make_request(0, "down")])
    assert result.finish_reason == "error"
    assert len(sleeps) == 3
    for attempt, delay in enumerate(sleeps):
        assert 0.0 <= delay <= 2.0**attempt


def test_persistent_failure_is_an_error_result_and_the_batch_goes_on(
    server: FakeServer,
) -> None:
    results = make_backend(server.base_url).generate(
        [make_request(0), make_request(1, "down"), make_request(2)]
    )
    assert [r.finish_reason for r in results] == ["stop", "error", "stop"]
    assert results[1].error is not None and results[1].error.startswith("HTTP 503")
    assert results[1].text == ""
    assert server.attempts["down"] == 3  # 1 + max_retries


def test_client_errors_are_not_retried(server: FakeServer) -> None:
    sleeps: list[float] = []
    [result] = make_backend(server.base_url, sleeps=sleeps).generate([make_request(0, "bad")])
    assert result.finish_reason == "error"
    assert result.error == 'HTTP 400: {"error": "max_tokens too large"}'
    assert server.attempts["bad"] == 1 and sleeps == []


def test_malformed_completion_is_an_error_result(server: FakeServer) -> None:
    [result] = make_backend(server.base_url).generate([make_request(0, "garbage")])
    assert result.finish_reason == "error"
    assert result.error is not None and "malformed chat completion" in result.error


def test_connection_refused_is_retried_then_an_error_result() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps: list[float] = []
    [result] = make_backend(f"http://127.0.0.1:{port}/v1", sleeps=sleeps).generate(
        [make_request(0)]
    )
    assert result.finish_reason == "error"
    assert result.error is not None and result.error.startswith("ConnectError")
    assert len(sleeps) == 2


def test_a_dead_server_costs_one_retry_budget_not_one_per_request() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps: list[float] = []
    backend = make_backend(f"http://127.0.0.1:{port}/v1", sleeps=sleeps)
    results = backend.generate([make_request(i) for i in range(40)])
    assert all(r.finish_reason == "error" for r in results)
    # The requests in flight when the first one gave up used their tries; the rest failed
    # at once, naming the cause.
    assert len(sleeps) <= 2 * backend._config.concurrency
    fast = [r for r in results if (r.error or "").startswith("server unreachable")]
    assert len(fast) >= 40 - backend._config.concurrency
    assert "ConnectError" in (fast[0].error or "")


def test_one_answer_keeps_the_server_trusted(server: FakeServer) -> None:
    # A server that answered once is not "down" when a later request fails: errors stay
    # per request (the HTTP 503 ones are retried, the rest are answered).
    results = make_backend(server.base_url).generate(
        [make_request(0), make_request(1, "down"), make_request(2)])
    assert [r.finish_reason for r in results] == ["stop", "error", "stop"]
    assert not (results[1].error or "").startswith("server unreachable")


# -- the API key ---------------------------------------------------------------------------


def test_api_key_is_sent_but_never_logged_stored_or_in_errors(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    caplog.set_level(logging.DEBUG)
    backend = make_backend(server.base_url)
    results = backend.generate([make_request(0), make_request(1, "echo-auth")])
    assert {h["authorization"] for h in server.headers} == {f"Bearer {SECRET}"}
    assert results[0].finish_reason == "stop"
    assert results[1].finish_reason == "error"
    assert "Authorization: Bearer ***" in (results[1].error or "")
    assert SECRET not in (results[1].error or "")
    assert caplog.records, "the retries should have been logged"
    assert SECRET not in caplog.text
    assert SECRET not in repr(vars(backend))


def test_no_key_in_the_environment_sends_no_authorization(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    make_backend(server.base_url).generate([make_request(0)])
    assert "authorization" not in server.headers[0]


def test_key_is_read_at_use_not_at_construction(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    backend = make_backend(server.base_url)
    monkeypatch.setenv(KEY_ENV, SECRET)
    backend.generate([make_request(0)])
    assert server.headers[0]["authorization"] == f"Bearer {SECRET}"


# -- configuration ---------------------------------------------------------------------------


def test_missing_base_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="needs base_url"):
        OpenAIBackend(BackendConfig(backend="openai"))


def test_unknown_server_kind_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown server_kind 'tgi'"):
        OpenAIBackend(BackendConfig(backend="openai", base_url="http://x/v1", server_kind="tgi"))


# -- a real vLLM server -----------------------------------------------------------------------

VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"
SERVED_NAME = "smollm2-135m-instruct"
STARTUP_TIMEOUT_S = 180.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A vLLM OpenAI server on a free loopback port (API key required); yields its base URL.

    Stopped by its pid (SIGTERM) at the end; its whole process group (engine core, workers)
    is killed if it does not stop, or if it never became ready.
    """
    if not VLLM_PYTHON.is_file():
        pytest.skip(f"{VLLM_PYTHON} absent: bash scripts/venv-vllm.sh")
    import httpx

    from qagen.model_cache import PACKAGED_MODEL, resolve_model

    home = Path(os.environ.get("QAGEN_HOME") or tmp_path_factory.mktemp("qagen_home"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QAGEN_HOME", str(home))
        model_path = resolve_model(PACKAGED_MODEL)
    port = free_port()
    log_path = tmp_path_factory.mktemp("vllm_server") / "server.log"
    env = {**os.environ, "VLLM_API_KEY": SECRET, "VLLM_CPU_KVCACHE_SPACE": "2"}
    command = [
        str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server", "--model", model_path,
        "--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", str(port),
        "--max-model-len", "1024", "--enforce-eager",
    ]
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        started = time.monotonic()
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM server exited with {proc.returncode}:\n"
                            f"{log_path.read_text(errors='replace')[-3000:]}")
            try:
                reply = httpx.get(f"{base_url}/models", timeout=2.0,
                                  headers={"Authorization": f"Bearer {SECRET}"})
                if reply.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() - started > STARTUP_TIMEOUT_S:
                pytest.fail(f"vLLM server not ready after {STARTUP_TIMEOUT_S:.0f} s:\n"
                            f"{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(1.0)
        logging.getLogger(__name__).info(
            "vLLM server ready in %.1f s", time.monotonic() - started
        )
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):  # engine-core children left behind
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.vllm
def test_real_vllm_server_returns_schema_valid_json(
    vllm_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    backend = make_backend(vllm_server, model=SERVED_NAME, server_kind="vllm", timeout_s=300.0,
                           max_retries=1)
    requests = []
    for i in range(4):
        output = QAPairs if i % 2 == 0 else Caption
        task = "Write two short question-answer pairs about it." if output is QAPairs else (
            "Write a one-sentence caption of it.")
        requests.append(GenRequest(
            request_id=f"req{i}",
            messages=[{"role": "system",
                       "content": "You are a music expert. Reply with compact JSON only."},
                      {"role": "user",
                       "content": f"Clip: solo piano, {60 + 10 * i} BPM, calm. {task}"}],
            json_schema=output.model_json_schema(),
            sampling=SamplingConfig(max_tokens=512),
            seed=i,
        ))
    results: list[GenResult] = backend.generate(requests)
    assert [r.request_id for r in results] == [r.request_id for r in requests]
    completed = [(q, r) for q, r in zip(requests, results, strict=True)
                 if r.finish_reason == "stop"]
    # A 135M model may loop on grammar-allowed whitespace until max_tokens (stage: truncated).
    assert len(completed) >= 3, results
    for request, result in completed:
        model = QAPairs if request.json_schema["title"] == "QAPairs" else Caption
        model.model_validate_json(result.text)
        assert result.prompt_tokens and result.completion_tokens


@pytest.mark.vllm
def test_real_vllm_server_rejects_a_wrong_key_without_retrying(
    vllm_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-wrong")
    sleeps: list[float] = []
    [result] = make_backend(vllm_server, model=SERVED_NAME, sleeps=sleeps).generate(
        [make_request(0)]
    )
    assert result.finish_reason == "error"
    assert result.error is not None and result.error.startswith("HTTP 401")
    assert "sk-wrong" not in result.error
    assert sleeps == []
