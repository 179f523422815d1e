"""AudioFolder source: metadata csv/jsonl at the root or per split, bare folders, round trip."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from qagen.audio import write_audio
from qagen.errors import SourceFormatError
from qagen.records import Clip, Rejection, Split
from qagen.records.demo import DemoClip, DemoTruth
from qagen.sources.audiofolder import Options, iter_clips, parse_labels, write_native

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "sources" / "audiofolder"


def _clips(items: list[Clip | Rejection]) -> dict[str, Clip]:
    return {i.audio_path: i for i in items if isinstance(i, Clip)}


def _rejections(items: list[Clip | Rejection]) -> list[Rejection]:
    return [i for i in items if isinstance(i, Rejection)]


def _tone(seconds: float = 1.0, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.1 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)


def test_fixture_clips_and_labels() -> None:
    clips = _clips(list(iter_clips(FIXTURE, options=Options())))
    assert sorted(clips) == ["c.wav", "d.wav", "test/t1.flac", "test/t4.flac", "train/a.wav",
                             "train/b.wav"]
    a = clips["train/a.wav"]
    assert a.source_id == "train/a.wav"
    assert a.caption == "A bright piano piece"
    assert a.tags == ["piano", "happy"]
    assert a.genres == ["classical"]
    assert a.artist == "Fixture Artist"
    assert a.attributes == {"bpm": "120"}
    assert a.split is Split.train
    assert (a.start_s, a.end_s) == (0.0, None)
    assert a.clip_id == Clip.make_id("audiofolder", "train/a.wav", 0.0, None)

    c = clips["c.wav"]
    assert c.split is Split.test  # the split column overrides the (absent) folder
    assert c.tags == ["strings", "calm"]  # JSON list inside a csv cell

    # metadata in test/: file_name is relative to it, the folder gives the split
    t1 = clips["test/t1.flac"]
    assert t1.split is Split.test
    assert t1.caption == "A slow rock ballad"  # from the "text" column
    assert t1.genres == ["rock", "ballad"]
    assert t1.instruments == ["guitar", "voice"]
    assert (t1.start_s, t1.end_s) == (1.0, 3.0)
    assert t1.license == "CC0-1.0"
    assert t1.attributes == {"extra": '{"k": 1}'}
    assert clips["test/t4.flac"].moods == ["sad"]


def test_fixture_rejections_name_file_and_line() -> None:
    rejections = _rejections(list(iter_clips(FIXTURE, options=Options())))
    got = {(r.file, r.line, r.reason, r.kept) for r in rejections}
    assert got == {
        ("metadata.csv", 3, "bad_encoding", True),
        ("metadata.csv", 4, "unsafe_path", False),  # ../escape.wav
        ("metadata.csv", 5, "unsafe_path", False),  # /etc/passwd.wav
        ("metadata.csv", 6, "missing_field", False),  # empty file_name
        ("metadata.csv", 7, "duplicate_id", False),  # train/a.wav again
        ("metadata.csv", 9, "invalid_value", True),  # split "holdout": kept, folder's split
        ("test/metadata.jsonl", 2, "malformed_row", False),  # invalid JSON
        ("test/metadata.jsonl", 3, "malformed_row", False),  # a list, not an object
        ("test/metadata.jsonl", 4, "invalid_value", False),  # end before start
        ("test/metadata.jsonl", 5, "invalid_value", True),  # tags "[not json": kept without
    }
    assert len(rejections) == len(got)


def test_non_utf8_caption_is_kept_and_repaired() -> None:
    items = list(iter_clips(FIXTURE, options=Options()))
    b = _clips(items)["train/b.wav"]
    assert b.caption == "Café jazz trio with brushed drums"
    (bad,) = [r for r in _rejections(items) if r.reason == "bad_encoding"]
    assert bad.kept and "metadata.csv line 3" in bad.detail


def test_unsafe_paths_never_become_clips() -> None:
    items = list(iter_clips(FIXTURE, options=Options()))
    unsafe = [r for r in _rejections(items) if r.reason == "unsafe_path"]
    assert {r.line for r in unsafe} == {4, 5}
    assert all("escape" not in c.audio_path and "passwd" not in c.audio_path
               for c in _clips(items).values())


def test_license_option_fills_rows_without_one() -> None:
    clips = _clips(list(iter_clips(FIXTURE, options=Options(license="CC-BY-4.0"))))
    assert clips["train/a.wav"].license == "CC-BY-4.0"
    assert clips["test/t1.flac"].license == "CC0-1.0"
    assert _clips(list(iter_clips(FIXTURE, options=Options())))["train/a.wav"].license is None


def test_ids_stable_across_runs() -> None:
    first = [c.clip_id for c in iter_clips(FIXTURE, options=Options()) if isinstance(c, Clip)]
    second = [c.clip_id for c in iter_clips(FIXTURE, options=Options()) if isinstance(c, Clip)]
    assert first == second and len(first) == len(set(first))


def test_per_split_and_root_metadata_give_the_same_ids(tmp_path: Path) -> None:
    per_split, at_root = tmp_path / "per_split", tmp_path / "at_root"
    (per_split / "train").mkdir(parents=True)
    (per_split / "train" / "metadata.csv").write_text(
        "file_name,caption\nx.wav,hello\n", encoding="utf-8")
    at_root.mkdir()
    (at_root / "metadata.csv").write_text(
        "file_name,caption\ntrain/x.wav,hello\n", encoding="utf-8")
    a = _clips(list(iter_clips(per_split, options=Options())))["train/x.wav"]
    b = _clips(list(iter_clips(at_root, options=Options())))["train/x.wav"]
    assert a == b
    assert a.split is Split.train


def test_windows_from_start_and_end_columns(tmp_path: Path) -> None:
    (tmp_path / "metadata.csv").write_text(
        "file_name,start_s,end_s\nsong.mp3,0,10\nsong.mp3,10,20\nsong.mp3,x,20\n",
        encoding="utf-8")
    items = list(iter_clips(tmp_path, options=Options()))
    clips = [i for i in items if isinstance(i, Clip)]
    assert [(c.start_s, c.end_s) for c in clips] == [(0.0, 10.0), (10.0, 20.0)]
    assert clips[0].clip_id != clips[1].clip_id
    assert [(r.line, r.reason) for r in _rejections(items)] == [(4, "malformed_row")]


def test_folder_without_metadata(tmp_path: Path) -> None:
    write_audio(tmp_path / "train" / "x.wav", _tone(), sr=16000)
    write_audio(tmp_path / "Test" / "sub" / "y.flac", _tone(), sr=16000)
    write_audio(tmp_path / "other" / "z.ogg", _tone(), sr=16000)
    write_audio(tmp_path / "top.wav", _tone(), sr=16000)
    write_audio(tmp_path / ".cache" / "hidden.wav", _tone(), sr=16000)
    (tmp_path / "notes.txt").write_text("not audio", encoding="utf-8")
    items = list(iter_clips(tmp_path, options=Options(license="CC0-1.0")))
    assert _rejections(items) == []
    clips = _clips(items)
    assert {p: c.split for p, c in clips.items()} == {
        "train/x.wav": Split.train, "Test/sub/y.flac": Split.test,
        "other/z.ogg": Split.unsplit, "top.wav": Split.unsplit}
    assert all(c.license == "CC0-1.0" and c.caption is None for c in clips.values())


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks on this platform")
def test_symlink_out_of_root_is_rejected(tmp_path: Path) -> None:
    outside = tmp_path / "outside.wav"
    write_audio(outside, _tone(), sr=16000)
    root = tmp_path / "root"
    root.mkdir()
    (root / "link.wav").symlink_to(outside)
    items = list(iter_clips(root, options=Options()))
    assert [(r.item_id, r.reason) for r in _rejections(items)] == [("link.wav", "unsafe_path")]
    assert _clips(items) == {}


def test_root_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(SourceFormatError, match="not a directory"):
        list(iter_clips(tmp_path / "nope", options=Options()))


def test_parse_labels() -> None:
    assert parse_labels("rock, pop ,") == ["rock", "pop"]
    assert parse_labels('["a", "b"]') == ["a", "b"]
    assert parse_labels(["x", 1]) == ["x", "1"]
    assert parse_labels(None) == []
    with pytest.raises(ValueError, match="nested"):
        parse_labels([["x"]])


def _demo(name: str, split: str) -> DemoClip:
    truth = DemoTruth(tempo_bpm=100.0, beats_per_bar=3, key="A minor", chords=[], beats=[],
                      downbeats=[], notes=[], timbres=[], has_drums=False)
    return DemoClip(name=name, audio=_tone(1.2, 22050), sr=22050, truth=truth, split=split,
                    caption=f"A short {name} piece", tags=["demo", name], genres=["ambient"],
                    instruments=["synth"], moods=["calm"], title=f"Title {name}",
                    artist="qagen")


def test_write_native_round_trip(tmp_path: Path) -> None:
    demos = [_demo("one", "train"), _demo("two", "test"), _demo("three", "valid")]
    ids = write_native(tmp_path, demos)
    records = [json.loads(x) for x in
               (tmp_path / "metadata.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["file_name"] for r in records] == [
        "train/one.flac", "test/two.flac", "validation/three.flac"]
    assert all((tmp_path / r["file_name"]).is_file() for r in records)

    items = list(iter_clips(tmp_path, options=Options()))
    assert _rejections(items) == []
    clips = {c.clip_id: c for c in _clips(items).values()}
    assert set(clips) == set(ids.values())
    for demo in demos:
        clip = clips[ids[demo.name]]
        assert clip.caption == demo.caption
        assert clip.tags == demo.tags
        assert clip.genres == demo.genres
        assert clip.instruments == demo.instruments
        assert clip.moods == demo.moods
        assert clip.title == demo.title and clip.artist == demo.artist
    assert [clips[ids[n]].split for n in ("one", "two", "three")] == [
        Split.train, Split.test, Split.valid]


def test_unclosed_quote_in_metadata_csv_costs_one_row(tmp_path: Path) -> None:
    lines = ["file_name,caption"] + [f"f{i}.wav,caption {i}" for i in range(100)]
    lines[11] = 'f10.wav,"a caption whose quote never closes'
    (tmp_path / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    items = list(iter_clips(tmp_path, options=Options()))
    clips = _clips(items)
    assert len(clips) == 99 and "f10.wav" not in clips
    assert clips["f99.wav"].caption == "caption 99"
    assert [(r.line, r.reason) for r in _rejections(items)] == [(12, "malformed_row")]
