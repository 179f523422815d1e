"""Bar phase from the harmony: chords change on downbeats far more often than between them.

Why: the downbeat tracker finds the beats reliably but, in steady 4/4 with a kick on 1 and 3,
can lock onto beat 3 as the "one" — every downbeat then lies half a bar off (downbeat F = 0
on such clips of the hard set). Where the chords change is independent evidence of where
bars start: the phase that puts the most chord changes on downbeats wins, if clearly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def chord_change_times(chords: Sequence[tuple[float, float, str]]) -> list[float]:
    """Times where the recognised chord changes to another chord (no-chord gaps ignored)."""
    out = []
    prev = None
    for start, _, label in chords:
        if label == "N":
            continue
        if prev is not None and label != prev:
            out.append(float(start))
        prev = label
    return out


def align_bar_phase(
    beats: Sequence[tuple[float, int]], change_times: Sequence[float], *,
    min_changes: int = 3, margin: float = 1.5, min_beat_s: float = 0.5,
) -> list[tuple[float, int]]:
    """Relabel beat positions so that chord changes fall on downbeats, when they clearly do.

    Parameters
    ----------
    beats
        (time s, position in bar) from the downbeat tracker, position 1 = downbeat.
    change_times
        Chord change times (s).
    min_changes, margin
        The best phase must hold at least ``min_changes`` changes on its downbeats and
        ``margin`` times as many as the tracker's own phase; otherwise nothing changes.
    min_beat_s
        Only beats at least this long are judged: the chord recogniser reports a change
        0.1–0.4 s late, more than a beat apart at fast tempi (measured on the hard set).

    Returns
    -------
    list[tuple[float, int]]
        The beats, positions shifted by the winning phase (unchanged if none wins).
    """
    if len(beats) < 4 or not change_times:
        return list(beats)
    meter = max(p for _, p in beats)
    if meter < 2:
        return list(beats)
    times = np.asarray([t for t, _ in beats])
    pos = np.asarray([p for _, p in beats])
    beat_s = float(np.median(np.diff(times)))
    if beat_s < min_beat_s:
        return list(beats)
    counts = np.zeros(meter)
    for c in change_times:
        # The beat this change belongs to: at most 0.1 beat before it, 0.4 beat after.
        lag = c - times
        near = np.flatnonzero((lag >= -0.1 * beat_s) & (lag <= 0.4 * beat_s))
        if near.size:
            i = int(near[np.argmin(np.abs(lag[near]))])
            counts[(pos[i] - 1) % meter] += 1  # the shift that makes this beat a downbeat
    best = int(np.argmax(counts))
    if best == 0 or counts[best] < min_changes or counts[best] < margin * max(counts[0], 1):
        return list(beats)
    return [(float(t), int((p - 1 - best) % meter) + 1) for t, p in zip(times, pos, strict=True)]


#: How late the chord recogniser reports a change (median over the hard set's dev half, s).
CHORD_LATENCY_S = 0.11
#: Harmonic periods tried, in tracker beats (2: bars of two beats ... 8: two bars of four).
HARMONIC_PERIODS = (2, 3, 4, 6, 8)


def harmonic_period(
    beat_times: Sequence[float], change_times: Sequence[float], *, min_changes: int = 4,
    min_strength: float = 0.7, latency_s: float = CHORD_LATENCY_S,
) -> tuple[int | None, int, float]:
    """How many tracker beats one harmonic bar spans: the bar length the chords imply.

    Why: the downbeat tracker only knows bars of 3 or 4 of *its* beats, so it cannot see
    6/8 (two dotted-quarter beats of three eighths) nor a tempo tracked at half or double
    the notated beat. Chords change on bar lines; the period (in tracker beats) at which
    the changes fall on one phase — 6 for 6/8 tracked in eighths, 2 for a bar tracked at
    half time — says which level the bar really has (8, two bars, is reported but not
    acted on: see :func:`metrical_reading`).

    Each change, moved back by the recogniser's latency, gets a fractional beat index
    (interpolated between tracker beats); its phase at period P is index mod P. The
    period is the longest P whose phases cluster (mean resultant length ≥
    ``min_strength``); a longer period that merely repeats a shorter one is not chosen
    because its phases split between two clusters.

    Returns
    -------
    tuple[int | None, int, float]
        (period in beats or None when there are too few changes or none cluster, the beat
        index (mod period) where harmonic bars start, the cluster's strength 0..1).
    """
    times = np.asarray(beat_times, dtype=np.float64)
    if times.size < 8 or len(change_times) < min_changes:
        return None, 0, 0.0
    shifted = np.asarray(change_times, dtype=np.float64) - latency_s
    inside = (shifted >= times[0]) & (shifted <= times[-1])
    if int(inside.sum()) < min_changes:
        return None, 0, 0.0
    idx = np.interp(shifted[inside], times, np.arange(times.size, dtype=np.float64))
    best: tuple[int | None, int, float] = (None, 0, 0.0)
    for period in HARMONIC_PERIODS:
        phase, strength = _phase_at(idx, period)
        if strength >= min_strength:
            best = (period, phase, strength)
    return best


def _phase_at(idx: np.ndarray, period: int, resolution: float = 1.0) -> tuple[float, float]:
    vec = np.exp(2j * np.pi * idx / period).mean()
    steps = round(float(np.angle(vec)) / (2 * np.pi) * period / resolution)
    phase = (steps * resolution) % period
    return (int(phase) if resolution == 1.0 else phase), round(float(abs(vec)), 4)


def harmonic_phase(
    beat_times: Sequence[float], change_times: Sequence[float], *, period: int,
    latency_s: float = CHORD_LATENCY_S, resolution: float = 1.0,
) -> tuple[float, float]:
    """(phase, strength) of the chord changes at a given period in tracker beats.

    For a bar length known from other evidence (a hemiola): where its bar lines fall, even
    when the changes are too few or too loose for :func:`harmonic_period` to name a period.
    ``resolution`` 0.5 allows bar lines halfway between tracker beats: a tracker counting a
    6/8 hemiola (two eighths a beat) may sit on the off eighths. (0, 0.0) without changes
    inside the tracked beats.
    """
    times = np.asarray(beat_times, dtype=np.float64)
    shifted = np.asarray(change_times, dtype=np.float64) - latency_s
    shifted = shifted[(shifted >= times[0]) & (shifted <= times[-1])] if times.size else shifted
    if times.size < 2 or shifted.size == 0:
        return 0, 0.0
    idx = np.interp(shifted, times, np.arange(times.size, dtype=np.float64))
    return _phase_at(idx, period, resolution)


def metrical_reading(
    tracker_meter: int, period: int | None, *, triplets: float = 0.0, duplets: float = 0.0,
    pairs: float = 0.0, min_triplets: float = 0.15, dotted: float = 0.0, beat: float = 0.0,
    min_dotted: float = 0.25,
) -> tuple[float, int, str] | None:
    """What a harmonic period means for the notated beat, given the tracker's bar length.

    Returns (factor on the tracker's tempo, beats per bar at that tempo, time signature),
    or None when the chords add nothing to the tracker's own reading. Bars of 3 or 4 beats
    (2 dotted-quarter beats in 6/8) are taken as the notated level — the convention of the
    hard set's truth — so a harmonic bar of 2 tracker beats means the tracker counted half
    time — unless the beat divides in three: the onsets repeat at 3× the tracker's tempo
    (``triplets``; off the profile's grid above ~99 BPM) or at 1.5× (``pairs``, two
    eighths) clearly (≥ ``min_triplets``) and more than at 2× (``duplets``). Then the
    tracker's beat is the dotted quarter of 6/8 (dev half: 0.30–0.56 in 6/8 with drums or
    a compound melody, ≤ -0.12 in every half-time 4/4; a sparse 6/8 and a drumless 4/4 at
    double tempo both sit near 0 and stay half time). Chords every three beats of a
    four-beat tracker bar mean bars of three.

    A beat activation that repeats at 1.5 tracker beats (``dotted``) more than at one
    (``beat``) is 6/8 counted in quarter notes, a hemiola (two eighths a beat, three a bar,
    whatever bar length the tracker chose): the real beat is 1.5 tracker beats, the dotted
    quarter. On the dev half every such 6/8 clip had ``dotted`` 0.38–0.92; no 3/4 or 4/4
    clip, nor any demo clip, came within 0.1 of its ``beat`` with ``dotted`` ≥ 0.2. A
    period of 6 (the tracker counted eighths) is read first.
    """
    if period == 6:  # six tracker beats a bar: compound if it grouped them in threes
        return (1 / 3, 2, "6/8") if tracker_meter == 3 else (0.5, 3, "3/4")
    if tracker_meter in (3, 4) and dotted >= min_dotted and dotted > beat:
        return 2 / 3, 2, "6/8"
    if period == 2 and tracker_meter == 4:
        compound = max(triplets, pairs)
        if compound >= min_triplets and compound > duplets:
            return 1.0, 2, "6/8"
        return 2.0, 4, "4/4"
    if period == 3 and tracker_meter == 4:  # chords every three beats: bars of three
        return 1.0, 3, "3/4"
    # A period of 8 (chords every two bars of the tracker) is left alone: it is as often a
    # two-bar harmonic rhythm at the right tempo (a real country song) as double time.
    return None


def regrid_beats(
    beat_times: Sequence[float], *, factor: float, period: int, phase: float,
) -> tuple[list[float], list[float]]:
    """Beats and downbeats at ``factor`` × the tracker's tempo, bars starting at ``phase``.

    ``period`` and ``phase`` are in tracker beats (from :func:`harmonic_period`): bar lines
    fall on tracker beats whose index ≡ phase (mod period). A factor of 2 inserts the
    midpoint of every tracker beat; 1/2 and 1/3 keep every 2nd / 3rd beat from the bar line;
    2/3 (a hemiola read as 6/8) puts beats every 1.5 tracker beats from the bar line,
    interpolated between tracker beats; a fractional ``phase`` puts bar lines between them.
    """
    times = np.asarray(beat_times, dtype=np.float64)
    idx = np.arange(times.size)
    if phase == int(phase):
        downbeats = times[(idx - phase) % period == 0]
    else:  # bar lines between tracker beats (a hemiola on the off eighths)
        downbeats = np.interp(np.arange(phase % period, times.size - 1 + 1e-9, period), idx,
                              times)
    step = 1 / factor
    if factor >= 2:
        mids = (times[:-1] + times[1:]) / 2
        beats = np.sort(np.concatenate([times, mids]))
    elif abs(step - round(step)) < 1e-6:
        beats = times[(idx - phase) % round(step) == 0]
    else:
        first = phase - step * math.floor(phase / step)
        beats = np.interp(np.arange(first, times.size - 1 + 1e-9, step), idx, times)
    return ([round(float(t), 3) for t in beats], [round(float(t), 3) for t in downbeats])
