"""The demo corpus plan: which clips each source gets, and the labels it would publish.

The plan is a hand-written table, not a random draw, so that its coverage is guaranteed and
reviewable: 26 clips, all 24 keys, tempos from 60 to 180 BPM (seven below 80, six above
130), seven clips in 3/4, thirteen without drums, every timbre. Progressions avoid what key
networks misread: minor keys use i–iv–V–i or i–iv–i–V (progressions leaning on VI and VII
were heard in the relative major), major keys avoid I–V–vi–IV. Each row is a :class:`ClipSpec`; the
labels (caption, aspects, tags, genres, instruments, moods, title, composer, ensemble) are
derived from the spec by rules, so they are true of the rendered audio and can be used to
check the ingest and generate stages end to end.

Splits are decided by the corpus builder (``qagen.demo.corpus``): each source's last clip is
its ``test`` clip (for MusicCaps, the AudioSet eval set), so the plan lists a varied clip last.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from qagen.demo.synth import PITCH_NAMES, ClipSpec, render_clip
from qagen.records.demo import DemoClip

#: Clip length per source, as each dataset cuts its audio (MTT: 29.1 s clips).
SOURCE_DURATION_S = {"musiccaps": 10.0, "mtt": 29.1, "fma": 30.0, "musicnet": 30.0}

_MAJOR_CADENCE = ["I", "IV", "V", "I"]
_MINOR_CADENCE = ["i", "iv", "V", "i"]
#: Half the bars on the tonic: the surest minor progression for key estimators.
_MINOR_TONIC = ["i", "iv", "i", "V"]


class _Row(NamedTuple):
    name: str
    tempo_bpm: float
    beats_per_bar: int
    tonic: str
    mode: str
    progression: list[str]
    timbres: list[str]
    has_drums: bool
    duration_s: float


def _rows() -> dict[str, list[_Row]]:
    mc, mtt, fma, mn = (SOURCE_DURATION_S[s] for s in ("musiccaps", "mtt", "fma", "musicnet"))
    return {
        "musiccaps": [
            _Row("pop-piano", 120, 4, "C", "major", _MAJOR_CADENCE, ["piano", "bass"], True, mc),
            _Row("folk-rock", 96, 4, "A", "minor", _MINOR_CADENCE,
                 ["guitar", "strings", "bass"], True, mc),
            _Row("synth-pop", 140, 4, "F#", "major", ["I", "vi", "IV", "V"], ["synth", "bass"],
                 True, mc),
            _Row("piano-waltz", 72, 3, "Eb", "minor", _MINOR_CADENCE, ["piano", "strings"],
                 False, mc),
            _Row("punk", 165, 4, "G", "major", _MAJOR_CADENCE, ["guitar", "bass"], True, mc),
            _Row("organ-blues", 84, 4, "B", "minor", _MINOR_TONIC, ["organ", "bass"],
                 True, mc),
        ],
        "mtt": [
            _Row("folk-guitar", 108, 4, "D", "major", _MAJOR_CADENCE, ["guitar"], False, mtt),
            _Row("techno", 128, 4, "E", "minor", _MINOR_CADENCE, ["synth", "bass"], True, mtt),
            _Row("slow-strings", 62, 4, "Bb", "major", ["I", "ii", "V", "I"],
                 ["strings", "piano"], False, mtt),
            _Row("fast-waltz", 138, 3, "F", "minor", _MINOR_CADENCE, ["piano", "bass"], True,
                 mtt),
            _Row("organ-waltz", 90, 3, "Ab", "major", _MAJOR_CADENCE, ["organ", "bass"], False,
                 mtt),
            _Row("drum-and-bass", 174, 4, "C#", "minor", _MINOR_TONIC,
                 ["synth", "bass"], True, mtt),
        ],
        "fma": [
            _Row("rock", 116, 4, "A", "major", _MAJOR_CADENCE, ["guitar", "bass"], True, fma),
            _Row("pop-ballad", 100, 4, "G", "minor", _MINOR_TONIC,
                 ["piano", "bass"], True, fma),
            _Row("electro", 135, 4, "E", "major", ["I", "vi", "IV", "V"],
                 ["synth", "strings", "bass"], True, fma),
            _Row("folk-waltz", 78, 3, "D", "minor", _MINOR_CADENCE, ["guitar", "strings"], False,
                 fma),
            _Row("fast-rock", 180, 4, "B", "major", _MAJOR_CADENCE, ["guitar", "bass"], True,
                 fma),
            _Row("ambient-piano", 68, 4, "F#", "minor", _MINOR_TONIC,
                 ["piano", "strings"], False, fma),
        ],
        "musicnet": [
            _Row("string-quartet", 88, 4, "Eb", "major", ["I", "IV", "ii", "V"], ["strings"],
                 False, mn),
            _Row("piano-minuet", 66, 3, "C", "minor", _MINOR_CADENCE, ["piano"], False, mn),
            _Row("piano-trio", 120, 4, "F", "major", ["I", "vi", "IV", "V"],
                 ["piano", "strings"], False, mn),
            _Row("organ-chorale", 104, 3, "Ab", "minor", _MINOR_CADENCE, ["organ"], False, mn),
        ],
        "audiofolder": [
            _Row("keys-groove", 124, 4, "C#", "major", ["I", "IV", "vi", "V"],
                 ["piano", "synth", "bass"], True, 16.0),
            _Row("guitar-strings", 76, 4, "Bb", "minor", _MINOR_CADENCE, ["guitar", "strings"],
                 False, 20.0),
            _Row("guitar-waltz", 132, 3, "G", "major", _MAJOR_CADENCE, ["guitar", "bass"],
                 False, 14.0),
            _Row("slow-organ", 60, 4, "D", "minor", _MINOR_CADENCE, ["organ", "strings"], False,
                 12.0),
        ],
    }


def corpus_plan(*, seed: int = 0, clips: int | None = None,
                sources: Sequence[str] | None = None) -> dict[str, list[ClipSpec]]:
    """Every demo clip to render, by source.

    Parameters
    ----------
    seed
        Base of the per-clip seeds (drum noise, pluck bursts, saw phases). For the table the
        notes, and so the truth, do not depend on it; for a sampled plan it also draws them.
    clips
        None: the hand-written table (26 clips). A number: a sampled plan of that many clips
        (:func:`sampled_plan`), for training runs that need hundreds.
    sources
        With ``clips``: the sources that share them (default: every source of the table).

    Returns
    -------
    dict
        ``{source: [ClipSpec, ...]}``; names are ``<source>-<slug>``, unique across the corpus.
    """
    if clips is not None:
        return sampled_plan(clips, seed=seed, sources=sources or list(_rows()))
    plan: dict[str, list[ClipSpec]] = {}
    index = 0
    for source, rows in _rows().items():
        specs = []
        for row in rows:
            specs.append(ClipSpec(
                name=f"{source}-{row.name}", tempo_bpm=row.tempo_bpm,
                beats_per_bar=row.beats_per_bar, tonic=row.tonic, mode=row.mode,
                progression=list(row.progression), timbres=list(row.timbres),
                has_drums=row.has_drums, duration_s=row.duration_s, seed=seed * 1000 + index,
            ))
            index += 1
        plan[source] = specs
    return plan


#: Maelzel metronome marks from 60 to 200: the tempi a sampled plan draws (a real score's
#: tempo marking is one of them; neighbours are 3–6 % apart).
METRONOME_MARKS = (60, 63, 66, 69, 72, 76, 80, 84, 88, 92, 96, 100, 104, 108, 112, 116, 120,
                   126, 132, 138, 144, 152, 160, 168, 176, 184, 192, 200)
_SAMPLED_PROGRESSIONS = {
    "major": (_MAJOR_CADENCE, ["I", "IV", "ii", "V"], ["I", "vi", "IV", "V"],
              ["I", "ii", "V", "I"]),
    "minor": (_MINOR_CADENCE, _MINOR_TONIC),
}
_TIMBRE_SETS = (["piano"], ["piano", "bass"], ["guitar"], ["guitar", "bass"], ["organ"],
                ["organ", "bass"], ["strings"], ["strings", "piano"], ["synth", "bass"],
                ["guitar", "strings", "bass"], ["synth", "strings", "bass"], ["piano", "synth"])
#: Clip length of a sampled audiofolder clip (the table uses 12–20 s).
SAMPLED_AUDIOFOLDER_S = 15.0


def sampled_plan(n: int, *, seed: int = 0, sources: Sequence[str]) -> dict[str, list[ClipSpec]]:
    """``n`` clips drawn for training runs: every key (each block of 24 clips holds
    each of the 24 keys once), tempi from :data:`METRONOME_MARKS` (60–200 BPM), about
    40 % in 3/4, about 60 % with drums, timbres from a fixed list; clips go to ``sources`` in
    turn, each at its dataset's clip length.

    The draw is seeded (``seed``) and the progressions are the table's safe ones, so the truth
    is as reliable as the table's; only coverage changes.
    """
    import random

    if n < 1:
        raise ValueError(f"clips must be ≥ 1, got {n}")
    unknown = [s for s in sources if s not in _rows()]
    if unknown:
        raise ValueError(f"no demo source {unknown}; have {sorted(_rows())}")
    rng = random.Random(f"qagen-demo-{seed}")
    keys = [(tonic, mode) for mode in ("major", "minor") for tonic in PITCH_NAMES]
    rng.shuffle(keys)
    plan: dict[str, list[ClipSpec]] = {s: [] for s in sources}
    for i in range(n):
        source = sources[i % len(sources)]
        tonic, mode = keys[i % len(keys)]
        if i % len(keys) == len(keys) - 1:
            rng.shuffle(keys)
        bpb = 3 if rng.random() < 0.4 else 4
        duration = SOURCE_DURATION_S.get(source, SAMPLED_AUDIOFOLDER_S)
        plan[source].append(ClipSpec(
            name=f"{source}-gen{i:05d}", tempo_bpm=float(rng.choice(METRONOME_MARKS)),
            beats_per_bar=bpb, tonic=tonic, mode=mode,  # type: ignore[arg-type]
            progression=list(rng.choice(_SAMPLED_PROGRESSIONS[mode])),
            timbres=list(rng.choice(_TIMBRE_SETS)), has_drums=rng.random() < 0.6,
            duration_s=duration, seed=seed * 100_000 + i))
    return {s: specs for s, specs in plan.items() if specs}


# --------------------------------------------------------------------------- labels

_INSTRUMENT_NAMES = {"piano": "piano", "organ": "organ", "strings": "strings",
                     "guitar": "acoustic guitar", "synth": "synthesizer", "bass": "bass"}
_CAPTION_PARTS = {
    "piano": "a piano plays {rhythm}",
    "organ": "an organ plays {held}",
    "strings": "a string section plays {held}",
    "guitar": "an acoustic guitar strums {rhythm}",
    "synth": "a bright synthesizer plays {rhythm}",
    "bass": "a bass plays the root and fifth of each chord on every beat",
}


def _tempo_word(spec: ClipSpec) -> str:
    """``slow`` below 85 BPM, ``fast`` from 130 BPM, ``medium`` between."""
    if spec.tempo_bpm < 85:
        return "slow"
    return "fast" if spec.tempo_bpm >= 130 else "medium"


def _moods(spec: ClipSpec) -> list[str]:
    """Mood words that the mode and tempo of the clip support."""
    tempo = _tempo_word(spec)
    if spec.mode == "minor":
        return {"slow": ["sad", "melancholic"], "medium": ["melancholic", "serious"],
                "fast": ["dark", "intense"]}[tempo]
    return {"slow": ["calm", "peaceful"], "medium": ["cheerful", "uplifting"],
            "fast": ["happy", "energetic"]}[tempo]


def _genres(spec: ClipSpec) -> list[str]:
    """FMA top-level genres implied by the instrumentation."""
    timbres = set(spec.timbres)
    if not spec.has_drums:
        if "synth" in timbres:
            return ["Electronic"]
        if timbres <= {"piano", "organ", "strings"}:
            return ["Classical"]
        return ["Folk"] if "guitar" in timbres else ["Instrumental"]
    if "synth" in timbres:
        return ["Electronic"]
    if "guitar" in timbres:
        return ["Rock"]
    if "organ" in timbres:
        return ["Blues"]
    return ["Pop"]


def _instruments(spec: ClipSpec) -> list[str]:
    names = [_INSTRUMENT_NAMES[t] for t in spec.timbres]
    return [*names, "drums"] if spec.has_drums else names


def _tags(spec: ClipSpec, genres: list[str]) -> list[str]:
    """MagnaTagATune vocabulary words that are true of the clip."""
    tags = {"guitar": ["guitar"], "piano": ["piano"], "strings": ["strings"],
            "organ": ["organ"], "synth": ["synth", "electronic"], "bass": ["bass"]}
    out: list[str] = []
    for timbre in spec.timbres:
        out += [t for t in tags[timbre] if t not in out]
    if spec.has_drums:
        out += ["drums", "beat"]
    tempo = _tempo_word(spec)
    if tempo != "medium":
        out.append(tempo)
    techno = spec.has_drums and spec.tempo_bpm >= 120 and set(spec.timbres) <= {"synth", "bass"}
    genre_tags = {"Classical": "classical", "Rock": "rock", "Pop": "pop", "Folk": "folk",
                  "Electronic": "techno" if techno else None}
    for genre in genres:
        tag = genre_tags.get(genre)
        if tag and tag not in out:
            out.append(tag)
    if not spec.has_drums and spec.tempo_bpm < 85:
        out.append("soft")
    if spec.has_drums and spec.tempo_bpm >= 130:
        out.append("loud")
    out.append("no vocals")
    return out


def _form(spec: ClipSpec, genres: list[str]) -> str:
    if spec.beats_per_bar == 3:
        return "Waltz" if spec.tempo_bpm >= 72 else "Minuet"
    if genres == ["Classical"]:
        return "Prelude" if "piano" in spec.timbres else "Chorale"
    return "Groove" if spec.has_drums else "Song"


def _ensemble(spec: ClipSpec) -> str:
    timbres = set(spec.timbres) - {"bass"}
    if timbres == {"piano"}:
        return "Solo Piano"
    if timbres == {"strings"}:
        return "String Quartet"
    if timbres == {"piano", "strings"}:
        return "Piano Trio"
    if timbres == {"organ"}:
        return "Solo Organ"
    return "Chamber Ensemble"


def _caption(spec: ClipSpec, *, moods: list[str], genres: list[str]) -> str:
    """A MusicCaps-style caption: instruments, rhythm, tempo feel, meter, mood, no vocals."""
    tempo = _tempo_word(spec)
    rhythm = "short chords on every beat" if spec.has_drums or _tempo_word(spec) != "slow" \
        else "soft chords on every beat"
    held = "long sustained chords" if spec.has_drums or any(
        t in spec.timbres for t in ("piano", "guitar", "synth")) else "repeated chords on each beat"
    parts = [_CAPTION_PARTS[t].format(rhythm=rhythm, held=held) for t in spec.timbres]
    listing = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    genre = genres[0].lower()
    lead = _INSTRUMENT_NAMES[next(t for t in spec.timbres if t != "bass")]
    sentences = [
        f"This is an instrumental {genre} piece at a {tempo} tempo.",
        listing[0].upper() + listing[1:]
        + f"; the {lead} also {'play' if lead == 'strings' else 'plays'} a simple melody.",
    ]
    if spec.has_drums:
        beat = "a waltz beat" if spec.beats_per_bar == 3 else "a steady beat"
        sentences.append(f"The drums play {beat} with kick, snare and hi-hats.")
    else:
        sentences.append("There are no drums; the chords keep the pulse.")
    feel = " It has a waltz feel in 3/4 time." if spec.beats_per_bar == 3 else ""
    sentences.append(f"The mood is {moods[0]} and {moods[1]}, and there are no vocals.{feel}")
    return " ".join(sentences)


def _aspects(spec: ClipSpec, *, moods: list[str], genres: list[str]) -> list[str]:
    aspects = [f"{genres[0].lower()}", "instrumental", "no vocals", f"{_tempo_word(spec)} tempo"]
    aspects += _instruments(spec)
    aspects.append("waltz feel" if spec.beats_per_bar == 3 else "4/4 time")
    aspects += moods
    if not spec.has_drums:
        aspects.append("no percussion")
    return aspects


def demo_clip(spec: ClipSpec, *, source: str, split: str, sr: int = 44100) -> DemoClip:
    """Render ``spec`` and attach the labels ``source`` would publish, all true of the audio.

    Every source gets every label field; its ``write_native`` keeps the ones its real dataset
    carries (captions for MusicCaps, tags for MTT, genres for FMA, composer and ensemble for
    MusicNet). Titles and names are invented and say ``Demo`` so they cannot pass for real.
    """
    audio, truth = render_clip(spec, sr=sr)
    genres = _genres(spec)
    moods = _moods(spec)
    form = _form(spec, genres)
    title = f"Demo {form} in {spec.key}"
    is_musicnet = source == "musicnet"
    return DemoClip(
        name=spec.name, audio=audio, sr=sr, truth=truth, split=split,
        caption=_caption(spec, moods=moods, genres=genres),
        aspects=_aspects(spec, moods=moods, genres=genres),
        tags=_tags(spec, genres),
        genres=genres if genres == ["Instrumental"] else [*genres, "Instrumental"],
        instruments=_instruments(spec),
        moods=moods,
        title=title,
        artist="qagen synth",
        composer="Demo Composer" if is_musicnet else "",
        composition=f"Demo {form} No. {spec.seed % 1000 + 1} in {spec.key}" if is_musicnet
        else "",
        ensemble=_ensemble(spec) if is_musicnet else "",
    )
