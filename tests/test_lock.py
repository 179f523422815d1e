"""One writer per work dir: a second run stops at once naming the holder; kill -9 frees it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qagen.lock import LOCK_NAME, WorkDirLockedError, work_lock

HOLD = ("import sys, time\nfrom pathlib import Path\nfrom qagen.lock import work_lock\n"
        "with work_lock(Path(sys.argv[1]), command='qagen ingest'):\n"
        "    print('held', flush=True)\n    time.sleep(60)\n")


def _holder(root: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(root)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_is_refused_and_kill_9_releases_the_lock(tmp_path: Path) -> None:
    proc = _holder(tmp_path)
    try:
        with pytest.raises(WorkDirLockedError, match=rf"pid {proc.pid} .*'qagen ingest'"), \
                work_lock(tmp_path):
            pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with work_lock(tmp_path):  # the kernel dropped the dead holder's lock
        assert (tmp_path / LOCK_NAME).is_file()


def test_the_cli_refuses_a_second_writer_in_one_line(tmp_path: Path) -> None:
    proc = _holder(tmp_path)
    try:
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-c", "from qagen.cli import main; main()",
                               "generate", "--work", str(tmp_path)], capture_output=True,
                              text=True, timeout=120)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    text = " ".join(done.stderr.split())
    assert done.returncode == 2 and "being written by another run" in text
    assert "Traceback" not in text and time.monotonic() - started < 60


def test_the_lock_is_reentrant_across_sequential_runs(tmp_path: Path) -> None:
    for _ in range(3):
        with work_lock(tmp_path):
            pass


def test_temp_files_of_a_killed_writer_are_removed_when_the_next_run_starts(
        tmp_path: Path) -> None:
    stale = [tmp_path / "manifests" / ".clips-mtt-00000.parquet.abc123.tmp",
             tmp_path / ".done" / "augment" / ".mtt-00000.json.x1.tmp",
             tmp_path / "publish" / "hf" / "data" / ".train-0.parquet.q.tmp"]
    kept = [tmp_path / "manifests" / "clips-mtt-00000.parquet",
            tmp_path / "cache" / "generate" / ".shared.json.z.tmp"]  # caches are not ours
    for path in stale + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    with work_lock(tmp_path):
        assert not any(p.exists() for p in stale)
        assert all(p.exists() for p in kept)
