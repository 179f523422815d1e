"""The train stage: QA pairs + precomputed music embeddings → a trained adapter.

Writes ``WORKDIR/train/<run>/`` (see ``RunDir``). A finished run with the same config is
returned without training; a killed run resumes from its newest checkpoint; a different
config under an existing run name is refused rather than mixed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from qagen.audio import sha256_file
from qagen.engine import StageReport
from qagen.errors import ConfigError
from qagen.manifest import write_json_atomic, write_text_atomic
from qagen.records.training import EvalReport, TrainReport
from qagen.train.card import render_card
from qagen.train.config import TrainConfig
from qagen.train.data import (
    KIND_BY_ARCH,
    EmbeddingSource,
    SplitData,
    build_examples,
    iter_pair_shards,
    open_embeddings,
    split_clips_in,
    spread_sample,
)
from qagen.workdir import RunDir, WorkDir

log = logging.getLogger(__name__)

#: Bump when the same config would train different weights (data handling, loop).
STAGE_VERSION = "4"


def _fingerprint(config: TrainConfig, work: WorkDir) -> str:
    """The run's identity: stage version, config, and the data it trains on (every QA shard's
    bytes and the embedding index), so a run over data that changed since (a re-ingest
    dropped clips, pairs were regenerated) is trained anew instead of reused."""
    h = hashlib.sha256()
    for path in sorted(work.qa_dir.glob("qa-*.parquet")):
        h.update(f"{path.name}\x1f{sha256_file(path)}\x1e".encode())
    index = work.embedding_index
    h.update((sha256_file(index) if index.is_file() else "no-index").encode())
    return f"{STAGE_VERSION}-{config.fingerprint()}-{h.hexdigest()[:16]}"


def read_run_config(run: RunDir) -> tuple[TrainConfig, dict[str, Any]]:
    """The config a run was started with, and its metadata (feature shape, fingerprint)."""
    meta = json.loads(run.config.read_text(encoding="utf-8"))
    return TrainConfig.model_validate(meta["train"]), meta


def finished_report(run: RunDir, fingerprint: str) -> TrainReport | None:
    """The run's report when it finished with this fingerprint, else None."""
    if not (run.report.is_file() and run.adapter.is_file()):
        return None
    report = TrainReport.model_validate_json(run.report.read_text(encoding="utf-8"))
    return report if report.fingerprint == fingerprint else None


def write_card(run: RunDir, *, report: TrainReport, config: TrainConfig,
               evaluation: EvalReport | None = None) -> None:
    """(Re)write the run's model card."""
    write_text_atomic(run.card, render_card(report, config=config, evaluation=evaluation))


def _check_shapes(data: SplitData, arch: str) -> tuple[int, ...]:
    shapes = {e.features.shape if arch == "mu_llama" else e.features.shape[1:]
              for e in data.train + data.eval}
    if len(shapes) != 1 or any(e.features.ndim != 2 for e in data.train):
        raise ConfigError(f"embeddings of kind {KIND_BY_ARCH[arch]!r} must be 2-D arrays of one"
                          f" width from one encoder; found shapes {sorted(shapes)[:4]}")
    return tuple(int(n) for n in data.train[0].features.shape)


def train(work: WorkDir, *, config: TrainConfig | None = None,
          embeddings: EmbeddingSource | None = None, progress: bool = True) -> StageReport:
    """Train a MU-LLaMA adapter or LLark projector on the work dir's QA pairs.

    Training is one run, not per shard: its resume is its own checkpoints (a finished run
    with the same config is reused). See :func:`train_run` for the parameters.

    Returns
    -------
    StageReport
        One "shard" (reused when the run was already finished); ``items_in`` pairs,
        ``items_out`` examples (``counts``: ``split:train``/``split:heldout``), ``skipped``
        pairs by reason; ``details`` the run's :class:`TrainReport` (losses, parameters).
    """
    t0 = time.perf_counter()
    report = train_run(work, config=config, embeddings=embeddings, progress=progress)
    return train_stage_report(report, seconds=round(time.perf_counter() - t0, 3))


def train_stage_report(report: TrainReport, *, seconds: float) -> StageReport:
    """A run's :class:`TrainReport` in the one report shape."""
    data = report.data
    return StageReport(
        stage="train", shards=1, shards_reused=int(report.reused), items_in=data.pairs,
        items_out=data.train_pairs + data.eval_pairs, skipped=dict(data.skipped),
        counts={"split:train": data.train_pairs, "split:heldout": data.eval_pairs},
        seconds=seconds, extras={"steps": report.steps, "resumed_from_step":
                                 report.resumed_from_step},
        details=report.model_dump(mode="json"))


def train_run(work: WorkDir, *, config: TrainConfig | None = None,
              embeddings: EmbeddingSource | None = None, progress: bool = True) -> TrainReport:
    """Train a MU-LLaMA adapter or LLark projector on the work dir's QA pairs.

    Parameters
    ----------
    work
        Work directory holding ``qa/qa-*.parquet``.
    config
        Train parameters; default ``TrainConfig()`` (packaged SmolLM2, MU-LLaMA adapter).
    embeddings
        Per-clip embeddings (``layers`` for mu_llama, ``frames`` for llark); default: the
        embed stage's store under ``WORKDIR/embeddings/``.
    progress
        Show a progress bar.

    Returns
    -------
    TrainReport
        Also written to ``WORKDIR/train/<run>/report.json``.

    Raises
    ------
    ConfigError
        No QA pairs, no usable examples, or mixed embedding shapes.

    A run folder made with another config (new defaults, an edited config file) is moved to
    ``WORKDIR/cache/train-superseded/<run>-<fingerprint>/`` — kept, never overwritten — and
    the run is trained anew, as every other stage redoes work whose inputs changed.
    """
    import torch

    from qagen.train.checkpoint import save_adapter
    from qagen.train.loop import run_training
    from qagen.train.model import MusicLM, autocast_dtype, load_lm, pick_device

    config = config or TrainConfig()
    run = work.train_run(config.run)
    fingerprint = _fingerprint(config, work)
    if run.config.is_file():
        meta = json.loads(run.config.read_text(encoding="utf-8"))
        if meta.get("fingerprint") != fingerprint:
            _supersede(work, run, old=str(meta.get("fingerprint", "unknown")))
    done = finished_report(run, fingerprint)
    if done is not None:
        log.info("train run %s already finished; reusing it", config.run)
        return done.model_copy(update={"reused": True})
    started = time.perf_counter()
    n_pairs, clip_split = split_clips_in(work.qa_dir, eval_fraction=config.eval_fraction)
    if clip_split is None:
        raise ConfigError(f"no QA pairs under {work.qa_dir}: run `qagen generate` first")
    source = embeddings if embeddings is not None else open_embeddings(work)
    device = pick_device(config.device, threads=config.threads)
    lm, tokenizer = load_lm(config.lm, device=device)
    # The pairs stream shard by shard; only their tokens and clip ids are kept.
    pairs = (pair for _, shard in iter_pair_shards(work.qa_dir) for pair in shard)
    data = build_examples(pairs, tokenizer=tokenizer, embeddings=source,
                          kind=KIND_BY_ARCH[config.arch], max_len=config.max_len,
                          eval_fraction=config.eval_fraction, clip_split=clip_split,
                          keep_text=False, qa_kinds=config.trained_kinds())
    if not data.train:
        raise ConfigError(f"no training examples from {n_pairs} pairs (skipped:"
                          f" {data.counts.skipped}): embed the clips first")
    shape = _check_shapes(data, config.arch)
    torch.manual_seed(config.seed)
    model = MusicLM.build(lm, tokenizer, config=config, feature_shape=shape)
    fitted = model.music.feature_norm.fit(
        {e.pair.clip_id: e.features for e in data.train}.values())
    log.info("feature statistics from %d vectors of %d training clips", fitted,
             data.counts.train_clips)
    encoder = getattr(source, "encoder_id", None) or config.encoder or "unknown"
    write_json_atomic(run.config, {
        "train": config.model_dump(), "fingerprint": fingerprint, "feature_shape": list(shape),
        "encoder": encoder, "stage_version": STAGE_VERSION})
    write_json_atomic(run.split, {
        "rule": data.counts.split_rule,
        "train_clips": sorted({e.pair.clip_id for e in data.train}),
        "eval_clips": sorted({e.pair.clip_id for e in data.eval})})
    before = _losses_before(model, data, run=run, fingerprint=fingerprint, config=config)
    result = run_training(model, data.train, config=config, run=run,
                          fingerprint=fingerprint, progress=progress)
    save_adapter(run.adapter, model.music)
    after = {name: set_loss(model, spread_sample(examples, config.loss_eval_max),
                            batch_size=config.batch_size, max_audio=config.max_audio_tokens)
             for name, examples in (("train", data.train), ("heldout", data.eval))}
    trainable = sum(p.numel() for p in model.music.parameters())
    report = TrainReport(
        run=config.run, arch=config.arch, lm=config.lm, encoder=encoder,
        encoder_random_init=bool(getattr(source, "encoder_random_init", False)),
        fingerprint=fingerprint, steps=config.steps,
        resumed_from_step=result.resumed_from_step, data=data.counts,
        trainable_params=trainable, frozen_params=sum(p.numel() for p in lm.parameters()),
        first_loss=result.first_loss, last_loss=result.last_loss,
        train_loss_before=before["train"], train_loss_after=after["train"],
        heldout_loss_before=before["heldout"], heldout_loss_after=after["heldout"],
        seconds=round(time.perf_counter() - started, 2),
        seconds_per_step=(round(result.seconds / result.steps_run, 4)
                          if result.steps_run else None),
        device=str(device), precision="bf16-autocast" if autocast_dtype(device) else "fp32")
    write_json_atomic(run.report, report.model_dump(mode="json"))
    write_card(run, report=report, config=config)
    log.info("trained %s in %.1f s: training-set loss %s → %s, held-out %s → %s", config.run,
             report.seconds, report.train_loss_before, report.train_loss_after,
             report.heldout_loss_before, report.heldout_loss_after)
    return report


def _supersede(work: WorkDir, run: RunDir, *, old: str) -> None:
    """Move a run made with another config out of the way (kept under ``cache/``)."""
    target = work.cache / "train-superseded" / f"{run.root.name}-{old}"
    n = 1
    while target.exists():
        n += 1
        target = target.with_name(f"{run.root.name}-{old}-{n}")
    target.parent.mkdir(parents=True, exist_ok=True)
    run.root.rename(target)
    log.warning("train run %s was made with another config: moved to %s; training anew",
                run.root.name, target)


def set_loss(model: Any, examples: Sequence[Any], *, batch_size: int,
             max_audio: int) -> float | None:
    """Mean answer-token loss over a whole example set, in fixed order and batches.

    Why: a logged step's loss is one small random batch, too noisy to say whether training
    worked; this is the same quantity over every example, so before/after compare exactly.
    Batches are weighted by size (each batch's loss is its own token mean).
    """
    import torch

    if not examples:
        return None
    was_training = model.music.training
    model.music.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(examples), batch_size):
            batch = examples[i:i + batch_size]
            total += float(model.loss(batch, max_audio=max_audio)) * len(batch)
    model.music.train(was_training)
    return round(total / len(examples), 5)


def _losses_before(model: Any, data: Any, *, run: RunDir, fingerprint: str,
                   config: TrainConfig) -> dict[str, float | None]:
    """Set losses of the untrained adapter, computed once per run (a resumed run reads them
    back: its weights are no longer the untrained ones)."""
    path = run.losses_before
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("fingerprint") == fingerprint:
            return {"train": saved["train"], "heldout": saved["heldout"]}
    losses = {name: set_loss(model, spread_sample(examples, config.loss_eval_max),
                             batch_size=config.batch_size, max_audio=config.max_audio_tokens)
              for name, examples in (("train", data.train), ("heldout", data.eval))}
    write_json_atomic(path, {"fingerprint": fingerprint, **losses})
    return losses
