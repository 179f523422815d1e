"""Parquet manifests: Arrow schemas derived from the record models; the one atomic write.

Columns are exactly the model's fields. Nested models become structs, lists stay lists,
enums are strings, and ``dict`` fields are stored as JSON text (portable to pandas, Hugging
Face datasets and DuckDB alike). Shards are read one at a time, never the whole manifest.

Every file qagen writes goes through :func:`atomic_path` (temp file beside the target, renamed
onto it): a reader never sees half a file and a killed run leaves the previous one intact.
"""

from __future__ import annotations

import json
import os
import tempfile
import types
import typing
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

_SCALARS: dict[type, pa.DataType] = {
    str: pa.string(),
    int: pa.int64(),
    float: pa.float64(),
    bool: pa.bool_(),
}


def _arrow_type(annotation: Any) -> pa.DataType:
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (typing.Union, types.UnionType):
        if len(args) != 1:
            raise TypeError(f"unions other than Optional are not storable: {annotation}")
        return _arrow_type(args[0])
    if origin is typing.Literal:
        return _SCALARS[type(args[0])]
    if origin in (list, tuple, Sequence) and args:
        return pa.list_(_arrow_type(args[0]))
    if origin is dict:
        return pa.string()
    if isinstance(annotation, type):
        if issubclass(annotation, Enum):
            return pa.string()
        if issubclass(annotation, BaseModel):
            return pa.struct(
                [pa.field(n, _arrow_type(f.annotation)) for n, f in annotation.model_fields.items()]
            )
        for base, arrow in _SCALARS.items():
            if issubclass(annotation, base) and not (base is int and annotation is bool):
                return arrow
    raise TypeError(f"no Arrow type for {annotation!r}")


def arrow_schema(model: type[BaseModel]) -> pa.Schema:
    """The Arrow schema of a record model (field order kept)."""
    return pa.schema(
        [pa.field(n, _arrow_type(f.annotation)) for n, f in model.model_fields.items()]
    )


def _dict_fields(model: type[BaseModel]) -> list[str]:
    return [
        n
        for n, f in model.model_fields.items()
        if typing.get_origin(f.annotation) is dict
        or any(typing.get_origin(a) is dict for a in typing.get_args(f.annotation))
    ]


def to_table(records: Iterable[M], model: type[M]) -> pa.Table:
    """Convert records to an Arrow table with the model's schema."""
    json_fields = _dict_fields(model)
    rows = []
    for rec in records:
        row = rec.model_dump(mode="json")
        for name in json_fields:
            if row[name] is not None:
                row[name] = json.dumps(row[name], sort_keys=True, ensure_ascii=False)
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=arrow_schema(model))


def current_umask() -> int:
    """The process umask, read without changing it (``os.umask`` would race other threads)."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def shareable(path: Path | str) -> None:
    """Give a temp file the mode ``open()`` would have: ``0666 & ~umask``.

    Why: ``mkstemp`` creates files 0600, so every renamed-into-place output, the published
    dataset included, would be unreadable to the rest of a team sharing the work dir.
    """
    Path(path).chmod(0o666 & ~current_umask())


@contextmanager
def atomic_path(path: Path, *, suffix: str = ".tmp") -> Iterator[Path]:
    """A temp path beside ``path``, renamed onto it when the block exits without error.

    Why one helper: every output (shards, markers, arrays, checkpoints, audio, the published
    folder) must appear whole or not at all, with the mode ``open()`` would give it
    (:func:`shareable`); on an exception the temp file is removed and ``path`` is untouched.

    Parameters
    ----------
    path
        The final file; its folder is created.
    suffix
        Suffix of the temp name (writers that pick the format from it, such as soundfile,
        need the real one).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        shareable(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` via temp file + rename."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: Path, text: str) -> None:
    """Write UTF-8 text via temp file + rename (model cards, JSON lines)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` atomically unless the file already holds exactly these bytes.

    Why: re-publishing identical inputs must leave files untouched (same mtime, nothing new
    for a Hub upload). Returns True when the file was (re)written.
    """
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return False
    write_bytes_atomic(path, data)
    return True


def write_table_atomic(table: pa.Table, path: Path) -> None:
    """Write a parquet file via a temp file + rename, so readers never see half a shard."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def write_records(path: Path, records: Iterable[M], model: type[M]) -> int:
    """Write records as one parquet shard atomically; returns the row count."""
    table = to_table(records, model)
    write_table_atomic(table, path)
    return table.num_rows


def iter_records(path: Path, model: type[M], *, batch_size: int = 1024) -> Iterator[M]:
    """Stream the records of one shard, validated back into the model."""
    json_fields = _dict_fields(model)
    pf = pq.ParquetFile(path)
    for batch in pf.iter_batches(batch_size=batch_size):
        for row in batch.to_pylist():
            for name in json_fields:
                if isinstance(row.get(name), str):
                    row[name] = json.loads(row[name])
            yield model.model_validate(row)


def read_records(path: Path, model: type[M]) -> list[M]:
    """All records of one shard (a shard is small by construction: 50–500 clips)."""
    return list(iter_records(path, model))


def iter_manifest(paths: Iterable[Path], model: type[M]) -> Iterator[M]:
    """Stream records over many shards, one shard in memory at a time."""
    for path in paths:
        yield from iter_records(path, model)


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON via temp file + rename (markers and reports)."""
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=2, sort_keys=True, ensure_ascii=False)
