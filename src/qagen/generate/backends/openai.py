"""OpenAI-compatible HTTP backend: a vLLM server, a llama.cpp server, or the OpenAI API.

Why a client backend beside the in-process ones: a server started once serves many pipeline
runs (and many workers), and the same code then reaches a hosted API. Plain ``httpx`` (already
installed with qagen's core dependencies) keeps the ``openai`` SDK out of the dependency tree.

Servers disagree on how a JSON Schema is passed (measured, see shared FACTS):

- vLLM and OpenAI take ``response_format={"type": "json_schema", "json_schema": {...}}``;
  vLLM silently ignores a schema sent with ``json_object``.
- llama.cpp's server answers 500 to ``json_schema`` and wants
  ``response_format={"type": "json_object", "schema": ...}``.

``BackendConfig.server_kind`` picks the dialect. Requests run concurrently (at most
``concurrency`` threads over one connection pool; the next queued request is sent as soon as
one completes, and each result is yielded the moment it arrives) and retry connection errors,
429 and 5xx with exponential backoff and full jitter, honouring ``Retry-After``. A request
that still fails becomes a ``GenResult(finish_reason="error")``; the rest of the batch goes on.

The API key is read from the environment variable named by ``config.api_key_env`` for each
stream: it is never stored on the backend, logged, or put into an error message.
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from queue import SimpleQueue
from typing import Any

from qagen.errors import ConfigError, MissingDependencyError
from qagen.generate.backends import (
    BackendConfig,
    GenRequest,
    GenResult,
    RequestQueue,
    generate_in_order,
)
from qagen.redact import redact

log = logging.getLogger(__name__)

#: Server dialects (``BackendConfig.server_kind``).
SERVER_KINDS = ("vllm", "openai", "llamacpp")
#: Statuses worth another try: rate limiting, timeouts and server-side failures.
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
#: No single wait longer than this, whatever Retry-After says (a batch must finish).
MAX_BACKOFF_S = 60.0
#: Characters of a failing response body kept in the error text.
ERROR_BODY_CHARS = 300


class OpenAIBackend:
    """Chat completions over HTTP against an OpenAI-compatible server.

    Parameters
    ----------
    config
        ``base_url`` (e.g. ``http://127.0.0.1:8000/v1``), ``model`` (the name the server
        serves), ``server_kind``, ``concurrency``, ``max_retries``, ``timeout_s``,
        ``api_key_env``.
    backoff_s
        First retry delay; doubles per attempt (full jitter). Tests shrink it.
    sleep
        Waits between retries; injectable so tests can record delays without waiting. By
        default a wait that ends early when the stream is closed, so abandoned requests stop
        retrying at once.

    Raises
    ------
    ConfigError
        No ``base_url``, or an unknown ``server_kind``.
    MissingDependencyError
        ``httpx`` is not importable.
    """

    name = "openai"
    extra = ""  # httpx only, which qagen's core dependencies install

    def __init__(
        self,
        config: BackendConfig,
        *,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if not config.base_url:
            raise ConfigError(
                "backend 'openai' needs base_url, e.g. http://127.0.0.1:8000/v1 "
                "(start a server: python -m vllm.entrypoints.openai.api_server --model ...)"
            )
        if config.server_kind not in SERVER_KINDS:
            raise ConfigError(
                f"unknown server_kind {config.server_kind!r}; choose one of "
                f"{', '.join(SERVER_KINDS)}"
            )
        try:
            import httpx
        except ImportError as exc:  # pragma: no cover - httpx comes with qagen's dependencies
            raise MissingDependencyError("backend 'openai' needs: pip install httpx") from exc
        self._httpx = httpx
        self._config = config
        self._url = config.base_url.rstrip("/") + "/chat/completions"
        self._backoff_s = backoff_s
        self._sleep = sleep

    @property
    def model_id(self) -> str:
        """The model name sent to the server (recorded in every pair's provenance)."""
        return self._config.model

    def stream(self, queue: RequestQueue) -> Iterator[GenResult]:
        """Send queued requests, ``config.concurrency`` in flight; yield each result when done.

        A new request is taken from ``queue`` whenever one completes, so requests put there
        meanwhile (the stage's retries) join the running call. Closing the iterator early
        returns at once: requests in flight are abandoned (no further retries; their threads
        end when their read returns, within ``timeout_s``, and the last one closes the
        connection pool).

        Why threads and not asyncio: ``stream`` is synchronous and may be called from a
        thread that already runs an event loop (Prefect, notebooks); threads over one
        ``httpx.Client`` bound concurrency the same way without owning a loop. Why daemon
        threads and not a ``ThreadPoolExecutor``: httpx cannot interrupt a blocked read from
        another thread (closing the client leaves it waiting for its timeout, measured), and
        an executor's workers are joined at interpreter exit, so a Ctrl-C would hang for up to
        ``timeout_s`` on abandoned requests.
        """
        if not len(queue):
            return
        api_key = os.environ.get(self._config.api_key_env) or None
        log.debug(
            "openai backend: streaming to %s (%s dialect, key from $%s: %s)",
            self._url, self._config.server_kind, self._config.api_key_env,
            "set" if api_key else "unset",
        )
        httpx = self._httpx
        concurrency = self._config.concurrency
        limits = httpx.Limits(max_connections=concurrency,
                              max_keepalive_connections=concurrency)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        timeout = httpx.Timeout(self._config.timeout_s,
                                connect=min(self._config.connect_timeout_s,
                                            self._config.timeout_s))
        client = httpx.Client(timeout=timeout, limits=limits, headers=headers)
        finished: SimpleQueue[GenResult] = SimpleQueue()
        closing = threading.Event()
        health = _Health()
        lock = threading.Lock()
        using_client = 0  # request threads not yet done with the client

        def run(request: GenRequest) -> None:
            nonlocal using_client
            try:
                result = self._generate_one(client, request, api_key, closing, health)
            # The backend's per-request boundary (one failed request must not lose the
            # others): a bug that raised in this thread is an error result, not a hang.
            except Exception as exc:
                error = _redact(f"{type(exc).__name__}: {exc}", api_key)
                # No traceback: its frames could show the key; the message is redacted.
                log.error("openai backend: request %s raised %s", request.request_id, error)
                result = GenResult(request_id=request.request_id, text="",
                                   finish_reason="error", error=error)
            with lock:
                using_client -= 1
                last = using_client == 0 and closing.is_set()
            if last:  # the stream was closed while this request was in flight
                client.close()
            finished.put(result)

        in_flight = 0
        try:
            while True:
                for request in queue.take(concurrency - in_flight):
                    with lock:
                        using_client += 1
                    in_flight += 1
                    threading.Thread(target=run, args=(request,), daemon=True,
                                     name=f"qagen-openai-{request.request_id}").start()
                if not in_flight:
                    return
                result = finished.get()
                in_flight -= 1
                yield result
        finally:
            with lock:
                closing.set()  # abandoned requests stop retrying
                idle = using_client == 0
            if idle:
                client.close()
            else:
                log.info("openai backend: stream closed with %d requests in flight; abandoned",
                         using_client)

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        """:meth:`stream` over ``requests``; results in request order.

        A request that fails (after its retries) is a ``finish_reason="error"`` result; the
        others go on.
        """
        return generate_in_order(self, requests)

    def close(self) -> None:
        """Nothing to release: each stream opens and closes its own connection pool."""

    # -- one request ---------------------------------------------------------------------

    def request_body(self, request: GenRequest) -> dict[str, Any]:
        """The JSON body for one request, in this server kind's dialect.

        Why public: the body is the contract with each server, and tests check it exactly.
        """
        sampling = request.sampling
        body: dict[str, Any] = {
            "model": self._config.model,
            "messages": request.messages,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
            "seed": request.seed,
            "n": 1,
        }
        kind = self._config.server_kind
        if kind == "llamacpp":
            # llama.cpp: 500 on json_schema; json_object + schema is its constrained mode.
            body["response_format"] = {"type": "json_object", "schema": request.json_schema}
            body["repeat_penalty"] = sampling.repetition_penalty
        else:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": schema_name(request.json_schema),
                    "schema": request.json_schema,
                    "strict": True,
                },
            }
            if kind == "vllm":  # a vLLM extra parameter; the OpenAI API rejects unknown keys
                body["repetition_penalty"] = sampling.repetition_penalty
        return body

    def _generate_one(self, client: Any, request: GenRequest, api_key: str | None,
                      closing: threading.Event, health: _Health | None = None) -> GenResult:
        """POST one request with retries; any failure becomes an error result.

        ``closing`` set (the stream was closed): no further attempt, the result is dropped.
        ``health`` (shared by a stream's requests): once a request has used all its tries
        without ever reaching the server, and no request of the stream has been answered,
        the server is taken as down and the remaining requests fail at once — a dead server
        or a mistyped URL costs one request's retry budget, not one per request.
        """
        health = health or _Health()
        body = self.request_body(request)
        attempts = self._config.max_retries + 1
        error = "no attempt made"
        reached = False
        for attempt in range(1, attempts + 1):
            if closing.is_set():
                return GenResult(request_id=request.request_id, text="", finish_reason="error",
                                 error="abandoned: the stream was closed")
            if health.down.is_set():
                return GenResult(request_id=request.request_id, text="", finish_reason="error",
                                 error=f"server unreachable ({health.first_error})")
            retry_after: float | None = None
            try:
                response = client.post(self._url, json=body)
            except self._httpx.TransportError as exc:  # connect/read errors, timeouts
                error = f"{type(exc).__name__}: {exc}"
                reached = reached or not isinstance(
                    exc, (self._httpx.ConnectError, self._httpx.ConnectTimeout))
            else:
                reached = True
                if response.status_code == 200:
                    health.answered.set()
                    return _parse_completion(request.request_id, response, api_key)
                error = f"HTTP {response.status_code}: {response.text[:ERROR_BODY_CHARS]}"
                if response.status_code not in RETRY_STATUSES:
                    break
                retry_after = _retry_after_s(response.headers.get("retry-after"))
            if attempt == attempts:
                break
            if closing.is_set():
                continue  # abandoned: the check above ends it without another attempt
            delay = self._delay_s(attempt, retry_after)
            log.warning(
                "openai backend: request %s attempt %d/%d failed (%s); retrying in %.2f s",
                request.request_id, attempt, attempts, _redact(error, api_key)[:120], delay,
            )
            if self._sleep is None:
                closing.wait(delay)  # returns at once when the stream is closed
            else:
                self._sleep(delay)
        error = _redact(error, api_key)
        if not reached and not health.answered.is_set() and not closing.is_set():
            health.first_error = health.first_error or error[:200]
            if not health.down.is_set():
                log.error("openai backend: %s is unreachable (%s); failing the remaining "
                          "requests at once", self._url, error[:200])
            health.down.set()
        log.warning("openai backend: request %s failed: %s", request.request_id, error[:200])
        return GenResult(request_id=request.request_id, text="", finish_reason="error", error=error)

    def _delay_s(self, attempt: int, retry_after: float | None) -> float:
        """Wait before retry ``attempt + 1``: Retry-After if the server gave one, else
        exponential backoff with full jitter (spreads a thundering herd of workers)."""
        if retry_after is not None:
            return min(retry_after, MAX_BACKOFF_S)
        cap = min(self._backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S)
        return random.uniform(0.0, cap)


class _Health:
    """What a stream has learnt of its server: answered at least once, or down."""

    def __init__(self) -> None:
        self.answered = threading.Event()
        self.down = threading.Event()
        self.first_error: str | None = None


def schema_name(schema: dict[str, Any]) -> str:
    """A ``json_schema.name`` the OpenAI API accepts (``^[a-zA-Z0-9_-]{1,64}$``)."""
    name = re.sub(r"[^a-zA-Z0-9_-]", "_", str(schema.get("title") or "output"))[:64]
    return name or "output"


def _parse_completion(request_id: str, response: Any, api_key: str | None) -> GenResult:
    """A 200 response → GenResult; a body that is not a chat completion is an error result."""
    try:
        payload = response.json()
        choice = payload["choices"][0]
        text = choice["message"].get("content") or ""
        finish_reason = choice.get("finish_reason")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        detail = _redact(response.text[:ERROR_BODY_CHARS], api_key)
        return GenResult(
            request_id=request_id, text="", finish_reason="error",
            error=f"malformed chat completion ({type(exc).__name__}): {detail}",
        )
    usage = payload.get("usage") or {}
    return GenResult(
        request_id=request_id,
        text=text,
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        finish_reason=finish_reason,
    )


def _retry_after_s(value: str | None) -> float | None:
    """Parse Retry-After: delta seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _redact(text: str, api_key: str | None) -> str:
    """Mask the API key (and any secret-shaped string) in text that may echo request details
    (a proxy's error page)."""
    return redact(text, secrets=(api_key,) if api_key else ())


BACKEND = OpenAIBackend
