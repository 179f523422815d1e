"""Free Music Archive source: toy tracks.csv, subsets, demo round trip, real tracks head."""

from __future__ import annotations

import csv
import logging
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from qagen.errors import ConfigError, SourceFormatError
from qagen.records import Clip, Rejection, Split
from qagen.records.demo import DemoClip, DemoTruth
from qagen.sources import fma, get_source, parse_options

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "sources" / "fma"
REALDATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "realdata" / "fma"
NC_SA = "Attribution-NonCommercial-ShareAlike 3.0 International"


def _run(root: Path, **options: object) -> tuple[dict[str, Clip], list[Rejection]]:
    items = list(fma.iter_clips(root, options=fma.Options.model_validate(options)))
    clips = {c.source_id: c for c in items if isinstance(c, Clip)}
    return clips, [r for r in items if isinstance(r, Rejection)]


def _demo(name: str, split: str, genres: list[str], tags: list[str], *,
          sr: int = 22050) -> DemoClip:
    t = np.arange(sr) / sr
    truth = DemoTruth(tempo_bpm=100.0, beats_per_bar=4, key="C major", chords=[], beats=[],
                      downbeats=[], notes=[], timbres=["sine"], has_drums=False)
    return DemoClip(name=name, audio=(0.2 * np.sin(2 * np.pi * 330 * t)).astype(np.float32),
                    sr=sr, truth=truth, split=split, genres=genres, tags=tags,
                    title=f"Track {name}", artist="Demo Artist")


def test_declares_metadata_and_is_discoverable() -> None:
    source = get_source("fma")
    assert source.NAME == "fma"
    assert source.HOMEPAGE == "https://github.com/mdeff/fma"
    assert "ISMIR 2017" in source.CITATION
    assert source.LICENSE


def test_fixture_small_subset() -> None:
    clips, _ = _run(FIXTURE)
    assert set(clips) == {"2", "5", "10", "20", "26"}  # 3 is medium, 30 has subset 'tiny'
    food = clips["2"]
    assert food.genres == ["Hip-Hop"]
    assert food.license == NC_SA
    assert food.split is Split.train and food.subset == "small"
    assert food.audio_path == "fma_small/000/000002.mp3"
    assert (food.title, food.artist, food.album) == ("Food", "AWOL", "AWOL - A Way Of Life")
    assert food.tags == []
    assert food.attributes["genre_ids"] == "21"
    assert (food.start_s, food.end_s) == (0.0, None)
    assert clips["5"].split is Split.valid
    assert clips["5"].genres == ["Experimental Pop", "Electronic"]  # no genre_top: two roots
    assert clips["5"].tags == ["synth", "experimental pop"]
    assert clips["10"].split is Split.test
    assert clips["10"].genres == ["Rock", "Punk"]  # genre_top first
    assert clips["10"].license.startswith("Attribution-NonCommercial-NoDerivatives")


def test_fixture_rejections_name_file_and_line() -> None:
    clips, rejections = _run(FIXTURE)
    got = Counter((r.reason, r.line, r.kept) for r in rejections)
    assert got == Counter({
        ("bad_encoding", 8, True): 1,  # after a field with a line break: lines stay physical
        ("malformed_row", 9, False): 1,  # 5 fields
        ("malformed_row", 10, False): 1,  # track_id x12
        ("invalid_value", 11, True): 1,  # genre list unreadable: kept without genres
        ("invalid_value", 12, True): 1,  # genre id unknown to genres.csv
        ("invalid_value", 13, False): 1,  # set.subset 'tiny'
    })
    assert all(r.file == "tracks.csv" and f"tracks.csv line {r.line}" in r.detail
               for r in rejections)
    assert "5 fields, expected 53" in next(r.detail for r in rejections if r.line == 9)
    assert clips["10"].title == "Café Racer"
    assert clips["20"].genres == ["Hip-Hop"] and "genre_ids" not in clips["20"].attributes
    assert clips["26"].attributes["genre_ids"] == "21,99999"


@pytest.mark.parametrize(("subset", "expected"), [
    ("small", {"2", "5", "10", "20", "26"}),
    ("medium", {"2", "3", "5", "10", "20", "26"}),
    ("large", {"2", "3", "5", "10", "20", "26"}),
    ("full", {"2", "3", "5", "10", "20", "26", "30"}),
])
def test_subsets_nest(subset: str, expected: set[str]) -> None:
    clips, rejections = _run(FIXTURE, subset=subset)
    assert set(clips) == expected
    assert (subset == "full") != any(r.line == 13 for r in rejections)
    assert {c.audio_path.split("/")[0] for c in clips.values()} == {f"fma_{subset}"}


def test_repairs_of_rows_outside_the_subset_are_not_reported(tmp_path: Path) -> None:
    meta = tmp_path / "fma_metadata"
    shutil.copytree(FIXTURE / "fma_metadata", meta)
    text = (meta / "tracks.csv").read_bytes()
    (meta / "tracks.csv").write_bytes(text.replace(b",Electric Ave", b",Electric Av\xe9"))
    _, small = _run(tmp_path)
    _, medium = _run(tmp_path, subset="medium")
    assert [r.line for r in small if r.reason == "bad_encoding"] == [8]
    assert [r.line for r in medium if r.reason == "bad_encoding"] == [6, 8]


def test_audio_dir_falls_back_to_a_larger_subset_folder(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE / "fma_metadata", tmp_path / "fma_metadata")
    (tmp_path / "fma_large").mkdir()
    clips, _ = _run(tmp_path)
    assert clips["2"].audio_path == "fma_large/000/000002.mp3"
    (tmp_path / "fma_small").mkdir()
    clips, _ = _run(tmp_path)
    assert clips["2"].audio_path == "fma_small/000/000002.mp3"
    clips, _ = _run(tmp_path, audio_dir="audio/fma")
    assert clips["2"].audio_path == "audio/fma/000/000002.mp3"


def test_metadata_directly_under_root_and_missing_genres(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shutil.copy(FIXTURE / "fma_metadata" / "tracks.csv", tmp_path)
    with caplog.at_level(logging.WARNING, logger="qagen.sources.fma"):
        clips, rejections = _run(tmp_path)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "genres.csv" in warnings[0].getMessage()
    assert clips["2"].genres == ["Hip-Hop"]
    assert clips["5"].genres == []  # no genre_top, no genres.csv to resolve [76, 15]
    assert not any(r.line == 12 for r in rejections)  # unknown ids are not checked then


def test_duplicate_track_id(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE / "fma_metadata", tmp_path / "fma_metadata")
    path = tmp_path / "fma_metadata" / "tracks.csv"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([*lines, lines[3], lines[4]]))  # track 2 spans two lines
    _, rejections = _run(tmp_path)
    dup = [r for r in rejections if r.reason == "duplicate_id"]
    assert len(dup) == 1 and dup[0].line == len(lines) + 1
    assert dup[0].item_id == Clip.make_id("fma", "2", 0.0, None)


def test_bad_options_and_missing_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="audio_dir"):
        parse_options(get_source("fma"), {"audio_dir": "../../etc"})
    with pytest.raises(ConfigError, match="subset"):
        parse_options(get_source("fma"), {"subset": "tiny"})
    with pytest.raises(SourceFormatError, match=r"tracks\.csv"):
        list(fma.iter_clips(tmp_path, options=fma.Options()))


def test_ids_are_stable_across_runs() -> None:
    first, _ = _run(FIXTURE)
    second, _ = _run(FIXTURE)
    assert [c.clip_id for c in first.values()] == [c.clip_id for c in second.values()]
    assert first["2"].clip_id == Clip.make_id("fma", "2", 0.0, None)


def test_audio_relpath() -> None:
    assert fma.audio_relpath(2, audio_dir="fma_small") == "fma_small/000/000002.mp3"
    assert fma.audio_relpath(155320, audio_dir="fma_full") == "fma_full/155/155320.mp3"


def test_write_native_round_trip(tmp_path: Path) -> None:
    demos = [_demo("alpha", "train", ["Rock", "Punk"], ["loud"]),
             _demo("beta", "valid", ["Techno"], []),
             _demo("gamma", "test", ["hip hop", "Experimental Pop"], ["lofi", "demo"]),
             _demo("delta", "test", ["Vaporwave"], [])]
    ids = fma.write_native(tmp_path, demos)
    clips = {c.clip_id: c for c in fma.iter_clips(tmp_path, options=fma.Options())
             if isinstance(c, Clip)}
    assert sorted(ids.values()) == sorted(clips)
    got = {name: clips[cid] for name, cid in ids.items()}
    assert got["alpha"].genres == ["Rock", "Punk"]
    assert got["beta"].genres == ["Electronic", "Techno"]
    assert got["gamma"].genres == ["Hip-Hop", "Experimental Pop"]  # two roots: no genre_top
    assert got["delta"].genres == ["Vaporwave"]
    for demo in demos:
        clip = got[demo.name]
        assert clip.tags == demo.tags and clip.split == demo.split
        assert clip.subset == "small" and clip.title == demo.title
        assert clip.artist == demo.artist
        info = sf.info(str(tmp_path / clip.audio_path))
        assert (info.samplerate, info.channels) == (44100, 1)
    genre_rows = (tmp_path / "fma_metadata" / "genres.csv").read_text().splitlines()
    published = set(fma.GENRES_CSV.splitlines())
    assert {r for r in genre_rows if "Vaporwave" not in r} <= published
    assert "25,9261,12,Punk,12" in genre_rows


def test_written_header_is_the_published_one(tmp_path: Path) -> None:
    fma.write_native(tmp_path, [_demo("alpha", "train", ["Rock"], [])])
    with (tmp_path / "fma_metadata" / "tracks.csv").open(newline="") as fh:
        written = [next(csv.reader(fh)) for _ in range(3)]
    assert written[2] == ["track_id"] + [""] * 52
    assert list(zip(written[0][1:], written[1][1:], strict=True)) == list(fma.COLUMNS)
    real = REALDATA / "tracks_head.csv"
    if real.is_file():
        assert (tmp_path / "fma_metadata" / "tracks.csv").read_text().splitlines()[:3] == \
            real.read_text().splitlines()[:3]


# --- real published metadata (head of tracks.csv), skipped when absent ---------------------


@pytest.fixture(scope="module")
def real_root() -> Path:
    if not (REALDATA / "tracks_head.csv").is_file():
        pytest.skip(f"real FMA metadata not present at {REALDATA}")
    return REALDATA


@pytest.mark.parametrize(("subset", "count"), [("small", 58), ("medium", 194), ("full", 682)])
def test_real_tracks_head_counts(real_root: Path, subset: str, count: int) -> None:
    clips, rejections = _run(real_root, subset=subset, tracks_csv="tracks_head.csv")
    assert len(clips) == count
    assert rejections == []


def test_real_known_values(real_root: Path) -> None:
    clips, _ = _run(real_root, subset="full", tracks_csv="tracks_head.csv")
    food = clips["2"]
    assert food.genres[0] == "Hip-Hop"
    assert food.license == NC_SA
    assert (food.split, food.subset) == (Split.train, "small")
    assert food.audio_path == "fma_full/000/000002.mp3"
    assert clips["3"].subset == "medium"
    assert Counter(c.split for c in clips.values()) == {
        Split.train: 563, Split.test: 71, Split.valid: 48}
    small, _ = _run(real_root, tracks_csv="tracks_head.csv")
    assert "3" not in small
    assert small["2"].audio_path == "fma_small/000/000002.mp3"


def test_embedded_genres_are_the_published_file(real_root: Path) -> None:
    published = (real_root / "genres.csv").read_text()
    assert published == fma.GENRES_CSV
    titles, rejections = fma.load_genres(real_root / "genres.csv")
    assert len(titles) == 163 and rejections == []
    assert titles[21] == "Hip-Hop"
