"""Facts-first QA: pairs written straight from what is measured and labelled about a clip.

Why: a small LLM cannot write good music QA and even a 7B one invents tempos and keys. The
clip already carries exact facts (measured tempo, meter, key, chords, loudness; the dataset's
instruments, genres, moods and captions), so the dataset's backbone is written from them by
rule: open, yes/no and multiple-choice questions (as LLark and MuChoMusic-style evaluation sets
use), hedged where the measurement is uncertain, every pair carrying the facts it states.

The wording lives in ``prompts/facts.yaml`` (a curator edits phrasing without code); which
phrasing a pair gets is a seeded hash of (clip, topic), so a rebuild is byte-identical. This
module only computes the slots each topic's sentences fill and decides which topics apply.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qagen.claims import MOOD_WORDS
from qagen.errors import ConfigError
from qagen.music import key_name, parse_chord, parse_key, roman_numeral, spell_chord, spell_in_key
from qagen.records import Clip, ClipFeatures, FeatureStatus
from qagen.records.features import TempoAgreement
from qagen.records.qa import QAKind, QuestionForm, StatedFacts

FACTS_FILE = "facts.yaml"
#: Below this key confidence the key is stated with a hedge naming the runner-up.
FIRM_KEY_CONFIDENCE = 0.6
#: Below this meter confidence the meter is stated with a hedge.
FIRM_METER_CONFIDENCE = 0.6
#: Below this tempo confidence the tempo is stated with a hedge even when estimators agree.
FIRM_TEMPO_CONFIDENCE = 0.5
#: A chord must fill this share of a bar to be that bar's chord.
BAR_CHORD_SHARE = 0.5
#: Chords shorter than this (seconds) in total are not named as "most heard".
MIN_CHORD_TOTAL_S = 1.0
#: Bars stated in a progression.
PROGRESSION_BARS = 4
#: Multiple-choice tempo distractors, as ratios of the measured tempo (±20 %).
TEMPO_DISTRACTOR_RATIOS = (0.8, 1.2)


class Topic(BaseModel):
    """One question topic of the phrasebook: its kind, form and sentence variants."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: QAKind
    form: QuestionForm
    questions: list[str] = Field(min_length=1)
    answers: dict[str, list[str]] = Field(
        min_length=1, description="Answer variant (firm, hedged, yes, no, …) → sentences.")


class Phrasebook(BaseModel):
    """``prompts/facts.yaml``: versioned wording of every facts topic."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    version: str
    description: str = ""
    topics: dict[str, Topic]
    content_hash: str = ""


def load_phrasebook(path: Path | None = None) -> Phrasebook:
    """Read and validate the phrasebook (default: ``prompts/facts.yaml``).

    Raises
    ------
    ConfigError
        When the file is missing, not YAML, or a sentence uses a slot its topic lacks.
    """
    from qagen.generate.prompts import default_prompts_dir

    path = path or default_prompts_dir() / FACTS_FILE
    if not path.is_file():
        raise ConfigError(f"facts phrasebook not found: {path} (set QAGEN_PROMPTS)")
    raw = path.read_bytes()
    try:
        book = Phrasebook.model_validate(
            {**yaml.safe_load(raw.decode("utf-8")),
             "content_hash": hashlib.sha256(raw).hexdigest()[:16]})
    except (ValueError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{path}: bad phrasebook: {exc}") from exc
    missing = sorted(set(_SLOTS) - set(book.topics))
    if missing:
        raise ConfigError(f"{path}: topics missing: {missing}")
    for name, topic in book.topics.items():
        allowed = _SLOTS.get(name)
        if allowed is None:
            raise ConfigError(f"{path}: unknown topic {name!r}; known: {sorted(_SLOTS)}")
        for text in [*topic.questions, *(s for v in topic.answers.values() for s in v)]:
            used = {f for _, f, _, _ in string.Formatter().parse(text) if f}
            if used - allowed:
                raise ConfigError(f"{path}: topic {name!r} uses unknown slots "
                                  f"{sorted(used - allowed)} in {text!r}; slots: {sorted(allowed)}")
    return book


@dataclass(frozen=True)
class FactPair:
    """One deterministic pair before screening."""

    topic: str
    kind: QAKind
    form: QuestionForm
    question: str
    answer: str
    facts: StatedFacts


@dataclass(frozen=True)
class _Fill:
    """What a topic needs from the clip: the answer variant and its slot values."""

    variant: str
    slots: dict[str, Any]
    facts: StatedFacts


# --------------------------------------------------------------------------- small helpers


def _hash(*parts: object) -> int:
    key = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def join_words(items: Sequence[str], *, conj: str = "and") -> str:
    """``["a", "b", "c"]`` → ``"a, b and c"``."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conj} {items[-1]}"


def _article(word: str) -> str:
    """"a piano", "an organ", "drums" (plurals and mass nouns take none)."""
    last = word.split()[-1].lower()
    if (last.endswith("s") and not last.endswith("ss")) or last in _MASS_NOUNS:
        return word
    return f"an {word}" if word[:1].lower() in "aeio" else f"a {word}"


_MASS_NOUNS = frozenset({"percussion", "brass"})


def _bpm(x: float) -> int:
    return round(x)


# --------------------------------------------------------------------------- tempo


def _tempo(f: ClipFeatures) -> tuple[float, float | None, str] | None:
    """(tempo, the other octave or None, variant): firm / double / half / uncertain."""
    if f.tempo_bpm is None:
        return None
    bpm = f.tempo_bpm
    if f.tempo_agreement is TempoAgreement.octave:
        others = [t for t in (f.tempo_tcn_bpm, f.tempo_beats_bpm, f.tempo_librosa_bpm)
                  if t is not None and abs(t / bpm - 1) > 0.25]
        alt = others[0] if others else None
        if alt is None:
            return bpm, None, "uncertain"
        return bpm, alt, "double" if alt > bpm else "half"
    if f.tempo_agreement is TempoAgreement.disagree or (f.tempo_confidence or 0) < \
            FIRM_TEMPO_CONFIDENCE:
        return bpm, None, "uncertain"
    return bpm, None, "firm"


def _fill_tempo_open(clip: Clip, f: ClipFeatures, seed: int) -> _Fill | None:
    t = _tempo(f)
    if t is None:
        return None
    bpm, alt, variant = t
    slots = {"bpm": _bpm(bpm), "alt_bpm": _bpm(alt) if alt else ""}
    return _Fill(variant, slots, StatedFacts(tempo_bpm=round(bpm, 1),
                                             tempo_alt_bpm=round(alt, 1) if alt else None))


def _fill_tempo_choice(clip: Clip, f: ClipFeatures, seed: int) -> _Fill | None:
    t = _tempo(f)
    if t is None or t[2] != "firm":  # with half/double time in doubt no single option is right
        return None
    bpm, alt, _ = t
    options = [_bpm(bpm * r) for r in TEMPO_DISTRACTOR_RATIOS] + [_bpm(bpm)]
    order = _shuffled(options, seed, clip.clip_id, "tempo_choice")
    return _Fill("answer", {"bpm": _bpm(bpm), "options": join_words([f"{o} BPM" for o in order],
                                                                    conj="or")},
                 StatedFacts(tempo_bpm=round(bpm, 1),
                             tempo_alt_bpm=round(alt, 1) if alt else None))


def _fill_tempo_yes_no(clip: Clip, f: ClipFeatures, seed: int) -> _Fill | None:
    t = _tempo(f)
    if t is None or t[2] != "firm":  # half/double time would change the answer
        return None
    bpm = t[0]
    ratio = TEMPO_DISTRACTOR_RATIOS[_hash(seed, clip.clip_id, "tempo_yes_no") % 2]
    threshold = int(round(bpm * ratio / 10.0) * 10)
    return _Fill("yes" if bpm > threshold else "no", {"bpm": _bpm(bpm), "threshold": threshold},
                 StatedFacts(tempo_bpm=round(bpm, 1)))


# --------------------------------------------------------------------------- meter

_METER_WORDS = {2: "two", 3: "three", 4: "four", 6: "six"}
_METER_FEEL = {3: "triple", 4: "quadruple", 2: "duple"}


def signature_of(f: ClipFeatures) -> str:
    """The time signature to state: augment's (``6/8`` counts two dotted-quarter beats, so
    ``meter`` is 2 there), else ``meter``/4."""
    return f.time_signature or f"{f.meter}/4"


def _fill_meter_open(clip: Clip, f: ClipFeatures, seed: int) -> _Fill | None:
    if f.meter not in _METER_WORDS:
        return None
    firm = (f.meter_confidence or 0) >= FIRM_METER_CONFIDENCE
    signature = signature_of(f)
    feel = "compound duple" if signature == "6/8" else _METER_FEEL.get(f.meter, "")
    return _Fill("firm" if firm else "hedged",
                 {"beats": _METER_WORDS[f.meter], "signature": signature, "feel": feel},
                 StatedFacts(meter=f.meter))


def _fill_meter_choice(clip: Clip, f: ClipFeatures, seed: int) -> _Fill | None:
    if f.meter not in (3, 4) or (f.meter_confidence or 0) < FIRM_METER_CONFIDENCE:
        return None
    return _Fill(f"in_{f.meter}", {"beats": _METER_WORDS[f.meter], "signature": signature_of(f)},
                 StatedFacts(meter=f.meter))


# --------------------------------------------------------------------------- key


def _relative(key: str) -> str:
    pc, mode = parse_key(key)
    return key_name((pc + 3) % 12, "major") if mode == "minor" else key_name((pc + 9) % 12,
                                                                               "minor")


def key_distractors(key: str) -> list[str]:
    """Wrong keys a listener could confuse: a fifth above and below, the parallel key.

    The relative key is left out on purpose: it shares every note, so a multiple-choice item
    offering it tests the key estimator's weakest decision rather than the listener.
    """
    pc, mode = parse_key(key)
    other = "minor" if mode == "major" else "major"
    return [key_name((pc + 7) % 12, mode), key_name((pc + 5) % 12, mode), key_name(pc, other)]


def _fill_key_open(clip: Clip, f: ClipFeatures, seed: int) -> _Fill | None:
    if f.key is None:
        return None
    pc, mode = parse_key(f.key)
    key = key_name(pc, mode)
    if (f.key_confidence or 0) >= FIRM_KEY_CONFIDENCE:
        return _Fill("firm", {"key": key, "alt_key": ""}, StatedFacts(key=key))
    alt = _relative(key)  # grounding accepts a hedged relative key, nothing else
    return _Fill("hedged", {"key": key, "alt_key": alt}, StatedFacts(key=key, key_alt=alt))


def _fill_key_choice(clip: Clip, f: ClipFeatures, seed: int) -> _Fill | None:
    if f.key is None or (f.key_confidence or 0) < FIRM_KEY_CONFIDENCE:
        return None
    pc, mode = parse_key(f.key)
    key = key_name(pc, mode)
    options = _shuffled([key, *key_distractors(key)], seed, clip.clip_id, "key_choice")
    return _Fill("answer", {"key": key, "options": join_words(options, conj="or")},
                 StatedFacts(key=key))


def _fill_key_mode(clip: Clip, f: ClipFeatures, seed: int) -> _Fill | None:
    if f.key is None or (f.key_confidence or 0) < FIRM_KEY_CONFIDENCE:
        return None
    pc, mode = parse_key(f.key)
    asked = ("major", "minor")[_hash(seed, clip.clip_id, "key_mode") % 2]
    return _Fill("yes" if asked == mode else "no",
                 {"key": key_name(pc, mode), "asked_mode": asked, "mode": mode},
                 StatedFacts(key=key_name(pc, mode)))


# --------------------------------------------------------------------------- chords


def _bar_chords(f: ClipFeatures) -> list[str]:
    """The chord (Harte) filling at least half of each bar, bar by bar ("" when none does)."""
    downbeats = list(f.downbeats)
    if len(downbeats) < 2 or not f.chords:
        return []
    bars = list(itertools.pairwise(downbeats))
    out = []
    for start, end in bars:
        cover: Counter[str] = Counter()
        for c in f.chords:
            overlap = min(end, c.end_s) - max(start, c.start_s)
            if overlap > 0 and c.label not in ("N", "X"):
                cover[c.label] += overlap
        best = cover.most_common(1)
        out.append(best[0][0] if best and best[0][1] >= BAR_CHORD_SHARE * (end - start) else "")
    return out


def _progression(f: ClipFeatures) -> list[str]:
    bars = _bar_chords(f)[:PROGRESSION_BARS]
    if len(bars) < PROGRESSION_BARS or "" in bars:
        return []
    return bars


def _spelled(labels: Sequence[str], key: str | None) -> list[str]:
    """Chord names for text: roots spelled by scale degree in the key where diatonic."""
    out = []
    for label in labels:
        parsed = parse_chord(label)
        name = spell_in_key(parsed[0], key=_display_key(key)) if parsed and key else None
        text = spell_chord(label, key=key)
        out.append(f"{name} {text.split(' ', 1)[1]}" if name and " " in text else text)
    return out


def _display_key(key: str) -> str:
    pc, mode = parse_key(key)
    return key_name(pc, mode)


def _fill_chords_progression(clip: Clip, f: ClipFeatures, seed: int) -> _Fill | None:
    bars = _progression(f)
    if not bars:
        return None
    return _Fill("answer", {"progression": " – ".join(_spelled(bars, f.key)),
                            "bars": len(bars)},
                 StatedFacts(chords=list(dict.fromkeys(bars))))


def _common_chords(f: ClipFeatures) -> list[str]:
    total: Counter[str] = Counter()
    for c in f.chords:
        if c.label not in ("N", "X"):
            total[c.label] += c.end_s - c.start_s
    return [label for label, s in total.most_common(3) if s >= MIN_CHORD_TOTAL_S]


def _fill_chords_common(clip: Clip, f: ClipFeatures, seed: int) -> _Fill | None:
    common = _common_chords(f)
    if len(common) < 2:
        return None
    return _Fill("answer", {"chords": join_words(_spelled(common, f.key))},
                 StatedFacts(chords=common))


def _fill_chords_roman(clip: Clip, f: ClipFeatures, seed: int) -> _Fill | None:
    bars = _progression(f)
    if not bars or f.key is None or (f.key_confidence or 0) < FIRM_KEY_CONFIDENCE:
        return None
    numerals = [roman_numeral(b, key=f.key) for b in bars]
    if any(n is None for n in numerals):
        return None
    pc, mode = parse_key(f.key)
    key = key_name(pc, mode)
    return _Fill("answer", {"numerals": " – ".join(n for n in numerals if n), "key": key,
                            "progression": " – ".join(_spelled(bars, f.key))},
                 StatedFacts(key=key, chords=list(dict.fromkeys(bars))))


def _fill_harmonic_rhythm(clip: Clip, f: ClipFeatures, seed: int) -> _Fill | None:
    bars = [b for b in _bar_chords(f) if b]
    if len(bars) < PROGRESSION_BARS or len(f.downbeats) < 2:
        return None
    changes = sum(1 for a, b in itertools.pairwise(bars) if a != b)
    per_bar = changes / (len(bars) - 1)
    bar_s = (f.downbeats[-1] - f.downbeats[0]) / (len(f.downbeats) - 1)
    if per_bar >= 0.8:
        variant, seconds = "every_bar", bar_s
    elif per_bar >= 0.35:
        variant, seconds = "every_two_bars", 2 * bar_s
    else:
        variant, seconds = "slow", None
    return _Fill(variant, {"seconds": f"{seconds:.1f}" if seconds else ""},
                 StatedFacts(meter=f.meter))


# --------------------------------------------------------------------------- loudness, length


def loudness_word(lufs: float) -> str:
    """BS.1770 integrated loudness in words (streaming masters sit near −14 LUFS)."""
    if lufs < -35:
        return "very quiet"
    if lufs < -25:
        return "quiet"
    if lufs < -16:
        return "moderately loud"
    if lufs < -10:
        return "loud"
    return "very loud"


def _fill_loudness(clip: Clip, f: ClipFeatures, seed: int) -> _Fill | None:
    if f.loudness_lufs is None:
        return None
    return _Fill("answer", {"level": loudness_word(f.loudness_lufs),
                            "lufs": f"{f.loudness_lufs:.0f}"},
                 StatedFacts(loudness_lufs=round(f.loudness_lufs, 1)))


def _fill_duration(clip: Clip, f: ClipFeatures, seed: int) -> _Fill | None:
    if f.duration_s is None or f.duration_s < 1:
        return None
    return _Fill("answer", {"seconds": f"{f.duration_s:.0f}"},
                 StatedFacts(duration_s=round(f.duration_s, 1)))


# --------------------------------------------------------------------------- labels

_INSTRUMENT = re.compile(
    r"\b(?:bass guitar|double bass|electric guitar|acoustic guitar|drum kit|drum machine|"
    r"string ensemble|string section|brass section|"
    r"piano|guitars?|bass|drums?|percussion|synth\w*|strings?|violins?|viola|cello|"
    r"double bass|organ|keyboards?|flute|clarinet|oboe|bassoon|sax\w*|trumpet|trombone|horns?|"
    r"tuba|harp|harpsichord|accordion|banjo|mandolin|ukulele|sitar|tabla|marimba|xylophone|"
    r"vibraphone|glockenspiel|bells?|choir|quartet|ensemble|orchestra|brass|woodwinds?|"
    r"harmonica|electric guitar|acoustic guitar|beatbox|sampler|808|hi-?hats?|cymbals?|"
    r"snare|kick)\b", re.I)
_VOCAL = re.compile(r"\b(?:vocals?|voice|vocalist|singer|singing|sung|choir|rap(?:per|ping)?)\b",
                    re.I)
_NO_VOCALS = re.compile(r"^(?:no vocals?|no voice|no singing|instrumental)$", re.I)
_MOODS = MOOD_WORDS
_GENRES = frozenset([
    "acoustic", "ambient", "baroque", "blues", "bluegrass", "classical", "country", "dance",
    "disco", "drum-and-bass", "dubstep", "edm", "electronic", "experimental", "folk", "funk",
    "gospel", "grunge", "hip-hop", "house", "indie", "jazz", "latin", "metal", "new-age",
    "opera", "pop", "punk", "r&b", "rap", "reggae", "rock", "romantic", "soul", "soundtrack",
    "swing", "techno", "trance", "world", "chamber", "orchestral"
])
#: Coarse families for multiple-choice genre distractors: never offer a relative of a label.
_GENRE_FAMILIES: tuple[frozenset[str], ...] = tuple(frozenset(s.split()) for s in (
    "classical baroque romantic opera chamber orchestral", "hip-hop rap", "metal rock punk grunge",
    "electronic techno house trance edm dance dubstep drum-and-bass", "jazz blues swing soul funk",
    "folk country bluegrass acoustic", "pop indie", "reggae", "ambient new-age",
))
_DISTRACTOR_GENRES = ("classical", "hip hop", "metal", "techno", "jazz", "country", "reggae")
_GM_SUFFIX = re.compile(r"\s+\d+$")


def _norm_label(label: str) -> str:
    return " ".join(label.lower().replace("_", " ").split())


#: One word that may stay in front of an instrument's name ("electric guitar").
_INSTRUMENT_ADJECTIVE = re.compile(
    r"(?:(?:acoustic|electric|bass|upright|grand|distorted|lead|rhythm|steel|classical|slide|"
    r"muted|string|snare|kick|synth|electronic|pipe|church|hammond|rhodes|12-string|"
    r"nylon|fretless|tenor|alto|soprano|baritone|french|tubular|hand)\s+)?", re.I)


def instruments(clip: Clip) -> list[str]:
    """Instruments the labels name: the instrument fields, then each tag's instrument noun
    with at most one qualifying word ("trumpet flourish" → trumpet, "distorted electric
    guitar" → electric guitar), never a vocal, a genre or a negated tag ("no drums")."""
    out: dict[str, None] = {}
    for label in clip.instruments:
        name = _GM_SUFFIX.sub("", _norm_label(label))  # MusicNet: GM names "string ensemble 1"
        if name and not _VOCAL.search(name):
            out.setdefault(name, None)
    for label in (*clip.aspects, *clip.tags):
        name = _norm_label(label)
        if name.startswith("no ") or _VOCAL.search(name) or name in _GENRES:
            continue
        m = _INSTRUMENT.search(name)
        if m is None:
            continue
        prefix = name[:m.start()].split()[-1:] if m.start() else []
        noun = m.group(0)
        if prefix and _INSTRUMENT_ADJECTIVE.fullmatch(prefix[0] + " "):
            noun = f"{prefix[0]} {noun}"
        if not any(noun in k or k in noun for k in out):
            out.setdefault(noun, None)
    return list(out)


def genres(clip: Clip) -> list[str]:
    """Genres the labels name (``Instrumental`` is not a genre)."""
    labels = [*clip.genres, *(a for a in (*clip.aspects, *clip.tags)
                              if _norm_label(a).replace(" ", "-") in _GENRES)]
    out: dict[str, None] = {}
    for label in labels:
        name = _norm_label(label)
        if name and name not in ("instrumental", "vocal"):
            out.setdefault(name, None)
    return list(out)


def moods(clip: Clip) -> list[str]:
    out: dict[str, None] = {}
    for label in (*clip.moods, *clip.aspects, *clip.tags):
        name = _norm_label(label)
        if name in _MOODS or label in clip.moods:
            out.setdefault(name, None)
    return list(out)


def vocals(clip: Clip) -> bool | None:
    """True / False when the labels say so without contradicting themselves, else None."""
    labels = [_norm_label(x) for x in (*clip.aspects, *clip.tags, *clip.genres,
                                       *clip.instruments)]
    attr = {v.lower() for v in clip.vocals}
    none = attr == {"none"} or any(_NO_VOCALS.match(x) for x in labels)
    some = bool(attr - {"none"}) or any(
        _VOCAL.search(x) and not x.startswith("no ") for x in labels)
    if none and not some:
        return False
    if some and not none:
        return True
    return None


def _fill_instruments_open(clip: Clip, f: ClipFeatures | None, seed: int) -> _Fill | None:
    names = instruments(clip)
    if not names:
        return None
    return _Fill("answer", {"instruments": join_words(names)}, StatedFacts(instruments=names))


def _fill_instrument_yes_no(clip: Clip, f: ClipFeatures | None, seed: int) -> _Fill | None:
    names = instruments(clip)
    if not names:
        return None
    name = names[_hash(seed, clip.clip_id, "instrument_yes_no") % len(names)]
    return _Fill("yes", {"instrument": name, "a_instrument": _article(name)},
                 StatedFacts(instruments=[name]))


def _fill_vocals(clip: Clip, f: ClipFeatures | None, seed: int) -> _Fill | None:
    v = vocals(clip)
    if v is None:
        return None
    return _Fill("yes" if v else "no", {}, StatedFacts(vocals=v))


def _fill_ensemble(clip: Clip, f: ClipFeatures | None, seed: int) -> _Fill | None:
    if not clip.ensemble:
        return None
    ensemble = _norm_label(clip.ensemble)
    return _Fill("answer", {"ensemble": ensemble, "an_ensemble": _article(ensemble)},
                 StatedFacts(ensemble=ensemble))


def _fill_genre_open(clip: Clip, f: ClipFeatures | None, seed: int) -> _Fill | None:
    names = genres(clip)
    if not names:
        return None
    return _Fill("answer", {"genres": join_words(names), "genre": names[0]},
                 StatedFacts(genres=names))


def _family(name: str) -> frozenset[str] | None:
    token = name.replace(" ", "-")
    return next((fam for fam in _GENRE_FAMILIES if token in fam), None)


def _fill_genre_choice(clip: Clip, f: ClipFeatures | None, seed: int) -> _Fill | None:
    names = genres(clip)
    if not names or _family(names[0]) is None:
        return None
    taken = {_family(n) for n in names}
    pool = [g for g in _DISTRACTOR_GENRES if _family(g) not in taken]
    if len(pool) < 2:
        return None
    start = _hash(seed, clip.clip_id, "genre_choice") % len(pool)
    picks = [pool[start], pool[(start + 1 + len(pool) // 2) % len(pool)]]
    if picks[0] == picks[1]:
        picks[1] = pool[(start + 1) % len(pool)]
    options = _shuffled([names[0], *picks], seed, clip.clip_id, "genre_options")
    return _Fill("answer", {"genre": names[0], "options": join_words(options, conj="or")},
                 StatedFacts(genres=[names[0]]))


def _fill_mood(clip: Clip, f: ClipFeatures | None, seed: int) -> _Fill | None:
    names = moods(clip)
    if not names:
        return None
    return _Fill("answer", {"moods": join_words(names)}, StatedFacts(moods=names))


def _fill_description(clip: Clip, f: ClipFeatures | None, seed: int) -> _Fill | None:
    caption = " ".join((clip.caption or "").split())
    if len(caption.split()) < 8:
        return None
    if not caption.endswith((".", "!", "?")):
        caption += "."
    return _Fill("answer", {"caption": caption}, StatedFacts(caption=True))


def _fill_aspects(clip: Clip, f: ClipFeatures | None, seed: int) -> _Fill | None:
    aspects = [_norm_label(a) for a in clip.aspects]
    if len(aspects) < 3:
        return None
    return _Fill("answer", {"aspects": join_words(aspects)}, StatedFacts(aspects=aspects))


def _shuffled(items: Sequence[Any], seed: int, clip_id: str, topic: str) -> list[Any]:
    return sorted(items, key=lambda x: _hash(seed, clip_id, topic, x))


_Filler = Callable[[Clip, ClipFeatures, int], _Fill | None]
#: Topic → (filler, needs measured features, slots its sentences may use).
_TOPICS: dict[str, tuple[_Filler, bool, frozenset[str]]] = {
    "tempo_open": (_fill_tempo_open, True, frozenset({"bpm", "alt_bpm"})),
    "tempo_choice": (_fill_tempo_choice, True, frozenset({"bpm", "options"})),
    "tempo_yes_no": (_fill_tempo_yes_no, True, frozenset({"bpm", "threshold"})),
    "meter_open": (_fill_meter_open, True, frozenset({"beats", "signature", "feel"})),
    "meter_choice": (_fill_meter_choice, True, frozenset({"beats", "signature"})),
    "key_open": (_fill_key_open, True, frozenset({"key", "alt_key"})),
    "key_choice": (_fill_key_choice, True, frozenset({"key", "options"})),
    "key_mode": (_fill_key_mode, True, frozenset({"key", "asked_mode", "mode"})),
    "chords_progression": (_fill_chords_progression, True, frozenset({"progression", "bars"})),
    "chords_common": (_fill_chords_common, True, frozenset({"chords"})),
    "chords_roman": (_fill_chords_roman, True, frozenset({"numerals", "key", "progression"})),
    "harmonic_rhythm": (_fill_harmonic_rhythm, True, frozenset({"seconds"})),
    "loudness": (_fill_loudness, True, frozenset({"level", "lufs"})),
    "duration": (_fill_duration, True, frozenset({"seconds"})),
    "instruments_open": (_fill_instruments_open, False, frozenset({"instruments"})),
    "instrument_yes_no": (_fill_instrument_yes_no, False,
                          frozenset({"instrument", "a_instrument"})),
    "vocals": (_fill_vocals, False, frozenset()),
    "ensemble": (_fill_ensemble, False, frozenset({"ensemble", "an_ensemble"})),
    "genre_open": (_fill_genre_open, False, frozenset({"genres", "genre"})),
    "genre_choice": (_fill_genre_choice, False, frozenset({"genre", "options"})),
    "mood": (_fill_mood, False, frozenset({"moods"})),
    "description": (_fill_description, False, frozenset({"caption"})),
    "aspects": (_fill_aspects, False, frozenset({"aspects"})),
}
_SLOTS = {name: slots for name, (_, _, slots) in _TOPICS.items()}


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def render_fact_pairs(clip: Clip, features: ClipFeatures | None, *, book: Phrasebook,
                      seed: int = 0) -> list[FactPair]:
    """Every facts pair the clip supports, in phrasebook topic order.

    Topics needing measurements are skipped when the clip was not measured ``ok``; a topic
    whose answer variant the phrasebook lacks is skipped too (a curator may drop one).

    Returns
    -------
    list[FactPair]
        Deterministic for (clip, features, phrasebook, seed).
    """
    measured = features is not None and features.status is FeatureStatus.ok
    out = []
    for name, topic in book.topics.items():
        filler, needs_features, _ = _TOPICS[name]
        if needs_features and not measured:
            continue
        fill = filler(clip, features, seed)  # type: ignore[arg-type]
        if fill is None or not topic.answers.get(fill.variant):
            continue
        answers = topic.answers[fill.variant]
        h = _hash(seed, clip.clip_id, name)
        question = topic.questions[h % len(topic.questions)].format(**fill.slots)
        answer = answers[(h // 7919) % len(answers)].format(**fill.slots)
        out.append(FactPair(topic=name, kind=topic.kind, form=topic.form,
                            question=_capitalise(question.strip()),
                            answer=_capitalise(" ".join(answer.split())), facts=fill.facts))
    return out


def _same_key(a: str, b: str) -> bool:
    try:
        return parse_key(a) == parse_key(b)
    except (KeyError, ValueError):
        return False


def _chord_set(f: ClipFeatures) -> set[tuple[int, str]]:
    out = set()
    for c in f.chords:
        try:
            parsed = parse_chord(c.label)
        except KeyError:
            continue
        if parsed is not None:
            out.add(parsed)
    return out


def verify_facts(facts: StatedFacts, *, clip: Clip, features: ClipFeatures | None) -> bool:
    """Check every stated fact against the clip's current measurements and labels.

    Why: facts pairs are right by construction when written, but a pair outlives the run
    that made it (a re-augment, an edited paraphrase); this re-check is what the card's
    "verified" share counts. Tempo within 4 % (the hedged other octave too), keys by pitch
    class and mode, meter exactly, chords among those measured, labels among the clip's.
    """
    if facts.is_empty():
        return False
    f = features if features is not None and features.status is FeatureStatus.ok else None
    measured = (facts.tempo_bpm, facts.key, facts.meter, facts.chords, facts.loudness_lufs,
                facts.duration_s)
    if f is None and any(v not in (None, []) for v in measured):
        return False
    checks: list[bool] = []
    if f is not None:
        if facts.tempo_bpm is not None:
            checks.append(f.tempo_bpm is not None
                          and abs(facts.tempo_bpm / f.tempo_bpm - 1) <= 0.04)
        if facts.key is not None:
            checks.append(f.key is not None and _same_key(facts.key, f.key))
        if facts.meter is not None:
            checks.append(f.meter == facts.meter)
        if facts.chords:
            measured_chords = _chord_set(f)
            checks.append(all(parse_chord(c) in measured_chords for c in facts.chords))
        if facts.loudness_lufs is not None:
            checks.append(f.loudness_lufs is not None
                          and abs(f.loudness_lufs - facts.loudness_lufs) <= 0.5)
        if facts.duration_s is not None:
            checks.append(f.duration_s is not None and abs(f.duration_s - facts.duration_s) <= 0.5)
    if facts.instruments:
        checks.append(set(facts.instruments) <= set(instruments(clip)))
    if facts.genres:
        checks.append(set(facts.genres) <= set(genres(clip)))
    if facts.moods:
        checks.append(set(facts.moods) <= set(moods(clip)))
    if facts.vocals is not None:
        checks.append(vocals(clip) is facts.vocals)
    if facts.ensemble is not None:
        checks.append(_norm_label(clip.ensemble or "") == facts.ensemble)
    if facts.aspects:
        checks.append(set(facts.aspects) <= {_norm_label(a) for a in clip.aspects})
    if facts.caption:
        checks.append(bool(clip.caption))
    return bool(checks) and all(checks)


def clip_words(clip: Clip, features: ClipFeatures | None) -> list[str]:
    """What is known of a clip, as text: what an answer may be specific about (the gate)."""
    words = [*clip.aspects, *clip.tags, *clip.genres, *clip.instruments, *clip.moods,
             clip.caption or "", clip.ensemble or "", *instruments(clip)]
    if vocals(clip):
        words.append("vocals")
    if features is not None and features.status is FeatureStatus.ok:
        words += [features.key or "", *(c.spelled for c in features.chords)]
        if features.meter:
            words += [_METER_WORDS.get(features.meter, ""), _METER_FEEL.get(features.meter, "")]
    return [w for w in words if w]
