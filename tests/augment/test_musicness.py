"""Music or not, the periodicity profiles, and what a not-music clip withholds."""

import numpy as np
import pytest

from qagen.augment.extract import NOT_MUSIC, Measurement, decide_features
from qagen.augment.musicness import (
    PROFILE_BPM,
    decide_music,
    estimate_pitch_grid,
    periodicity_profile,
    profile_at,
    pulse_strength,
)
from qagen.config import AugmentConfig
from qagen.records import Clip, FeatureStatus

SR = 44100


def harmonic_notes(pitches: list[int], *, note_s: float = 0.5, cents: float = 0.0) -> np.ndarray:
    """A melody of harmonic tones (6 partials) on the tempered grid, detuned by ``cents``."""
    t = np.arange(int(note_s * SR)) / SR
    out = []
    for p in pitches:
        f0 = 440.0 * 2 ** ((p - 69 + cents / 100) / 12)
        tone = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 7))
        out.append(tone * np.minimum(1.0, 20 * t) * np.exp(-t))
    y = np.concatenate(out)
    return (0.3 * y / np.max(np.abs(y))).astype(np.float32)


def test_pitch_grid_separates_tuned_notes_from_glides_and_noise() -> None:
    melody = harmonic_notes([60, 64, 67, 72, 67, 64, 60, 62, 65, 69] * 2)
    detuned = harmonic_notes([60, 64, 67, 72, 67, 64, 60, 62, 65, 69] * 2, cents=37.0)
    t = np.arange(10 * SR) / SR
    # A voice-like glide: f0 wanders 110–220 Hz, so its partials cross the grid.
    f0 = 160 + 50 * np.sin(2 * np.pi * 0.7 * t) + 20 * np.sin(2 * np.pi * 2.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    glide = sum(np.sin(k * phase) / k for k in range(1, 8)).astype(np.float32) * 0.2
    noise = (0.2 * np.random.default_rng(0).standard_normal(10 * SR)).astype(np.float32)
    grid = {name: estimate_pitch_grid(y, sr=SR) for name, y in
            [("melody", melody), ("detuned", detuned), ("glide", glide), ("noise", noise)]}
    assert grid["melody"] > 0.6 and grid["detuned"] > 0.6  # a global detuning costs nothing
    assert grid["glide"] < 0.3 and grid["noise"] < 0.15
    assert estimate_pitch_grid(np.zeros(1000, np.float32), sr=SR) is None


def test_periodicity_profile_peaks_at_the_pulse() -> None:
    fps = 100.0
    act = np.zeros(3000)
    act[:: int(fps * 60 / 120)] = 1.0  # a click every 0.5 s: 120 BPM
    profile = periodicity_profile(act, fps=fps)
    assert len(profile) == len(PROFILE_BPM)
    assert profile_at(profile, 120.0) > 0.9 and profile_at(profile, 60.0) > 0.9
    assert profile_at(profile, 180.0) < 0.2  # two thirds of the period: nothing there
    assert pulse_strength(profile) > 0.9
    assert periodicity_profile(np.ones(500), fps=fps) == [0.0] * len(PROFILE_BPM)
    assert profile_at([], 120.0) == 0.0 and profile_at(profile, 500.0) == 0.0


@pytest.mark.parametrize(
    ("grid", "pulse", "is_music"),
    [(0.8, 0.9, True),  # a band
     (0.75, 0.3, True),  # a rubato solo: tuned, no steady pulse
     (0.05, 0.85, True),  # a drum loop: no pitch, a steady pulse
     (0.12, 0.3, False),  # speech-like: neither
     (0.01, 0.19, False),  # white noise
     (None, None, False)],
)
def test_music_needs_tuned_partials_or_a_pulse(
    grid: float | None, pulse: float | None, is_music: bool
) -> None:
    d = decide_music(grid, pulse)
    assert d.is_music is is_music
    assert 0.5 <= d.confidence <= 1.0
    assert set(d.evidence) == {"pitch_grid", "pulse"}


def _clip() -> Clip:
    return Clip(clip_id=Clip.make_id("audiofolder", "a.wav", 0.0, None), source="audiofolder",
                source_id="a.wav", audio_path="a.wav", start_s=0.0, end_s=None)


def _measurement(*, pitch_grid: float, beat_acf: list[float]) -> Measurement:
    probs = [0.001] * 24
    probs[23] = 0.71  # the key CNN's "G# minor" on LibriSpeech
    return Measurement(
        status=FeatureStatus.ok, duration_s=10.0, loudness_lufs=-20.0, peak_dbfs=-3.0,
        is_silent=False, tcn_tempi=[(81.0, 0.6), (162.0, 0.3)],
        beats=[(0.5 * i, i % 4 + 1) for i in range(20)], meter_logprobs={3: -900.0, 4: -880.0},
        key_probs=probs, chords=[(0.0, 5.0, "G#:min"), (5.0, 10.0, "C#:min")],
        librosa_bpm=81.0, beat_acf=beat_acf, onset_acf=[], pitch_grid=pitch_grid)


def test_not_music_withholds_tempo_key_and_chords() -> None:
    flat = [0.1] * len(PROFILE_BPM)
    f = decide_features(_measurement(pitch_grid=0.1, beat_acf=flat), clip=_clip(),
                        config=AugmentConfig(), versions={})
    assert f.status is FeatureStatus.ok and f.is_music is False
    assert f.withheld_reason == NOT_MUSIC
    assert f.tempo_bpm is None and f.key is None and f.chords == [] and f.meter is None
    assert f.beats == [] and f.tempo_alternatives == []
    assert f.loudness_lufs == -20.0  # what is true of any sound stays
    assert f.key_madmom == "G# minor"  # the raw trail stays for re-scoring
    assert f.music_evidence == {"pitch_grid": 0.1, "pulse": 0.1}


def test_music_keeps_its_answers_and_tempo_alternatives() -> None:
    pulse = [0.9] * len(PROFILE_BPM)
    f = decide_features(_measurement(pitch_grid=0.8, beat_acf=pulse), clip=_clip(),
                        config=AugmentConfig(), versions={})
    assert f.is_music is True and f.withheld_reason is None
    assert f.tempo_bpm is not None and f.key is not None and f.chords
    assert f.tempo_alternatives and f.tempo_alternatives[0].bpm == f.tempo_bpm
    assert sum(a.weight for a in f.tempo_alternatives) == pytest.approx(1.0, abs=1e-3)


def test_measurements_from_before_the_music_decision_stay_undecided() -> None:
    old = _measurement(pitch_grid=0.8, beat_acf=[]).model_copy(update={"pitch_grid": None})
    f = decide_features(old, clip=_clip(), config=AugmentConfig(), versions={})
    assert f.is_music is None and f.tempo_bpm is not None


def test_bar_phase_follows_the_chord_changes() -> None:
    from qagen.augment.bars import align_bar_phase, chord_change_times

    # 4/4 at 80 BPM; the tracker called beat 3 the "one"; chords change every true bar,
    # reported 0.15 s late as the recogniser does.
    beats = [(0.75 * i, (i + 2) % 4 + 1) for i in range(32)]
    chords = [(3.0 * k + (0.15 if k else 0.0), 3.0 * (k + 1) + 0.15, "CFGA"[k % 4] + ":maj")
              for k in range(8)]
    changes = chord_change_times(chords)
    assert len(changes) == 7
    fixed = align_bar_phase(beats, changes)
    assert [t for t, p in fixed if p == 1] == [3.0 * k for k in range(8)]
    # Fast music (beats shorter than 0.5 s) and too few changes leave the tracker's phase.
    fast = [(0.3 * i, (i + 2) % 4 + 1) for i in range(32)]
    assert align_bar_phase(fast, [1.2 * k + 0.1 for k in range(1, 8)]) == fast
    assert align_bar_phase(beats, changes[:2]) == beats
