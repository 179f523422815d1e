"""MagnaTagATune (MTT): 25,863 clips of ~29.1 s from 5,405 Magnatune tracks, with crowd tags.

Origin: Law et al. 2009, collected with the TagATune game; tagatune.org / mirg.city.ac.uk.
Audio: 16 kHz mono mp3s of about 29.1 s, cut from Magnatune albums, stored in 16 folders
``0``–``9``, ``a``–``f`` (``mp3/<folder>/<artist>-<album>-<nn>-<title>-<start>-<end>.mp3``).
Labels: ``annotations_final.csv`` (tab-separated despite its name; every field double-quoted in
the published copy) holds ``clip_id``, 188 binary tag columns and ``mp3_path``;
``clip_info_final.csv`` (also tab-separated) gives track number, title, artist, album, Magnatune
urls and the segment's position in the track. The musicnn copy instead ships ``index_mtt.tsv``
(``clip_id<TAB>mp3_path``, no header), ``{train,val,test}_gt_mtt.tsv`` (``clip_id<TAB>[50 floats]``
for the 50 most frequent tags) and ``classes_MagnaTT.json`` (tag → column position).
Split: the standard one by folder: ``0``–``b`` train (18,709), ``c`` validation (1,825),
``d``–``f`` test (5,329). License: CC BY-NC-SA 3.0.

Known defects: clips 35644, 55753 and 57881 have empty or corrupt mp3s (kept, with
``audio_status=excluded``); the tags are noisy and contradictory (synonyms such as ``female`` /
``woman`` / ``female vocal`` are separate columns, ``no vocals`` co-occurs with ``singing``, and a
missing tag does not mean absence); ``clasical`` and ``harpsicord`` are typo columns. The
normalised ``genres`` / ``instruments`` / ``moods`` / ``vocals`` / ``absent_instruments`` /
``not_genres`` and attributes below merge the synonyms;
``tags`` keeps every positive column as given. ``attributes["tag_source"]`` names the file a
clip's tags came from: a clip without it (musicnn copies often lack ``train_gt_mtt.tsv``) is
unlabelled, which is not the same as having no positive tag.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator

from qagen import jsontext
from qagen.errors import SourceFormatError, UnsafePathError
from qagen.paths import optional_safe_relpath, safe_relpath
from qagen.records import AudioStatus, Clip, Rejection, Split
from qagen.records.demo import DemoClip
from qagen.records.rejection import IngestReason
from qagen.tabular import Row, iter_rows

NAME = "mtt"
HOMEPAGE = "https://mirg.city.ac.uk/codeapps/the-magnatagatune-dataset"
LICENSE = "CC-BY-NC-SA-3.0"
CITATION = (
    "Law, West, Mandel, Bay and Downie, Evaluation of Algorithms Using Games: The Case of "
    "Music Tagging, ISMIR 2009."
)

logger = logging.getLogger(__name__)

ANNOTATIONS_NAME = "annotations_final.csv"
CLIP_INFO_NAME = "clip_info_final.csv"
INDEX_NAME = "index_mtt.tsv"
CLASSES_NAME = "classes_MagnaTT.json"
GT_FILES = {"train_gt_mtt.tsv": Split.train, "val_gt_mtt.tsv": Split.valid,
            "test_gt_mtt.tsv": Split.test}
CLIP_INFO_COLUMNS = (
    "clip_id", "track_number", "title", "artist", "album", "url", "segmentStart",
    "segmentEnd", "original_url", "mp3_path",
)
SAMPLE_RATE = 16000

#: The 188 tag columns of ``annotations_final.csv``, in the published order.
ANNOTATION_TAGS = (
    "no voice", "singer", "duet", "plucking", "hard rock", "world", "bongos", "harpsichord",
    "female singing", "clasical", "sitar", "chorus", "female opera", "male vocal", "vocals",
    "clarinet", "heavy", "silence", "beats", "men", "woodwind", "funky", "no strings", "chimes",
    "foreign", "no piano", "horns", "classical", "female", "no voices", "soft rock", "eerie",
    "spacey", "jazz", "guitar", "quiet", "no beat", "banjo", "electric", "solo", "violins",
    "folk", "female voice", "wind", "happy", "ambient", "new age", "synth", "funk",
    "no singing", "middle eastern", "trumpet", "percussion", "drum", "airy", "voice",
    "repetitive", "birds", "space", "strings", "bass", "harpsicord", "medieval", "male voice",
    "girl", "keyboard", "acoustic", "loud", "classic", "string", "drums", "electronic",
    "not classical", "chanting", "no violin", "not rock", "no guitar", "organ", "no vocal",
    "talking", "choral", "weird", "opera", "soprano", "fast", "acoustic guitar",
    "electric guitar", "male singer", "man singing", "classical guitar", "country", "violin",
    "electro", "reggae", "tribal", "dark", "male opera", "no vocals", "irish", "electronica",
    "horn", "operatic", "arabic", "lol", "low", "instrumental", "trance", "chant", "strange",
    "drone", "synthesizer", "heavy metal", "modern", "disco", "bells", "man", "deep",
    "fast beat", "industrial", "hard", "harp", "no flute", "jungle", "pop", "lute",
    "female vocal", "oboe", "mellow", "orchestral", "viola", "light", "echo", "piano", "celtic",
    "male vocals", "orchestra", "eastern", "old", "flutes", "punk", "spanish", "sad", "sax",
    "slow", "male", "blues", "vocal", "indian", "no singer", "scary", "india", "woman",
    "woman singing", "rock", "dance", "piano solo", "guitars", "no drums", "jazzy", "singing",
    "cello", "calm", "female vocals", "voices", "different", "techno", "clapping", "house",
    "monks", "flute", "not opera", "not english", "oriental", "beat", "upbeat", "soft", "noise",
    "choir", "female singer", "rap", "metal", "hip hop", "quick", "water", "baroque", "women",
    "fiddle", "english",
)

#: The 50 most frequent tags, in the column order of musicnn's ``*_gt_mtt.tsv`` vectors
#: (``classes_MagnaTT.json`` gives each position + 1; used when that file is absent).
TOP50_TAGS = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast",
    "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male",
    "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman",
    "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man", "classic", "choir", "voice",
    "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello", "no voice",
    "weird", "country", "metal", "female voice", "choral",
)

#: Tag → normalised labels. ``genre:``, ``instrument:`` and ``mood:`` add to the Clip lists;
#: any other ``key:value`` adds ``value`` to ``attributes[key]`` (several values are joined
#: with ``,`` in sorted order, so contradictory crowd tags stay visible as ``female,none``).
#: Synonyms and typos (``woman``/``female vocal``, ``clasical``) map to one label.
TAG_LABELS: dict[str, tuple[str, ...]] = {
    # genres
    "classical": ("genre:classical",), "clasical": ("genre:classical",),
    "classic": ("genre:classical",), "baroque": ("genre:baroque", "genre:classical"),
    "medieval": ("genre:medieval",), "opera": ("genre:opera",), "operatic": ("genre:opera",),
    "female opera": ("genre:opera", "vocals:female"),
    "male opera": ("genre:opera", "vocals:male"),
    "choral": ("genre:choral", "vocals:choir"),
    "rock": ("genre:rock",), "hard rock": ("genre:hard rock", "genre:rock"),
    "soft rock": ("genre:soft rock", "genre:rock"), "metal": ("genre:metal",),
    "heavy metal": ("genre:metal",), "punk": ("genre:punk",), "pop": ("genre:pop",),
    "jazz": ("genre:jazz",), "jazzy": ("genre:jazz",), "blues": ("genre:blues",),
    "folk": ("genre:folk",), "country": ("genre:country",), "funk": ("genre:funk",),
    "funky": ("genre:funk",), "reggae": ("genre:reggae",), "disco": ("genre:disco",),
    "dance": ("genre:dance",), "electronic": ("genre:electronic",),
    "electronica": ("genre:electronic",), "electro": ("genre:electronic",),
    "techno": ("genre:techno", "genre:electronic"),
    "trance": ("genre:trance", "genre:electronic"),
    "house": ("genre:house", "genre:electronic"), "industrial": ("genre:industrial",),
    "jungle": ("genre:jungle", "genre:electronic"), "ambient": ("genre:ambient",),
    "new age": ("genre:new age",), "drone": ("genre:drone",), "hip hop": ("genre:hip hop",),
    "rap": ("genre:hip hop", "vocals:rap"), "world": ("genre:world",),
    "indian": ("genre:indian",), "india": ("genre:indian",),
    "middle eastern": ("genre:middle eastern",), "arabic": ("genre:middle eastern",),
    "eastern": ("genre:eastern",), "oriental": ("genre:eastern",),
    "celtic": ("genre:celtic",), "irish": ("genre:celtic",), "spanish": ("genre:spanish",),
    "tribal": ("genre:tribal",), "chant": ("genre:chant",), "chanting": ("genre:chant",),
    "monks": ("genre:chant", "vocals:male"),
    # instruments
    "guitar": ("instrument:guitar",), "guitars": ("instrument:guitar",),
    "acoustic guitar": ("instrument:acoustic guitar",),
    "electric guitar": ("instrument:electric guitar",),
    "classical guitar": ("instrument:classical guitar",),
    "piano": ("instrument:piano",), "piano solo": ("instrument:piano", "performers:solo"),
    "harpsichord": ("instrument:harpsichord",), "harpsicord": ("instrument:harpsichord",),
    "keyboard": ("instrument:keyboard",), "organ": ("instrument:organ",),
    "synth": ("instrument:synthesizer",), "synthesizer": ("instrument:synthesizer",),
    "strings": ("instrument:strings",), "string": ("instrument:strings",),
    "violin": ("instrument:violin",), "violins": ("instrument:violin",),
    "fiddle": ("instrument:violin",), "viola": ("instrument:viola",),
    "cello": ("instrument:cello",), "bass": ("instrument:bass",), "harp": ("instrument:harp",),
    "sitar": ("instrument:sitar",), "banjo": ("instrument:banjo",), "lute": ("instrument:lute",),
    "flute": ("instrument:flute",), "flutes": ("instrument:flute",),
    "clarinet": ("instrument:clarinet",), "oboe": ("instrument:oboe",),
    "sax": ("instrument:saxophone",), "woodwind": ("instrument:woodwinds",),
    "trumpet": ("instrument:trumpet",), "horn": ("instrument:horns",),
    "horns": ("instrument:horns",), "orchestra": ("instrument:orchestra",),
    "orchestral": ("instrument:orchestra",), "drums": ("instrument:drums",),
    "drum": ("instrument:drums",), "percussion": ("instrument:percussion",),
    "bongos": ("instrument:bongos",), "clapping": ("instrument:hand claps",),
    "bells": ("instrument:bells",), "chimes": ("instrument:chimes",),
    # vocals
    "no voice": ("vocals:none",), "no voices": ("vocals:none",), "no vocal": ("vocals:none",),
    "no vocals": ("vocals:none",), "no singing": ("vocals:none",),
    "no singer": ("vocals:none",), "instrumental": ("vocals:none",),
    "female": ("vocals:female",), "woman": ("vocals:female",), "women": ("vocals:female",),
    "girl": ("vocals:female",), "female vocal": ("vocals:female",),
    "female vocals": ("vocals:female",), "female voice": ("vocals:female",),
    "female singer": ("vocals:female",), "female singing": ("vocals:female",),
    "woman singing": ("vocals:female",), "soprano": ("vocals:female",),
    "male": ("vocals:male",), "man": ("vocals:male",), "men": ("vocals:male",),
    "male vocal": ("vocals:male",), "male vocals": ("vocals:male",),
    "male voice": ("vocals:male",), "male singer": ("vocals:male",),
    "man singing": ("vocals:male",), "choir": ("vocals:choir",), "chorus": ("vocals:choir",),
    "vocal": ("vocals:present",), "vocals": ("vocals:present",), "voice": ("vocals:present",),
    "voices": ("vocals:present",), "singing": ("vocals:present",),
    "singer": ("vocals:present",), "duet": ("vocals:present", "performers:duet"),
    "talking": ("vocals:spoken",),
    # tempo, rhythm, texture
    "slow": ("tempo_tag:slow",), "fast": ("tempo_tag:fast",), "quick": ("tempo_tag:fast",),
    "fast beat": ("tempo_tag:fast", "beat:yes"), "beat": ("beat:yes",),
    "beats": ("beat:yes",), "no beat": ("beat:no",), "solo": ("performers:solo",),
    "plucking": ("technique:plucked",),
    # moods and loudness
    "soft": ("mood:soft",), "quiet": ("mood:quiet",), "calm": ("mood:calm",),
    "mellow": ("mood:mellow",), "light": ("mood:light",), "airy": ("mood:airy",),
    "loud": ("mood:loud",), "heavy": ("mood:heavy",), "hard": ("mood:heavy",),
    "happy": ("mood:happy",), "upbeat": ("mood:upbeat",), "sad": ("mood:sad",),
    "dark": ("mood:dark",), "eerie": ("mood:eerie",), "scary": ("mood:scary",),
    "spacey": ("mood:spacey",), "space": ("mood:spacey",), "weird": ("mood:weird",),
    "strange": ("mood:weird",),
    # sounds, negations, language
    "birds": ("sound:birds",), "water": ("sound:water",), "noise": ("sound:noise",),
    "silence": ("sound:silence",),
    "no guitar": ("absent_instruments:guitar",), "no piano": ("absent_instruments:piano",),
    "no drums": ("absent_instruments:drums",), "no strings": ("absent_instruments:strings",),
    "no violin": ("absent_instruments:violin",), "no flute": ("absent_instruments:flute",),
    "not classical": ("not_genres:classical",), "not rock": ("not_genres:rock",),
    "not opera": ("not_genres:opera",), "english": ("language:english",),
    "not english": ("language:non-english",), "foreign": ("language:non-english",),
}

#: Tags left only in ``tags``: too vague to normalise (``electric``: guitar or electronic?
#: ``wind``: instruments or weather? ``low``/``deep``: pitch or mood?).
UNMAPPED_TAGS = frozenset({
    "electric", "wind", "repetitive", "acoustic", "lol", "low", "modern", "deep", "echo", "old",
    "different",
})

#: Clips whose published mp3 is empty or undecodable.
BROKEN_CLIPS = {
    "35644": "known-broken MTT mp3 (empty file)",
    "55753": "known-broken MTT mp3 (empty file)",
    "57881": "known-broken MTT mp3 (empty file)",
}

_SPLIT_BY_FOLDER = {**dict.fromkeys("0123456789ab", Split.train), "c": Split.valid,
                    **dict.fromkeys("def", Split.test)}


class Options(BaseModel):
    """How the user's copy is laid out."""

    model_config = ConfigDict(extra="forbid")
    layout: Literal["auto", "annotations", "musicnn"] = Field(
        default="auto",
        description="'annotations' (annotations_final.csv), 'musicnn' (index_mtt.tsv + "
        "*_gt_mtt.tsv) or 'auto': annotations_final.csv if present, else index_mtt.tsv.",
    )
    audio_dir: str | None = Field(
        default=None,
        description="Folder holding 0/ … f/ under the root; None: 'mp3' if it exists, else ''.",
    )

    @field_validator("audio_dir")
    @classmethod
    def _safe_audio_dir(cls, v: str | None) -> str | None:
        return optional_safe_relpath(v)


class TagLabels(NamedTuple):
    """MTT's tags merged into the clip's typed label fields, plus text leftovers."""

    genres: list[str]
    instruments: list[str]
    moods: list[str]
    vocals: list[str]
    absent_instruments: list[str]
    not_genres: list[str]
    attributes: dict[str, str]


#: Label keys of :data:`TAG_LABELS` that are typed ``Clip`` fields (the rest are attributes).
_FIELDS = {"genre": "genres", "instrument": "instruments", "mood": "moods", "vocals": "vocals",
           "absent_instruments": "absent_instruments", "not_genres": "not_genres"}


def normalise_tags(tags: Sequence[str]) -> TagLabels:
    """Merge MTT's synonym tags into genres, instruments, moods, vocals, absences and text
    attributes.

    Why: MTT has ``female``, ``woman``, ``female vocal``… as separate columns; questions should
    see one ``vocals=[female]``. Unknown tags (e.g. from demo data) stay only in ``tags``. A
    generic vocals ``present`` is dropped when a specific vocal label (female, male, choir, …)
    is also there.
    """
    lists: dict[str, list[str]] = {field: [] for field in _FIELDS.values()}
    attributes: dict[str, set[str]] = {}
    for tag in tags:
        for spec in TAG_LABELS.get(tag.strip().lower(), ()):
            key, value = spec.split(":", 1)
            field = _FIELDS.get(key)
            if field is None:
                attributes.setdefault(key, set()).add(value)
            elif value not in lists[field]:
                lists[field].append(value)
    vocals = set(lists["vocals"])
    if "present" in vocals and vocals - {"present", "none"}:
        vocals.discard("present")
    lists["vocals"] = sorted(vocals)
    text = {k: ",".join(sorted(v)) for k, v in sorted(attributes.items())}
    return TagLabels(**lists, attributes=text)


def _split_of(mp3_path: str) -> Split:
    folder = mp3_path.split("/", 1)[0] if "/" in mp3_path else ""
    return _SPLIT_BY_FOLDER.get(folder[:1].lower(), Split.unsplit) if folder else Split.unsplit


def _reject(name: str, line: int, reason: IngestReason, detail: str, *,
            item: str | None = None, kept: bool = False) -> Rejection:
    return Rejection(stage="ingest", source=NAME, item_id=item or f"{name}:{line}", reason=reason,
                     detail=f"{name} line {line}: {detail}", file=name, line=line, kept=kept)


@dataclass(frozen=True)
class _Info:
    """The clip_info_final.csv facts ingest keeps (title/artist/album are not askable)."""

    title: str | None
    artist: str | None
    album: str | None
    attributes: dict[str, str]


def _load_clip_info(path: Path, infos: dict[str, _Info]) -> Iterator[Rejection]:
    """Fill ``infos`` from clip_info_final.csv, yielding the rejections of its bad rows."""
    col: dict[str, int] | None = None
    width = 0
    for item in iter_rows(path, stage="ingest", source=NAME, delimiter="\t"):
        if isinstance(item, Rejection):
            yield item
            continue
        if col is None:
            header = [h.strip() for h in item.fields]
            missing = [c for c in ("clip_id", "title", "artist", "album") if c not in header]
            if missing:
                raise SourceFormatError(f"{path.name}: header lacks columns {missing}")
            col, width = {h: i for i, h in enumerate(header)}, len(header)
            continue
        if len(item.fields) != width:
            yield _reject(path.name, item.line, IngestReason.malformed_row,
                          f"{len(item.fields)} fields, expected {width}")
            continue
        values = {h: item.fields[i].strip() for h, i in col.items()}
        attributes = {dst: values[src] for src, dst in (("segmentStart", "segment_start_s"),
                                                         ("segmentEnd", "segment_end_s"))
                      if values.get(src)}
        infos[values["clip_id"]] = _Info(values["title"] or None, values["artist"] or None,
                                         values["album"] or None, attributes)


def _make_clip(clip_id: str, mp3_path: str, tags: list[str], *, audio_dir: str,
               info: _Info | None, tag_source: str | None, name: str, line: int,
               seen: set[str]) -> Clip | Rejection:
    """One clip (or the reason it cannot be one) from an id, its mp3 path and positive tags."""
    if not clip_id.isdigit():
        return _reject(name, line, IngestReason.malformed_row, f"clip_id {clip_id!r} is not an "
                       "integer")
    cid = Clip.make_id(NAME, clip_id, 0.0, None)
    if not mp3_path:
        return _reject(name, line, IngestReason.missing_field, "empty mp3_path", item=cid)
    try:
        rel = safe_relpath(mp3_path)
        audio_path = safe_relpath(f"{audio_dir}/{rel}" if audio_dir else rel)
    except UnsafePathError as exc:
        return _reject(name, line, IngestReason.unsafe_path, str(exc), item=cid)
    if clip_id in seen:
        return _reject(name, line, IngestReason.duplicate_id, f"clip_id {clip_id} seen before",
                       item=cid)
    seen.add(clip_id)
    labels = normalise_tags(tags)
    attributes = labels.attributes
    if tag_source:
        attributes["tag_source"] = tag_source
    if info is not None:
        attributes.update(info.attributes)
    broken = BROKEN_CLIPS.get(clip_id)
    return Clip(
        clip_id=cid, source=NAME, source_id=clip_id, audio_path=audio_path, start_s=0.0,
        end_s=None, split=_split_of(rel), license=LICENSE,
        audio_status=AudioStatus.excluded if broken else AudioStatus.unchecked,
        audio_status_reason=broken, tags=tags, genres=labels.genres,
        instruments=labels.instruments, moods=labels.moods, vocals=labels.vocals,
        absent_instruments=labels.absent_instruments, not_genres=labels.not_genres,
        title=info.title if info else None, artist=info.artist if info else None,
        album=info.album if info else None, attributes=attributes,
    )


def _iter_annotations(root: Path, audio_dir: str,
                      infos: dict[str, _Info]) -> Iterator[Clip | Rejection]:
    """Clips of the original layout: one per annotations_final.csv row."""
    path = root / ANNOTATIONS_NAME
    col: dict[str, int] | None = None
    tag_cols: list[tuple[int, str]] = []
    width = 0
    seen: set[str] = set()
    for item in iter_rows(path, stage="ingest", source=NAME, delimiter="\t"):
        if isinstance(item, Rejection):
            yield item
            continue
        if col is None:
            header = [h.strip() for h in item.fields]
            missing = [c for c in ("clip_id", "mp3_path") if c not in header]
            if missing:
                raise SourceFormatError(f"{path.name}: header lacks columns {missing}")
            col, width = {h: i for i, h in enumerate(header)}, len(header)
            tag_cols = [(i, h) for i, h in enumerate(header) if h not in ("clip_id", "mp3_path")]
            continue
        yield from _annotation_row(item, col, tag_cols, width, audio_dir, infos, seen, path.name)


def _annotation_row(row: Row, col: dict[str, int], tag_cols: list[tuple[int, str]], width: int,
                    audio_dir: str, infos: dict[str, _Info], seen: set[str],
                    name: str) -> Iterator[Clip | Rejection]:
    f = row.fields
    if len(f) != width:
        yield _reject(name, row.line, IngestReason.malformed_row,
                      f"{len(f)} fields, expected {width}")
        return
    tags = []
    for i, tag in tag_cols:
        value = f[i].strip()
        if value == "1":
            tags.append(tag)
        elif value != "0":
            yield _reject(name, row.line, IngestReason.malformed_row,
                          f"tag {tag!r} is {value!r}, expected 0 or 1")
            return
    clip_id = f[col["clip_id"]].strip()
    yield _make_clip(clip_id, f[col["mp3_path"]].strip(), tags, audio_dir=audio_dir,
                     info=infos.get(clip_id), tag_source=name, name=name, line=row.line,
                     seen=seen)


def _load_top50(root: Path) -> list[str]:
    """Tag of each gt vector position, from classes_MagnaTT.json when present."""
    path = root / CLASSES_NAME
    if not path.is_file():
        return list(TOP50_TAGS)
    try:
        classes = jsontext.loads(path.read_text(encoding="utf-8"))
        by_pos = {int(pos): tag for tag, pos in classes.items() if tag != "clip_id"}
        return [by_pos[p] for p in range(1, len(by_pos) + 1)]
    except (ValueError, KeyError, AttributeError, TypeError) as exc:
        raise SourceFormatError(f"{path}: not a tag → position map ({exc})") from exc


def _load_gt(root: Path, top50: list[str],
             gt: dict[str, tuple[list[str], str]]) -> Iterator[Rejection]:
    """Fill ``gt`` (clip id → positive tags, file) from the *_gt_mtt.tsv files present."""
    for file_name in GT_FILES:
        path = root / file_name
        if not path.is_file():
            continue
        for item in iter_rows(path, stage="ingest", source=NAME, delimiter="\t",
                              expected_fields=2):
            if isinstance(item, Rejection):
                yield item
                continue
            clip_id = item.fields[0].strip()
            try:
                vector = jsontext.loads(item.fields[1])
                if not isinstance(vector, list) or len(vector) != len(top50):
                    raise ValueError(f"expected a list of {len(top50)} numbers")
                tags = [tag for tag, v in zip(top50, vector, strict=True) if float(v) > 0.5]
            except (ValueError, TypeError) as exc:
                yield _reject(file_name, item.line, IngestReason.malformed_row, str(exc))
                continue
            if clip_id in gt:
                yield _reject(file_name, item.line, IngestReason.duplicate_id,
                              f"clip_id {clip_id} already labelled in {gt[clip_id][1]}")
                continue
            gt[clip_id] = (tags, file_name)


def _iter_musicnn(root: Path, audio_dir: str,
                  infos: dict[str, _Info]) -> Iterator[Clip | Rejection]:
    """Clips of the musicnn layout: one per index_mtt.tsv row, tags from the gt files."""
    gt: dict[str, tuple[list[str], str]] = {}
    yield from _load_gt(root, _load_top50(root), gt)
    seen: set[str] = set()
    for item in iter_rows(root / INDEX_NAME, stage="ingest", source=NAME, delimiter="\t",
                          expected_fields=2):
        if isinstance(item, Rejection):
            yield item
            continue
        clip_id, mp3_path = (v.strip() for v in item.fields)
        tags, tag_source = gt.get(clip_id, ([], None))
        yield _make_clip(clip_id, mp3_path, list(tags), audio_dir=audio_dir,
                         info=infos.get(clip_id), tag_source=tag_source, name=INDEX_NAME,
                         line=item.line, seen=seen)


def iter_clips(root: Path, *, options: Options) -> Iterator[Clip | Rejection]:
    """Yield one whole-file clip per MTT clip id (audio presence is checked by ingest).

    The three known-broken clips are kept with ``audio_status=excluded`` so reports count
    them; ingest must not overwrite that status with ok/missing.

    Raises
    ------
    SourceFormatError
        If neither annotations_final.csv nor index_mtt.tsv is under ``root`` (or the chosen
        layout's file is absent), or a header lacks a required column.
    """
    layout = options.layout
    if layout == "auto":
        if (root / ANNOTATIONS_NAME).is_file():
            layout = "annotations"
        elif (root / INDEX_NAME).is_file():
            layout = "musicnn"
        else:
            raise SourceFormatError(
                f"MTT metadata not found under {root}: looked for {ANNOTATIONS_NAME} (original "
                f"layout) and {INDEX_NAME} (musicnn layout)"
            )
    needed = ANNOTATIONS_NAME if layout == "annotations" else INDEX_NAME
    if not (root / needed).is_file():
        raise SourceFormatError(f"MTT {layout} layout needs {root / needed} (set option layout)")
    audio_dir = options.audio_dir
    if audio_dir is None:
        audio_dir = "mp3" if (root / "mp3").is_dir() else ""
    infos: dict[str, _Info] = {}
    if (root / CLIP_INFO_NAME).is_file():
        yield from _load_clip_info(root / CLIP_INFO_NAME, infos)
    else:
        logger.info("mtt: %s absent; clips get no title/artist/album", CLIP_INFO_NAME)
    if layout == "annotations":
        yield from _iter_annotations(root, audio_dir, infos)
    else:
        yield from _iter_musicnn(root, audio_dir, infos)


def _slug(text: str) -> str:
    """MTT file-name style: lowercase, every run of other characters becomes ``_``."""
    return re.sub(r"[^a-z0-9]", "_", text.lower()).strip("_") or "untitled"


def _folder_for(split: str, i: int) -> str:
    """A folder whose standard split is ``split`` (spread over the folders, as in MTT)."""
    folders = {"test": "def", "valid": "c"}.get(split, "0123456789ab")
    return folders[i % len(folders)]


def write_native(out_dir: Path, demo_clips: Sequence[DemoClip]) -> dict[str, str]:
    """Write the demo clips as an original-layout MTT copy, 16 kHz mono mp3s included.

    Columns are the 188 published tags in published order (demo tags outside them are
    appended before ``mp3_path``); every field is double-quoted as in the published files.
    A demo clip without MTT tags gets its lowercased genres, instruments and moods as tags.
    """
    import soxr

    from qagen.audio import write_audio

    out_dir.mkdir(parents=True, exist_ok=True)
    tag_lists = [list(d.tags) or [t.lower() for t in (*d.genres, *d.instruments, *d.moods)]
                 for d in demo_clips]
    extra = [t for tags in tag_lists for t in tags if t not in ANNOTATION_TAGS]
    columns = list(ANNOTATION_TAGS) + list(dict.fromkeys(extra))
    ids: dict[str, str] = {}
    annotations: list[list[str]] = []
    infos: list[list[str]] = []
    for i, (demo, tags) in enumerate(zip(demo_clips, tag_lists, strict=True)):
        clip_id = str(2 + 4 * i)
        artist = demo.artist or "qagen demo ensemble"
        album, title = "demo corpus", demo.title or demo.name
        start, end = 30, 30 + max(1, round(demo.duration_s))
        stem = f"{_slug(artist)}-{_slug(album)}-{i + 1:02d}-{_slug(title)}-{start}-{end}"
        mp3_path = f"{_folder_for(demo.split, i)}/{stem}.mp3"
        y = demo.audio if demo.sr == SAMPLE_RATE else soxr.resample(demo.audio, demo.sr,
                                                                    SAMPLE_RATE)
        write_audio(out_dir / "mp3" / mp3_path, y, sr=SAMPLE_RATE)
        annotations.append([clip_id, *("1" if c in tags else "0" for c in columns), mp3_path])
        infos.append([clip_id, str(i + 1), title, artist, album,
                      f"http://www.magnatune.com/artists/albums/{_slug(album)}/", str(start),
                      str(end), f"http://he3.magnatune.com/all/{i + 1:02d}-{_slug(title)}.mp3",
                      mp3_path])
        ids[demo.name] = Clip.make_id(NAME, clip_id, 0.0, None)
    for file_name, header, rows in ((ANNOTATIONS_NAME, ["clip_id", *columns, "mp3_path"],
                                     annotations), (CLIP_INFO_NAME, CLIP_INFO_COLUMNS, infos)):
        with (out_dir / file_name).open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, delimiter="\t", quoting=csv.QUOTE_ALL, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
    return ids
