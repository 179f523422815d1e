"""In-process transformers backend with JSON-Schema-constrained decoding (xgrammar).

Why a hand-written decode loop rather than ``model.generate``:

- **Per-request schemas in one batch.** Each row gets its own xgrammar ``GrammarMatcher``
  compiled from its request's schema, so QA-pair and caption requests share a batch.
- **Per-request seeds.** Each row samples from its own ``torch.Generator`` seeded with the
  request's seed, drawing exactly one number per step, so a request's text depends on its own
  prompt, schema, sampling and seed, not on which other requests share its batch (up to
  floating-point differences from padding; greedy rows are practically batch-independent).
  ``generate`` draws from one global generator for the whole batch.
- **Per-request sampling.** Temperature (0 = greedy), top-p and repetition penalty are read
  from each request; rows that finish are dropped from the KV cache so a long answer does not
  make the others pay for padding steps.

Sampling follows transformers' order and semantics: repetition penalty over prompt and
generated tokens, grammar mask, temperature, top-p (nucleus) over the masked distribution.
Logits are processed on the CPU in float32, so a seed gives the same draws on CPU and CUDA.

JSON is generated compact (no free whitespace between tokens), which removes the
whitespace loops small models fall into and spends no tokens on indentation. The stage parses
and validates the text; this module only guarantees it was decoded under the grammar.
"""

from __future__ import annotations

import gc
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qagen.errors import ConfigError, MissingDependencyError
from qagen.generate.backends import BackendConfig, GenRequest, GenResult, SamplingConfig
from qagen.generate.models import resolve_model

log = logging.getLogger(__name__)

#: ``BackendConfig.dtype`` values → torch dtype names ("auto" is decided by device).
DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16"}
#: Top-p candidates taken with ``topk`` before falling back to a full sort (see ``_sample``).
NUCLEUS_CANDIDATES = 256


@dataclass
class _Row:
    """Decoding state of one request inside a batch."""

    index: int  # position in the caller's request list
    request: GenRequest
    prompt_ids: list[int]
    max_new_tokens: int
    matcher: Any  # xgrammar.GrammarMatcher
    generator: Any  # torch.Generator
    seen: Any  # torch.BoolTensor (vocab,): tokens the repetition penalty applies to
    generated: list[int] = field(default_factory=list)
    finish_reason: str | None = None


class TransformersBackend:
    """Hugging Face causal LM decoded under each request's JSON Schema.

    Parameters
    ----------
    config
        ``model`` (HF id, local folder, or ``"smollm2-135m-instruct"`` for the packaged model),
        ``batch_size``, ``threads`` (torch intra-op threads; 1 is fastest on a busy 2-core
        machine), ``dtype`` (``auto`` = float32 on CPU, bfloat16 on CUDA), ``max_model_len``
        (prompt + completion tokens), ``chat_template`` (a Jinja file; overrides the model's,
        required when the model has none).

    Raises
    ------
    MissingDependencyError
        torch, transformers or xgrammar is not installed, or the packaged model's wheel is
        missing.
    ConfigError
        Unknown dtype, missing chat template file, or a model without a chat template and no
        ``chat_template`` configured.
    """

    name = "transformers"
    extra = "llm"

    def __init__(self, config: BackendConfig) -> None:
        try:
            import torch
            import xgrammar
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise MissingDependencyError(
                "backend 'transformers' needs: pip install 'qagen[llm]'"
            ) from exc
        self._torch = torch
        self._xgr = xgrammar
        self._config = config
        torch.set_num_threads(config.threads)
        self._device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        dtype = _torch_dtype(torch, config.dtype, self._device.type)
        template = _read_chat_template(config.chat_template)
        started = time.perf_counter()
        path = resolve_model(config.model)
        tokenizer = AutoTokenizer.from_pretrained(path)
        if template is not None:
            tokenizer.chat_template = template
        elif not tokenizer.chat_template:
            raise ConfigError(
                f"model {config.model!r} has no chat template: set chat_template to a Jinja "
                "file (e.g. a ChatML template)"
            )
        tokenizer.padding_side = "left"
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(self._device).eval()
        self._stop_ids = _stop_token_ids(tokenizer, model)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token_id = self._stop_ids[0]
        self._vocab_size = int(model.get_output_embeddings().weight.shape[0])
        info = xgrammar.TokenizerInfo.from_huggingface(
            tokenizer, vocab_size=self._vocab_size, stop_token_ids=self._stop_ids
        )
        self._compiler = xgrammar.GrammarCompiler(info, max_threads=config.threads)
        self._tokenizer = tokenizer
        self._model = model
        log.info(
            "transformers backend: %s (%s) on %s as %s, %d threads, loaded in %.1f s",
            config.model, path, self._device, dtype, config.threads,
            time.perf_counter() - started,
        )

    @property
    def model_id(self) -> str:
        """The configured model string (recorded in every pair's provenance)."""
        return self._config.model

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        """Decode every request under its schema, ``batch_size`` at a time; results in order.

        A request that cannot start (prompt too long, schema xgrammar rejects) and every
        request of a batch whose decoding fails get ``finish_reason="error"``; the other
        batches go on.
        """
        results: list[GenResult | None] = [None] * len(requests)
        size = self._config.batch_size
        for start in range(0, len(requests), size):
            rows: list[_Row] = []
            for index in range(start, min(start + size, len(requests))):
                request = requests[index]
                try:
                    rows.append(self._start_row(index, request))
                except (ValueError, RuntimeError) as exc:
                    results[index] = _error(request, exc)
            if not rows:
                continue
            started = time.perf_counter()
            try:
                self._decode(rows)
            # The backend's per-batch boundary (the Backend contract: one failed batch must
            # not lose the others); the stage records these as backend_error rejections.
            except Exception as exc:
                log.exception("transformers backend: batch of %d failed", len(rows))
                for row in rows:
                    results[row.index] = _error(row.request, exc)
                continue
            for row in rows:
                results[row.index] = self._result(row)
            n_out = sum(len(row.generated) for row in rows)
            seconds = time.perf_counter() - started
            log.debug("batch of %d: %d tokens in %.1f s (%.1f tok/s)", len(rows), n_out,
                      seconds, n_out / max(seconds, 1e-9))
        return [r for r in results if r is not None]

    def close(self) -> None:
        """Free the model (and CUDA memory); the backend is unusable afterwards."""
        model = getattr(self, "_model", None)
        if model is None:
            return
        self._model = None
        del model
        gc.collect()
        if self._device.type == "cuda":
            self._torch.cuda.empty_cache()

    # -- one batch -------------------------------------------------------------------------

    def _start_row(self, index: int, request: GenRequest) -> _Row:
        """Render, tokenise and set up the grammar and generator of one request.

        Raises
        ------
        ValueError
            The prompt leaves no room for completion tokens within ``max_model_len``.
        RuntimeError
            xgrammar cannot compile the request's schema.
        """
        torch = self._torch
        text = self._tokenizer.apply_chat_template(
            request.messages, add_generation_prompt=True, tokenize=False
        )
        prompt_ids = self._tokenizer(text, add_special_tokens=False)["input_ids"]
        room = self._config.max_model_len - len(prompt_ids)
        if room < 1:
            raise ValueError(
                f"prompt has {len(prompt_ids)} tokens; max_model_len is "
                f"{self._config.max_model_len}"
            )
        grammar = self._compiler.compile_json_schema(
            json.dumps(request.json_schema), any_whitespace=False,
            strict_mode=True,
        )
        seen = torch.zeros(self._vocab_size, dtype=torch.bool)
        seen[torch.tensor(prompt_ids, dtype=torch.long)] = True
        return _Row(
            index=index, request=request, prompt_ids=prompt_ids,
            max_new_tokens=min(request.sampling.max_tokens, room),
            matcher=self._xgr.GrammarMatcher(grammar, override_stop_tokens=self._stop_ids),
            generator=torch.Generator().manual_seed(request.seed),
            seen=seen,
        )

    def _decode(self, rows: list[_Row]) -> None:
        """Prefill the left-padded prompts, then decode one token per live row per step."""
        torch = self._torch
        from transformers import DynamicCache

        width = max(len(row.prompt_ids) for row in rows)
        pad = self._tokenizer.pad_token_id
        input_ids = torch.tensor(
            [[pad] * (width - len(r.prompt_ids)) + r.prompt_ids for r in rows], dtype=torch.long
        )
        mask = torch.tensor(
            [[0] * (width - len(r.prompt_ids)) + [1] * len(r.prompt_ids) for r in rows],
            dtype=torch.long,
        )
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self._model.config)
        bitmask = self._xgr.allocate_token_bitmask(len(rows), self._vocab_size)
        live = list(rows)
        with torch.inference_mode():
            while True:
                out = self._model(
                    input_ids=input_ids.to(self._device), attention_mask=mask.to(self._device),
                    position_ids=positions.to(self._device), past_key_values=cache,
                    use_cache=True, logits_to_keep=1,
                )
                logits = out.logits[:, -1, :].float().cpu()
                for j, row in enumerate(live):
                    row.matcher.fill_next_token_bitmask(bitmask, j)
                self._xgr.apply_token_bitmask_inplace(
                    logits, bitmask[: len(live)], vocab_size=self._vocab_size
                )
                tokens = [self._next_token(row, logits[j]) for j, row in enumerate(live)]
                keep = [j for j, row in enumerate(live) if row.finish_reason is None]
                if not keep:
                    return
                if len(keep) < len(live):
                    index = torch.tensor(keep, dtype=torch.long)
                    cache.batch_select_indices(index.to(self._device))
                    mask, positions = mask[index], positions[index]
                    live = [live[j] for j in keep]
                    tokens = [tokens[j] for j in keep]
                input_ids = torch.tensor(tokens, dtype=torch.long).unsqueeze(1)
                mask = torch.cat([mask, torch.ones(len(live), 1, dtype=torch.long)], dim=1)
                positions = positions[:, -1:] + 1

    def _next_token(self, row: _Row, logits: Any) -> int:
        """Pick, record and grammar-accept one row's next token; set its finish reason."""
        token = _sample(self._torch, logits, row.seen, row.request.sampling, row.generator)
        if not row.matcher.accept_token(token):
            # Only reachable if every allowed token had zero probability (masked logits).
            raise RuntimeError(f"grammar rejected token {token} for {row.request.request_id}")
        row.generated.append(token)
        row.seen[token] = True
        if row.matcher.is_terminated() or token in self._stop_ids:
            row.finish_reason = "stop"
        elif len(row.generated) >= row.max_new_tokens:
            row.finish_reason = "length"
        return token

    def _result(self, row: _Row) -> GenResult:
        """The finished row as a GenResult (stop token counted, not decoded)."""
        ids = [t for t in row.generated if t not in self._stop_ids]
        return GenResult(
            request_id=row.request.request_id,
            text=self._tokenizer.decode(ids, skip_special_tokens=True),
            prompt_tokens=len(row.prompt_ids),
            completion_tokens=len(row.generated),
            finish_reason=row.finish_reason,
        )


BACKEND = TransformersBackend


def _sample(torch: Any, logits: Any, seen: Any, sampling: SamplingConfig, generator: Any) -> int:
    """One token from masked float32 logits (vocab,): penalty, temperature, top-p, draw.

    Semantics as in transformers: the repetition penalty (CTRL) divides seen tokens' positive
    logits and multiplies negative ones; top-p keeps the most likely tokens while the mass
    *before* each is below ``top_p`` (so at least one). Temperature 0 is greedy and draws
    nothing; otherwise exactly one uniform number is drawn per token (inverse CDF), so a
    row's random stream does not depend on how many candidates it had.

    Why not ``torch.sort`` + ``torch.multinomial``: on one CPU thread a 49k-entry sort costs
    ~4 ms and multinomial ~1.3 ms per row per step, as much as a third of a batched decoding
    step; the nucleus almost always lies in the top few hundred tokens, which ``topk`` finds
    in ~0.15 ms (falling back to a full sort when it does not, so the result is exact).
    """
    logits = logits.clone()
    if sampling.repetition_penalty != 1.0:
        picked = logits[seen]
        logits[seen] = torch.where(
            picked < 0, picked * sampling.repetition_penalty, picked / sampling.repetition_penalty
        )
    if sampling.temperature == 0.0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / sampling.temperature, dim=-1)
    if sampling.top_p < 1.0:
        probs, ids = torch.topk(probs, min(NUCLEUS_CANDIDATES, probs.numel()))
        if float(probs.sum()) < sampling.top_p:
            probs, ids = torch.sort(torch.softmax(logits / sampling.temperature, dim=-1),
                                    descending=True)
        before = torch.cumsum(probs, dim=-1) - probs
        keep = int((before < sampling.top_p).sum())
        probs, ids = probs[:keep], ids[:keep]
    else:
        ids = None
    cdf = torch.cumsum(probs.double(), dim=-1)
    u = torch.rand((), generator=generator, dtype=torch.float64) * cdf[-1]
    pick = min(int(torch.searchsorted(cdf, u, right=True)), cdf.numel() - 1)
    return int(ids[pick]) if ids is not None else pick


def _torch_dtype(torch: Any, name: str, device_type: str) -> Any:
    """``BackendConfig.dtype`` → torch dtype; ``auto`` = float32 on CPU, bfloat16 on CUDA.

    Raises
    ------
    ConfigError
        For a dtype name not in :data:`DTYPES`.
    """
    if name == "auto":
        return torch.bfloat16 if device_type == "cuda" else torch.float32
    if name not in DTYPES:
        raise ConfigError(f"unknown dtype {name!r}; choose auto or one of {', '.join(DTYPES)}")
    return getattr(torch, DTYPES[name])


def _read_chat_template(path: str | None) -> str | None:
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


def _stop_token_ids(tokenizer: Any, model: Any) -> list[int]:
    """End-of-turn tokens: the generation config's EOS ids, then the tokenizer's EOS."""
    ids: list[int] = []
    eos = getattr(model.generation_config, "eos_token_id", None)
    for value in [*(eos if isinstance(eos, list) else [eos]), tokenizer.eos_token_id]:
        if value is not None and int(value) not in ids:
            ids.append(int(value))
    if not ids:
        raise ConfigError("the model defines no end-of-sequence token; cannot stop decoding")
    return ids


def _error(request: GenRequest, exc: BaseException) -> GenResult:
    """A failed request as a GenResult the stage records as ``backend_error``."""
    return GenResult(
        request_id=request.request_id, text="", finish_reason="error",
        error=f"{type(exc).__name__}: {exc}",
    )
