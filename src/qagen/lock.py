"""One writer per work directory.

Why: two runs writing the same work dir interleave shards (500 duplicate clip ids in one of
three trials of two concurrent ingests). The CLI commands and the flow take this lock for
the whole run; a second writer stops at once with a message naming the holder.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from qagen.errors import QagenError

LOCK_NAME = ".qagen.lock"


class WorkDirLockedError(QagenError):
    """Another process is writing this work directory."""


@contextmanager
def work_lock(root: Path, *, command: str = "qagen") -> Iterator[None]:
    """Hold the work directory's writer lock for the ``with`` block.

    An advisory ``flock`` on ``<root>/.qagen.lock``: released by the kernel when the holder
    exits, even on kill -9, so a crashed run never leaves a stale lock behind.

    Raises
    ------
    WorkDirLockedError
        Another process holds it (the message names its pid, host, command and start time).
    """
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(path)
            raise WorkDirLockedError(
                f"{root} is being written by another run ({holder}); wait for it to finish "
                "or use another --work directory") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "command": command, "since": time.strftime(
                                     "%Y-%m-%dT%H:%M:%S")}).encode())
        remove_stale_temp_files(root)
        yield
    finally:
        os.close(fd)  # closing releases the flock


#: Temp files of atomic writes: ``.<name>.<random>.tmp`` beside the file being written.
_TEMP = ".*.tmp"


def remove_stale_temp_files(root: Path) -> int:
    """Delete temp files a killed writer left in the work dir; returns how many.

    Safe only under the lock: with one writer, every temp file found at its start belongs to
    a run that is gone. The model and request caches are skipped (shared across work dirs).
    """
    removed = 0
    for top in root.iterdir() if root.is_dir() else ():
        if not top.is_dir() or top.name == "cache":
            continue
        for path in top.rglob(_TEMP):
            if path.is_file():
                path.unlink(missing_ok=True)
                removed += 1
    for path in root.glob(_TEMP):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def _read_holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return "holder unknown"
    return (f"pid {info.get('pid')} on {info.get('host')}, {info.get('command')!r} since "
            f"{info.get('since')}")
