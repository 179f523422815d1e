"""Read delimited metadata files row by row, with line numbers and encoding repair.

Why not pandas: a malformed row must become a recorded ``Rejection`` naming file and line
while every other row survives, and big files (FMA tracks.csv is ~260 MB) must stream.
"""

from __future__ import annotations

import csv
import sys
from collections import deque
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

    An unclosed quote would make the rest of the file one field and silently swallow every
    later row. A record spanning several lines is therefore checked: when its first line
    alone is short of fields and each later line alone is a complete record (as wide as
    ``expected_fields``, else the first record, i.e. the header), the first line is rejected
    as ``malformed_row`` (unclosed quote) and the later lines are read as the rows they are.

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
    lines = enumerate(decoded_lines(path, repaired), start=1)

    def reject(line: int, detail: str, reason: IngestReason = IngestReason.malformed_row,
               *, kept: bool = False) -> Rejection:
        return Rejection(stage=stage, source=source, item_id=f"{name}:{line}", file=name,
                         line=line, reason=reason, kept=kept, detail=f"{name} line {line}: "
                         f"{detail}")

    width = expected_fields  # the unclosed-quote check's width: expected, else the header's
    pushed: deque[tuple[int, str]] = deque()
    for start, end, fields, raw in _records(lines, pushed, delimiter):
        if isinstance(fields, csv.Error):
            yield reject(start, str(fields))
            continue
        if not fields or all(not f.strip() for f in fields):
            continue
        split = _unclosed_quote(raw, delimiter, width) if end > start and width else None
        if split is not None:
            yield reject(start, "unclosed quote; the rows after it are read on their own")
            if split < len(raw):  # the line that closed the quote starts a record of its own
                pushed.extend((start + i, raw[i]) for i in range(split, len(raw)))
            records = list(_rows_of(raw[1:split], start + 1, delimiter))
        else:
            records = [(start, end, fields)]
        width = width if width is not None else len(fields)
        for first, last, cells in records:
            if not cells or all(not f.strip() for f in cells):
                continue
            bad = sorted(n for n in repaired if first <= n <= last)
            if bad:
                yield reject(first, "bytes are not UTF-8; decoded as cp1252",
                             IngestReason.bad_encoding, kept=True)
            if expected_fields is not None and len(cells) != expected_fields:
                yield reject(first, f"{len(cells)} fields, expected {expected_fields}")
                continue
            yield Row(line=first, fields=cells)


def _records(lines: Iterator[tuple[int, str]], pushed: deque[tuple[int, str]], delimiter: str
             ) -> Iterator[tuple[int, int, list[str] | csv.Error, list[str]]]:
    """``(first line, last line, fields or error, the raw lines)`` per csv record; lines the
    caller puts into ``pushed`` are read again before the rest of the file."""
    buffer: list[str] = []
    numbers: list[int] = []

    def feed() -> Iterator[str]:
        while True:
            if pushed:
                number, text = pushed.popleft()
            else:
                item = next(lines, None)
                if item is None:
                    return
                number, text = item
            numbers.append(number)
            buffer.append(text)
            yield text

    reader = csv.reader(feed(), delimiter=delimiter, strict=False)
    while True:
        try:
            fields: list[str] | csv.Error = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            fields = exc
        raw, first, last = list(buffer), numbers[0], numbers[-1]
        buffer.clear()
        numbers.clear()
        yield first, last, fields, raw


def _rows_of(raw: list[str], first: int, delimiter: str
             ) -> Iterator[tuple[int, int, list[str]]]:
    """Each physical line of ``raw`` parsed alone (line numbers from ``first``)."""
    for offset, text in enumerate(raw):
        fields = next(csv.reader([text], delimiter=delimiter, strict=False), [])
        yield first + offset, first + offset, fields


def _ends_in_quote(text: str, delimiter: str) -> bool:
    """True when ``text`` read alone ends inside a quoted field (a quote opened at the start
    of a field and not closed; quotes inside unquoted fields are literal, as csv reads them)."""
    in_quote, at_start = False, True
    i = 0
    while i < len(text):
        ch = text[i]
        if in_quote:
            if ch == '"':
                if text[i + 1:i + 2] == '"':
                    i += 1
                else:
                    in_quote = False
        elif ch == '"' and at_start:
            in_quote = True
        at_start = not in_quote and ch == delimiter
        i += 1
    return in_quote


def _unclosed_quote(raw: list[str], delimiter: str, width: int) -> int | None:
    """Where a quote that never closed swallowed whole rows, else None.

    The first line ends inside a quote; the lines after it are, alone, complete records
    (``width`` fields, balanced quotes). Either the file ended inside the quote (all later
    lines are such rows: returns ``len(raw)``), or the last line took the quote as a closing
    one although it really opens a multi-line field of its own (it ends inside a quote when
    read alone): it is read again (returns its index). A genuine multi-line field ends on a
    line with an odd number of quotes that does not end inside one, so it is left alone.
    """
    def complete(text: str) -> bool:
        cells = next(csv.reader([text], delimiter=delimiter, strict=False), [])
        return not text.strip() or (len(cells) == width and text.count('"') % 2 == 0)

    if not _ends_in_quote(raw[0], delimiter):
        return None
    if all(complete(t) for t in raw[1:]):
        return len(raw)
    middle = raw[1:-1]
    if (any(t.strip() for t in middle) and all(complete(t) for t in middle)
            and _ends_in_quote(raw[-1], delimiter)):
        return len(raw) - 1
    return None


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
