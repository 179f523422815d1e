"""The hard evaluation set: its plan, its truth, its split, and (slow) augment on a few clips.

Rendering needs the Debian packages fluidsynth + fluid-soundfont-gm and PyPI pretty_midi;
without them those tests skip, naming what is missing.
"""

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from qagen.augment.hardset import (
    FEELS,
    METERS,
    MODES,
    NOISE_KINDS,
    REAL_RECORDINGS,
    _jams_truth,
    hardset_available,
    noise_clip,
    plan_hard_set,
    split_of,
)
from qagen.music import parse_chord, parse_key
from tests.conftest import SHARED

MISSING = hardset_available()
needs_render = pytest.mark.skipif(MISSING is not None, reason=f"needs {MISSING}")


def test_plan_covers_every_feel_meter_and_mode_and_is_deterministic() -> None:
    plan = plan_hard_set(n=48, seed=0)
    assert plan == plan_hard_set(n=48, seed=0)
    assert {p.feel for p in plan} == set(FEELS)
    assert {p.meter for p in plan} == set(METERS)
    assert {p.mode for p in plan} == set(MODES)
    assert len({p.name for p in plan}) == 48
    for meter in ("3/4", "4/4"):  # feels are not tied to meters
        assert len({p.feel for p in plan if p.meter == meter}) >= 4
    quarter = [p.tempo_bpm for p in plan if p.meter != "6/8"]
    assert min(quarter) <= 65 and max(quarter) >= 190
    assert 0.25 <= sum(p.mp3 for p in plan) / len(plan) <= 0.4


def test_default_plan_has_two_large_halves_rich_in_hard_cases() -> None:
    plan = plan_hard_set()
    assert len({p.name for p in plan}) == len(plan) >= 120
    for half in ("dev", "test"):
        pieces = [p for p in plan if split_of(p.name) == half]
        assert len(pieces) >= 60
        assert sum(p.meter == "6/8" for p in pieces) >= 0.25 * len(pieces)
        fast = [p for p in pieces if p.meter != "6/8" and p.tempo_bpm >= 130]
        assert len(fast) >= 0.5 * sum(p.meter != "6/8" for p in pieces)


@pytest.mark.skipif(MISSING is not None and "pretty_midi" in (MISSING or ""),
                    reason="needs pretty_midi")
def test_6_8_melodies_move_in_eighths_not_duplets() -> None:
    """Without drums only the melody says 6/8: its notes must fall on the eighth grid, and
    some between the duplet points (1/3 or 2/3 of a beat)."""
    from qagen.augment.hardset import piece_to_midi

    for piece in [p for p in plan_hard_set(n=40) if p.meter == "6/8"][:4]:
        pm, _ = piece_to_midi(piece)
        eighth = 60.0 / piece.tempo_bpm / 3
        pos = [n.start / eighth for n in pm.instruments[2].notes]
        assert all(abs(x - round(x)) < 1e-3 for x in pos)
        assert any(round(x) % 3 for x in pos)


def test_split_is_by_name_and_gives_two_halves() -> None:
    names = [p.name for p in plan_hard_set(n=48)]
    splits = Counter(split_of(n) for n in names)
    assert set(splits) == {"dev", "test"} and min(splits.values()) >= 15
    # Pinned: a changed hash would move tuned-on clips into the reported half.
    assert [split_of(n) for n in ("noise_white", "noise_pink", "hard000_34_straight_major_63",
                                  "hard001_44_hat16_major_158")] == ["dev", "test", "dev", "dev"]


def test_noise_clips_are_audible_and_bounded() -> None:
    for i, kind in enumerate(NOISE_KINDS):
        y = noise_clip(kind, seed=i, duration_s=2.0)
        assert y.dtype == np.float32 and len(y) == 88200
        assert 0.3 < float(np.max(np.abs(y))) <= 0.5
    with pytest.raises(ValueError, match="unknown noise kind"):
        noise_clip("thunder", seed=0)


def test_every_real_recording_says_whether_it_is_music() -> None:
    assert all("music" in known for known in REAL_RECORDINGS.values())
    assert [r for r, k in REAL_RECORDINGS.items() if not k["music"]] == [
        "librosa/glacier-bay-humpback.hq.ogg", "librosa/5703-47212-0000.hq.ogg"]


def test_guitarset_jams_truth() -> None:
    jams = SHARED / "realaudio" / "guitarset" / "03_BN3-119-G_solo.jams"
    if not jams.is_file():
        pytest.skip(f"{jams} not present")
    truth = _jams_truth(jams)
    assert truth["tempo_bpm"] == pytest.approx(119, abs=1)
    assert parse_key(truth["key"]) == parse_key("G major")
    assert truth["chords"] and truth["beats"] == sorted(truth["beats"])


@pytest.mark.skipif(MISSING is not None and "pretty_midi" in (MISSING or ""),
                    reason="needs pretty_midi")
def test_midi_truth_is_consistent() -> None:
    from qagen.augment.hardset import piece_to_midi

    for piece in plan_hard_set(n=14)[:14]:
        pm, truth = piece_to_midi(piece)
        nb = piece.beats_per_bar
        assert len(truth["beats"]) == nb * len(truth["downbeats"])
        assert truth["downbeats"] == truth["beats"][::nb]
        assert np.allclose(np.diff(truth["beats"]), 60.0 / piece.tempo_bpm, atol=1e-3)
        assert all(parse_chord(c["label"]) for c in truth["chords"])
        tonic, mode = parse_key(piece.key)
        assert parse_chord(truth["chords"][-1]["label"]) == (
            tonic, "maj" if mode == "major" else "min")
        drums = [i for i in pm.instruments if i.is_drum]
        assert bool(drums) == (piece.feel != "none")


@pytest.mark.slow
@needs_render
def test_rendered_hard_clips_through_augment(tmp_path: Path) -> None:
    """Three hard clips, rendered and measured: fast 4/4 with 16th hats, a minor 3/4, noise."""
    from qagen.audio import write_audio
    from qagen.augment.evaluate import score_features
    from qagen.augment.extract import decide_features, measure_clip
    from qagen.augment.hardset import render_piece
    from qagen.augment.models import MadmomModels
    from qagen.config import AugmentConfig
    from qagen.records import Clip

    plan = plan_hard_set()
    chosen = [next(p for p in plan if p.feel == "hat16" and p.meter == "4/4"
                   and p.tempo_bpm >= 150),
              next(p for p in plan if p.meter == "3/4" and p.mode != "major"
                   and p.feel == "straight")]
    models, config = MadmomModels(), AugmentConfig()
    truth, features = [], {}
    items = [(p.name, *render_piece(p)) for p in chosen]
    items.append(("noise_pink", noise_clip("pink", seed=1), None))
    for name, y, t in items:
        write_audio(tmp_path / f"{name}.flac", y, sr=44100)
        clip = Clip(clip_id=Clip.make_id("audiofolder", f"{name}.flac", 0.0, None),
                    source="audiofolder", source_id=f"{name}.flac", audio_path=f"{name}.flac",
                    start_s=0.0, end_s=None)
        m = measure_clip(clip, root=tmp_path, models=models, config=config)
        features[clip.clip_id] = decide_features(m, clip=clip, config=config, versions={})
        piece = next((p for p in chosen if p.name == name), None)
        truth.append({"clip_id": clip.clip_id, "name": name, "music": piece is not None}
                     | ({} if piece is None else {
                         "tempo_bpm": piece.tempo_bpm, "key": piece.key,
                         "beats_per_bar": piece.beats_per_bar, **t}))
    scores = score_features(truth, features)
    detail = json.dumps(scores.per_clip, indent=1)
    assert scores.clips_scored == 3, detail
    assert scores.music_accuracy == 1.0 and scores.nonmusic_withheld == 1.0, detail
    assert scores.tempo_acc2 == 1.0 and scores.tempo_acc1 >= 0.5, detail
    assert scores.key_weighted >= 0.5 and scores.chords_majmin >= 0.8, detail
    assert scores.downbeat_f >= 0.8, detail


def test_an_unrelated_audiofolder_is_never_deleted(tmp_path: Path) -> None:
    from qagen.augment.hardset import write_hard_set
    from qagen.errors import ConfigError

    (tmp_path / "audiofolder").mkdir()
    (tmp_path / "audiofolder" / "mine.wav").write_bytes(b"RIFF")
    with pytest.raises(ConfigError, match="not a hard set written here"):
        write_hard_set(tmp_path, n=1)
    assert (tmp_path / "audiofolder" / "mine.wav").is_file()
