"""The evaluate stage: a trained run answers its held-out questions; answers are scored.

Reads the run's config, split and adapter, greedy-decodes answers for the pairs of the
held-out clips (the clips the run did not train on), writes ``eval/predictions.jsonl`` and
``eval/metrics.json`` and adds the metrics to the run's model card. With ``baseline`` the LM
alone answers too (exactly what the zero-gated adapter does before training), so the card
shows what the adapter added.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from qagen.errors import ConfigError
from qagen.evaluate.config import EvaluateConfig
from qagen.evaluate.mir import score_mir
from qagen.manifest import write_json_atomic
from qagen.records.training import EvalReport, Prediction, TrainReport
from qagen.train.data import (
    KIND_BY_ARCH,
    EmbeddingSource,
    Example,
    build_examples,
    load_pairs,
    open_embeddings,
    spread_sample,
)
from qagen.train.rundir import RunDir
from qagen.workdir import WorkDir

if TYPE_CHECKING:
    from qagen.train.model import MusicLM

log = logging.getLogger(__name__)

#: ``score_all(predictions, references) -> {metric: value}`` (None = not computable).
Scorer = Callable[[list[str], list[str]], dict[str, float | None]]


def _default_scorer() -> Scorer:
    from qagen.evaluate.metrics import score_all

    return score_all


def write_predictions(path: Path, predictions: Sequence[Prediction]) -> None:
    """``predictions.jsonl``, one object per line, written atomically."""
    from qagen.train.checkpoint import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text("".join(p.model_dump_json() + "\n" for p in predictions),
                       encoding="utf-8")


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


def evaluate(work: WorkDir, *, run: str, config: EvaluateConfig | None = None,
             embeddings: EmbeddingSource | None = None, scorer: Scorer | None = None,
             ) -> EvalReport:
    """Answer and score the held-out pairs of a finished train run.

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
        ``score_all``-compatible function; default ``qagen.evaluate.metrics.score_all``.

    Raises
    ------
    ConfigError
        The run does not exist or has not finished, or no held-out pair has an embedding.
    """
    from qagen.train.checkpoint import load_adapter
    from qagen.train.model import MusicLM, load_lm, pick_device
    from qagen.train.stage import read_run_config, write_card

    config = config or EvaluateConfig()
    rdir = RunDir.of(work, run)
    if not (rdir.report.is_file() and rdir.adapter.is_file()):
        raise ConfigError(f"run {run!r} has not finished under {rdir.root}: run `qagen train"
                          f" --run {run}` first")
    train_cfg, meta = read_run_config(rdir)
    train_report = TrainReport.model_validate_json(rdir.report.read_text(encoding="utf-8"))
    fingerprint = f"{meta['fingerprint']}-{config.fingerprint()}"
    if rdir.metrics.is_file() and rdir.predictions.is_file():
        cached = EvalReport.model_validate_json(rdir.metrics.read_text(encoding="utf-8"))
        if cached.fingerprint == fingerprint:
            log.info("evaluation of %s already done; reusing it", run)
            return cached.model_copy(update={"reused": True})
    started = time.perf_counter()
    split = json.loads(rdir.split.read_text(encoding="utf-8"))
    source = embeddings if embeddings is not None else open_embeddings(work.root)
    device = pick_device(config.device, threads=config.threads)
    lm, tokenizer = load_lm(train_cfg.lm, device=device)
    data = build_examples(
        load_pairs(work.root / "qa"), tokenizer=tokenizer, embeddings=source,
        kind=KIND_BY_ARCH[train_cfg.arch], max_len=train_cfg.max_len,
        eval_fraction=train_cfg.eval_fraction,
        clip_split=(set(split["train_clips"]), set(split["eval_clips"]), split["rule"]))
    examples = spread_sample(data.eval, config.max_pairs)
    if not examples:
        raise ConfigError(f"run {run!r}: no held-out pair has an embedding"
                          f" (skipped: {data.counts.skipped})")
    model = MusicLM.build(lm, tokenizer, config=train_cfg, feature_shape=meta["feature_shape"])
    load_adapter(rdir.adapter, model.music)
    model.eval()
    score = scorer or _default_scorer()
    refs = [e.pair.answer for e in examples]

    def predictions(answers: list[str]) -> list[Prediction]:
        return [Prediction(qa_id=e.pair.qa_id, clip_id=e.pair.clip_id, kind=e.pair.kind,
                           question=e.pair.question, reference=e.pair.answer, prediction=a)
                for e, a in zip(examples, answers, strict=True)]

    facts = [e.pair.facts for e in examples]
    kinds = [e.pair.kind for e in examples]

    def scored(answers: list[str]) -> dict[str, float | None]:
        return {**score(answers, refs), **score_mir(answers, facts, kinds)}

    max_audio = train_cfg.max_audio_tokens
    answers = _answer(model, examples, config=config, max_audio=max_audio, use_music=True)
    write_predictions(rdir.predictions, predictions(answers))
    metrics = scored(answers)
    baseline = shuffled = None
    if config.baseline:
        plain = _answer(model, examples, config=config, max_audio=max_audio, use_music=False)
        write_predictions(rdir.baseline_predictions, predictions(plain))
        baseline = scored(plain)
    if config.shuffled_audio:
        swapped = with_other_clips_audio(examples)
        if swapped is not None:
            shuffled = scored(_answer(model, swapped, config=config, max_audio=max_audio,
                                      use_music=True))
    report = EvalReport(run=run, fingerprint=fingerprint, pairs=len(examples), metrics=metrics,
                        baseline_metrics=baseline, shuffled_metrics=shuffled,
                        seconds=round(time.perf_counter() - started, 2))
    write_json_atomic(rdir.metrics, report.model_dump(mode="json"))
    write_card(rdir, report=train_report, config=train_cfg, evaluation=report)
    log.info("evaluated %s on %d pairs: %s", run, len(examples), metrics)
    return report
