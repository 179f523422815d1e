"""The evaluate stage: a trained run answers its held-out questions; answers are scored.

Reads the run's config, split and adapter, greedy-decodes answers for the pairs of the
held-out clips (the clips the run did not train on), writes ``eval/predictions.jsonl`` and
``eval/metrics.json`` and adds the metrics to the run's model card. With ``baseline`` the LM
alone answers too (exactly what the zero-gated adapter does before training), so the card
shows what the adapter added.

It lives in the train package because it is the adapter's evaluation: it rebuilds the run's
model and data split with the train stage's own code (``data``, ``model``, ``checkpoint``).

On the shard engine: each QA shard's chosen held-out pairs are answered by a per-shard function
(the model batches them) into ``eval/answers-<shard>.parquet`` with a marker, so a killed
evaluation resumes and a finished one re-runs without loading the model; then the answers are
scored together.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from qagen.engine import (
    ParquetSink,
    ShardWork,
    StageReport,
    StreamShards,
    files_identity,
    read_marker,
    run_stage,
)
from qagen.errors import ConfigError
from qagen.manifest import read_records, write_json_atomic, write_text_atomic
from qagen.records.training import EvalAnswer, EvalReport, Prediction, TrainReport
from qagen.train.config import EvaluateConfig, TrainConfig
from qagen.train.data import (
    KIND_BY_ARCH,
    EmbeddingSource,
    Example,
    QAPairRow,
    open_embeddings,
    read_pair_shard,
    spread,
    tokenize_pair,
)
from qagen.train.mir import score_mir
from qagen.workdir import RunDir, WorkDir

if TYPE_CHECKING:
    from qagen.train.model import MusicLM

log = logging.getLogger(__name__)

#: ``score_all(predictions, references) -> {metric: value}`` (None = not computable).
Scorer = Callable[[list[str], list[str]], dict[str, float | None]]


def _default_scorer() -> Scorer:
    from qagen.train.metrics import score_all

    return score_all


def write_predictions(path: Path, predictions: Sequence[Prediction]) -> None:
    """``predictions.jsonl``, one object per line, written atomically."""
    write_text_atomic(path, "".join(p.model_dump_json() + "\n" for p in predictions))


def with_other_clips_audio(examples: Sequence[Example]) -> list[Example] | None:
    """The same pairs, each fed the audio of another clip (clips rotated by one, so no pair
    keeps its own): the ablation that tells answers from the audio from answers from the
    question. None when the pairs cover fewer than two clips."""
    clips = list(dict.fromkeys(e.pair.clip_id for e in examples))
    if len(clips) < 2:
        return None
    audio = {e.pair.clip_id: e.features for e in examples}
    other = dict(zip(clips, clips[1:] + clips[:1], strict=True))
    return [dataclasses.replace(e, features=audio[other[e.pair.clip_id]]) for e in examples]


def _answer(model: MusicLM, examples: list[Example], *, config: EvaluateConfig,
            max_audio: int, use_music: bool) -> list[str]:
    """Greedy answers in batches of ``config.batch_size``, in input order."""
    out: list[str] = []
    for start in range(0, len(examples), config.batch_size):
        chunk = examples[start:start + config.batch_size]
        out += model.generate(chunk, max_new_tokens=config.max_new_tokens,
                              max_audio=max_audio, use_music=use_music)
    return out


STAGE = "evaluate"
#: Bump when the answers change for the same run, config and pairs (2: they carry the
#: question form, so yes/no answers are scored on their yes or no).
STAGE_VERSION = "2"


class EvalIdentity(BaseModel):
    """What besides a shard's pairs decides its answers (hashed into its fingerprint)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    train_fingerprint: str
    evaluate: str


@dataclass
class EvalPlan:
    """Which held-out pairs are answered (``max_pairs`` spread over clips, over the pairs
    that have an embedding) and which clip's audio each clip gets in the ablation; made from
    the QA shards' id columns only."""

    chosen: dict[str, list[str]]  # shard key → qa ids, in shard order
    other: dict[str, str]  # clip id → the clip whose audio it is fed (rotated by one)

    def identity(self, key: str, pairs: Path) -> str:
        """The shard's content identity: its file's bytes and its part of the plan."""
        ids = self.chosen.get(key, [])
        clips = sorted({c for c, _ in self._clip_of.get(key, [])})
        blob = json.dumps([ids, {c: self.other.get(c) for c in clips}], sort_keys=True)
        return files_identity([pairs]) + "\x1f" + hashlib.sha256(blob.encode()).hexdigest()

    _clip_of: dict[str, list[tuple[str, str]]] = field(default_factory=dict, repr=False)


def plan_evaluation(shards: dict[str, Path], *, held_out: set[str], kind: str,
                    source: EmbeddingSource, max_pairs: int | None,
                    shuffled: bool, qa_kinds: Collection[str] | None = None) -> EvalPlan:
    """The pairs to answer, from ``(qa_id, clip_id, kind)`` columns, one shard at a time
    (only pairs of ``qa_kinds`` when given: the kinds the run was trained on)."""
    candidates: list[tuple[str, str, str]] = []  # key, clip, qa id
    has_embedding: dict[str, bool] = {}
    for key, path in shards.items():
        cols = pq.read_table(path, columns=["qa_id", "clip_id", "kind"]).to_pydict()
        for qa_id, clip, qa_kind in zip(cols["qa_id"], cols["clip_id"], cols["kind"],
                                        strict=True):
            if clip not in held_out or (qa_kinds is not None and qa_kind not in qa_kinds):
                continue
            if clip not in has_embedding:
                has_embedding[clip] = source.load(clip, kind) is not None
            if has_embedding[clip]:
                candidates.append((key, clip, qa_id))
    picked = {qa for _, _, qa in spread(candidates, max_pairs, clip_of=lambda t: t[1])}
    plan = EvalPlan(chosen={}, other={})
    for key, clip, qa_id in candidates:
        if qa_id in picked:
            plan.chosen.setdefault(key, []).append(qa_id)
            plan._clip_of.setdefault(key, []).append((clip, qa_id))
    clips = list(dict.fromkeys(c for pairs in plan._clip_of.values() for c, _ in pairs))
    if shuffled and len(clips) >= 2:
        plan.other = dict(zip(clips, clips[1:] + clips[:1], strict=True))
    return plan


@dataclass
class Evaluator:
    """The per-shard function: the shard's chosen held-out pairs → their answers (adapter,
    LM alone, adapter fed another clip's audio). The model loads on the first shard with work,
    so a finished evaluation re-runs without loading it."""

    run: RunDir
    train_cfg: TrainConfig
    meta: dict[str, Any]
    config: EvaluateConfig
    source: EmbeddingSource
    other: dict[str, str]
    _model: Any = field(default=None, repr=False)
    _tokenizer: Any = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        return KIND_BY_ARCH[self.train_cfg.arch]

    def load(self) -> Any:
        """The run's LM with its trained adapter (once)."""
        if self._model is None:
            from qagen.train.checkpoint import load_adapter
            from qagen.train.model import MusicLM, load_lm, pick_device

            device = pick_device(self.config.device, threads=self.config.threads)
            lm, self._tokenizer = load_lm(self.train_cfg.lm, device=device)
            self._model = MusicLM.build(lm, self._tokenizer, config=self.train_cfg,
                                        feature_shape=self.meta["feature_shape"])
            load_adapter(self.run.adapter, self._model.music)
            self._model.eval()
        return self._model

    def skip(self, pair: QAPairRow) -> str | None:
        """Pairs that cannot be asked: no embedding (any more), or a prompt too long."""
        if self.source.load(pair.clip_id, self.kind) is None:
            return "no_embedding"
        self.load()
        if tokenize_pair(self._tokenizer, pair, max_len=self.train_cfg.max_len) is None:
            return "prompt_too_long"
        return None

    def __call__(self, key: str, pairs: list[QAPairRow]) -> list[EvalAnswer]:
        if not pairs:
            return []
        model = self.load()
        examples = []
        for pair in pairs:
            ids = tokenize_pair(self._tokenizer, pair, max_len=self.train_cfg.max_len)
            features = self.source.load(pair.clip_id, self.kind)
            if ids is None or features is None:  # skip() saw to it
                raise RuntimeError(f"{pair.qa_id}: not askable")
            examples.append(Example(pair=pair, prompt_ids=ids[0], answer_ids=ids[1],
                                    features=features))
        answers = self._answer(model, examples, use_music=True)
        plain = (self._answer(model, examples, use_music=False) if self.config.baseline
                 else [None] * len(examples))
        swapped: list[str | None] = [None] * len(examples)
        others = [self.other.get(e.pair.clip_id) for e in examples]
        fed = [None if o is None else self.source.load(o, self.kind) for o in others]
        todo = [i for i, f in enumerate(fed) if f is not None]
        if todo:
            shuffled = [dataclasses.replace(examples[i], features=fed[i]) for i in todo]
            for i, a in zip(todo, self._answer(model, shuffled, use_music=True), strict=True):
                swapped[i] = a
        return [EvalAnswer(qa_id=e.pair.qa_id, clip_id=e.pair.clip_id, kind=e.pair.kind,
                           question=e.pair.question, reference=e.pair.answer, facts=e.pair.facts,
                           question_form=e.pair.question_form, prediction=a, baseline=b, shuffled=s,
                           shuffled_clip_id=o if s is not None else None)
                for e, a, b, s, o in zip(examples, answers, plain, swapped, others, strict=True)]

    def _answer(self, model: MusicLM, examples: list[Example], *,
                use_music: bool) -> list[str]:
        return _answer(model, examples, config=self.config,
                       max_audio=self.train_cfg.max_audio_tokens, use_music=use_music)


def evaluate(work: WorkDir, *, run: str, config: EvaluateConfig | None = None,
             embeddings: EmbeddingSource | None = None, scorer: Scorer | None = None,
             strict: bool = False) -> StageReport:
    """Answer and score the held-out pairs of a finished train run, shard by shard.

    The engine answers each QA shard's chosen held-out pairs into
    ``eval/answers-<shard>.parquet`` (resumable; one marker per shard under
    ``.done/evaluate-<run>/``); the answers are then scored together.

    Parameters
    ----------
    work
        The work directory the run was trained in.
    run
        Run name (``WORKDIR/train/<run>/``).
    config
        Decoding parameters; default ``EvaluateConfig()``.
    embeddings
        Per-clip embeddings; default: the embed stage's store.
    scorer
        ``score_all``-compatible function; default ``qagen.train.metrics.score_all``.

    Returns
    -------
    StageReport
        ``items_in`` held-out pairs chosen, ``items_out`` pairs answered, ``skipped`` by
        reason; ``details`` the :class:`EvalReport` (metrics, baseline and ablation metrics),
        also written to ``eval/metrics.json``.

    Raises
    ------
    ConfigError
        The run does not exist or has not finished, or no held-out pair has an embedding.
    """
    from qagen.train.stage import read_run_config, write_card

    t0 = time.perf_counter()
    config = config or EvaluateConfig()
    rdir = work.train_run(run)
    if not (rdir.report.is_file() and rdir.adapter.is_file()):
        raise ConfigError(f"run {run!r} has not finished under {rdir.root}: run `qagen train"
                          f" --run {run}` first")
    train_cfg, meta = read_run_config(rdir)
    split = json.loads(rdir.split.read_text(encoding="utf-8"))
    source = embeddings if embeddings is not None else open_embeddings(work)
    shards = WorkDir.shard_files(work.qa_dir, "qa")
    plan = plan_evaluation(shards, held_out=set(split["eval_clips"]),
                           kind=KIND_BY_ARCH[train_cfg.arch], source=source,
                           max_pairs=config.max_pairs, shuffled=config.shuffled_audio,
                           qa_kinds=train_cfg.trained_kinds())
    if not plan.chosen:
        raise ConfigError(f"run {run!r}: no held-out pair has an embedding"
                          f" ({len(split['eval_clips'])} held-out clips)")
    identity = EvalIdentity(train_fingerprint=meta["fingerprint"],
                            evaluate=config.fingerprint())
    evaluator = Evaluator(run=rdir, train_cfg=train_cfg, meta=meta, config=config,
                          source=source, other=plan.other)
    answers_sink = ParquetSink(EvalAnswer, rdir.eval_dir, "answers")
    inputs = StreamShards(
        [ShardWork(key=key, identity=plan.identity(key, path),
                   load=partial(read_pair_shard, path, only=set(plan.chosen.get(key, []))))
         for key, path in shards.items()], owns_key=lambda _k: True)
    namespace = f"{STAGE}-{run}"
    rows = run_stage(work, stage=STAGE, version=STAGE_VERSION, batch_fn=evaluator,
                     inputs=inputs, sinks=[answers_sink], config=identity,
                     skip=evaluator.skip, strict=strict, namespace=namespace)
    fingerprint = _evaluation_fingerprint(work, namespace, shards, identity)
    cached = _cached_report(rdir, fingerprint) if rows.reused else None
    if cached is not None:
        log.info("evaluation of %s already done; reusing it", run)
        report = cached.model_copy(update={"reused": True})
    else:
        report = _score(rdir, answers_sink, shards, run=run, fingerprint=fingerprint,
                        scorer=scorer or _default_scorer(), started=t0)
        train_report = TrainReport.model_validate_json(rdir.report.read_text(encoding="utf-8"))
        write_card(rdir, report=train_report, config=train_cfg, evaluation=report)
        log.info("evaluated %s on %d pairs: %s", run, report.pairs, report.metrics)
    return rows.model_copy(update={
        "seconds": round(time.perf_counter() - t0, 3),
        "details": report.model_dump(mode="json")})


def _evaluation_fingerprint(work: WorkDir, namespace: str, shards: dict[str, Path],
                            identity: EvalIdentity) -> str:
    """The whole evaluation's identity: the run, the config and every shard's fingerprint."""
    h = hashlib.sha256(identity.model_dump_json().encode())
    for key in shards:
        marker = read_marker(work.marker(namespace, key))
        h.update((marker.fingerprint if marker else "none").encode())
    return f"{identity.train_fingerprint}-{h.hexdigest()[:16]}"


def _cached_report(rdir: RunDir, fingerprint: str) -> EvalReport | None:
    if not (rdir.metrics.is_file() and rdir.predictions.is_file()):
        return None
    cached = EvalReport.model_validate_json(rdir.metrics.read_text(encoding="utf-8"))
    return cached if cached.fingerprint == fingerprint else None


def _score(rdir: RunDir, sink: ParquetSink[EvalAnswer], shards: dict[str, Path], *, run: str,
           fingerprint: str, scorer: Scorer, started: float) -> EvalReport:
    """Score every shard's answers; write ``predictions.jsonl`` (and the baseline's) and
    ``metrics.json``. The answers are the held-out set (capped by ``max_pairs``)."""
    answers = [a for key in shards if sink.path(key).is_file()
               for a in read_records(sink.path(key), EvalAnswer)]
    refs = [a.reference for a in answers]
    facts = [a.facts for a in answers]
    kinds = [a.kind for a in answers]
    forms = [a.question_form for a in answers]

    def scored(texts: list[str], keep: list[int] | None = None) -> dict[str, float | None]:
        idx = keep if keep is not None else list(range(len(answers)))
        return {**scorer(texts, [refs[i] for i in idx]),
                **score_mir(texts, [facts[i] for i in idx], [kinds[i] for i in idx],
                           forms=[forms[i] for i in idx],
                           references=[refs[i] for i in idx])}

    def predictions(texts: list[str | None]) -> list[Prediction]:
        return [Prediction(qa_id=a.qa_id, clip_id=a.clip_id, kind=a.kind, question=a.question,
                           reference=a.reference, prediction=t)
                for a, t in zip(answers, texts, strict=True) if t is not None]

    write_predictions(rdir.predictions, predictions([a.prediction for a in answers]))
    metrics = scored([a.prediction for a in answers])
    baseline = shuffled = None
    if answers and all(a.baseline is not None for a in answers):
        write_predictions(rdir.baseline_predictions,
                          predictions([a.baseline for a in answers]))
        baseline = scored([a.baseline or "" for a in answers])
    else:
        rdir.baseline_predictions.unlink(missing_ok=True)
    swapped = [i for i, a in enumerate(answers) if a.shuffled is not None]
    if swapped:
        shuffled = scored([answers[i].shuffled or "" for i in swapped], swapped)
    report = EvalReport(run=run, fingerprint=fingerprint, pairs=len(answers), metrics=metrics,
                        baseline_metrics=baseline, shuffled_metrics=shuffled,
                        seconds=round(time.perf_counter() - started, 2))
    write_json_atomic(rdir.metrics, report.model_dump(mode="json"))
    return report
