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


# -- an unclosed quote must not swallow the rows after it ---------------------------------

def _read(path: Path) -> tuple[list[Row], list[Rejection]]:
    items = list(iter_rows(path, stage="ingest", source="x"))
    return ([i for i in items if isinstance(i, Row)],
            [i for i in items if isinstance(i, Rejection)])


def test_unclosed_quote_costs_one_row_not_the_rest_of_the_file(tmp_path: Path) -> None:
    lines = ["file_name,caption,tags"] + [f"f{i}.wav,caption {i},t{i}" for i in range(100)]
    lines[11] = 'f10.wav,"broken caption,t10'
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows, rejections = _read(tmp_path / "m.csv")
    assert len(rows) == 1 + 99  # the header and every row but the broken one
    assert [(r.line, r.reason) for r in rejections] == [(12, "malformed_row")]
    assert "unclosed quote" in (rejections[0].detail or "")
    assert rows[-1].fields == ["f99.wav", "caption 99", "t99"] and rows[-1].line == 101


def test_unclosed_quote_before_a_real_multiline_field(tmp_path: Path) -> None:
    text = ('file_name,caption,tags\na.wav,"broken,x\nb.wav,fine,y\nc.wav,"two\nlines",z\n'
            'd.wav,last,w\n')
    (tmp_path / "m.csv").write_text(text, encoding="utf-8")
    rows, rejections = _read(tmp_path / "m.csv")
    assert [(r.line, r.fields) for r in rows[1:]] == [
        (3, ["b.wav", "fine", "y"]), (4, ["c.wav", "two\nlines", "z"]),
        (6, ["d.wav", "last", "w"])]
    assert [(r.line, r.reason) for r in rejections] == [(2, "malformed_row")]


def test_a_genuine_multiline_field_is_one_row(tmp_path: Path) -> None:
    text = 'file_name,caption,tags\na.wav,"line one\nline two, still the caption\nend",t\n'
    (tmp_path / "m.csv").write_text(text, encoding="utf-8")
    rows, rejections = _read(tmp_path / "m.csv")
    assert rejections == []
    assert rows[1].fields == ["a.wav", "line one\nline two, still the caption\nend", "t"]


def test_real_musiccaps_with_a_broken_quote_loses_only_that_row(realdata: Path,
                                                                 tmp_path: Path) -> None:
    from qagen.sources import musiccaps

    lines = (realdata / "musiccaps" / "musiccaps-public.csv").read_text(
        encoding="utf-8").splitlines(keepends=True)
    # A one-line row with a quoted caption, followed (not at once) by a multi-line caption.
    multi = next(i for i, t in enumerate(lines) if t.count('"') % 2 == 1)
    broken = next(i for i in range(multi - 5, 0, -1)
                  if lines[i].count('"') == 2 and '",' in lines[i])
    lines[broken] = lines[broken].replace('",', ",", 1)
    (tmp_path / "musiccaps-public.csv").write_text("".join(lines), encoding="utf-8")
    items = list(musiccaps.iter_clips(tmp_path, options=musiccaps.Options()))
    clips = [i for i in items if not isinstance(i, Rejection)]
    rejections = [i for i in items if isinstance(i, Rejection)]
    assert len(clips) == 5521 - 1
    assert [(r.line, r.reason) for r in rejections] == [(broken + 1, "malformed_row")]
    assert sum("\n" in (c.caption or "") for c in clips) == 5  # multi-line captions intact


def test_two_column_multiline_caption_with_commas_is_one_row(tmp_path: Path) -> None:
    text = 'file_name,caption\na.wav,"line one\nline two, with a comma\nend"\nb.wav,x\n'
    (tmp_path / "m.csv").write_text(text, encoding="utf-8")
    rows, rejections = _read(tmp_path / "m.csv")
    assert rejections == []
    assert [r.fields for r in rows[1:]] == [["a.wav", "line one\nline two, with a comma\nend"],
                                            ["b.wav", "x"]]
