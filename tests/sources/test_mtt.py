"""MagnaTagATune source: toy fixtures in both layouts, demo round trip, real musicnn metadata."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from pydantic import ValidationError

from qagen.errors import ConfigError, SourceFormatError
from qagen.records import AudioStatus, Clip, Rejection, Split
from qagen.records.demo import DemoClip, DemoTruth
from qagen.sources import get_source, mtt, parse_options

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "sources" / "mtt"
REALDATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "realdata" / "magnatagatune"


def _split(items: list[Clip | Rejection]) -> tuple[dict[str, Clip], list[Rejection]]:
    clips = {c.source_id: c for c in items if isinstance(c, Clip)}
    return clips, [r for r in items if isinstance(r, Rejection)]


def _run(root: Path, **options: object) -> tuple[dict[str, Clip], list[Rejection]]:
    return _split(list(mtt.iter_clips(root, options=mtt.Options.model_validate(options))))


def _demo(name: str, split: str, tags: list[str], *, sr: int = 22050) -> DemoClip:
    t = np.arange(sr) / sr
    truth = DemoTruth(tempo_bpm=120.0, beats_per_bar=4, key="A minor", chords=[], beats=[],
                      downbeats=[], notes=[], timbres=["sine"], has_drums=False)
    return DemoClip(name=name, audio=(0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32),
                    sr=sr, truth=truth, split=split, tags=tags, title=f"Song {name}",
                    artist="Demo Band")


def test_declares_metadata_and_is_discoverable() -> None:
    source = get_source("mtt")
    assert source.NAME == "mtt"
    assert source.LICENSE == "CC-BY-NC-SA-3.0"
    assert source.HOMEPAGE.startswith("https://")
    assert "ISMIR 2009" in source.CITATION


def test_fixture_rows_become_clips_and_rejections() -> None:
    clips, rejections = _run(FIXTURE)
    assert set(clips) == {"2", "6", "10", "35644"}
    by_line = {(r.file, r.line): r for r in rejections}
    assert by_line[("annotations_final.csv", 6)].reason == "malformed_row"
    assert "190" in by_line[("annotations_final.csv", 6)].detail
    unsafe = by_line[("annotations_final.csv", 7)]
    assert unsafe.reason == "unsafe_path"
    assert unsafe.item_id == Clip.make_id("mtt", "19", 0.0, None)
    assert "annotations_final.csv line 7" in unsafe.detail
    bad_value = by_line[("annotations_final.csv", 8)]
    assert bad_value.reason == "malformed_row" and "'rock'" in bad_value.detail
    assert len(rejections) == 4


def test_non_utf8_title_is_repaired_and_kept() -> None:
    clips, rejections = _run(FIXTURE)
    repaired = [r for r in rejections if r.reason == "bad_encoding"]
    assert len(repaired) == 1
    assert repaired[0].kept and repaired[0].file == "clip_info_final.csv"
    assert repaired[0].line == 4
    assert clips["10"].title == "Spanish Dance (café)"
    assert clips["10"].artist == "Jeff Wahl" and clips["10"].album == "Guitarscapes"


def test_split_window_and_license() -> None:
    clips, _ = _run(FIXTURE)
    assert clips["2"].split is Split.test
    assert clips["6"].split is Split.valid
    assert clips["10"].split is Split.train
    for clip in clips.values():
        assert (clip.start_s, clip.end_s) == (0.0, None)
        assert clip.license == "CC-BY-NC-SA-3.0"
        assert clip.clip_id == Clip.make_id("mtt", clip.source_id, 0.0, None)
    assert clips["2"].audio_path.startswith("f/american_bach_soloists")


def test_known_broken_clip_is_excluded_not_dropped() -> None:
    clips, _ = _run(FIXTURE)
    assert clips["35644"].audio_status is AudioStatus.excluded
    assert "known-broken" in (clips["35644"].audio_status_reason or "")
    assert clips["2"].audio_status is AudioStatus.unchecked


def test_tags_are_normalised_with_synonyms_merged() -> None:
    clips, _ = _run(FIXTURE)
    bach = clips["2"]
    assert set(bach.tags) == {"guitar", "classical", "slow", "harpsichord"}
    assert bach.genres == ["classical"]
    assert set(bach.instruments) == {"harpsichord", "guitar"}
    assert bach.attributes["tempo_tag"] == "slow"
    # female / woman / female vocal merge; the contradicting "no vocals" stays visible.
    assert clips["6"].vocals == ["female", "none"]
    assert set(clips["10"].genres) == {"techno", "electronic"}
    assert clips["10"].attributes["beat"] == "yes"


def test_normalise_tags_vocabulary() -> None:
    labels = mtt.normalise_tags(
        ["clasical", "classic", "violins", "fiddle", "quiet", "calm", "no voice", "fast",
         "singing", "male vocal", "piano solo", "not a real tag", "no drums", "not rock"])
    assert labels.genres == ["classical"]
    assert labels.instruments == ["violin", "piano"]
    assert labels.moods == ["quiet", "calm"]
    assert labels.vocals == ["male", "none"]
    assert labels.absent_instruments == ["drums"] and labels.not_genres == ["rock"]
    assert labels.attributes == {"performers": "solo", "tempo_tag": "fast"}


def test_every_top50_and_published_tag_is_covered() -> None:
    assert len(mtt.ANNOTATION_TAGS) == 188 == len(set(mtt.ANNOTATION_TAGS))
    assert set(mtt.TOP50_TAGS) <= set(mtt.ANNOTATION_TAGS)
    assert set(mtt.TOP50_TAGS) <= set(mtt.TAG_LABELS)
    assert set(mtt.ANNOTATION_TAGS) == set(mtt.TAG_LABELS) | mtt.UNMAPPED_TAGS
    assert not set(mtt.TAG_LABELS) & mtt.UNMAPPED_TAGS


def test_unquoted_copy_parses_like_the_quoted_one(tmp_path: Path) -> None:
    for name in ("annotations_final.csv", "clip_info_final.csv"):
        (tmp_path / name).write_bytes((FIXTURE / name).read_bytes().replace(b'"', b""))
    quoted, quoted_rej = _run(FIXTURE)
    plain, plain_rej = _run(tmp_path)
    assert quoted == plain
    assert [(r.reason, r.line) for r in quoted_rej] == [(r.reason, r.line) for r in plain_rej]


def test_ids_are_stable_across_runs() -> None:
    first = [c.clip_id for c in _run(FIXTURE)[0].values()]
    second = [c.clip_id for c in _run(FIXTURE)[0].values()]
    assert first == second
    assert len(set(first)) == 4


def test_audio_dir_autodetect_and_override(tmp_path: Path) -> None:
    shutil.copy(FIXTURE / "annotations_final.csv", tmp_path)
    clips, _ = _run(tmp_path)
    assert clips["2"].audio_path.startswith("f/")
    (tmp_path / "mp3").mkdir()
    clips, _ = _run(tmp_path)
    assert clips["2"].audio_path.startswith("mp3/f/")
    clips, _ = _run(tmp_path, audio_dir="")
    assert clips["2"].audio_path.startswith("f/")


def test_unsafe_audio_dir_option_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="audio_dir"):
        parse_options(get_source("mtt"), {"audio_dir": "../../etc"})
    with pytest.raises(ValidationError):
        mtt.Options(audio_dir="/abs")


def test_missing_metadata_names_what_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(SourceFormatError, match=r"annotations_final\.csv.*index_mtt\.tsv"):
        list(mtt.iter_clips(tmp_path, options=mtt.Options()))
    with pytest.raises(SourceFormatError, match=r"index_mtt\.tsv"):
        list(mtt.iter_clips(FIXTURE, options=mtt.Options(layout="musicnn")))


def _write_musicnn(root: Path) -> None:
    index = ["2\tf/a-b-01-x-0-29.mp3", "6\tc/a-b-02-y-0-29.mp3", "10\t0/a-b-03-z-0-29.mp3",
             "55753\t8/a-b-04-w-0-29.mp3", "14\t../escape.mp3", "15"]
    (root / "index_mtt.tsv").write_text("\n".join(index) + "\n")
    classes = {"clip_id": 0, **{t: i + 1 for i, t in enumerate(mtt.TOP50_TAGS)}}
    (root / "classes_MagnaTT.json").write_text(json.dumps(classes))

    def vec(*tags: str) -> str:
        return json.dumps([1.0 if t in tags else 0.0 for t in mtt.TOP50_TAGS])

    (root / "val_gt_mtt.tsv").write_text(f"6\t{vec('female', 'choral')}\n7\t[1.0, 0.0]\n")
    (root / "test_gt_mtt.tsv").write_text(f"2\t{vec('harpsichord')}\n2\t{vec()}\n")


def test_musicnn_layout(tmp_path: Path) -> None:
    _write_musicnn(tmp_path)
    clips, rejections = _run(tmp_path)
    assert set(clips) == {"2", "6", "10", "55753"}
    assert clips["6"].tags == ["female", "choral"]
    assert clips["6"].vocals == ["choir", "female"]
    assert clips["6"].attributes["tag_source"] == "val_gt_mtt.tsv"
    assert clips["2"].instruments == ["harpsichord"]
    assert clips["10"].tags == [] and "tag_source" not in clips["10"].attributes
    assert clips["55753"].audio_status is AudioStatus.excluded
    reasons = {(r.file, r.line): r.reason for r in rejections}
    assert reasons == {
        ("val_gt_mtt.tsv", 2): "malformed_row",
        ("test_gt_mtt.tsv", 2): "duplicate_id",
        ("index_mtt.tsv", 5): "unsafe_path",
        ("index_mtt.tsv", 6): "malformed_row",
    }


def test_annotations_layout_wins_when_both_present(tmp_path: Path) -> None:
    _write_musicnn(tmp_path)
    shutil.copy(FIXTURE / "annotations_final.csv", tmp_path)
    clips, _ = _run(tmp_path)
    assert set(clips) == {"2", "6", "10", "35644"}
    clips, _ = _run(tmp_path, layout="musicnn")
    assert "55753" in clips


def test_write_native_round_trip(tmp_path: Path) -> None:
    demos = [_demo("alpha", "train", ["guitar", "slow"]), _demo("beta", "valid", ["techno"]),
             _demo("gamma", "test", ["female", "piano", "not an mtt tag"]),
             _demo("delta", "test", [])]
    ids = mtt.write_native(tmp_path, demos)
    clips = {c.clip_id: c for c in mtt.iter_clips(tmp_path, options=mtt.Options())
             if isinstance(c, Clip)}
    assert sorted(ids.values()) == sorted(clips)
    header = (tmp_path / "annotations_final.csv").read_text().splitlines()[0].split("\t")
    assert header[:3] == ['"clip_id"', '"no voice"', '"singer"']
    assert header[-1] == '"mp3_path"'
    for demo in demos:
        clip = clips[ids[demo.name]]
        assert set(clip.tags) == set(demo.tags)
        assert clip.split == demo.split
        assert clip.title == demo.title and clip.artist == demo.artist
        folder = clip.audio_path.split("/")[1]
        assert folder in {"train": "0123456789ab", "valid": "c", "test": "def"}[demo.split]
        info = sf.info(str(tmp_path / clip.audio_path))
        assert (info.samplerate, info.channels) == (16000, 1)
        assert abs(info.duration - demo.duration_s) < 0.2
    assert clips[ids["gamma"]].vocals == ["female"]


# --- real published metadata (musicnn copy), skipped when absent -------------------------


@pytest.fixture(scope="module")
def real() -> tuple[dict[str, Clip], list[Rejection]]:
    if not (REALDATA / "index_mtt.tsv").is_file():
        pytest.skip(f"real MTT metadata not present at {REALDATA}")
    return _run(REALDATA)


def test_real_index_gives_every_clip(real: tuple[dict[str, Clip], list[Rejection]]) -> None:
    clips, rejections = real
    assert len(clips) == 25_863
    assert rejections == []
    for cid in mtt.BROKEN_CLIPS:
        assert clips[cid].audio_status is AudioStatus.excluded


def test_real_split_sizes_match_gt_files(
    real: tuple[dict[str, Clip], list[Rejection]],
) -> None:
    clips, _ = real
    splits = Counter(c.split for c in clips.values())
    folder_c = sum(1 for c in clips.values() if c.audio_path.startswith("c/"))
    assert splits[Split.valid] == folder_c == 1_825
    assert splits[Split.test] == 5_329
    assert splits[Split.train] == 25_863 - 1_825 - 5_329
    labelled = Counter((c.split, c.attributes.get("tag_source")) for c in clips.values())
    assert labelled[(Split.valid, "val_gt_mtt.tsv")] == 1_825
    assert labelled[(Split.test, "test_gt_mtt.tsv")] == 5_329
    assert labelled[(Split.train, None)] == splits[Split.train]  # no train_gt_mtt.tsv here


def test_real_classes_json_is_the_top50(real: tuple[dict[str, Clip], list[Rejection]]) -> None:
    clips, _ = real
    classes = json.loads((REALDATA / "classes_MagnaTT.json").read_text())
    assert classes.pop("clip_id") == 0
    assert [t for t, _ in sorted(classes.items(), key=lambda kv: kv[1])] == list(mtt.TOP50_TAGS)
    assert clips["14"].tags == ["techno"]
    assert clips["21"].tags == ["electronic", "rock", "fast"]
    assert clips["21"].attributes["tempo_tag"] == "fast"
    assert clips["19"].tags == []
