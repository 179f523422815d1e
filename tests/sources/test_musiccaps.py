import csv
from pathlib import Path

import pytest

from qagen.records import Clip, Rejection, Split
from qagen.sources import musiccaps


def ingest_all(root: Path, **opts: object) -> tuple[list[Clip], list[Rejection]]:
    items = list(musiccaps.iter_clips(root, options=musiccaps.Options(**opts)))
    return (
        [i for i in items if isinstance(i, Clip)],
        [i for i in items if isinstance(i, Rejection)],
    )


def test_real_musiccaps_csv_ingests_exactly(realdata: Path) -> None:
    clips, rejections = ingest_all(realdata / "musiccaps")
    assert len(clips) == 5521
    assert rejections == []
    assert len({c.clip_id for c in clips}) == 5521
    assert sum(c.split is Split.test for c in clips) == 2858  # AudioSet eval
    assert sum(c.subset == "balanced" for c in clips) == 1000  # is_balanced_subset
    multiline = [c for c in clips if c.caption and "\n" in c.caption]
    assert len(multiline) == 5
    dash = [c for c in clips if c.source_id.startswith("-")]
    assert dash and dash[0].source_id == "-0Gj8-vB1q4"
    first = dash[0]
    assert first.aspects[:2] == ["low quality", "sustained strings melody"]
    assert first.audio_path == "audio/-0Gj8-vB1q4_30-40.wav"
    assert (first.start_s, first.end_s) == (0.0, 10.0)
    assert first.attributes["youtube_start_s"] == "30"
    assert first.clip_id == "musiccaps-6e704fe056da52a2"


def test_uncropped_layout_uses_youtube_window(realdata: Path) -> None:
    clips, _ = ingest_all(realdata / "musiccaps", cropped=False, audio_pattern="{ytid}.wav")
    c = clips[0]
    assert (c.start_s, c.end_s, c.audio_path) == (30.0, 40.0, "-0Gj8-vB1q4.wav")
    # Same YouTube window → same clip id whatever the file layout.
    assert c.clip_id == "musiccaps-6e704fe056da52a2"


def write_csv(root: Path, rows: list[list[str]], *, raw_tail: bytes = b"") -> None:
    root.mkdir(parents=True, exist_ok=True)
    with (root / "musiccaps-public.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(musiccaps.COLUMNS)
        w.writerows(rows)
    with (root / "musiccaps-public.csv").open("ab") as fh:
        fh.write(raw_tail)


GOOD = [
    "abcdefghijk",
    "0",
    "10",
    "/m/04rlf",
    "['rock', 'guitar']",
    "A rock song.",
    "1",
    "True",
    "False",
]


def test_bad_rows_are_recorded_and_the_rest_kept(tmp_path: Path) -> None:
    rows = [
        GOOD,
        ["short", "0"],  # wrong field count
        ["x2", "zero", "10", "", "[]", "c", "1", "False", "False"],  # bad number
        ["x3", "10", "5", "", "[]", "c", "1", "False", "False"],  # empty window
        ["x4", "0", "10", "", "['unclosed", "c", "1", "False", "True"],  # bad aspect literal
        ["../../etc", "0", "10", "", "[]", "c", "1", "False", "False"],  # path escape via ytid
    ]
    tail = b'caf\xe9-yt-id,0,10,,[],"Caf\xe9 music",1,False,False\n'  # cp1252 bytes
    write_csv(tmp_path, rows, raw_tail=tail)
    clips, rej = ingest_all(tmp_path)
    reasons = sorted((r.reason, r.line, r.kept) for r in rej)
    assert ("malformed_row", 3, False) in reasons
    assert ("malformed_row", 4, False) in reasons
    assert ("invalid_value", 5, False) in reasons
    assert ("invalid_value", 6, True) in reasons  # kept without aspects
    assert ("unsafe_path", 7, False) in reasons
    assert ("bad_encoding", 8, True) in reasons
    assert all(r.file == "musiccaps-public.csv" and "line" in r.detail for r in rej)
    assert [c.source_id for c in clips] == ["abcdefghijk", "x4", "café-yt-id"]
    assert clips[2].caption == "Café music"
    assert clips[1].aspects == [] and clips[1].split is Split.test


def test_missing_csv_or_columns_is_a_clear_error(tmp_path: Path) -> None:
    from qagen.errors import SourceFormatError

    with pytest.raises(SourceFormatError, match="not found"):
        ingest_all(tmp_path)
    (tmp_path / "musiccaps-public.csv").write_text("ytid,caption\nx,y\n")
    with pytest.raises(SourceFormatError, match="lacks columns"):
        ingest_all(tmp_path)
