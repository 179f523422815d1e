from pathlib import Path

import pytest

from qagen.records import Rejection
from qagen.tabular import Row, iter_rows, parse_bool


def rows_of(path: Path, **kw: object) -> list[Row | Rejection]:
    return list(iter_rows(path, stage="ingest", source="t", **kw))  # type: ignore[arg-type]


def test_multiline_fields_report_their_first_line(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_bytes(b'\xef\xbb\xbfh1,h2\r\n1,"two\nlines"\r\n3,4\r\n\r\n5,6\n')
    got = rows_of(p)
    assert [(r.line, r.fields) for r in got if isinstance(r, Row)] == [
        (1, ["h1", "h2"]), (2, ["1", "two\nlines"]), (4, ["3", "4"]), (6, ["5", "6"])]


def test_field_count_and_encoding_are_checked(tmp_path: Path) -> None:
    p = tmp_path / "b.tsv"
    p.write_bytes(b"a\tb\n1\t2\t3\nx\xff\ty\n")
    got = rows_of(p, delimiter="\t", expected_fields=2)
    rej = [r for r in got if isinstance(r, Rejection)]
    assert [(r.reason, r.line, r.kept) for r in rej] == [
        ("malformed_row", 2, False), ("bad_encoding", 3, True)]
    assert "b.tsv line 2: 3 fields, expected 2" in rej[0].detail
    assert [r.fields for r in got if isinstance(r, Row)] == [["a", "b"], ["xÿ", "y"]]


@pytest.mark.parametrize(("text", "value"), [("True", True), ("0", False), ("", False)])
def test_parse_bool(text: str, value: bool) -> None:
    assert parse_bool(text) is value


def test_parse_bool_refuses_junk() -> None:
    with pytest.raises(ValueError, match="not a boolean"):
        parse_bool("maybe")
