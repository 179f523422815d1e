"""MusicNet source: real published metadata, the toy fixture, crops, and the demo round trip."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from qagen.audio import write_audio
from qagen.errors import ConfigError, SourceFormatError
from qagen.records import Clip, Rejection, Split
from qagen.records.demo import DemoClip, DemoTruth, NoteEvent
from qagen.sources import get_source, musicnet, parse_options
from qagen.sources.musicnet import Options, instrument_name, iter_clips, write_native

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "sources" / "musicnet"
STANDARD_TEST_IDS = {"1759", "1819", "2106", "2191", "2298", "2303", "2382", "2416", "2556",
                     "2628"}


def _split(items: list[Clip | Rejection]) -> tuple[dict[str, list[Clip]], list[Rejection]]:
    clips: dict[str, list[Clip]] = {}
    for item in items:
        if isinstance(item, Clip):
            clips.setdefault(item.source_id, []).append(item)
    return clips, [i for i in items if isinstance(i, Rejection)]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A writable copy of the fixture, so tests can add audio next to it."""
    out = tmp_path / "musicnet"
    shutil.copytree(FIXTURE, out)
    return out


# --- real metadata --------------------------------------------------------------------------

@pytest.fixture
def real_musicnet(realdata: Path) -> Path:
    """``shared/realdata/musicnet`` beside the repo (conftest's ``realdata`` skips if absent)."""
    path = realdata / "musicnet"
    if not (path / "musicnet_metadata.csv").is_file():
        pytest.skip(f"real MusicNet metadata not present at {path}")
    return path


def test_real_metadata_gives_330_recordings(real_musicnet: Path) -> None:
    clips, rejections = _split(list(iter_clips(real_musicnet, options=Options())))
    assert rejections == []
    assert len(clips) == 330
    assert all(len(c) == 1 for c in clips.values())


def test_real_metadata_known_row(real_musicnet: Path) -> None:
    clips, _ = _split(list(iter_clips(real_musicnet, options=Options())))
    clip = clips["1727"][0]
    assert clip.composer == "Schubert"
    assert clip.composition == "Piano Quintet in A major"
    assert clip.movement == "2. Andante"
    assert clip.ensemble == "Piano Quintet"
    assert clip.attributes["seconds"] == "447"
    assert clip.attributes["catalog_name"] == "OP114"
    assert clip.attributes["instruments_from"] == "ensemble"
    assert clip.instruments == ["piano", "violin", "viola", "cello"]
    assert clip.genres == ["classical"]
    assert clip.license == "CC-BY-4.0"
    assert clip.audio_path == "train_data/1727.wav"
    assert clip.split is Split.train


def test_real_metadata_standard_test_split(real_musicnet: Path) -> None:
    clips, _ = _split(list(iter_clips(real_musicnet, options=Options())))
    test_ids = {sid for sid, c in clips.items() if c[0].split is Split.test}
    assert test_ids == STANDARD_TEST_IDS
    assert clips["2628"][0].audio_path == "test_data/2628.wav"
    assert {c[0].attributes["split_from"] for c in clips.values()} == {"standard_test_ids"}


def test_real_metadata_every_ensemble_has_instruments(real_musicnet: Path) -> None:
    clips, _ = _split(list(iter_clips(real_musicnet, options=Options())))
    assert all(c[0].instruments for c in clips.values())


def test_real_metadata_crops_cover_each_recording(real_musicnet: Path) -> None:
    clips, _ = _split(list(iter_clips(real_musicnet, options=Options(crop_s=30.0))))
    assert len(clips["1727"]) == 15  # 447 s: 14 full windows + a 27 s tail (≥ 15 s kept)
    assert clips["1727"][-1].end_s == 447.0
    ids = [c.clip_id for cs in clips.values() for c in cs]
    assert len(ids) == len(set(ids))


# --- synthetic fixture ----------------------------------------------------------------------

def test_fixture_label_rows_and_rejections() -> None:
    clips, rejections = _split(list(iter_clips(FIXTURE, options=Options())))
    assert sorted(clips) == ["1759", "9101", "9102", "9103"]
    by_line = {(r.file, r.line): r.reason for r in rejections}
    assert by_line == {
        ("train_labels/9101.csv", 8): "malformed_row",  # non-numeric sample index
        ("train_labels/9101.csv", 9): "invalid_value",  # ends before it starts
        ("musicnet_metadata.csv", 6): "malformed_row",  # seconds = abc
        ("musicnet_metadata.csv", 7): "duplicate_id",  # 9101 again
        ("musicnet_metadata.csv", 8): "malformed_row",  # 8 fields
    }
    assert all(not r.kept for r in rejections)

    trio = clips["9101"][0]
    # violin plays 3 notes, piano 2, cello 1 (the two bad rows are not counted)
    assert trio.instruments == ["violin", "piano", "cello"]
    assert trio.attributes["instruments_from"] == "labels"
    assert trio.attributes["n_notes"] == "6"
    assert trio.attributes["note_range_midi"] == "36-81"
    assert trio.attributes["note_range"] == "C2-A5"
    assert trio.split is Split.train and trio.attributes["split_from"] == "labels_folder"

    quartet = clips["9102"][0]
    assert quartet.split is Split.test
    assert quartet.audio_path == "test_data/9102.wav"
    assert quartet.movement == "2. Adagio, ma non troppo"

    cello = clips["9103"][0]
    assert cello.instruments == ["cello"]
    assert cello.attributes["instruments_from"] == "ensemble"
    assert cello.split is Split.train and cello.audio_path == "train_data/9103.wav"
    assert clips["1759"][0].split is Split.test


def test_audio_folder_decides_split_and_path(root: Path) -> None:
    write_audio(root / "test_data" / "9101.wav", np.zeros(4410, np.float32), sr=44100)
    clips, _ = _split(list(iter_clips(root, options=Options())))
    trio = clips["9101"][0]
    # audio in test_data wins over labels in train_labels; labels are still read
    assert trio.split is Split.test
    assert trio.audio_path == "test_data/9101.wav"
    assert trio.attributes["split_from"] == "audio_folder"
    assert trio.attributes["labels_path"] == "train_labels/9101.csv"
    assert trio.instruments == ["violin", "piano", "cello"]


def test_crops_windows_and_instruments() -> None:
    clips, _ = _split(list(iter_clips(FIXTURE, options=Options(crop_s=4.0))))
    trio = clips["9101"]
    assert [(c.start_s, c.end_s) for c in trio] == [(0.0, 4.0), (4.0, 8.0), (8.0, 10.0)]
    assert [c.instruments for c in trio] == [["violin", "piano"], ["piano", "cello"], ["piano"]]
    assert [c.attributes["n_notes"] for c in trio] == ["4", "2", "1"]
    assert len({c.clip_id for c in trio}) == 3
    assert all(c.source_id == "9101" for c in trio)
    assert [(c.start_s, c.end_s) for c in clips["9102"]] == [(0.0, 4.0), (4.0, 7.0)]
    # 5 s recording: the 1 s tail is shorter than min_crop_s (2 s) and dropped
    assert [(c.start_s, c.end_s) for c in clips["9103"]] == [(0.0, 4.0)]
    assert all(c.instruments == ["cello"] for c in clips["9103"])
    assert [(c.start_s, c.end_s) for c in clips["1759"]] == [(0.0, 4.0)]


def test_crops_with_hop_and_min_crop() -> None:
    options = Options(crop_s=4.0, hop_s=2.0, min_crop_s=1.0)
    clips, _ = _split(list(iter_clips(FIXTURE, options=options)))
    assert [(c.start_s, c.end_s) for c in clips["9101"]] == [
        (0.0, 4.0), (2.0, 6.0), (4.0, 8.0), (6.0, 10.0)]
    assert [(c.start_s, c.end_s) for c in clips["9103"]] == [(0.0, 4.0), (2.0, 5.0)]
    # [6, 10): cello and piano one note each; ties go to the lower GM program
    assert clips["9101"][3].instruments == ["piano", "cello"]


def test_crop_options_are_checked() -> None:
    source = get_source("musicnet")
    with pytest.raises(ConfigError, match="hop_s and min_crop_s need crop_s"):
        parse_options(source, {"hop_s": 2})
    with pytest.raises(ConfigError, match="exceeds crop_s"):
        parse_options(source, {"crop_s": 2, "min_crop_s": 3})
    with pytest.raises(ConfigError, match="crop_s"):
        parse_options(source, {"crop_s": 0})


def test_ids_stable_across_runs() -> None:
    for options in (Options(), Options(crop_s=4.0)):
        first = [c.clip_id for c in iter_clips(FIXTURE, options=options) if isinstance(c, Clip)]
        second = [c.clip_id for c in iter_clips(FIXTURE, options=options) if isinstance(c, Clip)]
        assert first == second
        assert len(first) == len(set(first))
    whole = next(c for c in iter_clips(FIXTURE, options=Options()) if isinstance(c, Clip))
    assert whole.clip_id == Clip.make_id("musicnet", "9101", 0.0, None)


def test_unsafe_recording_id_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "musicnet_metadata.csv").write_text(
        ",".join(musicnet.METADATA_COLUMNS) + "\r\n"
        + "../../etc/x,A,B,C,Solo Piano,S,T,K,10\r\n", encoding="utf-8")
    items = list(iter_clips(tmp_path, options=Options()))
    assert [(type(i).__name__, getattr(i, "reason", None)) for i in items] == [
        ("Rejection", "unsafe_path")]


def test_missing_metadata_or_columns_raise(tmp_path: Path) -> None:
    with pytest.raises(SourceFormatError, match="metadata_name"):
        list(iter_clips(tmp_path, options=Options()))
    (tmp_path / "musicnet_metadata.csv").write_text("id,composer\n1,x\n", encoding="utf-8")
    with pytest.raises(SourceFormatError, match="lacks columns"):
        list(iter_clips(tmp_path, options=Options()))


def test_label_file_with_bad_header_falls_back_to_ensemble(root: Path) -> None:
    (root / "train_labels" / "9101.csv").write_text("onset,offset\n0,1\n", encoding="utf-8")
    clips, rejections = _split(list(iter_clips(root, options=Options())))
    assert clips["9101"][0].instruments == ["piano", "violin", "cello"]
    assert clips["9101"][0].attributes["instruments_from"] == "ensemble"
    assert ("train_labels/9101.csv", 1, "malformed_row") in {
        (r.file, r.line, r.reason) for r in rejections}


def test_instrument_names_cover_general_midi() -> None:
    assert len(musicnet.GM_PROGRAM_NAMES) == 128
    assert [instrument_name(p) for p in (1, 7, 41, 42, 43, 44, 61, 69, 71, 72, 74)] == [
        "piano", "harpsichord", "violin", "viola", "cello", "contrabass", "horn", "oboe",
        "bassoon", "clarinet", "flute"]
    assert instrument_name(25) == "acoustic guitar (nylon)"
    assert instrument_name(128) == "gunshot"
    with pytest.raises(ValueError, match="outside 1-128"):
        instrument_name(0)


# --- demo round trip ------------------------------------------------------------------------

def _demo(name: str, *, split: str, sr: int, notes: list[NoteEvent], ensemble: str) -> DemoClip:
    t = np.arange(int(1.5 * sr)) / sr
    truth = DemoTruth(tempo_bpm=120.0, beats_per_bar=4, key="C major", chords=[],
                      beats=[0.0, 0.5, 1.0], downbeats=[0.0], notes=notes, timbres=[],
                      has_drums=False)
    return DemoClip(name=name, audio=(0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32),
                    sr=sr, truth=truth, split=split, composer="Demo", composition="Etude",
                    ensemble=ensemble, title=name)


def test_write_native_round_trip(tmp_path: Path) -> None:
    notes = [
        NoteEvent(start_s=0.0, end_s=0.5, pitch=60, program=0, start_beat=0, duration_beats=1),
        NoteEvent(start_s=0.5, end_s=0.75, pitch=64, program=0, start_beat=1,
                  duration_beats=0.5),
        NoteEvent(start_s=0.0, end_s=1.5, pitch=67, program=40, start_beat=0,
                  duration_beats=3),
        NoteEvent(start_s=0.75, end_s=1.0, pitch=55, program=42, start_beat=1.5,
                  duration_beats=0.25),
    ]
    demos = [
        _demo("duo", split="train", sr=22050, notes=notes, ensemble="Accompanied Violin"),
        _demo("solo", split="test", sr=44100, notes=[], ensemble="Solo Cello"),
    ]
    ids = write_native(tmp_path, demos)
    assert set(ids) == {"duo", "solo"}

    raw = (tmp_path / "musicnet_metadata.csv").read_bytes()
    assert raw.count(b"\r\n") == 3 and raw.count(b"\n") == 3
    info = sf.info(str(tmp_path / "train_data" / "9001.wav"))
    assert info.samplerate == 44100 and abs(info.duration - 1.5) < 1e-3
    assert (tmp_path / "test_data" / "9002.wav").is_file()
    with (tmp_path / "train_labels" / "9001.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [tuple(r.values()) for r in rows] == [
        ("0", "22050", "1", "60", "0", "1", "Quarter"),
        ("0", "66150", "41", "67", "0", "3", "Dotted Half"),
        ("22050", "33075", "1", "64", "1", "0.5", "Eighth"),
        ("33075", "44100", "43", "55", "1.5", "0.25", "Unknown"),
    ]

    clips, rejections = _split(list(iter_clips(tmp_path, options=Options())))
    assert rejections == []
    assert {sid: c[0].clip_id for sid, c in clips.items()} == {
        "9001": ids["duo"], "9002": ids["solo"]}
    duo, solo = clips["9001"][0], clips["9002"][0]
    assert duo.instruments == ["piano", "violin", "cello"]
    assert duo.attributes["instruments_from"] == "labels"
    assert duo.attributes["n_notes"] == "4"
    assert duo.split is Split.train and duo.composer == "Demo"
    assert solo.split is Split.test and solo.instruments == ["cello"]
    assert solo.attributes["instruments_from"] == "ensemble"
