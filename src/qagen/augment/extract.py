"""Per-clip feature extraction in two steps.

1. :func:`measure_clip` — decode, loudness, the networks and librosa: expensive, cached as a
   ``Measurement`` keyed by audio content + window + analysis parameters + versions.
2. :func:`decide_features` — tempo octave, meter, key and chord spelling decided from the
   measurement: cheap and pure, so improving a decision rule never re-runs a network.

Input problems (unreadable, empty, too short, silent) become a status with a readable error:
the clip stays accounted for and the run goes on.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from qagen.audio import load_audio
from qagen.augment.bars import (
    CHORD_LATENCY_S,
    align_bar_phase,
    chord_change_times,
    harmonic_period,
    harmonic_phase,
    metrical_reading,
    regrid_beats,
)
from qagen.augment.chords import chord_segments, snap_chord_changes
from qagen.augment.confidence import TempoCalibration, tempo_evidence
from qagen.augment.key import KEY_LABELS, decide_key
from qagen.augment.loudness import estimate_loudness
from qagen.augment.models import FPS, MadmomModels
from qagen.augment.musicness import (
    ANALYSIS_SR,
    decide_music,
    estimate_pitch_grid,
    periodicity_profile,
    profile_at,
    pulse_strength,
)
from qagen.augment.onset import HOP, autocorrelation_tempo, onset_strength
from qagen.augment.tempo import (
    MAX_BPM,
    TempoDecision,
    decide_tempo,
    with_calibrated_confidence,
    with_level_doubt,
)
from qagen.config import AugmentConfig
from qagen.paths import safe_join
from qagen.records import Clip, ClipFeatures, FeatureStatus
from qagen.records.features import TempoAgreement, TempoAlternative

#: ``ClipFeatures.withheld_reason`` when a clip is judged not music.
NOT_MUSIC = "not_music"

#: Bump when a Measurement changes for the same audio, parameters and package versions.
MEASURE_VERSION = "2"  # 2: beat/onset periodicity profiles, pitch grid


class Measurement(BaseModel):
    """Everything measured on one clip's audio before any decision (the cache entry)."""

    model_config = ConfigDict(frozen=True)
    status: FeatureStatus
    error: str | None = None
    duration_s: float | None = None
    native_sr: int | None = None
    native_channels: int | None = None
    loudness_lufs: float | None = None
    peak_dbfs: float | None = None
    is_silent: bool | None = None
    tcn_tempi: list[tuple[float, float]] = Field(default_factory=list)
    beats: list[tuple[float, int]] = Field(default_factory=list)
    meter_logprobs: dict[int, float] = Field(default_factory=dict)
    key_probs: list[float] = Field(default_factory=list)
    chords: list[tuple[float, float, str]] = Field(default_factory=list)
    librosa_bpm: float | None = None
    beat_acf: list[float] = Field(
        default_factory=list, description="TCN beat activation autocorrelation on PROFILE_BPM.")
    onset_acf: list[float] = Field(
        default_factory=list, description="librosa onset envelope autocorrelation, same grid.")
    pitch_grid: float | None = None
    seconds: float | None = None


def librosa_tempo(y22: np.ndarray) -> tuple[float | None, list[float]]:
    """librosa's autocorrelation tempo on the onset envelope of 22.05 kHz audio (the
    algorithm of ``librosa.feature.tempo``, re-stated in :mod:`qagen.augment.onset`), and the
    envelope's periodicity profile (hi-hats and other fast onsets show at double tempo)."""
    env = onset_strength(y22, sr=ANALYSIS_SR)
    if not np.any(env > 0):
        return None, []
    bpm = autocorrelation_tempo(env, sr=ANALYSIS_SR)
    profile = periodicity_profile(env, fps=ANALYSIS_SR / HOP)
    return (bpm if bpm is not None and math.isfinite(bpm) and bpm > 0 else None), profile


def measure_clip(
    clip: Clip, *, root: Path, models: MadmomModels | None, config: AugmentConfig
) -> Measurement:
    """Decode one clip window and run every estimator on it.

    ``models`` may be None only for inputs that never reach the networks (tests of the
    failure paths); it is required for audible audio.
    """
    import soundfile as sf
    import soxr

    t0 = time.perf_counter()

    def done(status: FeatureStatus, **fields: object) -> Measurement:
        return Measurement(status=status, seconds=round(time.perf_counter() - t0, 3), **fields)

    try:
        path = safe_join(root, clip.audio_path)
        info = sf.info(str(path))
        y, _ = load_audio(path, sr=config.sr, start_s=clip.start_s, end_s=clip.end_s)
        if not np.all(np.isfinite(y)):
            raise ValueError("decoded audio contains NaN or infinity")
    except (OSError, RuntimeError, ValueError) as exc:  # LibsndfileError is a RuntimeError
        return done(FeatureStatus.decode_error, error=f"{type(exc).__name__}: {exc}")
    facts: dict[str, object] = {"native_sr": int(info.samplerate),
                                "native_channels": int(info.channels),
                                "duration_s": round(len(y) / config.sr, 3)}
    expected_s = (clip.end_s if clip.end_s is not None else info.duration) - clip.start_s
    if len(y) / config.sr < 0.98 * expected_s - 0.1:
        # A cut-off download: the header promises more than the file holds. Keep what decodes.
        facts["error"] = (f"truncated: decoded {len(y) / config.sr:.2f} s of the "
                          f"{expected_s:.2f} s the file or clip window promises")
    if config.max_duration_s is not None:
        y = y[: int(config.max_duration_s * config.sr)]
        facts["duration_s"] = round(len(y) / config.sr, 3)
    if len(y) == 0:
        facts.pop("error", None)
        return done(FeatureStatus.empty, error="no samples in the clip window", **facts)
    loud = estimate_loudness(y, sr=config.sr)
    facts |= {"loudness_lufs": loud.lufs, "peak_dbfs": loud.peak_dbfs,
              "is_silent": loud.is_silent}
    if len(y) < config.min_duration_s * config.sr:
        facts.pop("error", None)
        return done(FeatureStatus.too_short, **facts,
                    error=f"{len(y) / config.sr:.2f} s is shorter than the "
                    f"{config.min_duration_s} s the analysers need")
    if loud.is_silent:
        facts.pop("error", None)
        return done(FeatureStatus.silent, **facts,
                    error=f"silent (peak {loud.peak_dbfs} dBFS, loudness {loud.lufs} LUFS)")
    if models is None:
        raise ValueError("measure_clip needs the madmom models for audible audio")
    raw = models.analyse(y)
    # The onset envelope and the pitch grid both read 22.05 kHz: resample once.
    y22 = (soxr.resample(y, config.sr, ANALYSIS_SR) if config.sr != ANALYSIS_SR
           else np.asarray(y, dtype=np.float32))
    lib_bpm, onset_acf = librosa_tempo(y22) if config.use_librosa_tempo else (None, [])
    return done(
        FeatureStatus.ok, **facts,
        tcn_tempi=[(round(float(b), 3), round(float(s), 5)) for b, s in raw.tcn_tempi[:8]],
        beats=[(round(float(t), 3), int(p)) for t, p in raw.beats],
        meter_logprobs=raw.meter_logprobs,
        key_probs=[round(float(p), 6) for p in raw.key_probs], chords=raw.chords,
        librosa_bpm=lib_bpm, onset_acf=onset_acf,
        beat_acf=periodicity_profile(raw.tcn_beat_act, fps=FPS),
        pitch_grid=estimate_pitch_grid(y22, sr=ANALYSIS_SR),
    )


def _meter(m: Measurement) -> tuple[int | None, float | None]:
    if not m.beats:
        return None, None
    meter = max(p for _, p in m.beats)  # the bar phase does not change the meter
    best = m.meter_logprobs.get(meter)
    others = [lp for k, lp in m.meter_logprobs.items() if k != meter]
    if best is None or not others:
        return meter, None
    # HMM log-probability margin between the meters, squashed to (0.5, 1).
    return meter, round(1.0 / (1.0 + math.exp(-(best - max(others)) / 10.0)), 4)


@dataclass(frozen=True)
class _HarmonicBar:
    """What the chord changes say about the bar, in tracker beats.

    ``period``/``phase``/``strength``: how many tracker beats a harmonic bar spans, where it
    starts and how clearly (:func:`harmonic_period`); ``reading``: the (tempo factor, meter,
    time signature) the chords and the onset/beat periodicities imply, or None
    (:func:`metrical_reading`).
    """

    reading: tuple[float, int, str] | None
    period: int | None
    phase: float
    strength: float

    def bpm(self, beats_bpm: float | None) -> float | None:
        """The tempo at the harmonic reading's beat level (None without a reading)."""
        return beats_bpm * self.reading[0] if self.reading and beats_bpm else None


def _harmonic_bar(m: Measurement, *, beat_times: np.ndarray, beats_bpm: float | None,
                  changes: list[float]) -> _HarmonicBar:
    period, phase, strength = harmonic_period(beat_times, changes)
    if not (m.beats and beats_bpm):
        return _HarmonicBar(reading=None, period=period, phase=phase, strength=strength)
    tracker_meter = max(p for _, p in m.beats)
    onsets, acts = m.onset_acf or [], m.beat_acf or []
    reading = metrical_reading(
        tracker_meter, period,
        triplets=profile_at(onsets, 3 * beats_bpm), duplets=profile_at(onsets, 2 * beats_bpm),
        pairs=profile_at(onsets, 1.5 * beats_bpm),
        dotted=profile_at(acts, beats_bpm * 2 / 3), beat=profile_at(acts, beats_bpm))
    if reading and reading[0] == 2 / 3:
        # A hemiola: bars of three tracker beats, placed where the chords change, to the
        # half beat (the tracker may sit on the off eighths); without the chords' own
        # period of 3, the activation's contrast between the levels is the strength.
        if period != 3:
            strength = round(min(1.0, profile_at(acts, beats_bpm * 2 / 3)
                                 - profile_at(acts, beats_bpm)), 4)
        period = 3
        phase, _ = harmonic_phase(beat_times, changes, period=3, resolution=0.5)
    return _HarmonicBar(reading=reading, period=period, phase=phase, strength=strength)


def _decide_tempo(
    m: Measurement, tempi: np.ndarray, *, beats_bpm: float | None, tcn_bpm: float | None,
    harmony: _HarmonicBar, config: AugmentConfig, calibration: TempoCalibration | None,
) -> tuple[TempoDecision, float | None, bool]:
    """(decision, raw confidence before calibration, whether it sits at the harmonic level).

    Without ``config.tempo_octave_decision`` the TCN's strongest peak is taken as is.
    """
    if not config.tempo_octave_decision:
        raw = TempoDecision(bpm=tcn_bpm, confidence=float(tempi[0, 1]) if len(tempi) else None,
                            agreement=TempoAgreement.single)
        return raw, None, False
    reading, harmonic_bpm = harmony.reading, harmony.bpm(beats_bpm)
    tempo = decide_tempo(tempi, beats_bpm=beats_bpm, librosa_bpm=m.librosa_bpm,
                         onset_profile=m.onset_acf, harmonic_bpm=harmonic_bpm,
                         harmonic_strength=harmony.strength)
    at_harmonic_level = bool(reading and harmonic_bpm and tempo.bpm
                             and abs(tempo.bpm - harmonic_bpm) <= 0.04 * harmonic_bpm)
    if at_harmonic_level and reading and beats_bpm:
        # The other metrical level keeps a real share: the tracker's own (eighths in
        # 6/8 tracked in eighths, the half-time beat), else the eighths of a 6/8 beat.
        other = beats_bpm if reading[0] != 1.0 else 3 * beats_bpm
        if reading[0] != 1.0 or (reading[2] == "6/8" and other <= MAX_BPM):
            tempo = with_level_doubt(tempo, other)
    raw_conf = tempo.confidence
    if calibration and calibration.bins and raw_conf is not None and tempo.bpm:
        evidence = tempo_evidence(tempo.bpm, raw_conf, [tcn_bpm, beats_bpm, m.librosa_bpm])
        tempo = with_calibrated_confidence(tempo, calibration.apply(evidence))
    return tempo, raw_conf, at_harmonic_level


@dataclass(frozen=True)
class _Bars:
    beats: list[float]
    downbeats: list[float]
    meter: int | None
    confidence: float | None
    time_signature: str | None


def _bar_grid(m: Measurement, *, beat_times: np.ndarray, changes: list[float],
              harmony: _HarmonicBar, at_harmonic_level: bool, raw_conf: float | None) -> _Bars:
    """Beats, downbeats and meter: the tracker's, unless the chords say otherwise."""
    meter, meter_conf = _meter(m)
    time_signature = f"{meter}/4" if meter else None
    period, phase = harmony.period, harmony.phase
    if harmony.reading and period and at_harmonic_level:
        # The chords moved the beat to another level (6/8, or half/double time): beats,
        # downbeats and meter follow it.
        factor, meter, time_signature = harmony.reading
        meter_conf = round(min(harmony.strength, raw_conf or 1.0), 4)
        beat_list, downbeats = regrid_beats(beat_times, factor=factor, period=period,
                                            phase=phase)
    elif period is not None and period == meter:
        # The chords keep the tracker's bar length: their phase (latency-corrected, beats
        # of any length) places the bar lines, also where the tracker took beat 3 for 1.
        beat_list, downbeats = regrid_beats(beat_times, factor=1.0, period=period,
                                            phase=phase)
    else:
        beat_list = [t for t, _ in m.beats]
        downbeats = [t for t, p in align_bar_phase(m.beats, changes) if p == 1]
    return _Bars(beats=beat_list, downbeats=downbeats, meter=meter, confidence=meter_conf,
                 time_signature=time_signature)


def decide_features(
    m: Measurement, *, clip: Clip, config: AugmentConfig, versions: dict[str, str],
    tempo_calibration: TempoCalibration | None = None,
) -> ClipFeatures:
    """Decide music or not, tempo octave, meter, key and chord spelling (pure, cheap).

    ``tempo_calibration`` (``confidence.load_tempo_calibration()``, as the stage passes it)
    turns the tempo decision's raw confidence into P(right); None keeps the raw share.

    A clip judged not music (speech, animal sounds, noise) keeps its loudness, the music
    evidence and the raw estimator trail, but its tempo, beats, meter, key and chords are
    withheld (None / empty, ``withheld_reason="not_music"``) so no question asks for them.
    """
    base = {"clip_id": clip.clip_id, "source": clip.source, "audio_sha256": clip.audio_sha256,
            "extractor_versions": versions, "status": m.status, "error": m.error,
            "duration_s": m.duration_s, "native_sr": m.native_sr,
            "native_channels": m.native_channels, "loudness_lufs": m.loudness_lufs,
            "peak_dbfs": m.peak_dbfs, "is_silent": m.is_silent, "seconds": m.seconds}
    if m.status is not FeatureStatus.ok:
        return ClipFeatures(**base)
    music = decide_music(m.pitch_grid, pulse_strength(m.beat_acf) if m.beat_acf else None)
    if m.pitch_grid is not None or m.beat_acf:  # measured before MEASURE_VERSION 2: unknown
        base |= {"is_music": music.is_music, "music_confidence": music.confidence,
                 "music_evidence": music.evidence}
    tempi = np.asarray(m.tcn_tempi, dtype=np.float64).reshape(-1, 2)
    beat_times = np.asarray([t for t, _ in m.beats], dtype=np.float64)
    beats_bpm = float(60.0 / np.median(np.diff(beat_times))) if len(beat_times) > 2 else None
    tcn_bpm = float(tempi[0, 0]) if len(tempi) else None
    changes = chord_change_times(m.chords)
    harmony = _harmonic_bar(m, beat_times=beat_times, beats_bpm=beats_bpm, changes=changes)
    tempo, raw_conf, at_harmonic_level = _decide_tempo(
        m, tempi, beats_bpm=beats_bpm, tcn_bpm=tcn_bpm, harmony=harmony, config=config,
        calibration=tempo_calibration)
    bars = _bar_grid(m, beat_times=beat_times, changes=changes, harmony=harmony,
                     at_harmonic_level=at_harmonic_level, raw_conf=raw_conf)
    chords = snap_chord_changes(m.chords, [t for t, _ in m.beats], latency_s=CHORD_LATENCY_S)
    provisional = chord_segments(chords, key=None, min_duration_s=config.chord_min_s)
    key = decide_key(np.asarray(m.key_probs), provisional if config.key_from_chords else [])
    trail = {
        "tempo_tcn_bpm": None if tcn_bpm is None else round(tcn_bpm, 2),
        "tempo_beats_bpm": None if beats_bpm is None else round(beats_bpm, 2),
        "tempo_librosa_bpm": None if m.librosa_bpm is None else round(m.librosa_bpm, 2),
        "tempo_peaks_bpm": [b for b, _ in m.tcn_tempi],
        "tempo_peak_strengths": [s for _, s in m.tcn_tempi],
        "key_madmom": key.cnn_key, "key_probabilities": m.key_probs,
    }
    if base.get("is_music") is False:
        return ClipFeatures(**base, **trail, withheld_reason=NOT_MUSIC)
    return ClipFeatures(
        **base, **trail,
        tempo_alternatives=[TempoAlternative(bpm=b, weight=w) for b, w in tempo.alternatives],
        tempo_bpm=tempo.bpm, tempo_confidence=tempo.confidence, tempo_agreement=tempo.agreement,
        beats=bars.beats, downbeats=bars.downbeats,
        meter=bars.meter, meter_confidence=bars.confidence, time_signature=bars.time_signature,
        key=key.key, key_confidence=key.confidence,
        chords=chord_segments(chords, key=key.key, min_duration_s=config.chord_min_s),
    )


__all__ = ["KEY_LABELS", "MEASURE_VERSION", "NOT_MUSIC", "Measurement", "decide_features",
           "measure_clip"]
