"""The training loop: AdamW on the music module only, warmup + cosine, gradient
accumulation, bf16 autocast on CUDA, checkpoints that resume exactly, a loss log, a
progress bar.

Exact resume holds because nothing in a step depends on hidden state that is not saved:
the batches come from a stateless seeded shuffle (``batch_indices``), the LM is frozen in
eval mode, and weights, optimizer, scheduler and RNG states are all in the checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from qagen.records.training import LossLogEntry
from qagen.train.checkpoint import (
    append_loss,
    latest_checkpoint,
    load_checkpoint,
    read_loss_log,
    save_checkpoint,
    set_rng_state,
    truncate_loss_log,
)
from qagen.train.config import TrainConfig
from qagen.train.data import Example, batch_indices
from qagen.train.model import MusicLM, autocast_dtype
from qagen.workdir import RunDir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopResult:
    """What the report needs from the loop."""

    resumed_from_step: int
    first_loss: float | None
    last_loss: float | None
    seconds: float
    steps_run: int


def lr_factor(step: int, *, warmup: int, total: int, floor: float) -> float:
    """Multiplier of the peak LR at 0-based ``step``: linear warmup, then cosine to ``floor``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(music: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (not on gates, norms, biases)."""
    decay, no_decay = [], []
    for name, p in music.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim >= 2 and "gates" not in name else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.95))


def _progress(enabled: bool, total: int, start: int):  # type: ignore[no-untyped-def]
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    progress = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn(),
                        disable=not enabled, transient=True)
    task = progress.add_task("train", total=total, completed=start, loss="-")
    return progress, task


def run_training(model: MusicLM, examples: Sequence[Example], *, config: TrainConfig,
                 run: RunDir, fingerprint: str, progress: bool = True) -> LoopResult:
    """Train ``model.music`` for ``config.steps`` optimizer steps, resuming from the newest
    checkpoint of ``run`` when there is one (its fingerprint must match)."""
    device = model.device
    amp = autocast_dtype(device)
    optimizer = make_optimizer(model.music, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, warmup=config.warmup_steps, total=config.steps,
                                       floor=config.min_lr_ratio))
    start = 0
    ckpt_path = latest_checkpoint(run)
    if ckpt_path is not None:
        ckpt = load_checkpoint(ckpt_path, device=device)
        if ckpt["fingerprint"] == fingerprint:
            model.music.load_state_dict(ckpt["music"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            set_rng_state(ckpt["rng"])
            start = int(ckpt["step"])
            log.info("resuming %s from step %d", run.root.name, start)
        else:
            log.warning("ignoring %s: made with another config", ckpt_path)
    truncate_loss_log(run.loss_log, last_step=start)
    model.train()
    started = time.perf_counter()
    last_loss: float | None = None
    window: list[float] = []  # losses since the last log line (the line holds their mean)
    bar, task = _progress(progress, config.steps, start)
    with bar:
        for step in range(start + 1, config.steps + 1):
            optimizer.zero_grad(set_to_none=True)
            total = 0.0
            for micro in range(config.grad_accum):
                idx = batch_indices(len(examples), seed=config.seed,
                                    batch_size=config.batch_size,
                                    index=(step - 1) * config.grad_accum + micro)
                batch = [examples[i] for i in idx]
                ctx = (torch.autocast(device.type, dtype=amp) if amp is not None
                       else contextlib.nullcontext())
                with ctx:
                    loss = model.loss(batch, max_audio=config.max_audio_tokens)
                (loss / config.grad_accum).backward()
                total += float(loss.detach()) / config.grad_accum
            if config.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.music.parameters(), config.max_grad_norm)
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            last_loss = total
            window.append(total)
            if step == 1 or step % config.log_every == 0 or step == config.steps:
                append_loss(run.loss_log, LossLogEntry(step=step, loss=sum(window) / len(window),
                                                       lr=lr))
                window.clear()
            if step % config.save_every == 0 and step < config.steps:
                save_checkpoint(run, step=step, fingerprint=fingerprint, music=model.music,
                                optimizer=optimizer, scheduler=scheduler,
                                keep=config.keep_checkpoints)
            bar.update(task, advance=1, loss=f"{total:.3f}")
    model.eval()
    seconds = time.perf_counter() - started
    entries = read_loss_log(run.loss_log)
    # One step's loss is one small batch: noisy. Report the mean over the last fifth.
    tail = [e.loss for e in entries if e.step > 0.8 * config.steps] or [e.loss for e in entries]
    return LoopResult(
        resumed_from_step=start,
        first_loss=entries[0].loss if entries else None,
        last_loss=sum(tail) / len(tail) if tail else last_loss,
        seconds=seconds, steps_run=config.steps - start)
