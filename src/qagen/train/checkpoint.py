"""Checkpoints that resume exactly, the loss log, and the final adapter weights.

A checkpoint holds the trainable weights, optimizer and scheduler state, the step and the
RNG states; the LM is never saved (it is frozen and reloaded from its id). Every file is
written to a temp name and renamed, so a killed run leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import torch

from qagen.manifest import atomic_path
from qagen.records.training import LossLogEntry
from qagen.workdir import RunDir


def rng_state() -> dict[str, Any]:
    """Torch (CPU and CUDA) and Python RNG states."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run: RunDir, *, step: int, fingerprint: str, music: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, scheduler: Any, keep: int) -> Path:
    """Write ``checkpoints/step-NNNNNN.pt`` atomically and drop all but the ``keep`` newest."""
    path = run.checkpoint(step)
    payload = {
        "step": step, "fingerprint": fingerprint, "music": music.state_dict(),
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "rng": rng_state(),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    for old in sorted(run.checkpoints.glob("step-*.pt"))[:-keep]:
        old.unlink(missing_ok=True)
    return path


def latest_checkpoint(run: RunDir) -> Path | None:
    """The newest checkpoint of the run, if any."""
    found = sorted(run.checkpoints.glob("step-*.pt"))
    return found[-1] if found else None


def load_checkpoint(path: Path, *, device: torch.device) -> dict[str, Any]:
    # weights_only=False: the payload holds Python's RNG state (a tuple), and it is our own file.
    return torch.load(path, map_location=device, weights_only=False)


def save_adapter(path: Path, music: torch.nn.Module) -> None:
    """The trained weights only, as safetensors (fp32, contiguous)."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().float().contiguous().cpu() for k, v in music.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))


def load_adapter(path: Path, music: torch.nn.Module) -> None:
    from safetensors.torch import load_file

    music.load_state_dict(load_file(str(path)))


def read_loss_log(path: Path) -> list[LossLogEntry]:
    """Entries of ``loss.jsonl`` (a torn last line from a kill is ignored)."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(LossLogEntry.model_validate_json(line))
        except ValueError:
            break
    return out


def truncate_loss_log(path: Path, *, last_step: int) -> None:
    """Keep only entries up to ``last_step`` (resume from that checkpoint: no duplicates)."""
    kept = [e for e in read_loss_log(path) if e.step <= last_step]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(e.model_dump_json() + "\n" for e in kept), encoding="utf-8")


def append_loss(path: Path, entry: LossLogEntry) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry.model_dump()) + "\n")
        fh.flush()
