"""The demo corpus plan: coverage, determinism, and labels that are true of the audio."""

from __future__ import annotations

import pytest

from qagen.demo.plan import corpus_plan, demo_clip
from qagen.demo.synth import PITCH_NAMES, TIMBRES, ClipSpec

SOURCES = {"musiccaps": (6, 10.0, 10.0), "mtt": (6, 29.0, 29.2), "fma": (6, 30.0, 30.0),
           "musicnet": (4, 30.0, 30.0), "audiofolder": (4, 12.0, 20.0)}
#: MagnaTagATune tags (the 50 most used plus the instrument tags the demo needs).
MTT_TAGS = {
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast",
    "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male",
    "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman",
    "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man", "classic", "choir", "voice",
    "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello", "no voice",
    "weird", "country", "metal", "female voice", "choral", "organ", "bass", "folk",
}
FMA_GENRES = {"Blues", "Classical", "Country", "Easy Listening", "Electronic", "Experimental",
              "Folk", "Hip-Hop", "Instrumental", "International", "Jazz", "Old-Time / Historic",
              "Pop", "Rock", "Soul-RnB", "Spoken"}


@pytest.fixture(scope="module")
def specs() -> list[ClipSpec]:
    return [s for group in corpus_plan().values() for s in group]


def test_each_source_gets_its_clips_with_its_durations() -> None:
    plan = corpus_plan()
    assert set(plan) == set(SOURCES)
    for source, (count, lo, hi) in SOURCES.items():
        assert len(plan[source]) == count, source
        assert all(lo <= s.duration_s <= hi for s in plan[source]), source
        assert all(s.name.startswith(f"{source}-") for s in plan[source])


def test_plan_is_deterministic_and_seed_only_moves_the_noise() -> None:
    assert corpus_plan() == corpus_plan()
    other = corpus_plan(seed=5)
    for a, b in zip(corpus_plan().values(), other.values(), strict=True):
        for x, y in zip(a, b, strict=True):
            assert x.model_copy(update={"seed": y.seed}) == y and x.seed != y.seed


def test_coverage_of_keys_tempi_meters_and_timbres(specs: list[ClipSpec]) -> None:
    assert len({s.name for s in specs}) == len(specs) == 26
    assert {s.key for s in specs} == {f"{t} {m}" for t in PITCH_NAMES
                                      for m in ("major", "minor")}
    tempi = [s.tempo_bpm for s in specs]
    assert min(tempi) == 60 and max(tempi) == 180
    assert sum(t > 130 for t in tempi) >= 3 and sum(t < 80 for t in tempi) >= 3
    assert sum(s.beats_per_bar == 3 for s in specs) >= 5
    assert sum(not s.has_drums for s in specs) >= 5
    assert {t for s in specs for t in s.timbres} == set(TIMBRES)


def test_progressions_make_the_key_unambiguous(specs: list[ClipSpec]) -> None:
    for s in specs:
        tonic = "I" if s.mode == "major" else "i"
        assert s.progression[0] == tonic, s.name
        if s.mode == "minor":  # harmonic-minor dominant, never a natural-minor v
            assert "V" in s.progression and "v" not in s.progression, s.name


def test_musicnet_clips_are_classical_without_drums() -> None:
    for s in corpus_plan()["musicnet"]:
        assert not s.has_drums and set(s.timbres) <= {"strings", "piano", "organ"}


def _short(spec: ClipSpec) -> ClipSpec:
    return spec.model_copy(update={"duration_s": 3.0})


@pytest.mark.parametrize("source", list(SOURCES))
def test_demo_clip_labels_are_true_of_the_spec(source: str) -> None:
    for spec in corpus_plan()[source]:
        clip = demo_clip(_short(spec), source=source, split="test", sr=22050)
        assert clip.name == spec.name and clip.split == "test" and clip.sr == 22050
        assert clip.truth.key == spec.key and clip.duration_s == pytest.approx(3.0)
        sentences = [x for x in clip.caption.split(". ") if x]
        assert 2 <= len(sentences) <= 5, clip.caption
        assert ("waltz feel" in clip.caption) == (spec.beats_per_bar == 3)
        assert ("no drums" in clip.caption) == (not spec.has_drums)
        assert ("drums" in clip.instruments) == spec.has_drums
        for name in clip.instruments:
            word = {"strings": "string section"}.get(name, name)
            assert word in clip.caption.lower(), (word, clip.caption)
        assert set(clip.tags) <= MTT_TAGS, set(clip.tags) - MTT_TAGS
        assert "no vocals" in clip.tags and "no vocals" in clip.aspects
        assert set(clip.genres) <= FMA_GENRES and clip.genres
        assert clip.moods and all(m in clip.caption for m in clip.moods)
        if spec.mode == "minor":
            assert set(clip.moods) & {"sad", "melancholic", "dark"}
        assert "Demo" in clip.title and spec.key in clip.title and clip.artist
        if source == "musicnet":
            assert clip.composer and clip.composition and clip.ensemble
        else:
            assert not (clip.composer or clip.composition or clip.ensemble)


def test_musicnet_ensembles_match_the_instruments() -> None:
    ensembles = {s.name: demo_clip(_short(s), source="musicnet", split="train").ensemble
                 for s in corpus_plan()["musicnet"]}
    assert ensembles == {
        "musicnet-string-quartet": "String Quartet", "musicnet-piano-minuet": "Solo Piano",
        "musicnet-piano-trio": "Piano Trio", "musicnet-organ-chorale": "Solo Organ",
    }


def test_tempo_words_follow_the_tempo(specs: list[ClipSpec]) -> None:
    for s in specs:
        clip = demo_clip(_short(s), source="fma", split="train", sr=8000)
        if s.tempo_bpm < 85:
            assert "slow" in clip.tags and "slow tempo" in clip.aspects
        elif s.tempo_bpm >= 130:
            assert "fast" in clip.tags and "fast tempo" in clip.aspects
        else:
            assert "medium tempo" in clip.aspects


def test_a_sampled_plan_covers_every_key_both_meters_and_the_tempo_range() -> None:
    plan = corpus_plan(clips=96, sources=["musiccaps", "mtt"])
    specs = [s for group in plan.values() for s in group]
    assert [len(plan["musiccaps"]), len(plan["mtt"])] == [48, 48]
    assert len({s.name for s in specs}) == 96
    assert all(s.duration_s == 10.0 for s in plan["musiccaps"])
    assert all(s.duration_s == 29.1 for s in plan["mtt"])
    # Every block of 24 consecutive clips (in draw order) holds each key once.
    ordered = sorted(specs, key=lambda s: s.name.rsplit("gen", 1)[1])
    for start in range(0, 96, 24):
        assert len({s.key for s in ordered[start: start + 24]}) == 24
    tempi = [s.tempo_bpm for s in specs]
    assert 60 <= min(tempi) < 70 and 180 < max(tempi) <= 200
    assert 20 <= sum(s.beats_per_bar == 3 for s in specs) <= 60
    assert 0 < sum(s.has_drums for s in specs) < 96


def test_a_sampled_plan_is_seeded() -> None:
    a = corpus_plan(clips=30, sources=["fma"])
    assert a == corpus_plan(clips=30, sources=["fma"])
    b = corpus_plan(clips=30, seed=1, sources=["fma"])
    assert [s.tempo_bpm for s in a["fma"]] != [s.tempo_bpm for s in b["fma"]]


def test_a_sampled_plan_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="≥ 1"):
        corpus_plan(clips=0, sources=["fma"])
    with pytest.raises(ValueError, match="no demo source"):
        corpus_plan(clips=3, sources=["nosuch"])
