"""A harder evaluation set for augment: General-MIDI arrangements, noise and real recordings.

Why: the demo corpus is what augment was tuned on; scores on it say little about music it
does not resemble. This set renders arrangements through fluidsynth and a General-MIDI
soundfont at 60–200 BPM in 3/4, 4/4 and 6/8, with straight, 16th-hat, half-time, swing, sparse
or no drums, melody over held chords in major, natural minor and harmonic minor, a third as
22 kHz mp3. It adds noise clips (not music) and, when given, the real recordings of
``shared/realaudio`` with what is known of them. Everything is split into a **dev** half (for
tuning decision rules) and a **test** half (for reporting) by a hash of the clip's name, so
the split never depends on the order or number of clips.

Layout written (an AudioFolder, ``qagen ingest audiofolder OUT/audiofolder``)::

    OUT/audiofolder/{validation,test}/<name>.{flac,mp3,ogg,wav} + metadata.jsonl
    OUT/truth.jsonl     one row per clip: clip_id, name, split (dev|test), music, and what
                        is known: tempo_bpm, beats_per_bar, meter (3/4, 4/4, 6/8), key,
                        chords, beats, downbeats, feel, mode, programs

Truth conventions: tempo is the notated beat (the dotted quarter in 6/8, whose bars have two
beats); beats start at 0 s, where the first bar starts. Chords are Harte with sharps.

Needs the Debian packages ``fluidsynth`` and ``fluid-soundfont-gm`` and the PyPI package
``pretty_midi``; :func:`hardset_available` says whether they are present.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from qagen.errors import ConfigError, MissingDependencyError
from qagen.music import PITCH_CLASSES_SHARP

log = logging.getLogger(__name__)

HARDSET_VERSION = "2"  # 2: 160 pieces, 6/8 and fast tempi over-sampled, compound melodies
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SR = 44100
TRUTH_FILE = "truth.jsonl"
FEELS = ("straight", "hat16", "halftime", "swing", "sparse", "none")
MODES = ("major", "natural_minor", "harmonic_minor")
METERS = ("4/4", "3/4", "6/8")

_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_NATURAL_MINOR = (0, 2, 3, 5, 7, 8, 10)
_HARMONIC_MINOR = (0, 2, 3, 5, 7, 8, 11)
#: Progressions as (semitones above the tonic, quality) per bar; each starts and ends on I/i.
_PROGRESSIONS: dict[str, tuple[tuple[tuple[int, str], ...], ...]] = {
    "major": (
        ((0, "maj"), (5, "maj"), (7, "maj"), (0, "maj")),
        ((0, "maj"), (9, "min"), (5, "maj"), (7, "maj")),
        ((0, "maj"), (7, "maj"), (9, "min"), (5, "maj")),
        ((0, "maj"), (2, "min"), (7, "maj"), (0, "maj")),
        ((0, "maj"), (5, "maj"), (0, "maj"), (7, "maj")),
        ((0, "maj"), (4, "min"), (5, "maj"), (7, "maj")),
    ),
    "natural_minor": (
        ((0, "min"), (8, "maj"), (3, "maj"), (10, "maj")),
        ((0, "min"), (10, "maj"), (8, "maj"), (10, "maj")),
        ((0, "min"), (5, "min"), (10, "maj"), (3, "maj")),
        ((0, "min"), (5, "min"), (7, "min"), (0, "min")),
        ((0, "min"), (3, "maj"), (10, "maj"), (5, "min")),
    ),
    "harmonic_minor": (
        ((0, "min"), (5, "min"), (7, "maj"), (0, "min")),
        ((0, "min"), (8, "maj"), (7, "maj"), (0, "min")),
        ((0, "min"), (7, "maj"), (0, "min"), (7, "maj")),
        ((0, "min"), (5, "min"), (8, "maj"), (7, "maj")),
    ),
}
#: General MIDI programs (0-based) per role.
_CHORD_PROGRAMS = (0, 4, 19, 48, 24, 89, 16, 46)  # piano, e-piano, organ, strings, guitar, pad
_BASS_PROGRAMS = (32, 33, 34, 42, 43)
_MELODY_PROGRAMS = (73, 65, 56, 40, 11, 68, 0, 80)  # flute, sax, trumpet, violin, vibes, oboe
_KICK, _SNARE, _HAT, _RIDE, _RIM = 36, 38, 42, 51, 37


@dataclass(frozen=True)
class HardPiece:
    """The plan of one rendered clip."""

    name: str
    tempo_bpm: float
    meter: str
    feel: str
    mode: str
    tonic: int
    progression: tuple[tuple[int, str], ...]
    chord_program: int
    bass_program: int
    melody_program: int
    mp3: bool
    seed: int
    target_s: float = 20.0

    @property
    def beats_per_bar(self) -> int:
        return {"4/4": 4, "3/4": 3, "6/8": 2}[self.meter]

    @property
    def key(self) -> str:
        return f"{PITCH_CLASSES_SHARP[self.tonic]} {'major' if self.mode == 'major' else 'minor'}"


@dataclass
class HardClipTruth:
    """One truth row (before its clip id is known)."""

    name: str
    music: bool
    file_name: str
    split: str
    kind: str  # rendered | noise | real
    tempo_bpm: float | None = None
    beats_per_bar: int | None = None
    meter: str | None = None
    key: str | None = None
    chords: list[dict] | None = None
    beats: list[float] | None = None
    downbeats: list[float] | None = None
    extra: dict = field(default_factory=dict)


def split_of(name: str) -> str:
    """``dev`` or ``test`` from a hash of the name: stable whatever else is in the set."""
    return "dev" if hashlib.sha256(f"hardset:{name}".encode()).digest()[0] % 2 == 0 else "test"


def hardset_available() -> str | None:
    """None when the set can be rendered here, else what is missing (and how to get it)."""
    missing = []
    if shutil.which("fluidsynth") is None:
        missing.append("the fluidsynth program (apt-get install fluidsynth)")
    if not SOUNDFONT.is_file():
        missing.append(f"{SOUNDFONT} (apt-get install fluid-soundfont-gm)")
    try:
        import pretty_midi  # noqa: F401
    except ImportError:
        missing.append("pretty_midi (pip install pretty_midi)")
    return "; ".join(missing) or None


#: Meter per piece, cycled: 4/4 four in ten, 3/4 and 6/8 three in ten each. 6/8 (and its
#: tempo octave) is where augment errs most, so it is not left to one piece in seven.
_METER_CYCLE = ("4/4", "3/4", "6/8", "4/4", "6/8", "3/4", "4/4", "6/8", "4/4", "3/4")
#: Tempi are spread as 60 + 140·u^TEMPO_SKEW over u in [0, 1]: below 1 more pieces are fast
#: (130–200 BPM, where the tracker and the TCN disagree on the octave).
TEMPO_SKEW = 0.7


def plan_hard_set(*, n: int = 160, seed: int = 0) -> list[HardPiece]:
    """``n`` pieces covering every feel, meter and mode, tempi spread over 60–200 BPM.

    Why this many: with ~20 scored clips a half, one miss moved tempo accuracy by 0.045;
    160 pieces give ~80 a half, and 6/8 and fast tempi, the hard cases, are over-sampled.
    """
    rng = random.Random(seed)
    pieces = []
    tempi = 60.0 + 140.0 * np.linspace(0.0, 1.0, n) ** TEMPO_SKEW
    order = list(range(n))
    rng.shuffle(order)
    for i in range(n):
        meter = _METER_CYCLE[i % len(_METER_CYCLE)]
        feel = FEELS[(i + i // 6) % len(FEELS)]
        mode = MODES[(i // 2) % len(MODES)]
        tempo = float(round(tempi[order[i]]))
        if meter == "6/8":  # notated in dotted quarters: 40–100 beats a minute
            tempo = float(round(40 + (tempo - 60) * 60 / 140))
        pieces.append(HardPiece(
            name=f"hard{i:03d}_{meter.replace('/', '')}_{feel}_{mode}_{int(tempo)}",
            tempo_bpm=tempo, meter=meter, feel=feel, mode=mode, tonic=rng.randrange(12),
            progression=rng.choice(_PROGRESSIONS[mode]),
            chord_program=rng.choice(_CHORD_PROGRAMS), bass_program=rng.choice(_BASS_PROGRAMS),
            melody_program=rng.choice(_MELODY_PROGRAMS), mp3=i % 3 == 2, seed=rng.randrange(2**31),
        ))
    return pieces


def _scale(mode: str) -> tuple[int, ...]:
    return {"major": _MAJOR, "natural_minor": _NATURAL_MINOR,
            "harmonic_minor": _HARMONIC_MINOR}[mode]


def _drum_hits(piece: HardPiece, bar_start: float, beat_s: float,
               rng: random.Random) -> list[tuple[float, int, int]]:
    """(time s, drum note, velocity) of one bar in the piece's feel."""
    hits: list[tuple[float, int, int]] = []
    feel, meter = piece.feel, piece.meter
    if feel == "none":
        return hits
    if meter == "6/8":  # two dotted-quarter beats, six eighths
        eighth = beat_s / 3
        hits += [(bar_start, _KICK, 100), (bar_start + 3 * eighth, _SNARE, 90)]
        if feel != "sparse":
            hits += [(bar_start + k * eighth, _HAT, 60 + 15 * (k % 3 == 0)) for k in range(6)]
        return hits
    nb = piece.beats_per_bar
    if feel == "halftime":  # kick on 1, snare on 3 (4/4) or 3 (3/4): the bar feels half as fast
        hits += [(bar_start, _KICK, 105), (bar_start + 2 * beat_s, _SNARE, 100)]
        hits += [(bar_start + k * beat_s / 2, _HAT, 55) for k in range(2 * nb)]
        return hits
    if feel == "sparse":  # kick on 1, a rim click on the last beat, now and then a hat
        hits += [(bar_start, _KICK, 95), (bar_start + (nb - 1) * beat_s, _RIM, 70)]
        if rng.random() < 0.5:
            hits.append((bar_start + beat_s, _HAT, 50))
        return hits
    kicks = (0, 2) if nb == 4 else (0,)
    snares = (1, 3) if nb == 4 else (1, 2)
    hits += [(bar_start + k * beat_s, _KICK, 105) for k in kicks]
    hits += [(bar_start + k * beat_s, _SNARE, 95) for k in snares]
    if feel == "straight":
        hits += [(bar_start + k * beat_s / 2, _HAT, 70 - 15 * (k % 2)) for k in range(2 * nb)]
    elif feel == "hat16":
        hits += [(bar_start + k * beat_s / 4, _HAT, 65 - 10 * (k % 2)) for k in range(4 * nb)]
    elif feel == "swing":  # ride on every beat plus the swung "and" (2/3 of the beat)
        for k in range(nb):
            hits += [(bar_start + k * beat_s, _RIDE, 80),
                     (bar_start + (k + 2 / 3) * beat_s, _RIDE, 60)]
    return hits


#: Rhythms of one 6/8 beat in eighths: three eighths, quarter + eighth (the compound
#: "long-short"), a dotted quarter.
_COMPOUND_BEATS = ((1, 1, 1), (2, 1), (2, 1), (3,))


def _melody_slots(piece: HardPiece, bar_start: float, beat_s: float,
                  rng: random.Random) -> list[tuple[float, float]]:
    """(onset s, length s) of the melody's notes in one bar."""
    if piece.meter == "6/8":
        eighth = beat_s / 3
        slots = []
        for beat in range(piece.beats_per_bar):
            pos = 3 * beat
            for length in rng.choice(_COMPOUND_BEATS):
                slots.append((bar_start + pos * eighth, length * eighth))
                pos += length
        return slots
    sub = 2 if piece.tempo_bpm < 100 else 1
    return [(bar_start + k * beat_s / sub, beat_s / sub)
            for k in range(piece.beats_per_bar * sub)]


def piece_to_midi(piece: HardPiece):
    """The arrangement as a ``pretty_midi.PrettyMIDI`` plus its truth (beats, chords)."""
    import pretty_midi

    rng = random.Random(piece.seed)
    beat_s = 60.0 / piece.tempo_bpm
    nb = piece.beats_per_bar
    bar_s = nb * beat_s
    n_bars = max(4, round(piece.target_s / bar_s / 4) * 4)
    pm = pretty_midi.PrettyMIDI(initial_tempo=piece.tempo_bpm)
    chords_i = pretty_midi.Instrument(program=piece.chord_program)
    bass_i = pretty_midi.Instrument(program=piece.bass_program)
    mel_i = pretty_midi.Instrument(program=piece.melody_program)
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    scale = _scale(piece.mode)
    chords: list[dict] = []
    melody_pitch = 60 + 12 + piece.tonic if piece.tonic < 5 else 60 + piece.tonic
    for bar in range(n_bars):
        start = bar * bar_s
        degree, quality = piece.progression[bar % len(piece.progression)]
        if bar == n_bars - 1:  # the last bar rests on the tonic
            degree, quality = 0, "maj" if piece.mode == "major" else "min"
        root = (piece.tonic + degree) % 12
        third = 4 if quality == "maj" else 3
        chords.append({"start_s": round(start, 4), "end_s": round(start + bar_s, 4),
                       "label": f"{PITCH_CLASSES_SHARP[root]}:{quality}"})
        base = 48 + root if root < 7 else 36 + root
        tones = [base, base + third, base + 7]
        hold_end = start + bar_s * 0.98
        for p in tones:
            chords_i.notes.append(pretty_midi.Note(velocity=58, pitch=p, start=start,
                                                   end=hold_end))
        bass_root = 36 + root if root < 5 else 24 + root
        bass_beats = range(nb) if piece.tempo_bpm < 150 else range(0, nb, 2)
        for k in bass_beats:
            p = bass_root if k % 2 == 0 else bass_root + 7
            t = start + k * beat_s
            bass_i.notes.append(pretty_midi.Note(velocity=85, pitch=p, start=t,
                                                 end=t + beat_s * 0.9))
        # Melody: a chord tone on the downbeat, then scale steps, one note a beat (two at
        # slow tempi; in 6/8 eighths, quarter-eighth or a dotted quarter a beat, so the
        # compound metre is audible without drums); the leading tone appears over V in
        # harmonic minor.
        chord_pcs = {root % 12, (root + third) % 12, (root + 7) % 12}
        for k, (t, dur) in enumerate(_melody_slots(piece, start, beat_s, rng)):
            if k == 0:
                candidates = [p for p in range(melody_pitch - 5, melody_pitch + 6)
                              if p % 12 in chord_pcs]
            else:
                step = rng.choice((-2, -1, -1, 1, 1, 2))
                idx = [p for p in range(melody_pitch - 4, melody_pitch + 5)
                       if (p - piece.tonic) % 12 in scale]
                candidates = sorted(idx, key=lambda p, s=step: abs(p - (melody_pitch + s)))[:2]
            melody_pitch = min(max(rng.choice(candidates), 62), 84)
            if rng.random() < 0.15 and k > 0:
                continue  # a rest
            mel_i.notes.append(pretty_midi.Note(velocity=80, pitch=melody_pitch, start=t,
                                                end=t + dur * 0.85))
        for t, note, vel in _drum_hits(piece, start, beat_s, rng):
            drums.notes.append(pretty_midi.Note(velocity=vel, pitch=note, start=t, end=t + 0.08))
    pm.instruments += [chords_i, bass_i, mel_i]
    if drums.notes:
        pm.instruments.append(drums)
    n_beats = n_bars * nb
    beats = [round(k * beat_s, 4) for k in range(n_beats)]
    downbeats = [round(k * bar_s, 4) for k in range(n_bars)]
    return pm, {"beats": beats, "downbeats": downbeats, "chords": chords,
                "duration_s": n_bars * bar_s}


def render_piece(piece: HardPiece, *, soundfont: Path = SOUNDFONT) -> tuple[np.ndarray, dict]:
    """Render one piece through fluidsynth; returns float32 mono audio at 44.1 kHz and truth.

    Raises
    ------
    MissingDependencyError
        When fluidsynth, the soundfont or pretty_midi is missing.
    """
    import soundfile as sf

    problem = hardset_available()
    if problem:
        raise MissingDependencyError(f"rendering the hard set needs {problem}")
    pm, truth = piece_to_midi(piece)
    with tempfile.TemporaryDirectory(prefix="qagen-hardset-") as tmp:
        mid, wav = Path(tmp) / "in.mid", Path(tmp) / "out.wav"
        pm.write(str(mid))
        subprocess.run(["fluidsynth", "-ni", "-q", "-F", str(wav), "-r", str(SR),
                        str(soundfont), str(mid)], check=True, capture_output=True, timeout=300)
        y, file_sr = sf.read(str(wav), dtype="float32", always_2d=True)
    y = y.mean(axis=1)
    if file_sr != SR:  # fluidsynth honours -r; this is only a guard
        import soxr

        y = soxr.resample(y, file_sr, SR)
    y = y[: int(truth["duration_s"] * SR + 0.5 * SR)]
    peak = float(np.max(np.abs(y))) or 1.0
    return (0.8 * y / peak).astype(np.float32), truth


def noise_clip(kind: str, *, seed: int, duration_s: float = 12.0) -> np.ndarray:
    """Non-music audio: white or pink noise, wind-like swells, rain-like random clicks."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * SR)
    white = rng.standard_normal(n)
    if kind == "white":
        y = white
    elif kind == "pink":
        spec = np.fft.rfft(white)
        spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1.0))
        y = np.fft.irfft(spec, n)
    elif kind == "wind":
        spec = np.fft.rfft(white)
        freqs = np.fft.rfftfreq(n, 1 / SR)
        spec *= np.exp(-freqs / 600.0)
        env = np.interp(np.arange(n), np.linspace(0, n, 9), rng.uniform(0.2, 1.0, 9))
        y = np.fft.irfft(spec, n) * env
    elif kind == "rain":
        y = 0.05 * white
        for t in rng.integers(0, n - 400, size=int(duration_s * 40)):
            y[t:t + 400] += rng.uniform(0.2, 1.0) * np.exp(-np.arange(400) / 40.0) * white[:400]
    else:
        raise ValueError(f"unknown noise kind {kind!r}")
    return (0.5 * y / np.max(np.abs(y))).astype(np.float32)


NOISE_KINDS = ("white", "pink", "wind", "rain")

#: What is known of the real recordings (shared/realaudio, SOURCES.md): music or not, and
#: the few labels their sources give. Key/tempo only where the source states them.
REAL_RECORDINGS: dict[str, dict] = {
    "librosa/Kevin_MacLeod_-_Vibe_Ace.hq.ogg": {"music": True, "genre": "jazz"},
    "librosa/Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.hq.ogg": {
        "music": True, "genre": "classical"},
    "librosa/Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg": {"music": True, "genre": "song"},
    "librosa/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).hq.ogg": {
        "music": True, "genre": "classical"},
    "librosa/sorohanro_-_solo-trumpet-06.hq.ogg": {"music": True, "tempo_bpm": 90.0,
                                                   "key_tonic": "F", "genre": "jazz loop"},
    "librosa/glacier-bay-humpback.hq.ogg": {"music": False, "genre": "whale song"},
    "librosa/5703-47212-0000.hq.ogg": {"music": False, "genre": "speech"},
    "guitarset/03_BN3-119-G_solo_mic.wav": {"music": True, "jams": "03_BN3-119-G_solo.jams"},
}


def _jams_truth(path: Path) -> dict:
    """Tempo, key, chords and beats of a GuitarSet JAMS file."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    out: dict = {}
    for ann in doc.get("annotations", []):
        ns, data = ann.get("namespace"), ann.get("data", [])
        if ns == "tempo" and data and "tempo_bpm" not in out:
            out["tempo_bpm"] = float(data[0]["value"])
        elif ns == "key_mode" and data and "key" not in out:
            tonic, _, mode = str(data[0]["value"]).partition(":")
            out["key"] = f"{tonic} {mode or 'major'}"
        elif ns == "chord" and "chords" not in out:
            out["chords"] = [{"start_s": float(d["time"]), "end_s": float(d["time"]) + float(
                d["duration"]), "label": str(d["value"])} for d in data]
        elif ns == "beat_position" and "beats" not in out:
            out["beats"] = [float(d["time"]) for d in data]
            out["downbeats"] = [float(d["time"]) for d in data
                                if d["value"].get("position") == 1]
            out["beats_per_bar"] = int(data[0]["value"].get("num_beats", 4)) if data else None
    return out


def write_hard_set(
    out: Path, *, n: int = 160, seed: int = 0, realaudio: Path | None = None,
    force: bool = False,
) -> Path:
    """Render the hard set into ``out`` (reusing it when already built the same way).

    Returns the path of ``truth.jsonl``.

    Raises
    ------
    MissingDependencyError
        When fluidsynth, the soundfont or pretty_midi is missing.
    ConfigError
        When ``out/audiofolder`` exists but was not written by this function.
    """
    from qagen.audio import write_audio
    from qagen.manifest import write_json_atomic
    from qagen.records import Clip

    out = Path(out)
    marker = out / ".qagen-hardset.json"
    fingerprint = hashlib.sha256(json.dumps(
        [HARDSET_VERSION, n, seed, str(realaudio), Path(__file__).read_text(encoding="utf-8")]
    ).encode()).hexdigest()
    truth_path = out / TRUTH_FILE
    if not force and marker.is_file() and truth_path.is_file() and json.loads(
            marker.read_text(encoding="utf-8")).get("fingerprint") == fingerprint:
        return truth_path
    folder = out / "audiofolder"
    if folder.exists():
        if not marker.is_file():  # never delete a folder this function did not write
            raise ConfigError(f"{folder} exists and is not a hard set written here; "
                              "choose an empty output folder")
        marker.unlink()
        shutil.rmtree(folder)
    rows: list[HardClipTruth] = []
    for piece in plan_hard_set(n=n, seed=seed):
        y, truth = render_piece(piece)
        split = split_of(piece.name)
        folder_name = "validation" if split == "dev" else "test"
        if piece.mp3:  # constant bitrate: libsndfile's VBR mp3s make mpg123 warn per frame
            import soundfile as sf
            import soxr

            file_name = f"{folder_name}/{piece.name}.mp3"
            (folder / file_name).parent.mkdir(parents=True, exist_ok=True)
            sf.write(folder / file_name, soxr.resample(y, SR, 22050), 22050, format="MP3",
                     bitrate_mode="CONSTANT", compression_level=0.2)
        else:
            file_name = f"{folder_name}/{piece.name}.flac"
            write_audio(folder / file_name, y, sr=SR)
        rows.append(HardClipTruth(
            name=piece.name, music=True, file_name=file_name, split=split, kind="rendered",
            tempo_bpm=piece.tempo_bpm, beats_per_bar=piece.beats_per_bar, meter=piece.meter,
            key=piece.key, chords=truth["chords"], beats=truth["beats"],
            downbeats=truth["downbeats"],
            extra={"feel": piece.feel, "mode": piece.mode, "mp3": piece.mp3,
                   "programs": [piece.chord_program, piece.bass_program,
                                piece.melody_program]}))
        log.debug("hard set: rendered %s", piece.name)
    for i, kind in enumerate(NOISE_KINDS):
        name = f"noise_{kind}"
        split = split_of(name)
        file_name = f"{'validation' if split == 'dev' else 'test'}/{name}.flac"
        write_audio(folder / file_name, noise_clip(kind, seed=seed + i), sr=SR)
        rows.append(HardClipTruth(name=name, music=False, file_name=file_name, split=split,
                                  kind="noise", extra={"noise": kind}))
    if realaudio is not None:
        for rel, known in REAL_RECORDINGS.items():
            src = Path(realaudio) / rel
            if not src.is_file():
                log.warning("hard set: %s not found; skipped", src)
                continue
            name = "real_" + Path(rel).name.split(".")[0][:40]
            split = split_of(name)
            file_name = f"{'validation' if split == 'dev' else 'test'}/{name}{src.suffix}"
            (folder / file_name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, folder / file_name)
            row = HardClipTruth(name=name, music=known["music"], file_name=file_name,
                                split=split, kind="real", extra={"origin": rel,
                                                                  "genre": known.get("genre")})
            if "jams" in known:
                jt = _jams_truth(src.parent / known["jams"])
                row.tempo_bpm, row.key = jt.get("tempo_bpm"), jt.get("key")
                row.chords, row.beats = jt.get("chords"), jt.get("beats")
                row.downbeats, row.beats_per_bar = jt.get("downbeats"), jt.get("beats_per_bar")
            row.tempo_bpm = known.get("tempo_bpm", row.tempo_bpm)
            if "key_tonic" in known:
                row.extra["key_tonic"] = known["key_tonic"]  # mode unstated (blues/dorian)
            rows.append(row)
    folder.mkdir(parents=True, exist_ok=True)
    meta = [json.dumps({"file_name": r.file_name, "title": r.name,
                        "split": "validation" if r.split == "dev" else "test"})
            for r in rows]
    (folder / "metadata.jsonl").write_text("".join(f"{x}\n" for x in meta), encoding="utf-8")
    lines = []
    for r in rows:
        row = asdict(r)
        row["clip_id"] = Clip.make_id("audiofolder", r.file_name, 0.0, None)
        lines.append(json.dumps({k: v for k, v in row.items() if v is not None},
                                sort_keys=True))
    truth_path.write_text("".join(f"{x}\n" for x in lines), encoding="utf-8")
    write_json_atomic(marker, {"fingerprint": fingerprint, "clips": len(rows)})
    log.info("hard set: %d clips under %s", len(rows), folder)
    return truth_path
