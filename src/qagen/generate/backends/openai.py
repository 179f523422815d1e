"""OpenAI-compatible HTTP backend: a vLLM server, a llama.cpp server, or the OpenAI API.

Why a client backend beside the in-process ones: a server started once serves many pipeline
runs (and many workers), and the same code then reaches a hosted API. Plain ``httpx`` (already
installed with qagen's core dependencies) keeps the ``openai`` SDK out of the dependency tree.

Servers disagree on how a JSON Schema is passed (measured, see shared FACTS):

- vLLM and OpenAI take ``response_format={"type": "json_schema", "json_schema": {...}}``;
  vLLM silently ignores a schema sent with ``json_object``.
- llama.cpp's server answers 500 to ``json_schema`` and wants
  ``response_format={"type": "json_object", "schema": ...}``.

``BackendConfig.server_kind`` picks the dialect. Requests run concurrently (a bounded thread
pool over one connection pool) and retry connection errors, 429 and 5xx with exponential
backoff and full jitter, honouring ``Retry-After``. A request that still fails becomes a
``GenResult(finish_reason="error")``; the rest of the batch goes on.

The API key is read from the environment variable named by ``config.api_key_env`` for each
batch: it is never stored on the backend, logged, or put into an error message.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from typing import Any

from qagen.errors import ConfigError, MissingDependencyError
from qagen.generate.backends import BackendConfig, GenRequest, GenResult

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
        Waits between retries; injectable so tests can record delays without waiting.

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
        sleep: Callable[[float], None] = time.sleep,
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

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        """Send every request (``config.concurrency`` in flight), results in request order.

        Why threads and not asyncio: ``generate`` is synchronous and may be called from a
        thread that already runs an event loop (Prefect, notebooks); a thread pool over one
        ``httpx.Client`` bounds concurrency the same way without owning a loop.
        """
        if not requests:
            return []
        api_key = os.environ.get(self._config.api_key_env) or None
        log.debug(
            "openai backend: %d requests to %s (%s dialect, key from $%s: %s)",
            len(requests), self._url, self._config.server_kind, self._config.api_key_env,
            "set" if api_key else "unset",
        )
        httpx = self._httpx
        limits = httpx.Limits(
            max_connections=self._config.concurrency,
            max_keepalive_connections=self._config.concurrency,
        )
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        with (
            httpx.Client(
                timeout=httpx.Timeout(self._config.timeout_s), limits=limits, headers=headers
            ) as client,
            ThreadPoolExecutor(
                max_workers=min(self._config.concurrency, len(requests)),
                thread_name_prefix="qagen-openai",
            ) as pool,
        ):
            return list(pool.map(lambda r: self._generate_one(client, r, api_key), requests))

    def close(self) -> None:
        """Nothing to release: each batch opens and closes its own connection pool."""

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

    def _generate_one(self, client: Any, request: GenRequest, api_key: str | None) -> GenResult:
        """POST one request with retries; any failure becomes an error result."""
        body = self.request_body(request)
        attempts = self._config.max_retries + 1
        error = "no attempt made"
        for attempt in range(1, attempts + 1):
            retry_after: float | None = None
            try:
                response = client.post(self._url, json=body)
            except self._httpx.TransportError as exc:  # connect/read errors, timeouts
                error = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    return _parse_completion(request.request_id, response, api_key)
                error = f"HTTP {response.status_code}: {response.text[:ERROR_BODY_CHARS]}"
                if response.status_code not in RETRY_STATUSES:
                    break
                retry_after = _retry_after_s(response.headers.get("retry-after"))
            if attempt == attempts:
                break
            delay = self._delay_s(attempt, retry_after)
            log.warning(
                "openai backend: request %s attempt %d/%d failed (%s); retrying in %.2f s",
                request.request_id, attempt, attempts, _redact(error, api_key)[:120], delay,
            )
            self._sleep(delay)
        error = _redact(error, api_key)
        log.warning("openai backend: request %s failed: %s", request.request_id, error[:200])
        return GenResult(request_id=request.request_id, text="", finish_reason="error", error=error)

    def _delay_s(self, attempt: int, retry_after: float | None) -> float:
        """Wait before retry ``attempt + 1``: Retry-After if the server gave one, else
        exponential backoff with full jitter (spreads a thundering herd of workers)."""
        if retry_after is not None:
            return min(retry_after, MAX_BACKOFF_S)
        cap = min(self._backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S)
        return random.uniform(0.0, cap)


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
    """Remove the API key from text that may echo request details (a proxy's error page)."""
    return text.replace(api_key, "***") if api_key else text


BACKEND = OpenAIBackend
