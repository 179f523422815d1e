"""Idempotent writes into the dataset folder: unchanged bytes are not rewritten, stale files go.

Why: re-publishing identical inputs must leave the folder byte-identical (and untouched, so a
Hub upload sends nothing new), and shards of an earlier, larger run must not linger where
``load_dataset`` would pick them up.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from qagen.manifest import shareable


def write_bytes_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` atomically (temp + rename) unless the file already holds it.

    Returns True when the file was (re)written.
    """
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        shareable(tmp)
        Path(tmp).replace(path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return True


def parquet_bytes(table: pa.Table) -> bytes:
    """A table as parquet bytes (zstd, deterministic for the same table)."""
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


class FolderWriter:
    """Writes files under ``root`` and remembers them, so :meth:`remove_stale` can delete the rest
    of the folders it manages."""

    def __init__(self, root: Path, *, managed: tuple[str, ...]) -> None:
        self.root = root
        self.managed = managed
        self.kept: set[Path] = set()
        self.written: list[str] = []

    def write(self, rel: str, data: bytes) -> Path:
        """Write ``data`` at ``root/rel`` if it changed; returns the path."""
        path = self.root / rel
        if write_bytes_if_changed(path, data):
            self.written.append(rel)
        self.kept.add(path)
        return path

    def remove_stale(self) -> list[str]:
        """Delete files under the managed folders that this run did not write; returns them."""
        removed = []
        for name in self.managed:
            folder = self.root / name
            if folder.is_file() and folder not in self.kept:
                folder.unlink()
                removed.append(name)
                continue
            if not folder.is_dir():
                continue
            for path in sorted(folder.rglob("*")):
                if path.is_file() and path not in self.kept:
                    path.unlink()
                    removed.append(path.relative_to(self.root).as_posix())
            for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
                if not any(sub.iterdir()):
                    sub.rmdir()
        return removed
