"""Every CLI mistake is one message naming the bad value and the fix, exit 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from qagen.devices import resolve_device
from qagen.errors import ConfigError


def qagen(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from qagen.cli import main; main()", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("args", "says"), [
    (["generate", "--batch-size", "abc"], "'--batch-size'"),
    (["generate", "--bogus"], "No such option: --bogus"),
    (["generate", "--temperature", "9"], "--temperature"),
    (["generate", "--paraphrase-per-clip", "-1"], "--paraphrase-per-clip"),
    (["augment", "--workers", "0"], "--workers"),
    (["ingest", "musiccaps", "x", "--shard-size", "0"], "--shard-size"),
    (["embed", "--chunk-s", "-5"], "--chunk-s"),
    (["embed", "--frame-layer", "last"], "--frame-layer 'last'"),
    (["ingest", "nosuch", "."], "unknown source 'nosuch'"),
    (["generate", "--templates", "nosuch"], "unknown template ids"),
])
def test_mistakes_are_one_message(args: list[str], says: str, tmp_path: Path) -> None:
    done = qagen(*args, cwd=tmp_path)
    text = done.stdout + done.stderr
    assert done.returncode == 2, text
    assert "Traceback" not in text
    assert says in " ".join(text.split())


def test_cuda_without_a_gpu_is_a_config_error() -> None:
    no_gpu = SimpleNamespace(__version__="2.13.0", cuda=SimpleNamespace(
        is_available=lambda: False, device_count=lambda: 0))
    assert resolve_device("auto", torch=no_gpu) == "cpu"
    assert resolve_device(None, torch=no_gpu) == "cpu"
    with pytest.raises(ConfigError, match=r"no CUDA GPU.*--device cpu"):
        resolve_device("cuda", torch=no_gpu)
    with pytest.raises(ConfigError, match="unknown device 'tpu'"):
        resolve_device("tpu", torch=no_gpu)
    two = SimpleNamespace(__version__="2.13.0", cuda=SimpleNamespace(
        is_available=lambda: True, device_count=lambda: 2))
    assert resolve_device("cuda:1", torch=two) == "cuda:1"
    with pytest.raises(ConfigError, match="cuda:0 … cuda:1"):
        resolve_device("cuda:2", torch=two)


def test_embed_device_cuda_fails_before_any_work(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = qagen("embed", "--work", str(tmp_path / "nowhere"), "--device", "cuda", cwd=tmp_path)
    assert done.returncode == 2 and "no CUDA GPU" in " ".join(done.stderr.split())
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize(("code", "fix"), [(28, "free some space"), (13, "permissions")])
def test_a_full_or_readonly_disk_is_one_line_and_exit_1(
        code: int, fix: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import qagen.cli as cli

    def app(**_kw: object) -> None:
        raise OSError(code, os.strerror(code), "work/qa/qa-mtt-00000.parquet")

    monkeypatch.setattr(cli, "app", app)
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 1
    text = " ".join(capsys.readouterr().err.split())
    assert "work/qa/qa-mtt-00000.parquet" in text and fix in text and "resumes" in text
