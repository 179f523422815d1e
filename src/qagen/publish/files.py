"""Idempotent writes into the dataset folder: unchanged bytes are not rewritten, stale files go.

Why: re-publishing identical inputs must leave the folder byte-identical (and untouched, so a
Hub upload sends nothing new), and shards of an earlier, larger run must not linger where
``load_dataset`` would pick them up.
"""

from __future__ import annotations

import filecmp
import io
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from qagen.manifest import atomic_path, write_bytes_if_changed


class _UnchangedError(Exception):
    """Raised inside :func:`atomic_path` to drop a temp file equal to the file in place."""


def write_chunks_if_changed(path: Path, chunks: Iterable[bytes]) -> bool:
    """Stream ``chunks`` into ``path`` atomically unless it already holds exactly these bytes
    (a large export is never held whole in memory). Returns True when (re)written."""
    try:
        with atomic_path(path) as tmp:
            with tmp.open("wb") as fh:
                for chunk in chunks:
                    fh.write(chunk)
            if path.is_file() and filecmp.cmp(tmp, path, shallow=False):
                raise _UnchangedError
    except _UnchangedError:
        return False
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

    def write_chunks(self, rel: str, chunks: Iterable[bytes]) -> Path:
        """:meth:`write` for content streamed in pieces."""
        path = self.root / rel
        if write_chunks_if_changed(path, chunks):
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
