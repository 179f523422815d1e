"""The hardening issue's "also seen" list, through the public CLI: each mistake is one line
with exit 2 before any work, each fault a recorded status, nothing secret in any log."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from qagen.audio import write_audio
from tests.faults.conftest import Build, Cli, copy_work

pytestmark = pytest.mark.slow


def _text(proc: object) -> str:
    text = (getattr(proc, "stdout", "") or "") + (getattr(proc, "stderr", "") or "")
    assert "Traceback" not in text, text[-3000:]
    return " ".join(text.split())


@pytest.mark.parametrize(("args", "says"), [
    (["augment", "--workers", "0"], "--workers"),
    (["embed", "--chunk-s", "-1"], "--chunk-s"),
    (["generate", "--temperature", "abc"], "--temperature"),
    (["generate", "--no-such-flag"], "No such option"),
    (["embed", "--device", "cuda"], "cuda"),
    (["embed", "--frame-layer", "top"], "--frame-layer"),
])
def test_cli_mistakes_are_one_line_before_any_work(args: list[str], says: str, cli: Cli,
                                                   tmp_path: Path) -> None:
    import torch

    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    work = tmp_path / "w"
    proc = cli.run(*args, "--work", str(work), label="mistake", check=False)
    assert proc.returncode == 2 and says in _text(proc)
    assert not work.exists()  # nothing was created, let alone computed


def test_special_and_truncated_audio_get_a_status_and_the_run_goes_on(
        cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "audiofolder"
    root.mkdir()
    sr = 16000
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(sr * 20) / sr)
    write_audio(root / "good.wav", tone, sr=sr)
    write_audio(root / "whole.flac", tone, sr=sr)
    data = (root / "whole.flac").read_bytes()
    (root / "cut.flac").write_bytes(data[: len(data) // 2])
    (root / "whole.flac").unlink()
    os.mkfifo(root / "pipe.wav")
    (root / "metadata.csv").write_text(
        "file_name,caption\ngood.wav,a tone\ncut.flac,half a tone\npipe.wav,a pipe\n",
        encoding="utf-8")
    work = tmp_path / "w"
    cli.run("ingest", "audiofolder", str(root), "--work", str(work), label="ingest")
    clips = {r["audio_path"]: r for p in (work / "manifests").glob("clips-*.parquet")
             for r in pq.read_table(p).to_pylist()}
    assert clips["pipe.wav"]["audio_status"] == "excluded"
    assert "FIFO" in (clips["pipe.wav"]["audio_status_reason"] or "")
    proc = cli.run("augment", "--work", str(work), "--workers", "1", label="augment")
    assert "truncated audio" in _text(proc)
    feats = {r["clip_id"]: r for p in (work / "manifests").glob("features-*.parquet")
             for r in pq.read_table(p).to_pylist()}
    cut = feats[clips["cut.flac"]["clip_id"]]
    assert cut["status"] != "decode_error" and 6.0 < cut["duration_s"] < 14.0  # the first half
    assert clips["pipe.wav"]["clip_id"] not in feats or feats[
        clips["pipe.wav"]["clip_id"]]["status"] != "ok"


def test_published_files_are_readable_by_the_team(build: Build, cli: Cli,
                                                  tmp_path: Path) -> None:
    work = copy_work(build.after["publish"], tmp_path / "w")
    published = [p for p in (work / "publish").rglob("*") if p.is_file()]
    written = [p for p in (work / "manifests").iterdir()] + published
    assert published
    umask = os.umask(0o022)
    os.umask(umask)
    want = 0o666 & ~umask
    modes = {stat.S_IMODE(p.stat().st_mode) for p in written}
    assert modes == {want}, f"modes {sorted(oct(m) for m in modes)} != {oct(want)}"


def test_verbose_logs_never_show_the_api_key(build: Build, cli: Cli, tmp_path: Path) -> None:
    work = copy_work(build.after["augment"], tmp_path / "w")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    secret = "sk-qagenTESTsecret0123456789"
    env = dict(cli.env, OPENAI_API_KEY=secret)
    proc = Cli(env=env, logs=cli.logs).run(
        "-v", "generate", "--work", str(work), "--backend", "openai", "--base-url", url,
        "--model", "any", "--templates", "paraphrase", "--max-retries", "0",
        label="verbose", check=False)
    text = (proc.stdout or "") + (proc.stderr or "")
    assert proc.returncode == 2
    assert "ConnectError" in text  # the failing requests were logged, with their headers'
    assert secret not in text  # and the key in none of it
