"""The demo synthesiser: its truth is exact, and the audio physically holds what it says."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from pydantic import ValidationError

from qagen.demo.synth import GM_PROGRAMS, ClipSpec, chord_label, render_clip
from qagen.records.demo import DemoTruth

SR = 44100
KEY_RE = re.compile(r"^(C|C#|D|Eb|E|F|F#|G|Ab|A|Bb|B) (major|minor)$")
HARTE_RE = re.compile(r"^(C|C#|D|D#|E|F|F#|G|G#|A|A#|B):(maj|min)$")
Rendered = tuple[ClipSpec, np.ndarray, DemoTruth]


def spec(**over: object) -> ClipSpec:
    fields: dict[str, object] = dict(
        name="t", tempo_bpm=120.0, beats_per_bar=4, tonic="C", mode="major",
        progression=["I", "IV", "V", "I"], timbres=["piano", "bass"], has_drums=True,
        duration_s=8.0, seed=0,
    )
    fields.update(over)
    return ClipSpec.model_validate(fields)


@pytest.fixture(scope="module")
def drums_clip() -> Rendered:
    s = spec(duration_s=10.0)
    y, truth = render_clip(s, sr=SR)
    return s, y, truth


@pytest.fixture(scope="module")
def quiet_clip() -> Rendered:
    """Drum-less, 3/4, minor: the hardest case for pulse and chroma."""
    s = spec(name="q", tempo_bpm=90.0, beats_per_bar=3, tonic="A", mode="minor",
             progression=["i", "iv", "V", "i"], timbres=["piano", "strings"],
             has_drums=False, duration_s=12.0, seed=3)
    y, truth = render_clip(s, sr=SR)
    return s, y, truth


@pytest.fixture(scope="module")
def strings_clip() -> Rendered:
    s = spec(name="s", tempo_bpm=88.0, tonic="Eb", progression=["I", "IV", "ii", "V"],
             timbres=["strings"], has_drums=False, duration_s=12.0, seed=5)
    y, truth = render_clip(s, sr=SR)
    return s, y, truth


# ---------------------------------------------------------------------- audio and truth


def test_audio_is_float32_mono_normalised_and_audible(drums_clip: Rendered) -> None:
    s, y, _ = drums_clip
    assert y.dtype == np.float32 and y.ndim == 1
    assert len(y) == round(s.duration_s * SR)
    peak = float(np.max(np.abs(y)))
    assert 0.79 <= peak <= 0.81
    assert np.all(np.isfinite(y))
    assert float(np.sqrt(np.mean(y**2))) > 0.02


def test_other_sample_rates_give_the_same_truth() -> None:
    s = spec(duration_s=3.0)
    y, truth = render_clip(s, sr=22050)
    assert len(y) == 3 * 22050
    assert truth == render_clip(s, sr=SR)[1]


@pytest.mark.parametrize(("tempo", "bpb"), [(120.0, 4), (90.0, 3), (61.5, 4), (177.0, 3)])
def test_beats_are_exactly_periodic_and_downbeats_every_bar(tempo: float, bpb: int) -> None:
    s = spec(tempo_bpm=tempo, beats_per_bar=bpb, duration_s=9.3)
    _, truth = render_clip(s, sr=SR)
    beats = np.array(truth.beats)
    assert beats[0] == 0.0 and beats[-1] < s.duration_s
    assert s.duration_s - beats[-1] <= 60.0 / tempo
    np.testing.assert_allclose(np.diff(beats), 60.0 / tempo, rtol=0, atol=1e-9)
    assert truth.downbeats == truth.beats[::bpb]
    assert (truth.tempo_bpm, truth.beats_per_bar) == (tempo, bpb)


def test_chords_cover_the_clip_contiguously(drums_clip: Rendered) -> None:
    s, _, truth = drums_clip
    spans = truth.chords
    assert spans[0].start_s == 0.0 and spans[-1].end_s == pytest.approx(s.duration_s)
    for a, b in itertools.pairwise(spans):
        assert a.end_s == pytest.approx(b.start_s) and a.label != b.label
    assert all(HARTE_RE.match(c.label) for c in spans)
    bar_s = 60.0 / s.tempo_bpm * s.beats_per_bar
    for c in spans:  # chords change on bar lines only
        assert (c.start_s / bar_s) == pytest.approx(round(c.start_s / bar_s))


@pytest.mark.parametrize(("tonic", "mode", "progression", "labels"), [
    ("C", "major", ["I", "IV", "V", "I"], ["C:maj", "F:maj", "G:maj", "C:maj"]),
    ("A", "minor", ["i", "iv", "V", "i"], ["A:min", "D:min", "E:maj", "A:min"]),
    ("Bb", "major", ["I", "ii", "V", "vi"], ["A#:maj", "C:min", "F:maj", "G:min"]),
    ("F#", "minor", ["i", "VI", "VII", "III"], ["F#:min", "D:maj", "E:maj", "A:maj"]),
])
def test_chord_labels_are_harte_with_sharps(tonic: str, mode: str, progression: list[str],
                                            labels: list[str]) -> None:
    s = spec(tonic=tonic, mode=mode, progression=progression, duration_s=8.0)
    assert s.chord_labels == labels
    assert [chord_label(n, tonic=tonic, mode=mode) for n in progression] == labels
    _, truth = render_clip(s, sr=SR)
    merged = [lab for i, lab in enumerate(labels) if i == 0 or lab != labels[i - 1]]
    assert [c.label for c in truth.chords] == merged


def test_key_is_written_as_mir_eval_writes_it() -> None:
    for tonic, mode in [("Bb", "major"), ("F#", "minor"), ("Eb", "minor"), ("C", "major")]:
        _, truth = render_clip(spec(tonic=tonic, mode=mode, duration_s=1.0), sr=SR)
        assert truth.key == f"{tonic} {mode}" and KEY_RE.match(truth.key)


def test_same_spec_renders_identical_audio_and_seed_only_changes_noise() -> None:
    s = spec(timbres=["guitar", "strings", "synth", "bass"], duration_s=4.0)
    y1, t1 = render_clip(s, sr=SR)
    y2, t2 = render_clip(s, sr=SR)
    assert np.array_equal(y1, y2) and t1 == t2
    y3, t3 = render_clip(s.model_copy(update={"seed": 7}), sr=SR)
    assert t3 == t1 and not np.array_equal(y1, y3)


def test_notes_are_true_to_the_score(drums_clip: Rendered) -> None:
    s, _, truth = drums_clip
    beat_s = 60.0 / s.tempo_bpm
    programs = {GM_PROGRAMS[t] for t in s.timbres}
    assert truth.notes and {n.program for n in truth.notes} == programs
    for n in truth.notes:
        assert 0.0 <= n.start_s < n.end_s <= s.duration_s
        assert n.start_s == pytest.approx(n.start_beat * beat_s)
        assert n.duration_beats > 0
    # Each downbeat has the chord root in the bass.
    roots = {"C:maj": 0, "F:maj": 5, "G:maj": 7}
    for span in truth.chords:
        bass = [n for n in truth.notes if n.program == GM_PROGRAMS["bass"]
                and n.start_s == pytest.approx(span.start_s)]
        assert len(bass) == 1 and bass[0].pitch % 12 == roots[span.label]
    # Chord tones only: every pitched note belongs to the chord sounding at its onset.
    for n in truth.notes:
        span = next(c for c in truth.chords if c.start_s <= n.start_s < c.end_s)
        root = roots[span.label]
        assert (n.pitch - root) % 12 in (0, 4, 7)


def test_notes_are_cut_at_the_end_of_the_clip() -> None:
    s = spec(tempo_bpm=100.0, duration_s=5.1)
    _, truth = render_clip(s, sr=SR)
    assert max(n.end_s for n in truth.notes) == pytest.approx(5.1)
    assert max(n.start_s for n in truth.notes) < 5.1


@pytest.mark.parametrize(("field", "value", "match"), [
    ("timbres", ["kazoo"], "unknown timbres"),
    ("timbres", ["bass"], "chord instrument"),
    ("progression", ["I", "viio"], "Roman numeral"),
    ("progression", [], "at least 1"),
    ("tonic", "Db", "tonic"),
    ("name", "../x", "slug"),
    ("beats_per_bar", 5, "beats_per_bar"),
])
def test_bad_specs_are_refused(field: str, value: object, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        spec(**{field: value})


# ---------------------------------------------------------------------- physical checks


def _onset_strength(y: np.ndarray, *, sr: int, hop: int) -> np.ndarray:
    """Spectral flux: half-wave rectified rise of the log magnitude spectrum per frame."""
    n = 2048
    frames = np.lib.stride_tricks.sliding_window_view(y, n)[::hop] * np.hanning(n)
    mag = np.log1p(100 * np.abs(np.fft.rfft(frames, axis=1)))
    flux = np.maximum(np.diff(mag, axis=0), 0).sum(axis=1)
    return flux - flux.mean()


@pytest.mark.parametrize("which", ["drums_clip", "quiet_clip", "strings_clip"])
def test_onsets_repeat_at_the_beat_period(which: str, request: pytest.FixtureRequest) -> None:
    s, y, _ = request.getfixturevalue(which)
    hop = 441  # 100 frames a second
    flux = _onset_strength(y, sr=SR, hop=hop)
    acf = np.correlate(flux, flux, mode="full")[len(flux) - 1 :]
    acf /= np.arange(len(flux), 0, -1)  # unbiased
    beat = 60.0 / s.tempo_bpm * SR / hop
    lag = round(beat)
    local = acf[lag - 3 : lag + 4]
    assert acf[lag] >= 0.9 * local.max()  # a peak at the beat period
    for ratio in (0.5, 2 / 3, 1.5):  # not at the half, two-thirds or 1.5 beat
        assert acf[lag] > acf[round(beat * ratio)]


def _pitch_class_profile(y: np.ndarray, *, sr: int) -> np.ndarray:
    """Magnitude summed per pitch class over 60–2000 Hz (FFT bins mapped to nearest semitone)."""
    n = 8192
    frames = np.lib.stride_tricks.sliding_window_view(y, n)[:: n // 2] * np.hanning(n)
    mag = np.abs(np.fft.rfft(frames, axis=1)).mean(axis=0)
    f = np.fft.rfftfreq(n, 1 / sr)
    band = (f >= 60) & (f <= 2000)
    pc = np.round(12 * np.log2(f[band] / 440.0) + 69).astype(int) % 12
    return np.bincount(pc, weights=mag[band], minlength=12)


@pytest.mark.parametrize("which", ["quiet_clip", "strings_clip"])
def test_each_chord_span_sounds_its_triad(which: str, request: pytest.FixtureRequest) -> None:
    _, y, truth = request.getfixturevalue(which)
    names = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
    for span in truth.chords:
        if span.end_s - span.start_s < 1.0:
            continue
        seg = y[int(span.start_s * SR) : int(span.end_s * SR)]
        profile = _pitch_class_profile(seg, sr=SR)
        root_name, quality = span.label.split(":")
        root = names.index(root_name)
        triad = {root, (root + (4 if quality == "maj" else 3)) % 12, (root + 7) % 12}
        top3 = set(np.argsort(profile)[-3:].tolist())
        assert top3 == triad, (span.label, [names[i] for i in sorted(top3)])
