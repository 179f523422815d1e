"""build-musicqa/local against a real Prefect server: start it, serve, run, stop everything.

Everything it starts runs in its own process group and is stopped by pid, also on failure.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow
PREFECT = [sys.executable, "-m", "prefect"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process we started and its children (its own session), SIGTERM then SIGKILL."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"prefect server exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"prefect server not healthy after {timeout_s} s: {log.read_text()[-2000:]}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A Prefect server on a free 127.0.0.1 port with its own PREFECT_HOME (sqlite)."""
    port = _free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "DO_NOT_TRACK": "1",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*PREFECT, "server", "start", "--host", "127.0.0.1",
                                 "--port", str(port)], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        api = f"http://127.0.0.1:{port}/api"
        _wait_healthy(api, proc, log, timeout_s=90)
        yield {**env, "PREFECT_API_URL": api, "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    finally:
        _stop(proc)


def test_deployment_runs_the_flow_served_from_flows_serve(
    server: dict[str, str], tmp_path: Path
) -> None:
    from qagen.stages import write_demo_corpus

    corpus = write_demo_corpus(tmp_path / "demo", sources=["musiccaps", "mtt"])
    work = tmp_path / "work"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen([sys.executable, "flows/serve.py", "--work-dir", str(work)],
                                 cwd=REPO, env=server, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    try:
        _wait_for_deployment(server, serve, log)
        params = {"sources": corpus.sources, "stages_to_run": ["ingest"], "clips_per_shard": 3}
        run = subprocess.run(
            [*PREFECT, "deployment", "run", "build-musicqa/local", "--params", json.dumps(params),
             "--watch", "--watch-interval", "1", "--watch-timeout", "120"],
            env=server, capture_output=True, text=True, timeout=180,
        )
        assert run.returncode == 0, run.stdout + run.stderr + log.read_text()[-3000:]
        assert "Completed" in run.stdout, run.stdout
    finally:
        _stop(serve)
    # The served run used the deployment's default work_dir and our parameters.
    shards = sorted(p.name for p in (work / "manifests").glob("clips-*.parquet"))
    assert shards == ["clips-mtt-00000.parquet", "clips-mtt-00001.parquet",
                      "clips-musiccaps-00000.parquet", "clips-musiccaps-00001.parquet"]
    report = json.loads((work / "reports" / "ingest-musiccaps.json").read_text())
    assert report["stage"] == "ingest" and report["items_out"] == 6


def _wait_for_deployment(env: dict[str, str], serve: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if serve.poll() is not None:
            pytest.fail(f"serve exited {serve.returncode}: {log.read_text()[-3000:]}")
        probe = subprocess.run([*PREFECT, "deployment", "inspect", "build-musicqa/local"],
                               env=env, capture_output=True, text=True, timeout=60)
        if probe.returncode == 0:
            return
        time.sleep(1)
    pytest.fail(f"build-musicqa/local never registered: {log.read_text()[-3000:]}")
