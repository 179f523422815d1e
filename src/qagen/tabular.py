"""Read delimited metadata files row by row, with line numbers and encoding repair.

Why not pandas: a malformed row must become a recorded ``Rejection`` naming file and line
while every other row survives, and big files (FMA tracks.csv is ~260 MB) must stream.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from qagen.records.rejection import IngestReason, Rejection


@dataclass(frozen=True, slots=True)
class Row:
    """One record of a delimited file: its fields and the physical line it starts on."""

    line: int
    fields: list[str]


def decoded_lines(path: Path, repaired: set[int]) -> Iterator[str]:
    """Yield text lines (BOM stripped); a line that is not UTF-8 is decoded as cp1252 and its
    1-based number added to ``repaired``, so callers can record the repair."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                repaired.add(number)
                yield raw.decode("cp1252", errors="replace")


def iter_rows(
    path: Path,
    *,
    stage: str,
    source: str,
    delimiter: str = ",",
    expected_fields: int | None = None,
    display_name: str | None = None,
) -> Iterator[Row | Rejection]:
    """Stream the records of a delimited file (quoted fields may span lines).

    Parameters
    ----------
    expected_fields
        When set, a record with another field count is rejected as ``malformed_row``.
    display_name
        How ``detail`` names the file (defaults to its name).

    Yields
    ------
    Row | Rejection
        Rows in file order; a ``Rejection`` with ``kept=True`` precedes a row whose bytes
        were repaired (``bad_encoding``); one with ``kept=False`` replaces a dropped record.
    """
    # Long FMA artist bios exceed csv's 128 KiB default field limit.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    name = display_name or path.name
    repaired: set[int] = set()
    reader = csv.reader(decoded_lines(path, repaired), delimiter=delimiter, strict=False)
    last = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            start = last + 1
            last = reader.line_num
            yield Rejection(
                stage=stage, source=source, item_id=f"{name}:{start}", file=name, line=start,
                reason=IngestReason.malformed_row, detail=f"{name} line {start}: {exc}",
            )
            continue
        start, last = last + 1, reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        bad = sorted(n for n in repaired if start <= n <= last)
        if bad:
            yield Rejection(
                stage=stage, source=source, item_id=f"{name}:{start}", file=name, line=start,
                reason=IngestReason.bad_encoding, kept=True,
                detail=f"{name} line {bad[0]}: bytes are not UTF-8; decoded as cp1252",
            )
        if expected_fields is not None and len(fields) != expected_fields:
            yield Rejection(
                stage=stage, source=source, item_id=f"{name}:{start}", file=name, line=start,
                reason=IngestReason.malformed_row,
                detail=f"{name} line {start}: {len(fields)} fields, expected {expected_fields}",
            )
            continue
        yield Row(line=start, fields=fields)


def parse_bool(text: str) -> bool:
    """Parse the booleans datasets write (``True``/``False``, ``1``/``0``, ``yes``/``no``).

    Raises
    ------
    ValueError
        For any other text.
    """
    t = text.strip().lower()
    if t in {"true", "1", "yes", "y", "t"}:
        return True
    if t in {"false", "0", "no", "n", "f", ""}:
        return False
    raise ValueError(f"not a boolean: {text!r}")
