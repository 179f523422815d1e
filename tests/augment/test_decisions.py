"""The pure decision rules: chord spelling, key re-ranking, tempo octave choice, loudness."""

import numpy as np
import pytest

from qagen.augment.chords import chord_segments, spell_chord
from qagen.augment.key import KEY_LABELS, decide_key
from qagen.augment.loudness import estimate_loudness
from qagen.augment.tempo import decide_tempo, relation
from qagen.records.features import ChordSegment, TempoAgreement


@pytest.mark.parametrize(
    ("label", "key", "spelled"),
    [("A#:maj", "Bb major", "Bb major"), ("A#:maj", "F minor", "Bb major"),
     ("A#:maj", "B major", "A# major"), ("C#:min", "E major", "C# minor"),
     ("C#:maj", "Db major", "Db major"), ("D#:maj", "C minor", "Eb major"),
     ("G#:maj", "A minor", "Ab major"), ("F#:min", "A major", "F# minor"),
     ("N", "C major", "no chord"), ("G:maj", None, "G major")],
)
def test_chords_are_spelled_for_the_key(label: str, key: str | None, spelled: str) -> None:
    assert spell_chord(label, key=key) == spelled


def test_chord_segments_merge_repeats_and_blips() -> None:
    raw = [(0.0, 2.0, "C:maj"), (2.0, 2.1, "C:min"), (2.1, 4.0, "C:maj"), (4.0, 6.0, "G:maj")]
    segs = chord_segments(raw, key="C major", min_duration_s=0.25)
    assert [(s.start_s, s.end_s, s.label) for s in segs] == [(0.0, 4.0, "C:maj"),
                                                             (4.0, 6.0, "G:maj")]


def probs_for(**p: float) -> np.ndarray:
    out = np.full(24, 1e-3)
    for name, value in p.items():
        out[KEY_LABELS.index(name.replace("_", " ").replace("sharp", "#"))] = value
    return out / out.sum()


def segs(*labels: str, bar: float = 2.0) -> list[ChordSegment]:
    return [ChordSegment(start_s=i * bar, end_s=(i + 1) * bar, label=lab, spelled="")
            for i, lab in enumerate(labels)]


def test_minor_progression_overrules_a_relative_major_cnn() -> None:
    # CNN leans C major; i–iv–V–i in A minor (E major = harmonic-minor dominant) says A minor.
    probs = probs_for(C_major=0.6, A_minor=0.35)
    decision = decide_key(probs, segs("A:min", "D:min", "E:maj", "A:min") * 2)
    assert (decision.key, decision.cnn_key) == ("A minor", "C major")
    assert 0.5 < decision.confidence <= 1.0


def test_mediant_error_of_the_cnn_is_corrected() -> None:
    # Measured on the demo corpus: CNN said D major for F# minor i–VI–iv–V.
    probs = probs_for(D_major=0.539, Fsharp_major=0.396, Fsharp_minor=0.016)
    decision = decide_key(probs, segs("F#:min", "D:maj", "B:min", "C#:maj") * 2 + segs("F#:min"))
    assert decision.key == "F# minor"


def test_without_chords_the_cnn_stands() -> None:
    probs = probs_for(E_major=0.7, Csharp_minor=0.2)
    assert decide_key(probs, []).key == "E major"
    assert decide_key(probs, segs("N")).key == "E major"


def test_a_confident_cnn_is_not_overturned_by_ambiguous_chords() -> None:
    probs = probs_for(G_major=0.9)
    assert decide_key(probs, segs("G:maj", "C:maj", "D:maj", "G:maj")).key == "G major"


def test_tempo_octave_follows_the_beat_tracker_and_librosa() -> None:
    tcn = np.array([[75.1, 0.9], [150.2, 0.05]])  # TCN's half-time error
    d = decide_tempo(tcn, beats_bpm=150.0, librosa_bpm=152.0)
    assert d.bpm == pytest.approx(150.0, rel=0.02)
    assert d.agreement is TempoAgreement.octave
    d = decide_tempo(np.array([[98.0, 0.9]]), beats_bpm=98.5, librosa_bpm=97.0)
    assert d.bpm == pytest.approx(98.0, rel=0.01) and d.agreement is TempoAgreement.agree
    assert d.confidence is not None and d.confidence > 0.5


def test_tempo_degenerate_inputs() -> None:
    assert decide_tempo(np.empty((0, 2)), beats_bpm=None, librosa_bpm=None).bpm is None
    single = decide_tempo(np.empty((0, 2)), beats_bpm=120.0, librosa_bpm=None)
    assert single.bpm == 120.0 and single.agreement is TempoAgreement.single
    assert relation(120.0, 61.0) is TempoAgreement.octave
    assert relation(120.0, 97.0) is TempoAgreement.disagree


def test_loudness_and_silence_gate() -> None:
    sr = 44100
    t = np.arange(sr * 3) / sr
    tone = estimate_loudness((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr=sr)
    assert tone.lufs == pytest.approx(-9.8, abs=0.5) and not tone.is_silent
    assert tone.peak_dbfs == pytest.approx(-6.02, abs=0.01)
    assert estimate_loudness(np.zeros(sr * 3, np.float32), sr=sr).is_silent
    hiss = estimate_loudness((1e-5 * np.random.default_rng(0).standard_normal(sr * 3)
                              ).astype(np.float32), sr=sr)
    assert hiss.is_silent and hiss.lufs is None


def test_fast_music_keeps_the_beat_trackers_tempo_over_a_half_time_tcn() -> None:
    # Measured on the hard set (4/4, 200 BPM, 8th hats): the TCN head and librosa both said
    # ~100, the downbeat tracker's beat period 200, and the onsets repeat every 0.3 s.
    from qagen.augment.musicness import periodicity_profile

    onsets = np.zeros(2000)
    onsets[::30] = 1.0  # 100 fps: an onset every beat at 200 BPM
    onsets[::60] = 1.5  # accents every other beat, as a backbeat gives
    profile = periodicity_profile(onsets, fps=100.0)
    tcn = np.array([[100.3, 0.96], [67.9, 0.02], [49.9, 0.02]])
    d = decide_tempo(tcn, beats_bpm=200.0, librosa_bpm=99.4, onset_profile=profile)
    assert d.bpm == pytest.approx(200.0, rel=0.02)
    assert d.agreement is TempoAgreement.octave
    bpms = [b for b, _ in d.alternatives]
    assert bpms[0] == d.bpm and any(abs(b - 100.0) < 2 for b in bpms)  # the hedge is kept
    assert sum(w for _, w in d.alternatives) == pytest.approx(1.0, abs=1e-3)


def test_natural_minor_heard_as_its_relative_major_is_corrected() -> None:
    # Measured on the hard set: the CNN said D major (p=0.91) for B minor i–iv–v–i.
    probs = probs_for(D_major=0.91, B_minor=0.02, A_major=0.03)
    decision = decide_key(probs, segs("B:min", "E:min", "F#:min", "B:min") * 3)
    assert (decision.key, decision.cnn_key) == ("B minor", "D major")


def test_key_confidence_is_lower_when_the_chords_are_ambiguous() -> None:
    probs = probs_for(C_major=0.5, A_minor=0.4)
    clear = decide_key(probs, segs("C:maj", "F:maj", "G:maj", "C:maj") * 2)
    ambiguous = decide_key(probs, segs("F:maj", "G:maj") * 4)
    assert clear.key == "C major"
    assert clear.confidence > ambiguous.confidence


def test_a_natural_minor_loop_beats_its_relative_major() -> None:
    # Measured shape on the hard set: i–VI–III–VII loops (no V, no leading tone) in G minor,
    # the CNN confident of Bb major; the tonic is the chord heard most often.
    probs = probs_for(Bb_major=0.9, G_minor=0.015)
    chords = segs("G:min", "D#:maj", "A#:maj", "F:maj") * 3 + segs("G:min")
    decision = decide_key(probs, chords)
    assert (decision.key, decision.cnn_key) == ("G minor", "Bb major")


def test_late_chord_changes_snap_to_the_beat_they_belong_to() -> None:
    from qagen.augment.chords import snap_chord_changes

    beats = [0.0, 0.35, 0.7, 1.05, 1.4, 1.75, 2.1]
    raw = [(0.0, 1.52, "C:maj"), (1.52, 1.9, "F:maj"), (1.9, 2.5, "G:maj")]
    snapped = snap_chord_changes(raw, beats, latency_s=0.11)
    # 1.52 - 0.11 = 1.41 → the beat at 1.4; 1.9 - 0.11 = 1.79 → 1.75; the end is kept.
    assert snapped == [(0.0, 1.4, "C:maj"), (1.4, 1.75, "F:maj"), (1.75, 2.5, "G:maj")]
    far = snap_chord_changes([(0.0, 1.0, "C:maj"), (1.0, 2.0, "D:min")], [0.0, 0.5, 1.5],
                             latency_s=0.11, window_s=0.2)
    assert far[1][0] == 1.0  # 0.89 is 0.39 s from any beat: left where it was reported
    assert snap_chord_changes(raw, [], latency_s=0.11) == raw
