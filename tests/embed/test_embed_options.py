"""``qagen embed --dtype/--batch-size/--device`` and the flow's ``embed_config`` reach the stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qagen.ingest import ingest
from qagen.workdir import WorkDir
from tests.test_cli import run_cli


def test_embed_command_takes_dtype_and_batch_size(
    audio_folder: Path, tmp_path: Path, tiny_home: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("QAGEN_HOME", str(tiny_home))
    work = WorkDir(tmp_path / "work")
    ingest("audiofolder", audio_folder, work=work)
    base = ["embed", "--work", str(work.root), "--encoder", "qagen/mert-tiny-random",
            "--threads", "1", "--device", "cpu", "--frame-rate-hz", "0"]
    assert run_cli(monkeypatch, *base, "--dtype", "fp32", "--batch-size", "2") == 0
    marker = next(iter(work.markers("embed").values()))
    fp32 = json.loads(marker.read_text())["fingerprint"]
    assert run_cli(monkeypatch, *base, "--dtype", "bf16") == 0  # batch auto
    assert "clips embedded" in capsys.readouterr().out
    assert json.loads(marker.read_text())["fingerprint"] != fp32  # bf16 is another identity

    assert run_cli(monkeypatch, *base, "--dtype", "int8") == 2
    assert "unknown dtype 'int8'" in capsys.readouterr().err
    assert run_cli(monkeypatch, *base, "--batch-size", "0") == 2
    assert "--batch-size '0'" in capsys.readouterr().err


def test_flow_plan_validates_the_compute_dtype() -> None:
    pytest.importorskip("prefect")
    from tests.flows.conftest import load_flow_script

    flow = load_flow_script("build_musicqa")
    BuildPlan, stage_configs = flow.BuildPlan, flow.stage_configs  # noqa: N806
    plan = BuildPlan(work_dir="w", demo_dir="d",
                     embed_config={"compute_dtype": "bf16", "batch_size": "auto"})
    (_, model, value), = [c for c in stage_configs(plan) if c[0] == "embed_config"]
    assert model.model_validate(value).compute_dtype == "bfloat16"
    with pytest.raises(ValueError, match=r"embed_config\.compute_dtype"):
        BuildPlan(work_dir="w", demo_dir="d", embed_config={"compute_dtype": "fp8"})
