"""The generate stage: clips + features → prompts → LLM → validated, grounded QA pairs.

Per shard: render every (clip, template) request, serve what the request cache holds, send
the rest to the backend in large batches (thousands per call on vLLM), parse each completion
with the template's Pydantic output model, retry only the requests that failed to parse (new
seed), then screen every pair — kind, leak, junk, grounding against the measurements,
near-duplicates — and write accepted pairs to ``qa/`` and rejected ones, with reasons, to
``qa_rejected/``. The backend is loaded only if some request is not cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
from pydantic import BaseModel, Field, ValidationError

from qagen import jsontext
from qagen.audio import sha256_file
from qagen.config import GenerateConfig
from qagen.engine import ParquetSink, finished_marker, remove_orphans
from qagen.errors import BackendError, ConfigError
from qagen.generate.backends import (
    Backend,
    BackendConfig,
    GenRequest,
    GenResult,
    RequestQueue,
    SamplingConfig,
    load_backend,
)
from qagen.generate.cache import RequestCache, request_key
from qagen.generate.context import build_context
from qagen.generate.facts import (
    FactPair,
    Phrasebook,
    load_phrasebook,
    render_fact_pairs,
    verify_facts,
)
from qagen.generate.filters import (
    load_banned_phrases,
    question_similarity,
)
from qagen.generate.grounding import Finding
from qagen.generate.prompts import Template, load_templates, render_messages
from qagen.generate.screen import screen_pair
from qagen.manifest import read_records, write_json_atomic, write_records
from qagen.progress import Progress, ProgressSink, log_sink
from qagen.records import AudioStatus, Clip, ClipFeatures, FeatureStatus
from qagen.records.qa import (
    OUTPUT_MODELS,
    FixedAnswers,
    GenerateReason,
    JudgeScores,
    Paraphrase,
    QAItem,
    QAKind,
    QAPairs,
    QARecord,
    QARejected,
    QuestionForm,
    StatedFacts,
)
from qagen.records.stage import ShardMarker, StageReport
from qagen.workdir import WorkDir

log = logging.getLogger(__name__)

STAGE = "generate"
#: Bump when records change for the same completions (parsing, screening, record fields).
STAGE_VERSION = "3"
#: template_id, backend and model_id of facts pairs (written by rule, not by a model).
FACTS_BACKEND = "rules"
FACTS_MODEL = "qagen-facts"
FACTS_TEMPLATE = "facts"
#: Retried with a new seed in the same run. A backend error is not: the backend has its own
#: retry budget, and a request it could not answer is asked again by the next run (its shard
#: is not marked done), instead of multiplying the wait on a dead server.
_RETRYABLE = {GenerateReason.truncated, GenerateReason.invalid_json,
              GenerateReason.schema_invalid, GenerateReason.wrong_count}


class GenerateReport(BaseModel):
    """Counts of one generate run (sums over shards)."""

    shards: int = 0
    shards_reused: int = 0
    clips: int = 0
    requests: int = 0
    responses_valid_first_try: int = 0
    cache_hits: int = 0
    generated: int = 0
    accepted: int = 0
    rejected: dict[str, int] = Field(default_factory=dict)
    skipped: dict[str, int] = Field(default_factory=dict)
    by_kind: dict[str, int] = Field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    backend_seconds: float = 0.0
    seconds: float = 0.0
    by_form: dict[str, int] = Field(default_factory=dict)
    by_template: dict[str, int] = Field(default_factory=dict)
    verified: int = 0
    judged: int = 0
    unanswered: int = Field(
        default=0, description="Requests the backend failed on; their shards are not done.")
    first_error: str | None = None

    @property
    def first_try_valid_rate(self) -> float:
        """Share of requests whose first completion parsed into the output model."""
        return self.responses_valid_first_try / self.requests if self.requests else 0.0

    def stage_report(self) -> StageReport:
        """This report in the one shape every stage reports (CLI, flow artifact, run report):
        clips in, accepted pairs out, labels as ``group:label`` counts, numbers as extras."""
        counts = {**{f"kind:{k}": n for k, n in self.by_kind.items()},
                  **{f"form:{k}": n for k, n in self.by_form.items()},
                  **{f"template:{k}": n for k, n in self.by_template.items()}}
        extras = {name: getattr(self, name) for name in (
            "requests", "responses_valid_first_try", "cache_hits", "generated", "verified",
            "judged", "prompt_tokens", "completion_tokens", "backend_seconds", "unanswered")}
        return StageReport(
            stage=STAGE, shards=self.shards, shards_reused=self.shards_reused,
            items_in=self.clips, items_out=self.accepted, skipped=dict(self.skipped),
            rejected=dict(self.rejected), counts=dict(sorted(counts.items())),
            seconds=self.seconds, extras=extras,
            details={"first_try_valid_rate": self.first_try_valid_rate,
                     "first_error": self.first_error})


@dataclass
class _Request:
    clip: Clip
    features: ClipFeatures | None
    template: Template
    gen: GenRequest
    attempt: int
    source: QARecord | None = None  # the facts pair a paraphrase rewrites / a judge scores


@dataclass
class _ShardOut:
    records: list[QARecord] = field(default_factory=list)
    rejected: list[QARejected] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    clips: dict[str, Clip] = field(default_factory=dict)
    features: dict[str, ClipFeatures] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _seed(base: int, clip_id: str, template_id: str, attempt: int) -> int:
    key = f"{base}\x1f{clip_id}\x1f{template_id}\x1f{attempt}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=4).digest(), "big") & 0x7FFFFFFF


class _Generator:
    """Holds the (lazily loaded) backend, cache and templates across shards."""

    def __init__(self, work: WorkDir, config: GenerateConfig, backend_config: BackendConfig,
                 backend: Backend | None, cache: bool) -> None:
        self.work = work
        self.config = config
        self.backend_config = backend_config
        self._backend = backend
        self.cache = RequestCache(work.cache / STAGE if cache else None)
        loaded = load_templates(ids=config.templates)
        judges = [t.meta.id for t in loaded if t.meta.mode == "judge"]
        if judges and config.templates is not None:
            raise ConfigError(f"{judges} are judge templates, not families: set "
                              "GenerateConfig.judge (--judge) instead of listing them")
        self.templates = [t for t in loaded if t.meta.mode != "judge"]
        self.judge: Template | None = None
        if config.judge is not None:
            self.judge = load_templates(ids=[config.judge])[0]
            if self.judge.meta.mode != "judge":
                raise ConfigError(f"template {config.judge!r} is not a judge (mode: judge)")
        self.book: Phrasebook | None = load_phrasebook() if config.facts else None
        # Per template, computed once: the schema (and its length bound) is the same for
        # every request, and building it is the costly part of a request.
        every = [*self.templates, *([self.judge] if self.judge else [])]
        self.schemas = {t.meta.id: t.json_schema() for t in every}
        self.samplings = {t.meta.id: self._sampling(t) for t in every}
        self.banned = load_banned_phrases()
        self.model_id = backend.model_id if backend is not None else backend_config.model
        self.report = GenerateReport()

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            log.info("loading backend %s (%s)", self.backend_config.backend,
                     self.backend_config.model)
            self._backend = load_backend(self.backend_config)
        return self._backend

    def _sampling(self, template: Template) -> SamplingConfig:
        c = self.config
        return SamplingConfig(temperature=c.temperature, top_p=c.top_p,
                              max_tokens=(template.meta.max_tokens or c.max_tokens
                                          or template.output_token_bound()),
                              repetition_penalty=c.repetition_penalty)

    def fingerprint(self, clips_path: Path, features_path: Path | None) -> str:
        h = hashlib.sha256()
        parts = [STAGE, STAGE_VERSION, self.config.model_dump_json(),
                 self.backend_config.backend, self.model_id,
                 *(f"{t.meta.id}:{t.content_hash}" for t in self.templates),
                 f"facts:{self.book.content_hash}" if self.book else "facts:off",
                 f"judge:{self.judge.content_hash}" if self.judge else "judge:off",
                 sha256_file(clips_path),
                 sha256_file(features_path) if features_path else "-"]
        for part in parts:
            h.update(part.encode() + b"\x1f")
        return h.hexdigest()

    def request(self, clip: Clip, features: ClipFeatures | None, template: Template,
                attempt: int, messages: list[dict[str, str]] | None = None,
                source: QARecord | None = None) -> _Request:
        if messages is None:
            context = build_context(clip, features)
            if source is not None:
                context = {**context, "question": source.question, "answer": source.answer,
                           "kind": source.kind.value,
                           "rewrite_question": self.config.paraphrase_questions}
            messages = render_messages(template, context)
        schema = self.schemas[template.meta.id]
        sampling = self.samplings[template.meta.id]
        seed = _seed(self.config.seed, clip.clip_id,
                     template.meta.id + (f":{source.qa_id}" if source else ""), attempt)
        key = request_key(messages, schema, backend=self.backend_config.backend,
                          model=self.model_id, sampling=sampling, seed=seed)
        return _Request(clip, features, template,
                        GenRequest(request_id=key, messages=messages, json_schema=schema,
                                   sampling=sampling, seed=seed), attempt, source)

    def cached(self, req: _Request) -> tuple[GenResult, str] | None:
        """The cached completion of a request (counted as a hit), or None."""
        hit = self.cache.get(req.gen.request_id)
        if hit is None:
            return None
        self.report.cache_hits += 1
        return hit.result, hit.created_at


def _items(req: _Request, parsed: BaseModel) -> list[QAItem] | GenerateReason:
    meta = req.template.meta
    if isinstance(parsed, QAPairs):
        return list(parsed.pairs)
    if isinstance(parsed, Paraphrase):
        kind = req.source.kind if req.source is not None else meta.kinds[0]
        return [QAItem(question=parsed.question, answer=parsed.answer, kind=kind)]
    if isinstance(parsed, FixedAnswers):
        if len(parsed.answers) != len(meta.questions):
            return GenerateReason.wrong_count
        kind = meta.kinds[0]
        return [QAItem(question=q, answer=a, kind=kind)
                for q, a in zip(meta.questions, parsed.answers, strict=True)]
    return [QAItem(question=meta.question or "Describe this music.",
                   answer=parsed.caption, kind=QAKind.caption)]  # type: ignore[attr-defined]


def _parse(req: _Request, res: GenResult) -> list[QAItem] | tuple[GenerateReason, str]:
    if res.finish_reason == "error":
        return GenerateReason.backend_error, res.error or "backend error"
    model = OUTPUT_MODELS[req.template.meta.output]
    try:
        data = jsontext.loads(res.text)
    except jsontext.JSONTooDeepError as exc:
        return GenerateReason.invalid_json, str(exc)
    except json.JSONDecodeError as exc:
        reason = (GenerateReason.truncated if res.finish_reason == "length"
                  else GenerateReason.invalid_json)
        return reason, f"{exc.msg} at char {exc.pos}"
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        return GenerateReason.schema_invalid, f"{err['loc']}: {err['msg']}"
    try:
        items = _items(req, parsed)
    except ValidationError as exc:  # e.g. a fixed answer too short to be a QAItem
        err = exc.errors()[0]
        return GenerateReason.schema_invalid, f"{err['loc']}: {err['msg']}"
    if isinstance(items, GenerateReason):
        n = len(parsed.answers)  # type: ignore[attr-defined]
        return items, f"{n} answers for {len(req.template.meta.questions)} questions"
    return items


def _finding(gen: _Generator, clip: Clip, features: ClipFeatures | None, item: QAItem, *,
             kinds: list[QAKind], answer_limit: int | None, facts: StatedFacts | None,
             seen_questions: list[str], rewrite: str | None = None,
             rewrite_question: str | None = None) -> tuple[GenerateReason, str] | int:
    """:func:`screen_pair`, then near-duplicates among the clip's kept questions."""
    found = screen_pair(item, clip=clip, features=features, banned=gen.banned, kinds=kinds,
                        answer_limit=answer_limit, facts=facts, rewrite=rewrite,
                        rewrite_question=rewrite_question, gate=gen.config.gate)
    if isinstance(found, Finding):
        return found.reason, found.detail
    threshold = gen.config.near_duplicate_threshold
    twin = next((q for q in seen_questions
                 if question_similarity(q, item.question) >= threshold), None)
    if twin is not None:
        return GenerateReason.near_duplicate, f"repeats the question {twin!r}"
    return found


def _record(clip: Clip, item: QAItem, *, template_id: str,
            template_version: str, template_hash: str, backend: str, model_id: str,
            sampling: str, seed: int, attempt: int, request_id: str, raw_output: str,
            created_at: str | None, res: GenResult | None, claims: int,
            form: QuestionForm = QuestionForm.open, topic: str | None = None,
            facts: StatedFacts | None = None, derived_from: str | None = None,
            features: ClipFeatures | None = None) -> QARecord:
    facts = facts or StatedFacts()
    return QARecord(
        qa_id=QARecord.make_id(clip.clip_id, template_id, item.question),
        clip_id=clip.clip_id, source=clip.source, split=clip.split.value,
        question=item.question, answer=item.answer, kind=item.kind, question_form=form,
        topic=topic, facts=facts, derived_from=derived_from, claims_checked=claims,
        verified=claims > 0 or verify_facts(facts, clip=clip, features=features),
        template_id=template_id, template_version=template_version,
        template_hash=template_hash, backend=backend, model_id=model_id, sampling=sampling,
        seed=seed, attempt=attempt, request_id=request_id, raw_output=raw_output,
        prompt_tokens=res.prompt_tokens if res else None,
        completion_tokens=res.completion_tokens if res else None,
        finish_reason=res.finish_reason if res else None, created_at=created_at)


def _screen(gen: _Generator, req: _Request, items: list[QAItem], res: GenResult,
            created_at: str, out: _ShardOut, seen_questions: list[str]) -> None:
    """Screen an LLM response's pairs; keep the survivors, record the rest with reasons.

    A paraphrase in answer-only mode (``paraphrase_questions`` off) keeps its source's
    question and, once it passes, *replaces* the source's template answer: the dataset gets
    the natural wording, never the same question twice.
    """
    clip, t, src = req.clip, req.template, req.source
    base = {"clip_id": clip.clip_id, "source": clip.source, "template_id": t.meta.id,
            "attempt": req.attempt, "request_id": req.gen.request_id, "raw_output": res.text}
    replace = src is not None and not gen.config.paraphrase_questions
    for item in items:
        if replace and src is not None:
            item = QAItem.model_construct(question=src.question, answer=item.answer,
                                          kind=src.kind)
            if question_similarity(src.answer, item.answer) >= gen.config.near_duplicate_threshold:
                out.rejected.append(QARejected(
                    **base, reason=GenerateReason.near_duplicate,
                    detail="the rewrite repeats its source answer", question=item.question,
                    answer=item.answer, kind=item.kind.value))
                continue
        found = _finding(gen, clip, req.features, item, kinds=t.meta.kinds,
                         answer_limit=t.answer_limit(), facts=src.facts if src else None,
                         seen_questions=[] if replace else seen_questions,
                         rewrite=src.answer if src is not None else None,
                         rewrite_question=src.question if src is not None else None)
        if isinstance(found, tuple):
            out.rejected.append(QARejected(**base, reason=found[0], detail=found[1],
                                           question=item.question, answer=item.answer,
                                           kind=item.kind.value))
            continue
        record = _record(
            clip, item, template_id=t.meta.id, template_version=t.meta.version,
            template_hash=t.content_hash, backend=gen.backend_config.backend,
            model_id=gen.model_id, sampling=req.gen.sampling.model_dump_json(),
            seed=req.gen.seed, attempt=req.attempt, request_id=req.gen.request_id,
            raw_output=res.text, created_at=created_at, res=res, claims=found,
            form=src.question_form if src else QuestionForm.open,
            topic=src.topic if src else None, facts=src.facts if src else None,
            derived_from=src.qa_id if src else None, features=req.features)
        if replace and src is not None:
            out.records = [record if r.qa_id == src.qa_id else r for r in out.records]
            continue
        seen_questions.append(item.question)
        out.records.append(record)


def _facts_records(gen: _Generator, clip: Clip, features: ClipFeatures | None,
                   out: _ShardOut, seen_questions: list[str]) -> list[QARecord]:
    """The facts family for one clip: rule-written pairs through the same screens."""
    book = gen.book
    if book is None:
        return []
    kept = []
    for pair in render_fact_pairs(clip, features, book=book, seed=gen.config.seed):
        kept_pair = _facts_record(gen, book, clip, features, pair, out, seen_questions)
        if kept_pair is not None:
            kept.append(kept_pair)
    return kept


def _facts_record(gen: _Generator, book: Phrasebook, clip: Clip, features: ClipFeatures | None,
                  pair: FactPair, out: _ShardOut, seen_questions: list[str]) -> QARecord | None:
    item = QAItem(question=pair.question, answer=pair.answer, kind=pair.kind)
    facts_json = pair.facts.model_dump_json(exclude_defaults=True)
    request_id = hashlib.blake2b(f"{book.content_hash}\x1f{clip.clip_id}\x1f{pair.topic}"
                                 .encode(), digest_size=16).hexdigest()
    found = _finding(gen, clip, features, item, kinds=list(QAKind), answer_limit=None,
                     facts=pair.facts, seen_questions=seen_questions)
    if isinstance(found, tuple):
        out.rejected.append(QARejected(clip_id=clip.clip_id, source=clip.source,
                                       template_id=book.id, reason=found[0], detail=found[1],
                                       question=item.question, answer=item.answer,
                                       kind=item.kind.value, request_id=request_id,
                                       raw_output=facts_json))
        return None
    seen_questions.append(item.question)
    record = _record(clip, item, template_id=book.id, template_version=book.version,
                     template_hash=book.content_hash, backend=FACTS_BACKEND,
                     model_id=FACTS_MODEL, sampling="{}", seed=gen.config.seed, attempt=1,
                     request_id=request_id, raw_output=facts_json, created_at=None, res=None,
                     claims=found, form=pair.form, topic=pair.topic, facts=pair.facts,
                     features=features)
    out.records.append(record)
    return record


#: Facts topics worth rewriting: short answers with checkable facts (captions are not).
_PARAPHRASABLE = frozenset({"tempo_open", "meter_open", "key_open", "chords_common",
                            "instruments_open", "genre_open", "mood", "vocals", "key_mode",
                            "tempo_yes_no", "instrument_yes_no", "loudness"})


def _paraphrase_sources(gen: _Generator, clip_id: str, records: list[QARecord]) -> list[QARecord]:
    """Which facts pairs of a clip are rewritten: seeded, one per kind first."""
    n = gen.config.paraphrase_per_clip
    pool = [r for r in records if r.topic in _PARAPHRASABLE]
    pool.sort(key=lambda r: hashlib.blake2b(f"{gen.config.seed}\x1f{r.qa_id}".encode(),
                                            digest_size=8).digest())
    chosen: list[QARecord] = []
    for r in pool:
        if len(chosen) < n and all(c.kind != r.kind for c in chosen):
            chosen.append(r)
    for r in pool:
        if len(chosen) < n and r not in chosen:
            chosen.append(r)
    return chosen


def _missing(template: Template, clip: Clip, features: ClipFeatures | None) -> str | None:
    meta = template.meta
    if meta.requires_labels and not (clip.caption or clip.aspects or clip.tags):
        return "the clip has no caption, aspects or tags"
    if meta.requires:
        if features is None or features.status is not FeatureStatus.ok:
            return "the clip has no measured features" + (
                f" (augment status {features.status.value})" if features else "")
        absent = [f for f in meta.requires if getattr(features, f, None) in (None, [], "")]
        if absent:
            return f"measured features lack {absent}"
    return None


def _initial_requests(gen: _Generator, clips: list[Clip], features: dict[str, ClipFeatures],
                      out: _ShardOut, questions: dict[str, list[str]]) -> list[_Request]:
    """Facts pairs of one shard, then the first-attempt LLM requests; clips a template
    cannot use are recorded."""
    todo: list[_Request] = []
    for clip in clips:
        if clip.audio_status not in (AudioStatus.ok, AudioStatus.unchecked):
            out.counts[f"skipped:audio_{clip.audio_status.value}"] += 1
            continue
        feats = features.get(clip.clip_id)
        facts = _facts_records(gen, clip, feats, out, questions.setdefault(clip.clip_id, []))
        for template in gen.templates:
            if template.meta.mode == "paraphrase":
                for source in _paraphrase_sources(gen, clip.clip_id, facts):
                    todo.append(gen.request(clip, feats, template, attempt=1, source=source))
                continue
            why = _missing(template, clip, feats)
            if why is not None:
                out.rejected.append(QARejected(clip_id=clip.clip_id, source=clip.source,
                                               template_id=template.meta.id,
                                               reason=GenerateReason.missing_features,
                                               detail=why))
                continue
            todo.append(gen.request(clip, feats, template, attempt=1))
    return todo


@dataclass
class _Settled:
    """A request's last completion and what parsing made of it."""

    attempt: int
    index: int
    req: _Request
    res: GenResult
    created: str
    parsed: list[QAItem] | tuple[GenerateReason, str]


@dataclass
class _Shard:
    """One shard in flight: its requests are answered in any order, then screened in order."""

    key: str
    fingerprint: str
    n_clips: int
    out: _ShardOut
    questions: dict[str, list[str]] = field(default_factory=dict)
    pending: int = 0
    opening: bool = True
    judging: bool = False
    settled: list[_Settled] = field(default_factory=list)
    judged: list[tuple[int, _Request, GenResult]] = field(default_factory=list)
    unanswered: int = 0


class _Run:
    """One generate run: a rolling window of shards whose requests share one backend stream.

    Why a window and not a batch per call: completions are read (and cached) the moment
    they exist, a failed parse is retried by putting a new request into the running queue,
    and the next shard's requests are added while the backend still has work, so it never
    drains between batches. A shard is written once all its requests are answered; it is
    screened in (attempt, request) order, so its output does not depend on completion order.
    """

    def __init__(self, gen: _Generator, todo: list[tuple[str, str]], *,
                 clip_shards: dict[str, Path], feature_shards: dict[str, Path],
                 on_shard: Callable[[str], None] | None, progress: Progress) -> None:
        self.gen = gen
        self.todo = deque(todo)  # (shard key, fingerprint) not yet admitted
        self.on_shard = on_shard
        self.progress = progress
        self.queue = RequestQueue()
        self.inflight: dict[str, tuple[_Shard, _Request, int]] = {}
        self.clip_shards = clip_shards
        self.feature_shards = feature_shards
        self.clips_left = sum(_row_count(self.clip_shards[k], gen.config.max_clips_per_shard)
                              for k, _ in todo)
        self.clips_seen = 0
        self.submitted = 0

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> None:
        """Admit shards, stream their requests through the backend, write each when done."""
        self._fill()
        while len(self.queue):
            t0 = time.perf_counter()
            results = _timed(self.gen.backend.stream(self.queue), self.gen.report)
            for res in results:
                entry = self.inflight.pop(res.request_id, None)
                if entry is None:
                    raise BackendError(f"backend returned a result for unknown request "
                                       f"{res.request_id}")
                shard, req, index = entry
                shard.pending -= 1
                created = _now()
                self.gen.cache.put(res, created_at=created)
                self.gen.report.generated += 1
                self._resolve(shard, req, index, res, created, fresh=True)
                self._fill()
            log.debug("generate: stream drained after %.1f s", time.perf_counter() - t0)
            for rid, (shard, req, index) in list(self.inflight.items()):
                del self.inflight[rid]  # a backend that broke its contract: record, go on
                shard.pending -= 1
                self._resolve(shard, req, index, _unanswered(req), _now(), fresh=True)
            self._fill()

    def _fill(self) -> None:
        """Admit shards while fewer than ``request_batch`` requests are outstanding."""
        while self.todo and len(self.inflight) < self.gen.config.request_batch:
            key, fingerprint = self.todo.popleft()
            self._admit(key, fingerprint)

    def _admit(self, key: str, fingerprint: str) -> None:
        gen = self.gen
        clips = read_records(self.clip_shards[key], Clip)
        if gen.config.max_clips_per_shard is not None:
            clips = clips[: gen.config.max_clips_per_shard]
        feats_path = self.feature_shards.get(key)
        feats = {f.clip_id: f for f in read_records(feats_path, ClipFeatures)} if feats_path else {}
        shard = _Shard(key, fingerprint, len(clips),
                       _ShardOut(clips={c.clip_id: c for c in clips}, features=feats))
        requests = _initial_requests(gen, clips, feats, shard.out, shard.questions)
        gen.report.requests += len(requests)
        self.clips_left -= len(clips)
        self.clips_seen += len(clips)
        for index, req in enumerate(requests):
            self._submit(shard, req, index)
        shard.opening = False
        self._estimate_total()
        if shard.pending == 0:
            self._settle(shard)

    def _submit(self, shard: _Shard, req: _Request, index: int) -> None:
        """Answer from the cache at once, else queue the request for the backend."""
        self.submitted += 1
        hit = self.gen.cached(req)
        if hit is not None:
            self._resolve(shard, req, index, *hit, fresh=False)
            return
        if req.gen.request_id in self.inflight:  # the same request twice: answer both alike
            log.warning("generate: request %s queued twice", req.gen.request_id)
        self.inflight[req.gen.request_id] = (shard, req, index)
        self.queue.put(req.gen)
        shard.pending += 1

    def _resolve(self, shard: _Shard, req: _Request, index: int, res: GenResult,
                 created: str, *, fresh: bool) -> None:
        gen = self.gen
        self.progress.advance(1, tokens=(res.completion_tokens or 0) if fresh else 0)
        if res.finish_reason == "error":
            shard.unanswered += 1
            gen.report.unanswered += 1
            gen.report.first_error = gen.report.first_error or res.error
        if shard.judging:
            shard.judged.append((index, req, res))
        else:
            gen.report.prompt_tokens += res.prompt_tokens or 0
            gen.report.completion_tokens += res.completion_tokens or 0
            parsed = _parse(req, res)
            if (isinstance(parsed, tuple) and parsed[0] in _RETRYABLE
                    and req.attempt < gen.config.max_attempts):
                retry = gen.request(req.clip, req.features, req.template, attempt=req.attempt + 1,
                                    messages=req.gen.messages, source=req.source)
                self._submit(shard, retry, index)
            else:
                if req.attempt == 1 and not isinstance(parsed, tuple):
                    gen.report.responses_valid_first_try += 1
                shard.settled.append(_Settled(req.attempt, index, req, res, created, parsed))
        if not shard.opening and shard.pending == 0:
            self._settle(shard)

    def _settle(self, shard: _Shard) -> None:
        """Every request of the shard's current phase is answered: screen, judge, write."""
        gen = self.gen
        if not shard.judging:
            for s in sorted(shard.settled, key=lambda s: (s.attempt, s.index)):
                if isinstance(s.parsed, tuple):
                    reason, detail = s.parsed
                    shard.out.rejected.append(QARejected(
                        clip_id=s.req.clip.clip_id, source=s.req.clip.source,
                        template_id=s.req.template.meta.id, reason=reason, detail=detail,
                        attempt=s.attempt, request_id=s.req.gen.request_id,
                        raw_output=s.res.text))
                else:
                    _screen(gen, s.req, s.parsed, s.res, s.created, shard.out,
                            shard.questions.setdefault(s.req.clip.clip_id, []))
            shard.settled.clear()
            if gen.judge is not None:
                shard.judging = shard.opening = True
                for i, req in _judge_requests(gen, shard.out):
                    self._submit(shard, req, i)
                shard.opening = False
                self._estimate_total()
                if shard.pending == 0:
                    self._settle(shard)
                return
        else:
            _apply_judge(gen, shard.out, sorted(shard.judged, key=lambda j: j[0]))
        _write_shard(gen.work, shard.key, shard.fingerprint, shard.out, clips=shard.n_clips,
                     report=gen.report, done=shard.unanswered == 0)
        if self.on_shard is not None:
            self.on_shard(shard.key)

    def _estimate_total(self) -> None:
        """Requests so far plus the clips not yet admitted at the rate seen so far."""
        rate = self.submitted / self.clips_seen if self.clips_seen else 0.0
        self.progress.set_total(self.submitted + round(rate * max(self.clips_left, 0)))


def _row_count(path: Path, limit: int | None) -> int:
    rows = pq.ParquetFile(path).metadata.num_rows
    return rows if limit is None else min(rows, limit)


def _timed(results: Iterator[GenResult], report: GenerateReport) -> Iterator[GenResult]:
    """Yield from ``results``, adding the time spent inside the backend to the report."""
    while True:
        t0 = time.perf_counter()
        try:
            res = next(results)
        except StopIteration:
            report.backend_seconds += time.perf_counter() - t0
            return
        report.backend_seconds += time.perf_counter() - t0
        yield res


def _unanswered(req: _Request) -> GenResult:
    return GenResult(request_id=req.gen.request_id, text="", finish_reason="error",
                     error="the backend returned no result for this request")


def _judge_requests(gen: _Generator, out: _ShardOut) -> list[tuple[int, _Request]]:
    """One judge request per accepted pair (facts pairs only with ``judge_facts``)."""
    judge = gen.judge
    if judge is None:
        return []
    todo = []
    for i, rec in enumerate(out.records):
        if rec.template_id == FACTS_TEMPLATE and not gen.config.judge_facts:
            continue
        clip = out.clips[rec.clip_id]
        todo.append((i, gen.request(clip, out.features.get(rec.clip_id), judge, attempt=1,
                                    source=rec)))
    return todo


def _apply_judge(gen: _Generator, out: _ShardOut,
                 judged: list[tuple[int, _Request, GenResult]]) -> None:
    """Store the judge's scores on the pairs, drop those below the bar.

    A judge reply that does not parse leaves the pair unjudged (``judge`` None) rather than
    dropping it.
    """
    drop: set[int] = set()
    for i, req, res in judged:
        try:
            scores = JudgeScores.model_validate_json(res.text)
        except ValidationError:
            continue
        gen.report.judged += 1
        rec = out.records[i]
        if scores.mean < gen.config.judge_min_score:
            drop.add(i)
            out.rejected.append(QARejected(
                clip_id=rec.clip_id, source=rec.source, template_id=rec.template_id,
                reason=GenerateReason.judge_low,
                detail=f"judge mean {scores.mean:.2f} < {gen.config.judge_min_score} "
                       f"({scores.model_dump_json()})",
                question=rec.question, answer=rec.answer, kind=rec.kind.value,
                request_id=req.gen.request_id, raw_output=res.text))
        out.records[i] = rec.model_copy(update={"judge": scores, "judge_model": gen.model_id})
    out.records = [r for i, r in enumerate(out.records) if i not in drop]


def generate(
    work: WorkDir, *, config: GenerateConfig | None = None,
    backend_config: BackendConfig | None = None, backend: Backend | None = None,
    cache: bool = True, shard_keys: list[str] | None = None,
    on_shard: Callable[[str], None] | None = None,
    progress: Sequence[ProgressSink] = (),
) -> GenerateReport:
    """Generate QA pairs for every clip shard of ``work`` (resumable, cached, streaming).

    Parameters
    ----------
    backend_config
        Which backend and model (default: the embedded SmolLM2 via transformers).
    backend
        An already-loaded backend to use instead (benchmarks, tests, long-lived workers).
    cache
        Reuse raw completions from ``cache/generate/`` (re-parsing is always done). Each
        completion is cached the moment it exists, so a killed run loses only the requests
        in flight.
    shard_keys
        Only these shards (the flow's per-shard tasks); default every shard, and then the
        outputs of shards that no longer exist are removed.
    progress
        Sinks for requests done/total, tokens/s and ETA (a log line every 30 s is added).
    """
    t0 = time.perf_counter()
    config = config or GenerateConfig()
    backend_config = backend_config or BackendConfig()
    gen = _Generator(work, config, backend_config, backend, cache)
    work.check_manifest_complete()
    clip_shards = work.manifest_shards("clips")
    if not clip_shards:
        raise ConfigError(f"no clip manifest in {work.root}; run `qagen ingest` first")
    feature_shards = work.manifest_shards("features")
    keys = list(clip_shards) if shard_keys is None else shard_keys
    unknown = [k for k in keys if k not in clip_shards]
    if unknown:
        raise ConfigError(f"no clip shard {unknown[0]!r} in {work.root}")
    todo: list[tuple[str, str]] = []
    for key in keys:
        fingerprint = gen.fingerprint(clip_shards[key], feature_shards.get(key))
        meta = finished_marker(work.marker(STAGE, key), fingerprint, root=work.root)
        gen.report.shards += 1
        if meta is not None:
            gen.report.shards_reused += 1
            _add_counts(gen.report, meta)
        else:
            todo.append((key, fingerprint))
    tracker = Progress(STAGE, unit="requests", sinks=[log_sink(logger=log), *progress])
    try:
        _Run(gen, todo, clip_shards=clip_shards, feature_shards=feature_shards,
             on_shard=on_shard, progress=tracker).run()
    finally:
        tracker.close()
        if gen._backend is not None and backend is None:
            gen._backend.close()
    if shard_keys is None:  # pairs of clips a re-ingest dropped must not reach train/publish
        remove_orphans(work, STAGE, [ParquetSink(QARecord, work.qa_dir, "qa"),
                                     ParquetSink(QARejected, work.qa_rejected_dir, "qa_rejected")],
                       keep=set(clip_shards))
    gen.report.backend_seconds = round(gen.report.backend_seconds, 3)
    gen.report.seconds = round(time.perf_counter() - t0, 3)
    log.info("generate: %d shards (%d reused), %d accepted, rejected %s", gen.report.shards,
             gen.report.shards_reused, gen.report.accepted, gen.report.rejected)
    return gen.report


def check_answered(report: GenerateReport) -> None:
    """Raise when the backend left requests unanswered (call after showing the report).

    Raises
    ------
    BackendError
        Naming how many, the first error and the fix (re-run: answers are cached).
    """
    if report.unanswered:
        raise BackendError(
            f"the backend gave no answer to {report.unanswered} requests (first error: "
            f"{(report.first_error or 'unknown')[:200]}); their shards are not marked done: "
            "re-run generate once the backend works (answered requests come from the cache)")


def _write_shard(work: WorkDir, key: str, fingerprint: str, result: _ShardOut, *, clips: int,
                 report: GenerateReport, done: bool = True) -> None:
    """Outputs first (atomically), then the marker: a kill in between redoes the shard.

    A shard with requests the backend did not answer gets its outputs but no marker, so the
    next run does it again: cached completions are reused, the failed requests are re-asked.
    """
    outputs = (work.qa_shard(key), work.qa_rejected_shard(key))
    write_records(outputs[0], result.records, QARecord)
    write_records(outputs[1], result.rejected, QARejected)
    counts = Counter[str]()
    for r in result.records:
        counts.update((f"kind:{r.kind.value}", f"form:{r.question_form.value}",
                       f"template:{r.template_id}"))
    meta = ShardMarker(
        fingerprint=fingerprint, stage_version=STAGE_VERSION, items_in=clips,
        items_out=len(result.records),
        rejected=dict(sorted(Counter(r.reason.value for r in result.rejected).items())),
        skipped={k.split(":", 1)[1]: v for k, v in sorted(result.counts.items())},
        counts=dict(sorted(counts.items())),
        extras={"verified": sum(r.verified for r in result.records)},
        outputs=[str(p.relative_to(work.root)) for p in outputs])
    if done:
        write_json_atomic(work.marker(STAGE, key), meta.model_dump(mode="json"))
    else:
        work.marker(STAGE, key).unlink(missing_ok=True)
        log.warning("generate: shard %s has requests the backend did not answer; it is not "
                    "marked done and the next run asks them again", key)
    _add_counts(report, meta)


def _add_counts(report: GenerateReport, meta: ShardMarker) -> None:
    report.clips += meta.items_in
    report.accepted += meta.items_out
    report.verified += int(meta.extras.get("verified", 0))
    groups = {"kind": report.by_kind, "form": report.by_form, "template": report.by_template}
    for label, n in meta.counts.items():
        group, _, name = label.partition(":")
        target = groups[group]
        target[name] = target.get(name, 0) + n
    for name in ("rejected", "skipped"):
        target = getattr(report, name)
        for k, v in getattr(meta, name).items():
            target[k] = target.get(k, 0) + v
