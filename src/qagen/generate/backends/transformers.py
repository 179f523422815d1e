"""In-process transformers backend with JSON-Schema-constrained decoding (xgrammar).

Why a hand-written decode loop rather than ``model.generate``:

- **Per-request schemas in one batch.** Each row gets its own xgrammar ``GrammarMatcher``
  compiled from its request's schema, so QA-pair and caption requests share a batch.
- **Per-request seeds.** Each row samples from its own ``torch.Generator`` seeded with the
  request's seed, drawing exactly one number per step, so a request's text depends on its own
  prompt, schema, sampling and seed, not on which other requests share its batch (measured:
  identical texts alone, in batches of 2, 3 and 8, in any order, greedy and at T=0.7; only
  floating-point differences from padding could ever split them). ``generate`` draws from
  one global generator for the whole batch.
- **Per-request sampling.** Temperature (0 = greedy), top-p and repetition penalty are read
  from each request.
- **Continuous batching.** Finished rows leave the KV cache and queued requests take their
  slots, so one long answer does not leave the other slots idle (see ``_decode``). Each
  result is yielded the moment its row stops (``stream``), so the stage can cache it and put
  a retry back into the queue, where it takes the next free slot.

Sampling follows transformers' order and semantics: repetition penalty over prompt and
generated tokens, grammar mask, temperature, top-p (nucleus) over the masked distribution.
It runs batched on the model's device in float32: the grammar matchers fill one token bitmask
per row on the CPU (xgrammar's matchers are CPU code), the bitmask goes to the device and
``xgrammar.apply_token_bitmask_inplace`` masks the whole batch there, and penalty,
temperature, top-p and the draws are tensor ops over the batch; only the chosen token ids
come back (one copy per step). Each row still draws its one uniform number from its own
CPU generator, so a request's text does not depend on its batch. On the CPU these batched
ops are bit-identical to the former per-row ones (tests/generate/test_backend_transformers.py
compares them, and the texts for fixed seeds); on CUDA the float reductions differ, so a
seed's text there can differ from the CPU's (as bf16 weights already make it).

JSON is generated compact (no free whitespace between tokens), which removes the
whitespace loops small models fall into and spends no tokens on indentation. The stage parses
and validates the text; this module only guarantees it was decoded under the grammar.
"""

from __future__ import annotations

import gc
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from qagen.devices import resolve_device
from qagen.errors import ConfigError, MissingDependencyError
from qagen.generate.backends import (
    BackendConfig,
    GenRequest,
    GenResult,
    RequestQueue,
    SamplingConfig,
    generate_in_order,
    read_chat_template,
)
from qagen.model_cache import resolve_model

log = logging.getLogger(__name__)

#: ``BackendConfig.dtype`` values → torch dtype names ("auto" is decided by device).
DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16"}
#: Top-p candidates taken with ``topk`` before falling back to a full sort (see ``_sample``).
NUCLEUS_CANDIDATES = 256


@dataclass
class _Row:
    """Decoding state of one request (per-row tensors only while it is in flight)."""

    request: GenRequest
    prompt_ids: list[int]
    max_new_tokens: int
    grammar: Any  # xgrammar.CompiledGrammar
    matcher: Any = None  # xgrammar.GrammarMatcher
    generator: Any = None  # torch.Generator seeded with the request's seed
    seen: Any = None  # torch.BoolTensor (vocab,) on the device: tokens the penalty applies to
    generated: list[int] = field(default_factory=list)
    next_token: int | None = None  # sampled, not yet fed to the model
    finish_reason: str | None = None
    error: BaseException | None = None
    reported: bool = False  # its result was handed to the consumer


class TransformersBackend:
    """Hugging Face causal LM decoded under each request's JSON Schema.

    Parameters
    ----------
    config
        ``model`` (HF id, local folder, or ``"smollm2-135m-instruct"`` for the packaged model),
        ``batch_size``, ``threads`` (torch intra-op threads; 1 is fastest on a busy 2-core
        machine), ``device`` (``auto`` = CUDA when available), ``dtype`` (``auto`` = float32
        on CPU, bfloat16 on CUDA; fp32/fp16/bf16 accepted), ``max_model_len``
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
        self._device = torch.device(resolve_device(config.device, torch=torch))
        dtype = _torch_dtype(torch, config.dtype, self._device.type)
        template = read_chat_template(config.chat_template)
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

    def stream(self, queue: RequestQueue) -> Iterator[GenResult]:
        """Decode queued requests ``batch_size`` rows at a time; yield each as its row stops.

        Free slots are refilled from ``queue`` (requests put there while this runs are taken
        too). A request that cannot start (prompt too long, schema xgrammar rejects) is yielded
        at once with ``finish_reason="error"``. If decoding itself fails, the rows then in
        flight (at most ``batch_size``) are yielded with ``finish_reason="error"`` and the
        queue goes on in a fresh batch. Closing the iterator early drops the rows in flight;
        all decoding state is local to the call, so the backend stays usable.
        """
        while len(queue):
            admitted: list[_Row] = []
            started = time.perf_counter()
            failure: Exception | None = None
            try:
                yield from self._decode(queue, admitted)
            # The backend's per-batch boundary (the Backend contract: one failed batch must
            # not lose the others); the stage records these as backend_error rejections.
            except Exception as exc:
                log.exception("transformers backend: decoding failed with %d requests in flight",
                              sum(row.finish_reason is None for row in admitted))
                failure = exc
            if failure is not None and not admitted:
                # Failed before taking any row: no progress is possible, so every queued
                # request (and any put back while these are yielded) fails the same way.
                while len(queue):
                    for request in queue.take(len(queue)):
                        yield _error(request, failure)
                return
            for row in admitted:
                if not row.reported:  # in flight when decoding failed
                    if row.finish_reason is None:
                        row.finish_reason, row.error = "error", failure
                    row.reported = True
                    yield self._result(row)
            n_out = sum(len(row.generated) for row in admitted)
            seconds = time.perf_counter() - started
            log.debug("decoded %d requests: %d tokens in %.1f s (%.1f tok/s)", len(admitted),
                      n_out, seconds, n_out / max(seconds, 1e-9))

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        """:meth:`stream` over ``requests``; results in request order.

        A request that cannot start, or that was in flight when decoding failed, gets
        ``finish_reason="error"``; the others keep their results.
        """
        return generate_in_order(self, requests)

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

    # -- decoding --------------------------------------------------------------------------

    def _start_row(self, request: GenRequest) -> _Row:
        """Render and tokenise one request and compile its schema (cached per schema).

        Raises
        ------
        ValueError
            The prompt leaves no room for completion tokens within ``max_model_len``.
        RuntimeError
            xgrammar cannot compile the request's schema.
        jinja2.TemplateError
            The chat template cannot render the messages.
        """
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
        # Key order matters: properties are generated in schema order (question before answer).
        grammar = self._compiler.compile_json_schema(
            json.dumps(request.json_schema), any_whitespace=False, strict_mode=True
        )
        return _Row(request=request, prompt_ids=prompt_ids,
                    max_new_tokens=min(request.sampling.max_tokens, room), grammar=grammar)

    def _decode(self, queue: RequestQueue, admitted: list[_Row]) -> Iterator[GenResult]:
        """Continuous batching: keep up to ``batch_size`` rows decoding, refilling freed slots
        from ``queue``; yield each row's result as soon as it stops.

        Why: completion lengths vary several-fold (38 to 512 tokens in one measured batch),
        so fixed batches spend most steps on one or two stragglers. When rows finish, queued
        requests are prefilled and their KV caches are left-padded into the running cache
        (keys are stored after RoPE, so each row keeps its own positions); leading columns
        no row attends to are trimmed. Models whose cache layers are not plain full-attention
        ``DynamicLayer`` (sliding windows, hybrids) fall back to fixed batches.

        Every row started is appended to ``admitted`` first, so the caller knows which rows
        were in flight if this raises. Tensor work runs under ``inference_mode`` and every
        ``yield`` sits outside it, so the consumer never runs with autograd switched off.
        Returns when no row is live and the queue is empty.
        """
        torch = self._torch
        from transformers.cache_utils import DynamicLayer

        size = self._config.batch_size
        with torch.inference_mode():
            bitmask = self._xgr.allocate_token_bitmask(size, self._vocab_size)
        live: list[_Row] = []
        cache: Any = None
        mask: Any = None
        refill = True
        while live or len(queue):
            if len(queue) and len(live) < size and (refill or not live):
                new: list[_Row] = []
                while len(new) < size - len(live) and len(queue):
                    row = self._start_one(queue.take(1)[0])
                    if isinstance(row, GenResult):  # it cannot start: it fails alone, now
                        yield row
                        continue
                    admitted.append(row)
                    new.append(row)
                if not new:
                    continue
                with torch.inference_mode():
                    for row in new:
                        self._admit(row)
                    new_cache, new_mask, logits = self._prefill(new)
                    refill = refill and all(type(layer) is DynamicLayer
                                            for layer in new_cache.layers)
                    keep = self._step(new, logits, bitmask)
                    if keep:
                        _select(torch, new_cache, keep, len(new), self._device)
                        cache, mask = _merge(torch, cache, mask, new_cache, new_mask[keep])
                        live += [new[j] for j in keep]
                stepped = new
            else:
                stepped = live
                with torch.inference_mode():
                    mask = torch.cat([mask, mask.new_ones(len(live), 1)], dim=1)
                    out = self._model(
                        input_ids=torch.tensor([[row.next_token] for row in live]).to(
                            self._device),
                        attention_mask=mask.to(self._device),
                        position_ids=(mask.sum(-1, keepdim=True) - 1).to(self._device),
                        past_key_values=cache, use_cache=True,
                    )
                    keep = self._step(live, out.logits[:, -1, :], bitmask)
                    if keep:
                        _select(torch, cache, keep, len(live), self._device)
                        mask, live = mask[keep], [live[j] for j in keep]
                        if refill:
                            mask = _trim(torch, cache, mask)
                    else:
                        live, cache, mask = [], None, None
            for row in stepped:
                if row.finish_reason is not None and not row.reported:
                    row.reported = True
                    yield self._result(row)

    def _start_one(self, request: GenRequest) -> _Row | GenResult:
        """A started row, or the request's error result when it cannot start.

        Why it never raises: a request taken from the queue must come back as exactly one
        result, and one that cannot start must not take the batch down with it.
        """
        from jinja2 import TemplateError

        try:
            return self._start_row(request)
        except (ValueError, RuntimeError, TemplateError) as exc:  # too long, bad schema
            log.warning("transformers backend: request %s cannot start: %s",
                        request.request_id, exc)
            return _error(request, exc)
        # The backend's per-request boundary (the Backend contract: one failed request must
        # not lose the others); the stage records these as backend_error rejections.
        except Exception as exc:
            log.exception("transformers backend: request %s failed to start",
                          request.request_id)
            return _error(request, exc)

    def _admit(self, row: _Row) -> None:
        """Give a row its grammar matcher, seeded generator and repetition-penalty set."""
        torch = self._torch
        row.matcher = self._xgr.GrammarMatcher(row.grammar, override_stop_tokens=self._stop_ids)
        row.generator = torch.Generator().manual_seed(row.request.seed)
        row.seen = torch.zeros(self._vocab_size, dtype=torch.bool, device=self._device)
        row.seen[torch.tensor(row.prompt_ids, dtype=torch.long, device=self._device)] = True

    def _prefill(self, rows: list[_Row]) -> tuple[Any, Any, Any]:
        """Run the left-padded prompts of new rows; their cache, mask and last logits."""
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
        cache = DynamicCache(config=self._model.config)
        out = self._model(
            input_ids=input_ids.to(self._device), attention_mask=mask.to(self._device),
            position_ids=(mask.cumsum(-1) - 1).clamp(min=0).to(self._device),
            past_key_values=cache, use_cache=True, logits_to_keep=1,
        )
        return cache, mask, out.logits[:, -1, :]

    def _step(self, rows: list[_Row], logits: Any, bitmask: Any) -> list[int]:
        """Mask, sample and accept one token per row; indices of the rows still going.

        The bitmask is filled on the CPU (one row per matcher), masks the batch's logits on
        their device, and the batch is sampled there (:func:`_sample_batch`).
        """
        torch = self._torch
        logits = logits.float()
        for j, row in enumerate(rows):
            row.matcher.fill_next_token_bitmask(bitmask, j)
        mask = bitmask[: len(rows)]
        if logits.device.type != "cpu":
            mask = mask.to(logits.device, non_blocking=True)
        self._xgr.apply_token_bitmask_inplace(logits, mask, vocab_size=self._vocab_size)
        tokens = _sample_batch(torch, logits, torch.stack([row.seen for row in rows]),
                               [row.request.sampling for row in rows],
                               [row.generator for row in rows])
        keep = []
        for j, row in enumerate(rows):
            token = tokens[j]
            if not row.matcher.accept_token(token):
                # Only reachable if every token the grammar allows had zero probability.
                raise RuntimeError(f"grammar rejected token {token} for {row.request.request_id}")
            row.generated.append(token)
            row.seen[token] = True
            row.next_token = token
            if row.matcher.is_terminated() or token in self._stop_ids:
                row.finish_reason = "stop"
            elif len(row.generated) >= row.max_new_tokens:
                row.finish_reason = "length"
            else:
                keep.append(j)
        for row in rows:
            if row.finish_reason is not None:
                row.matcher = row.generator = row.seen = None  # free per-row state early
        return keep

    def _result(self, row: _Row) -> GenResult:
        """The finished row as a GenResult (stop token counted, not decoded)."""
        if row.error is not None:
            return _error(row.request, row.error)
        ids = [t for t in row.generated if t not in self._stop_ids]
        return GenResult(
            request_id=row.request.request_id,
            text=self._tokenizer.decode(ids, skip_special_tokens=True),
            prompt_tokens=len(row.prompt_ids),
            completion_tokens=len(row.generated),
            finish_reason=row.finish_reason,
        )


BACKEND = TransformersBackend


def _sample(torch: Any, logits: Any, seen: Any, sampling: SamplingConfig, generator: Any,
            *, penalized: bool = False) -> int:
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
    if sampling.repetition_penalty != 1.0 and not penalized:
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


def _sample_batch(torch: Any, logits: Any, seen: Any, samplings: list[SamplingConfig],
                  generators: list[Any]) -> list[int]:
    """One token per row from masked float32 logits [rows, vocab], on their device.

    The batched form of :func:`_sample`, op for op (the same float32 elementwise ops, row
    softmax, top-k, cumulative sums in float64), so on the CPU it returns the same tokens
    bit for bit; rows whose top-k candidates hold less than ``top_p`` (rare) and rows
    without top-p go through :func:`_sample` itself. Each sampled row draws exactly one
    uniform number from its own generator (greedy rows none), as before.
    """
    rows, device = logits.shape[0], logits.device
    penalty = [s.repetition_penalty for s in samplings]
    if any(p != 1.0 for p in penalty):  # x * 1.0 and x / 1.0 are exact: rows without it keep x
        pen = torch.tensor(penalty, dtype=torch.float32, device=device)[:, None]
        logits = torch.where(seen, torch.where(logits < 0, logits * pen, logits / pen), logits)
    greedy = [s.temperature == 0.0 for s in samplings]
    tokens: list[int | None] = [None] * rows
    if any(greedy):
        best = torch.argmax(logits, dim=-1).tolist()
        tokens = [best[j] if greedy[j] else None for j in range(rows)]
    nucleus = [j for j in range(rows) if not greedy[j] and samplings[j].top_p < 1.0]
    if nucleus:
        idx = torch.tensor(nucleus, dtype=torch.long, device=device)
        temps = torch.tensor([samplings[j].temperature for j in nucleus], dtype=torch.float32,
                             device=device)[:, None]
        probs = torch.softmax(logits[idx] / temps, dim=-1)
        probs, ids = torch.topk(probs, min(NUCLEUS_CANDIDATES, probs.shape[-1]), dim=-1)
        top_p = torch.tensor([samplings[j].top_p for j in nucleus], dtype=torch.float32,
                             device=device)[:, None]
        # As _sample's float(sum) < top_p: the float32 sum against top_p in float64.
        wanted = torch.tensor([samplings[j].top_p for j in nucleus], dtype=torch.float64,
                              device=device)
        enough = probs.sum(dim=-1).double() >= wanted
        before = torch.cumsum(probs, dim=-1) - probs
        keep = (before < top_p).sum(dim=-1)
        cdf = torch.cumsum(probs.double(), dim=-1)
        last = cdf.gather(-1, (keep - 1)[:, None])
        u = torch.stack([torch.rand((), generator=generators[j], dtype=torch.float64)
                         if ok else torch.zeros((), dtype=torch.float64)
                         for j, ok in zip(nucleus, enough.tolist(), strict=True)])
        target = u.to(device)[:, None] * last
        pick = torch.searchsorted(cdf, target, right=True)
        pick = torch.minimum(pick, (keep - 1)[:, None])
        chosen = ids.gather(-1, pick)[:, 0].tolist()
        for k, (j, ok) in enumerate(zip(nucleus, enough.tolist(), strict=True)):
            tokens[j] = chosen[k] if ok else None  # too little mass in the top k: full sort
    for j in range(rows):
        if tokens[j] is None:
            tokens[j] = _sample(torch, logits[j], seen[j], samplings[j], generators[j],
                                penalized=True)
    return [int(t) for t in tokens if t is not None]


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


def _select(torch: Any, cache: Any, keep: list[int], rows: int, device: Any) -> None:
    """Keep only the ``keep`` rows of a cache (no-op when all stay)."""
    if len(keep) < rows:
        cache.batch_select_indices(torch.tensor(keep, dtype=torch.long, device=device))


def _merge(torch: Any, cache: Any, mask: Any, new_cache: Any, new_mask: Any) -> tuple[Any, Any]:
    """Append new rows to a running cache, left-padding whichever is shorter with zeros.

    Padded positions are masked out, so their zero keys and values are never attended to.
    """
    if cache is None:
        return new_cache, new_mask
    width = max(mask.shape[1], new_mask.shape[1])
    pad = torch.nn.functional.pad
    for old, new in zip(cache.layers, new_cache.layers, strict=True):
        for name in ("keys", "values"):
            a, b = getattr(old, name), getattr(new, name)
            setattr(old, name, torch.cat([pad(a, (0, 0, width - a.shape[2], 0)),
                                          pad(b, (0, 0, width - b.shape[2], 0))], dim=0))
    mask = torch.cat([pad(mask, (width - mask.shape[1], 0)),
                      pad(new_mask, (width - new_mask.shape[1], 0))], dim=0)
    return cache, mask


def _trim(torch: Any, cache: Any, mask: Any) -> Any:
    """Drop leading cache columns that no remaining row attends to; the trimmed mask."""
    lead = int(torch.argmax(mask.any(dim=0).to(torch.uint8)))
    if lead == 0:
        return mask
    for layer in cache.layers:
        layer.keys = layer.keys[:, :, lead:, :]
        layer.values = layer.values[:, :, lead:, :]
    return mask[:, lead:]
