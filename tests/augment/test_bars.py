"""The bar-level rules: the chords' bar period decides 6/8 and half/double time."""

import numpy as np
import pytest

from qagen.augment.bars import harmonic_period, metrical_reading, regrid_beats
from qagen.augment.tempo import decide_tempo

LATE_S = 0.1  # the chord recogniser reports changes about this late


def grid(bpm: float, n: int) -> list[float]:
    return [round(k * 60.0 / bpm, 4) for k in range(n)]


def changes_every(beats: list[float], period: int, *, phase: int = 0) -> list[float]:
    return [t + LATE_S for i, t in enumerate(beats) if i % period == phase and i > 0]


def test_6_8_tracked_in_eighths_has_a_period_of_six() -> None:
    # 6/8 at 58 dotted-quarter BPM: the tracker counts eighths (174 BPM) in threes.
    beats = grid(174.0, 60)
    period, phase, strength = harmonic_period(beats, changes_every(beats, 6))
    assert (period, phase) == (6, 0)
    assert strength > 0.9
    assert metrical_reading(3, period) == (pytest.approx(1 / 3), 2, "6/8")


def test_3_4_with_chords_every_bar_keeps_its_period() -> None:
    beats = grid(150.0, 60)
    period, _, _ = harmonic_period(beats, changes_every(beats, 3))
    assert period == 3
    assert metrical_reading(3, period) is None


@pytest.mark.parametrize(("triplets", "duplets", "reading"), [
    (-0.15, 0.4, (2.0, 4, "4/4")),  # half-time 4/4: hats divide the felt beat in two
    (0.35, -0.1, (1.0, 2, "6/8")),  # 6/8 tracked at the dotted quarter: beats divide in three
])
def test_bars_of_two_tracker_beats(triplets: float, duplets: float,
                                   reading: tuple[float, int, str]) -> None:
    beats = grid(83.0, 40)
    period, _, _ = harmonic_period(beats, changes_every(beats, 2, phase=1))
    assert period == 2
    assert metrical_reading(4, period, triplets=triplets, duplets=duplets) == reading


def test_a_tracker_at_double_time_sees_a_period_of_eight() -> None:
    beats = grid(144.0, 64)
    period, phase, _ = harmonic_period(beats, changes_every(beats, 8, phase=3))
    assert (period, phase) == (8, 3)
    # Two-bar harmonic rhythm is as common as double time: the tempo is left to the rest.
    assert metrical_reading(4, period) is None


def test_too_few_or_scattered_changes_say_nothing() -> None:
    beats = grid(120.0, 40)
    assert harmonic_period(beats, [1.0, 3.0])[0] is None
    rng = np.random.default_rng(0)
    scattered = sorted(rng.uniform(0.5, 19.0, 12).tolist())
    assert harmonic_period(beats, scattered)[0] is None


def test_regrid_to_dotted_quarters_and_to_double_time() -> None:
    beats = grid(180.0, 12)
    dq, down = regrid_beats(beats, factor=1 / 3, period=6, phase=0)
    assert dq == [beats[i] for i in (0, 3, 6, 9)]
    assert down == [beats[i] for i in (0, 6)]
    doubled, down2 = regrid_beats(beats[:4], factor=2.0, period=2, phase=1)
    assert len(doubled) == 7
    assert doubled[1] == pytest.approx((beats[0] + beats[1]) / 2, abs=1e-3)
    assert down2 == pytest.approx([beats[1], beats[3]], abs=1e-3)


def test_the_chords_outvote_estimators_that_all_count_half_time() -> None:
    # Measured shape of a half-time 4/4 at 167 BPM: TCN, tracker and librosa all say ~83.
    tempi = np.array([[83.8, 0.6], [41.9, 0.2], [166.0, 0.1]])
    plain = decide_tempo(tempi, beats_bpm=83.3, librosa_bpm=83.4)
    with_chords = decide_tempo(tempi, beats_bpm=83.3, librosa_bpm=83.4, harmonic_bpm=166.7,
                               harmonic_strength=0.97)
    assert plain.bpm == pytest.approx(83.8, abs=0.5)
    assert with_chords.bpm == pytest.approx(166.0, rel=0.04)
    # The other level stays among the alternatives, and the confidence shows the doubt.
    assert any(abs(b - 83.5) < 2 for b, _ in with_chords.alternatives)
    assert with_chords.confidence < plain.confidence


def test_a_level_chosen_from_the_chords_leaves_the_other_level_a_share() -> None:
    from qagen.augment.tempo import LEVEL_DOUBT, with_level_doubt

    # 6/8 at 58: chosen dotted quarter, the tracker counted eighths (176 BPM).
    tempi = np.array([[57.6, 0.7], [174.0, 0.2]])
    chosen = decide_tempo(tempi, beats_bpm=176.5, librosa_bpm=172.3, harmonic_bpm=58.8,
                          harmonic_strength=0.98)
    hedged = with_level_doubt(chosen, 176.5)
    assert hedged.bpm == chosen.bpm
    weights = dict(hedged.alternatives)
    assert weights[176.47 if 176.47 in weights else 176.5] >= LEVEL_DOUBT - 1e-6
    assert hedged.confidence == pytest.approx(weights[hedged.bpm])
    assert hedged.confidence <= 1 - LEVEL_DOUBT + 1e-6
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(("dotted", "beat", "reading"), [
    (0.84, 0.08, (pytest.approx(2 / 3), 2, "6/8")),  # 6/8 tracked in quarter notes (hemiola)
    (0.66, 0.64, (pytest.approx(2 / 3), 2, "6/8")),  # swung 6/8: the dotted level still wins
    (-0.14, 0.94, None),  # 3/4: the beat repeats, 1.5 beats does not
    (0.2, 0.05, None),  # too weak to move the level
])
def test_a_hemiola_is_read_as_6_8_from_the_beat_activation(
        dotted: float, beat: float, reading: tuple | None) -> None:
    assert metrical_reading(3, 3, dotted=dotted, beat=beat) == reading
    # A tracker that counted eighths (period 6) is read as such, whatever the activation.
    assert metrical_reading(3, 6, dotted=0.5, beat=0.0) == (pytest.approx(1 / 3), 2, "6/8")


def test_two_eighth_periodicity_counts_as_triple_division_off_the_grid() -> None:
    # 6/8 at 100 dotted-quarter BPM: 3× is off the profile grid (0.0), two eighths repeat.
    assert metrical_reading(4, 2, triplets=0.0, duplets=-0.22, pairs=0.5) == (1.0, 2, "6/8")
    assert metrical_reading(4, 2, triplets=-0.18, duplets=0.55, pairs=-0.17) == (
        2.0, 4, "4/4")


def test_chords_every_three_beats_of_a_four_beat_tracker_bar_mean_3_4() -> None:
    assert metrical_reading(4, 3) == (1.0, 3, "3/4")


def test_regrid_a_hemiola_to_dotted_quarters() -> None:
    beats = grid(120.0, 13)  # quarter notes of a 6/8 at 80 dotted-quarter BPM
    dq, down = regrid_beats(beats, factor=2 / 3, period=3, phase=1)
    assert down == [beats[i] for i in (1, 4, 7, 10)]
    assert dq[0] == beats[1]  # the first bar line (index -0.5 lies before the audio)
    assert beats[1] in dq and beats[4] in dq
    assert np.allclose(np.diff(dq), 0.75, atol=1e-3)  # 1.5 × 0.5 s


def test_harmonic_phase_at_a_given_period() -> None:
    from qagen.augment.bars import harmonic_phase

    beats = grid(120.0, 30)
    assert harmonic_phase(beats, changes_every(beats, 3, phase=2), period=3)[0] == 2
    assert harmonic_phase(beats, [], period=3) == (0, 0.0)


def test_a_hemiola_on_the_off_eighths_gets_bar_lines_between_tracker_beats() -> None:
    from qagen.augment.bars import harmonic_phase

    # Tracker beats (two eighths) sit one eighth (0.25 s) after the bar lines at 0, 1.5, 3 …
    beats = [round(0.25 + 0.5 * k, 4) for k in range(24)]
    bar_lines = [1.5 * k for k in range(1, 8)]
    phase, strength = harmonic_phase(beats, [t + LATE_S for t in bar_lines], period=3,
                                     resolution=0.5)
    assert phase == pytest.approx(2.5) and strength > 0.9
    dq, down = regrid_beats(beats, factor=2 / 3, period=3, phase=phase)
    assert down[:3] == pytest.approx([1.5, 3.0, 4.5], abs=1e-3)
    assert dq[:3] == pytest.approx([0.75, 1.5, 2.25], abs=1e-3)
