"""MusicNet: 330 freely licensed classical recordings with aligned note labels (≈34 hours).

Origin: Thickstun, Harchaoui and Kakade 2017. Released as ``musicnet_metadata.csv`` (columns
``id,composer,composition,movement,ensemble,source,transcriber,catalog_name,seconds``, CRLF
line ends, UTF-8 with a few curly quotes) plus 44.1 kHz mono wav files in ``train_data/`` (320
recordings) and ``test_data/`` (10), and one label csv per recording in ``train_labels/`` /
``test_labels/`` with the header ``start_time,end_time,instrument,note,start_beat,end_beat,
note_value``. Audio is from public-domain or CC recordings (European Archive, Musopen, …);
labels come from scores aligned by dynamic time warping (the authors estimate a 4 % error rate).
Data license: CC BY 4.0.

Known quirks, each handled here:

- ``start_time``/``end_time`` are sample indices at 44.1 kHz, not seconds.
- ``instrument`` is the General MIDI program numbered from 1 (1 piano, 7 harpsichord,
  41 violin, 42 viola, 43 cello, 44 contrabass, 61 horn, 69 oboe, 71 bassoon, 72 clarinet,
  74 flute: the eleven instruments MusicNet uses).
- ``end_beat`` is the note's *duration* in beats, despite its name.
- The split is only given by the folder a file sits in. A metadata-only copy falls back to the
  public test set (:data:`TEST_IDS`); ``attributes["split_from"]`` says which rule decided.
- ``seconds`` is rounded to whole seconds, so crops near the end may run slightly past the audio.
- Some copies (e.g. the 320-row one in iferco/DTWMatcher) leave out ten recordings.

Without a labels file the instruments come from a small table keyed by the ``ensemble`` name
(``attributes["instruments_from"] = "ensemble"``), which is the usual instrumentation of that
ensemble, not a transcription; an ensemble missing from the table gives no instruments
(``"none"``).
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from qagen.errors import SourceFormatError, UnsafePathError
from qagen.paths import safe_join, safe_relpath
from qagen.records import Clip, Rejection, Split
from qagen.records.demo import DemoClip, NoteEvent
from qagen.records.rejection import IngestReason
from qagen.tabular import Row, iter_rows

logger = logging.getLogger(__name__)

NAME = "musicnet"
HOMEPAGE = "https://zenodo.org/records/5120004"
LICENSE = "CC-BY-4.0"
CITATION = (
    "Thickstun, Harchaoui and Kakade, Learning Features of Music from Scratch, ICLR 2017, "
    "arXiv:1611.09827."
)
SR = 44100
METADATA_COLUMNS = (
    "id", "composer", "composition", "movement", "ensemble", "source", "transcriber",
    "catalog_name", "seconds",
)
_REQUIRED_METADATA = ("id", "composer", "composition", "movement", "ensemble", "seconds")
LABEL_COLUMNS = (
    "start_time", "end_time", "instrument", "note", "start_beat", "end_beat", "note_value",
)
_REQUIRED_LABELS = ("start_time", "end_time", "instrument", "note")

#: The public test split: the ten recordings of ``test_data/`` in the official release.
TEST_IDS = frozenset(
    {"1759", "1819", "2106", "2191", "2298", "2303", "2382", "2416", "2556", "2628"}
)
#: Demo recordings get ids from here up, far above MusicNet's real ids (1727–2678).
DEMO_FIRST_ID = 9001

#: General MIDI level 1 program names; index 0 is program 1 (MusicNet's numbering).
GM_PROGRAM_NAMES = (
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet",
    "Celesta", "Glockenspiel", "Music Box", "Vibraphone",
    "Marimba", "Xylophone", "Tubular Bells", "Dulcimer",
    "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ",
    "Reed Organ", "Accordion", "Harmonica", "Tango Accordion",
    "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)",
    "Electric Guitar (clean)",
    "Electric Guitar (muted)", "Overdriven Guitar", "Distortion Guitar", "Guitar Harmonics",
    "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass",
    "Slap Bass 1", "Slap Bass 2", "Synth Bass 1", "Synth Bass 2",
    "Violin", "Viola", "Cello", "Contrabass",
    "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani",
    "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2",
    "Choir Aahs", "Voice Oohs", "Synth Choir", "Orchestra Hit",
    "Trumpet", "Trombone", "Tuba", "Muted Trumpet",
    "French Horn", "Brass Section", "Synth Brass 1", "Synth Brass 2",
    "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax",
    "Oboe", "English Horn", "Bassoon", "Clarinet",
    "Piccolo", "Flute", "Recorder", "Pan Flute",
    "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)",
    "Lead 5 (charang)", "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
    "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)",
    "Pad 5 (bowed)", "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)",
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)",
    "FX 5 (brightness)", "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)",
    "Sitar", "Banjo", "Shamisen", "Koto",
    "Kalimba", "Bagpipe", "Fiddle", "Shanai",
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock",
    "Taiko Drum", "Melodic Tom", "Synth Drum", "Reverse Cymbal",
    "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet",
    "Telephone Ring", "Helicopter", "Applause", "Gunshot",
)

#: Plain names for MusicNet's eleven programs (1-based), matching :data:`ENSEMBLE_INSTRUMENTS`.
_COMMON_NAMES = {
    1: "piano", 7: "harpsichord", 41: "violin", 42: "viola", 43: "cello", 44: "contrabass",
    61: "horn", 69: "oboe", 71: "bassoon", 72: "clarinet", 74: "flute",
}

#: Usual instrumentation of each ``ensemble`` value in the metadata (used without labels).
ENSEMBLE_INSTRUMENTS: dict[str, tuple[str, ...]] = {
    "Solo Piano": ("piano",),
    "Solo Violin": ("violin",),
    "Solo Cello": ("cello",),
    "Solo Flute": ("flute",),
    "String Quartet": ("violin", "viola", "cello"),
    "String Sextet": ("violin", "viola", "cello"),
    "Viola Quintet": ("violin", "viola", "cello"),
    "Piano Trio": ("piano", "violin", "cello"),
    "Piano Quartet": ("piano", "violin", "viola", "cello"),
    "Piano Quintet": ("piano", "violin", "viola", "cello"),
    "Accompanied Violin": ("violin", "piano"),
    "Accompanied Cello": ("cello", "piano"),
    "Accompanied Clarinet": ("clarinet", "piano"),
    "Violin and Harpsichord": ("violin", "harpsichord"),
    "Horn Piano Trio": ("horn", "violin", "piano"),
    "Clarinet-Cello-Piano Trio": ("clarinet", "cello", "piano"),
    "Clarinet Quintet": ("clarinet", "violin", "viola", "cello"),
    "Wind Quintet": ("flute", "oboe", "clarinet", "bassoon", "horn"),
    "Wind Octet": ("oboe", "clarinet", "bassoon", "horn"),
    "Pairs Clarinet-Horn-Bassoon": ("clarinet", "horn", "bassoon"),
    "Wind and Strings Octet": (
        "flute", "clarinet", "bassoon", "horn", "violin", "viola", "cello", "contrabass",
    ),
}

_NOTE_VALUES = {
    1.0: "Quarter", 0.5: "Eighth", 2.0: "Half", 4.0: "Whole", 3.0: "Dotted Half",
    1.5: "Dotted Quarter",
}
_PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


class Options(BaseModel):
    """How to cut recordings into clips and where the metadata lives."""

    model_config = ConfigDict(extra="forbid")
    metadata_name: str = "musicnet_metadata.csv"
    crop_s: float | None = Field(
        default=None, gt=0,
        description="Cut each recording into windows of this length (None: one whole-file clip).",
    )
    hop_s: float | None = Field(
        default=None, gt=0, description="Distance between window starts (default: crop_s)."
    )
    min_crop_s: float | None = Field(
        default=None, gt=0,
        description="Keep a last, shorter window only if at least this long (default: crop_s/2).",
    )

    @model_validator(mode="after")
    def _crop_settings(self) -> Options:
        if self.crop_s is None and (self.hop_s is not None or self.min_crop_s is not None):
            raise ValueError("hop_s and min_crop_s need crop_s")
        if self.crop_s and self.min_crop_s and self.min_crop_s > self.crop_s:
            raise ValueError(f"min_crop_s ({self.min_crop_s}) exceeds crop_s ({self.crop_s})")
        return self


@dataclass(frozen=True, slots=True)
class Notes:
    """A recording's valid label rows as parallel arrays (times in seconds, 1-based programs)."""

    start_s: np.ndarray
    end_s: np.ndarray
    program: np.ndarray
    pitch: np.ndarray

    def window(self, start_s: float, end_s: float | None) -> Notes:
        """Notes sounding at some point in ``[start_s, end_s)`` (``None``: to the end)."""
        keep = self.end_s > start_s
        if end_s is not None:
            keep &= self.start_s < end_s
        return Notes(self.start_s[keep], self.end_s[keep], self.program[keep], self.pitch[keep])


def instrument_name(program: int) -> str:
    """Name of a General MIDI program numbered from 1, as MusicNet numbers it.

    MusicNet's own eleven instruments get plain names (``violin``, ``horn``) so labels and the
    ensemble table agree; any other program gets its lower-cased GM name.

    Raises
    ------
    ValueError
        If ``program`` is outside 1–128.
    """
    if not 1 <= program <= len(GM_PROGRAM_NAMES):
        raise ValueError(f"General MIDI program {program} is outside 1-128")
    return _COMMON_NAMES.get(program, GM_PROGRAM_NAMES[program - 1].lower())


def note_value_name(duration_beats: float) -> str:
    """MusicNet's ``note_value`` text for a duration in beats (``Unknown`` when not listed)."""
    return _NOTE_VALUES.get(round(float(duration_beats), 6), "Unknown")


def _pitch_name(pitch: int) -> str:
    return f"{_PITCH_CLASSES[pitch % 12]}{pitch // 12 - 1}"


def _rel(folder: str, rid: str, suffix: str) -> str:
    """``<folder>/<id><suffix>``, refusing ids that would leave the folder."""
    if "/" in rid or "\\" in rid or rid in {".", ".."}:
        raise UnsafePathError(f"recording id is not a plain file stem: {rid!r}")
    return safe_relpath(f"{folder}/{rid}{suffix}")


def _is_file(root: Path, rel: str) -> bool:
    try:
        return safe_join(root, rel).is_file()
    except UnsafePathError:
        return False


def _locate(root: Path, rid: str) -> tuple[Split, str, str, str | None]:
    """Decide split, audio path and labels path of one recording.

    Returns
    -------
    tuple
        ``(split, split_from, audio_relpath, labels_relpath or None)``.

    Raises
    ------
    UnsafePathError
        If the id cannot be a file stem.
    """
    audio = {s: _rel(f"{s}_data", rid, ".wav") for s in ("train", "test")}
    labels = {s: _rel(f"{s}_labels", rid, ".csv") for s in ("train", "test")}
    have_audio = [s for s in ("train", "test") if _is_file(root, audio[s])]
    have_labels = [s for s in ("train", "test") if _is_file(root, labels[s])]
    if have_audio:
        split, split_from = have_audio[0], "audio_folder"
    elif have_labels:
        split, split_from = have_labels[0], "labels_folder"
    else:
        split, split_from = ("test" if rid in TEST_IDS else "train"), "standard_test_ids"
    label_split = split if split in have_labels else (have_labels[0] if have_labels else None)
    return (Split(split), split_from, audio[split],
            labels[label_split] if label_split else None)


def load_labels(path: Path, *, display_name: str) -> tuple[Notes | None, list[Rejection]]:
    """Read one MusicNet label csv; bad rows become rejections and the rest is kept.

    Why not fail the file: one garbled row out of thousands should cost that note, not the
    recording's instrument labels.

    Parameters
    ----------
    display_name
        How rejections name the file (e.g. ``train_labels/1727.csv``).

    Returns
    -------
    tuple[Notes | None, list[Rejection]]
        Notes with times converted from 44.1 kHz sample indices to seconds; ``None`` when
        the file holds no usable note (bad header, every row bad, or empty), so the caller
        falls back to the ensemble table rather than claiming silence.
    """
    rejections: list[Rejection] = []

    def rej(line: int, reason: IngestReason, detail: str) -> Rejection:
        return Rejection(stage="ingest", source=NAME, item_id=f"{display_name}:{line}",
                         reason=reason, detail=f"{display_name} line {line}: {detail}",
                         file=display_name, line=line)

    rows: list[tuple[int, int, int, int]] = []
    col: dict[str, int] | None = None
    width = 0
    for item in iter_rows(path, stage="ingest", source=NAME, display_name=display_name):
        if isinstance(item, Rejection):
            rejections.append(item)
            continue
        if col is None:
            header = [h.strip() for h in item.fields]
            missing = [c for c in _REQUIRED_LABELS if c not in header]
            if missing:
                rejections.append(rej(item.line, IngestReason.malformed_row,
                                      f"header lacks columns {missing}; labels not used"))
                return None, rejections
            col = {c: header.index(c) for c in _REQUIRED_LABELS}
            width = len(header)
            continue
        f = item.fields
        if len(f) != width:
            rejections.append(rej(item.line, IngestReason.malformed_row,
                                  f"{len(f)} fields, expected {width}"))
            continue
        try:
            start, end, program, pitch = (int(f[col[c]].strip()) for c in _REQUIRED_LABELS)
        except ValueError as exc:
            rejections.append(rej(item.line, IngestReason.malformed_row, str(exc)))
            continue
        if start < 0 or end <= start:
            rejections.append(rej(item.line, IngestReason.invalid_value,
                                  f"note ends (sample {end}) before it starts (sample {start})"))
        elif not 1 <= program <= len(GM_PROGRAM_NAMES):
            rejections.append(rej(item.line, IngestReason.invalid_value,
                                  f"instrument {program} is not a GM program 1-128"))
        elif not 0 <= pitch <= 127:
            rejections.append(rej(item.line, IngestReason.invalid_value,
                                  f"note {pitch} is not a MIDI pitch 0-127"))
        else:
            rows.append((start, end, program, pitch))
    if not rows:
        return None, rejections
    table = np.asarray(rows, dtype=np.int64)
    notes = Notes(start_s=table[:, 0] / SR, end_s=table[:, 1] / SR,
                  program=table[:, 2], pitch=table[:, 3])
    return notes, rejections


def _label_fields(notes: Notes) -> tuple[list[str], dict[str, str]]:
    """Instruments by note count (most first) and note statistics of a window."""
    counts = Counter(int(p) for p in notes.program)
    order = sorted(counts, key=lambda p: (-counts[p], p))
    attrs = {"n_notes": str(len(notes.pitch)),
             "gm_programs": ",".join(str(p) for p in order)}
    if len(notes.pitch):
        lo, hi = int(notes.pitch.min()), int(notes.pitch.max())
        attrs["note_range"] = f"{_pitch_name(lo)}-{_pitch_name(hi)}"
        attrs["note_range_midi"] = f"{lo}-{hi}"
    return [instrument_name(p) for p in order], attrs


def _windows(seconds: float, options: Options) -> list[tuple[float, float | None]]:
    """Clip windows over a recording: the whole file, or crops of ``crop_s`` every ``hop_s``."""
    if options.crop_s is None:
        return [(0.0, None)]
    crop = options.crop_s
    hop = options.hop_s or crop
    min_len = options.min_crop_s if options.min_crop_s is not None else crop / 2
    out: list[tuple[float, float | None]] = []
    k = 0
    while (start := round(k * hop, 6)) < seconds:
        end = min(start + crop, seconds)
        if end - start >= min_len - 1e-9:
            out.append((start, round(end, 6)))
        if start + crop >= seconds:
            break
        k += 1
    return out


def _recording_clips(
    root: Path, row: Row, col: dict[str, int], options: Options, name: str
) -> Iterator[Clip | Rejection]:
    f = row.fields

    def rej(reason: IngestReason, detail: str) -> Rejection:
        return Rejection(stage="ingest", source=NAME, item_id=f"{name}:{row.line}",
                         reason=reason, detail=f"{name} line {row.line}: {detail}",
                         file=name, line=row.line)

    def text(column: str) -> str:
        return f[col[column]].strip() if column in col else ""

    rid = text("id")
    if not rid:
        yield rej(IngestReason.missing_field, "empty id")
        return
    try:
        seconds = float(text("seconds"))
    except ValueError as exc:
        yield rej(IngestReason.malformed_row, f"seconds: {exc}")
        return
    if not seconds > 0:
        yield rej(IngestReason.invalid_value, f"seconds {seconds:g} is not positive")
        return
    try:
        split, split_from, audio_path, labels_rel = _locate(root, rid)
    except UnsafePathError as exc:
        yield rej(IngestReason.unsafe_path, str(exc))
        return
    ensemble = text("ensemble")
    notes: Notes | None = None
    if labels_rel is not None:
        notes, rejections = load_labels(safe_join(root, labels_rel), display_name=labels_rel)
        yield from rejections
    base = {
        "catalog_name": text("catalog_name"), "source": text("source"),
        "transcriber": text("transcriber"), "seconds": f"{seconds:g}", "split_from": split_from,
        "instruments_from": (
            "labels" if notes is not None
            else "ensemble" if ensemble in ENSEMBLE_INSTRUMENTS else "none"
        ),
    }
    if labels_rel is not None:
        base["labels_path"] = labels_rel
    for start, end in _windows(seconds, options):
        attrs = dict(base)
        if notes is None:
            instruments = list(ENSEMBLE_INSTRUMENTS.get(ensemble, ()))
        else:
            instruments, stats = _label_fields(notes.window(start, end))
            attrs.update(stats)
        yield Clip(
            clip_id=Clip.make_id(NAME, rid, start, end), source=NAME, source_id=rid,
            audio_path=audio_path, start_s=start, end_s=end, split=split, license=LICENSE,
            genres=["classical"], instruments=instruments,
            composer=text("composer") or None, composition=text("composition") or None,
            movement=text("movement") or None, ensemble=ensemble or None,
            attributes={k: v for k, v in attrs.items() if v},
        )


def iter_clips(root: Path, *, options: Options) -> Iterator[Clip | Rejection]:
    """Yield the clips of every recording listed in the metadata csv.

    Each recording's labels file (when present) is read once, for its instruments and note
    statistics; audio presence is left to the ingest stage.

    Raises
    ------
    SourceFormatError
        If the metadata csv is absent or its header lacks a MusicNet column.
    """
    path = root / options.metadata_name
    if not path.is_file():
        raise SourceFormatError(f"MusicNet metadata not found: {path} (set option metadata_name)")
    col: dict[str, int] | None = None
    width = 0
    seen: set[str] = set()
    n_clips = 0
    for item in iter_rows(path, stage="ingest", source=NAME):
        if isinstance(item, Rejection):
            yield item
            continue
        if col is None:
            header = [h.strip() for h in item.fields]
            missing = [c for c in _REQUIRED_METADATA if c not in header]
            if missing:
                raise SourceFormatError(f"{path.name}: header lacks columns {missing}")
            col = {c: header.index(c) for c in METADATA_COLUMNS if c in header}
            width = len(header)
            continue
        if len(item.fields) != width:
            yield Rejection(stage="ingest", source=NAME, item_id=f"{path.name}:{item.line}",
                            reason=IngestReason.malformed_row, file=path.name, line=item.line,
                            detail=f"{path.name} line {item.line}: {len(item.fields)} fields, "
                            f"expected {width}")
            continue
        rid = item.fields[col["id"]].strip()
        if rid and rid in seen:
            yield Rejection(stage="ingest", source=NAME, item_id=f"{path.name}:{item.line}",
                            reason=IngestReason.duplicate_id, file=path.name, line=item.line,
                            detail=f"{path.name} line {item.line}: recording id {rid} repeated")
            continue
        seen.add(rid)
        for out in _recording_clips(root, item, col, options, path.name):
            n_clips += isinstance(out, Clip)
            yield out
    logger.info("musicnet: %d recordings, %d clips from %s", len(seen), n_clips, path)


def _label_rows(notes: Sequence[NoteEvent]) -> list[list[object]]:
    rows: list[list[object]] = []
    for n in sorted(notes, key=lambda n: (n.start_s, n.pitch, n.program)):
        start = round(n.start_s * SR)
        end = max(round(n.end_s * SR), start + 1)
        rows.append([start, end, n.program + 1, n.pitch, f"{n.start_beat:g}",
                     f"{n.duration_beats:g}", note_value_name(n.duration_beats)])
    return rows


def write_native(out_dir: Path, demo_clips: Sequence[DemoClip]) -> dict[str, str]:
    """Write the demo clips as a MusicNet copy: metadata csv, 44.1 kHz wavs, label csvs.

    Recording ids start at :data:`DEMO_FIRST_ID` so they can never be mistaken for real ones.
    A demo ``test`` clip goes to ``test_*``, everything else to ``train_*``. Note times become
    44.1 kHz sample indices, GM programs become 1-based and ``end_beat`` holds the duration,
    exactly as MusicNet writes them. Returns ``{demo name: clip_id}`` for the default options.
    """
    from qagen.audio import write_audio

    out_dir.mkdir(parents=True, exist_ok=True)
    ids: dict[str, str] = {}
    meta: list[list[object]] = []
    for i, demo in enumerate(demo_clips):
        rid = str(DEMO_FIRST_ID + i)
        split = "test" if demo.split == "test" else "train"
        y = np.asarray(demo.audio, dtype=np.float32)
        if demo.sr != SR and len(y):
            import soxr

            y = soxr.resample(y, demo.sr, SR).astype(np.float32, copy=False)
        write_audio(out_dir / _rel(f"{split}_data", rid, ".wav"), y, sr=SR)
        if demo.truth.notes:
            labels = out_dir / _rel(f"{split}_labels", rid, ".csv")
            labels.parent.mkdir(parents=True, exist_ok=True)
            with labels.open("w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh, lineterminator="\n")
                writer.writerow(LABEL_COLUMNS)
                writer.writerows(_label_rows(demo.truth.notes))
        meta.append([
            rid, demo.composer or "Demo Composer", demo.composition or f"Demo piece {demo.name}",
            f"1. {demo.title or demo.name}", demo.ensemble or "Demo Ensemble", "qagen demo",
            "qagen synthesiser", f"DEMO{i:03d}", max(1, round(demo.duration_s)),
        ])
        ids[demo.name] = Clip.make_id(NAME, rid, 0.0, None)
    with (out_dir / Options().metadata_name).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(METADATA_COLUMNS)
        writer.writerows(meta)
    return ids
