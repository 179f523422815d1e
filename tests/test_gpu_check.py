"""``scripts/gpu_check.py`` without CUDA: every step is skipped for that reason, nothing crashes,
and the one JSON of results is written (the smoke run of ``make gpu-check`` on a CPU)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

torch = pytest.importorskip("torch")


@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA the steps really run")
def test_gpu_check_skips_every_step_without_cuda(tmp_path: Path) -> None:
    out = tmp_path / "gpu-check.json"
    proc = subprocess.run([sys.executable, "scripts/gpu_check.py", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert list(report["steps"]) == ["cuda_tests", "train_bf16", "embed_mert_95m",
                                     "embed_mert_330m", "generate_1b"]
    for name, step in report["steps"].items():
        assert step["status"] == "skipped", (name, step)
        assert step["reason"].startswith("no CUDA device"), (name, step)
        assert 0 < step["timeout_s"] <= 110
    assert report["ok"] is True and report["environment"]["cuda_available"] is False
    assert report["summary"] == {"ok": 0, "skipped": 5, "failed": 0, "timeout": 0}
    assert report["environment"]["missing_modules"] == []  # the venv has all the steps need
    assert report["total_s"] < report["budget_s"] == 420.0
    assert not (tmp_path / "gpu-check-work").exists()  # scratch removed


def test_unknown_steps_are_refused(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "scripts/gpu_check.py", "--steps", "nope",
                           "--out", str(tmp_path / "x.json")],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "unknown steps ['nope']" in proc.stderr
    assert not (tmp_path / "x.json").exists()


@pytest.mark.slow
def test_cpu_dry_run_runs_every_step_at_toy_sizes(tmp_path: Path) -> None:
    """The GPU steps' plumbing (model folders, clips, both benchmarks, the train stage, the
    CUDA test files) on the CPU; needs the generate inputs (``--prepare``), else that step is
    skipped with the command that makes them."""
    out = tmp_path / "dry.json"
    proc = subprocess.run([sys.executable, "scripts/gpu_check.py", "--cpu-dry-run",
                           "--budget-s", "900", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=1200, check=False)
    report = json.loads(out.read_text())
    assert proc.returncode == 0, report
    steps = report["steps"]
    prepared = (REPO / "bench-out/gpu-check/prep/tokenizer/tokenizer.json").is_file()
    for name, step in steps.items():
        if name == "generate_1b" and not prepared:
            assert step["status"] == "skipped" and "--prepare" in step["reason"]
            continue
        assert step["status"] == "ok", (name, step)
    assert steps["train_bf16"]["results"]["loss_falling"] is True
    for name in ("embed_mert_95m", "embed_mert_330m"):
        res = steps[name]["results"]
        assert res["compute_dtype"] == "bfloat16" and res["clips"] == 3
        assert res["stage_clips_per_hour"] > 0 and res["ratio_stage_over_bare"] > 0
    assert steps["cuda_tests"]["results"]["pytest"]["failures"] == 0
