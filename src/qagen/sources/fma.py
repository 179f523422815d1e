"""Free Music Archive (FMA): 106,574 Creative Commons tracks by 16,341 artists, 161 genres.

Origin: Defferrard et al. 2017 (mdeff/fma), scraped from freemusicarchive.org. Metadata:
``fma_metadata/tracks.csv`` (~260 MB) with a three-row header written by pandas (row 1: column
group ``album``/``artist``/``set``/``track``; row 2: sub-column; row 3: ``track_id`` then empty
cells), one row per track, long free-text fields containing commas, quotes and line breaks;
``genres.csv`` (``genre_id,#tracks,parent,title,top_level``, 163 genres, 16 top-level).
Audio: ``fma_<subset>/<NNN>/<NNNNNN>.mp3`` (six-digit zero-padded track id, first three digits
as the folder). ``fma_small`` (8,000 tracks, 8 balanced genres), ``fma_medium`` (25,000) and
``fma_large`` (all 106,574) hold 30 s excerpts; ``fma_full`` holds the untrimmed tracks. Subsets
nest: small ⊂ medium ⊂ large = full. Split: ``set.split`` (training/validation/test, the
authors' artist-aware split). License: per track, in ``track.license`` (mostly CC variants,
kept verbatim); the metadata is CC BY 4.0.

Known defects: ``track.genres``/``track.tags`` are Python list literals; ``genre_top`` is empty
when a track's genres span several roots; a few mp3s in fma_full/large are truncated or
undecodable (ingest's audio check records those); some titles hold mis-decoded bytes.
"""

from __future__ import annotations

import ast
import csv
import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from qagen.errors import SourceFormatError
from qagen.paths import optional_safe_relpath
from qagen.records import Clip, Rejection, Split
from qagen.records.demo import DemoClip
from qagen.records.rejection import IngestReason
from qagen.tabular import Row, iter_rows

NAME = "fma"
HOMEPAGE = "https://github.com/mdeff/fma"
LICENSE = "per-track Creative Commons license (track.license); metadata CC-BY-4.0"
CITATION = (
    "Defferrard, Benzi, Vandergheynst and Bresson, FMA: A Dataset for Music Analysis, "
    "ISMIR 2017."
)

logger = logging.getLogger(__name__)

METADATA_DIR = "fma_metadata"
GENRES_NAME = "genres.csv"
SAMPLE_RATE = 44100
SUBSETS = ("small", "medium", "large", "full")
_SPLITS = {"training": Split.train, "validation": Split.valid, "test": Split.test}

#: The 52 columns of tracks.csv after the ``track_id`` index, as (group, sub-column), in order.
COLUMNS: tuple[tuple[str, str], ...] = (
    *(("album", c) for c in (
        "comments", "date_created", "date_released", "engineer", "favorites", "id",
        "information", "listens", "producer", "tags", "title", "tracks", "type")),
    *(("artist", c) for c in (
        "active_year_begin", "active_year_end", "associated_labels", "bio", "comments",
        "date_created", "favorites", "id", "latitude", "location", "longitude", "members",
        "name", "related_projects", "tags", "website", "wikipedia_page")),
    ("set", "split"), ("set", "subset"),
    *(("track", c) for c in (
        "bit_rate", "comments", "composer", "date_created", "date_recorded", "duration",
        "favorites", "genre_top", "genres", "genres_all", "information", "interest",
        "language_code", "license", "listens", "lyricist", "number", "publisher", "tags",
        "title")),
)
REQUIRED = (("set", "split"), ("set", "subset"), ("track", "genre_top"), ("track", "genres"),
            ("track", "license"), ("track", "tags"), ("track", "title"))

#: Columns copied into ``Clip.attributes`` (text, only when non-empty).
ATTRIBUTE_COLUMNS = {
    ("track", "genre_top"): "genre_top", ("track", "bit_rate"): "bit_rate",
    ("track", "duration"): "track_duration_s", ("track", "date_created"): "date_created",
    ("track", "date_recorded"): "date_recorded", ("track", "language_code"): "language_code",
    ("track", "interest"): "interest", ("track", "listens"): "listens",
    ("album", "type"): "album_type", ("album", "date_released"): "album_date_released",
    ("album", "id"): "album_id", ("artist", "id"): "artist_id",
}

#: The published genres.csv, verbatim: write_native copies the rows of the genres it uses.
GENRES_CSV = """\
genre_id,#tracks,parent,title,top_level
1,8693,38,Avant-Garde,38
2,5271,0,International,2
3,1752,0,Blues,3
4,4126,0,Jazz,4
5,4106,0,Classical,5
6,914,38,Novelty,38
7,217,20,Comedy,20
8,868,0,Old-Time / Historic,8
9,1987,0,Country,9
10,13845,0,Pop,10
11,367,14,Disco,14
12,32923,0,Rock,12
13,730,0,Easy Listening,13
14,1499,0,Soul-RnB,14
15,34413,0,Electronic,15
16,304,6,Sound Effects,38
17,12706,0,Folk,17
18,5913,1235,Soundtrack,1235
19,773,14,Funk,14
20,1876,0,Spoken,20
21,8389,0,Hip-Hop,21
22,774,38,Audio Collage,38
25,9261,12,Punk,12
26,1952,12,Post-Rock,12
27,6041,12,Lo-Fi,12
30,3237,38,Field Recordings,38
31,1498,12,Metal,12
32,7268,38,Noise,38
33,2267,17,Psych-Folk,17
36,688,12,Krautrock,12
37,97,4,Jazz: Vocal,4
38,38154,0,Experimental,38
41,6110,38,Electroacoustic,38
42,5723,15,Ambient Electronic,15
43,210,65,Radio Art,20
45,2469,12,Loud-Rock,12
46,573,2,Latin America,2
47,2546,38,Drone,38
49,753,17,Free-Folk,17
53,2071,45,Noise-Rock,12
58,2502,12,Psych-Rock,12
63,178,9,Bluegrass,9
64,563,25,Electro-Punk,12
65,518,20,Radio,20
66,5432,12,Indie-Rock,12
70,2230,12,Industrial,12
71,600,25,No Wave,12
74,1531,4,Free-Jazz,4
76,7144,10,Experimental Pop,10
77,387,2,French,2
79,880,2,Reggae - Dub,2
81,110,92,Afrobeat,2
83,84,21,Nerdcore,21
85,3548,12,Garage,12
86,216,2,Indian,2
88,517,12,New Wave,12
89,1858,25,Post-Punk,12
90,251,53,Sludge,12
92,329,2,African,2
94,1289,17,Freak-Folk,17
97,291,4,Jazz: Out,4
98,795,12,Progressive,12
100,740,21,Alternative Hip-Hop,21
101,196,31,Death-Metal,12
102,176,2,Middle East,2
103,4162,17,Singer-Songwriter,17
107,7206,1235,Ambient,1235
109,1419,25,Hardcore,12
111,1003,25,Power-Pop,12
113,484,26,Space-Rock,12
117,62,2,Polka,2
118,608,2,Balkan,2
125,1511,38,Unclassifiable,38
130,727,2,Europe,2
137,994,9,Americana,9
138,490,20,Spoken Weird,20
166,122,65,Interview,20
167,152,31,Black-Metal,12
169,128,9,Rockabilly,9
170,47,13,Easy Listening: Vocal,13
171,234,2,Brazilian,2
172,118,2,Asia-Far East,2
173,4,86,N. Indian Traditional,2
174,17,86,South Indian Traditional,2
175,0,86,Bollywood,2
176,23,2,Pacific,2
177,72,2,Celtic,2
178,0,4,Be-Bop,4
179,104,4,Big Band/Swing,4
180,161,17,British Folk,17
181,2140,15,Techno,15
182,1482,15,House,15
183,2809,15,Glitch,15
184,1013,15,Minimal Electronic,15
185,511,15,Breakcore - Hard,15
186,682,38,Sound Poetry,38
187,292,5,20th Century Classical,5
188,301,20,Poetry,20
189,26,65,Talk Radio,20
214,40,92,North African,2
224,1916,38,Sound Collage,38
232,47,2,Flamenco,2
236,3472,15,IDM,15
240,1231,297,Chiptune,15
247,2957,38,Musique Concrete,38
250,4261,38,Improv,38
267,360,1235,New Age,1235
286,1751,15,Trip-Hop,15
296,1414,15,Dance,15
297,2208,15,Chip Music,15
311,440,13,Lounge,13
314,482,12,Goth,12
322,630,5,Composed Music,5
337,500,15,Drum & Bass,15
359,762,12,Shoegaze,12
360,201,6,Kid-Friendly,38
361,175,109,Thrash,12
362,1835,10,Synth Pop,10
374,9,20,Banter,20
377,1,19,Deep Funk,14
378,177,20,Spoken Word,20
400,823,182,Chill-out,15
401,189,181,Bigbeat,15
404,265,85,Surf,12
428,73,20,Radio Theater,20
439,314,31,Grindcore,12
440,116,12,Rock Opera,12
441,161,5,Opera,5
442,170,5,Chamber Music,5
443,216,5,Choral Music,5
444,25,5,Symphony,5
456,1392,38,Minimalism,38
465,18,20,Musical Theater,20
468,1144,15,Dubstep,15
491,78,468,Skweee,15
493,4,651,Western Swing,9
495,2061,15,Downtempo,15
502,67,46,Cumbia,2
504,114,2,Latin,2
514,1414,38,Sound Art,38
524,112,130,Romany (Gypsy),2
538,338,18,Compilation,1235
539,638,21,Rap,21
542,735,21,Breakbeat,21
567,66,3,Gospel,3
580,202,21,Abstract Hip-Hop,21
602,94,79,Reggae - Dancehall,2
619,115,130,Spanish,2
651,79,9,Country & Western,9
659,1239,5,Contemporary Classical,5
693,56,21,Wonky,21
695,258,15,Jungle,15
741,57,130,Klezmer,2
763,268,16,Holiday,38
808,12,46,Salsa,2
810,120,13,Nu-Jazz,13
811,1192,21,Hip-Hop Beats,21
906,107,4,Modern Jazz,4
1032,60,102,Turkish,2
1060,30,46,Tango,2
1156,26,130,Fado,2
1193,72,763,Christmas,38
1235,14938,0,Instrumental,1235
"""


class Options(BaseModel):
    """How the user's copy is laid out and which subset to ingest."""

    model_config = ConfigDict(extra="forbid")
    subset: Literal["small", "medium", "large", "full"] = Field(
        default="small",
        description="Tracks whose set.subset lies within this subset (small ⊂ medium ⊂ large "
        "= full); 'full' takes every row.",
    )
    audio_dir: str | None = Field(
        default=None,
        description="Audio folder under the root; None: fma_<subset>, or the smallest larger "
        "subset's folder that exists (fma_large also holds every small track).",
    )
    metadata_dir: str | None = Field(
        default=None,
        description="Folder of tracks.csv and genres.csv; None: 'fma_metadata' if it holds "
        "the tracks file, else the root itself.",
    )
    tracks_csv: str = Field(default="tracks.csv", description="File name of the tracks table.")

    @field_validator("audio_dir", "metadata_dir", "tracks_csv")
    @classmethod
    def _safe_relative(cls, v: str | None) -> str | None:
        return optional_safe_relpath(v)


def audio_relpath(track_id: int, *, audio_dir: str) -> str:
    """FMA's audio path: ``<audio_dir>/<first 3 of 6 digits>/<6-digit id>.mp3``."""
    digits = f"{track_id:06d}"
    return f"{audio_dir}/{digits[:3]}/{digits}.mp3" if audio_dir else f"{digits[:3]}/{digits}.mp3"


def _resolve_audio_dir(root: Path, options: Options) -> str:
    if options.audio_dir is not None:
        return options.audio_dir
    candidates = [f"fma_{s}" for s in SUBSETS[SUBSETS.index(options.subset):]]
    if options.subset == "full":
        candidates.append("fma_large")
    return next((c for c in candidates if (root / c).is_dir()), candidates[0])


def _in_subset(row_subset: str, wanted: str) -> bool | None:
    """Whether a track of ``row_subset`` belongs to ``wanted``; None for an unknown subset."""
    rank = {"small": 0, "medium": 1, "large": 2}
    if row_subset not in rank:
        return None
    return wanted == "full" or rank[row_subset] <= rank[wanted]


def _reject(name: str, line: int, reason: IngestReason, detail: str, *,
            item: str | None = None, kept: bool = False) -> Rejection:
    return Rejection(stage="ingest", source=NAME, item_id=item or f"{name}:{line}", reason=reason,
                     detail=f"{name} line {line}: {detail}", file=name, line=line, kept=kept)


def load_genres(path: Path) -> tuple[dict[int, str], list[Rejection]]:
    """Read genres.csv into ``genre_id → title``, with the rejections of its bad rows."""
    titles: dict[int, str] = {}
    rejections: list[Rejection] = []
    col: dict[str, int] | None = None
    for item in iter_rows(path, stage="ingest", source=NAME):
        if isinstance(item, Rejection):
            rejections.append(item)
            continue
        if col is None:
            col = {h.strip(): i for i, h in enumerate(item.fields)}
            if "genre_id" not in col or "title" not in col:
                raise SourceFormatError(f"{path.name}: header lacks genre_id or title")
            continue
        try:
            gid = int(item.fields[col["genre_id"]])
            titles[gid] = item.fields[col["title"]].strip()
        except (ValueError, IndexError) as exc:
            rejections.append(_reject(path.name, item.line, IngestReason.malformed_row,
                                      f"bad genre row ({exc})"))
    return titles, rejections


def _parse_list(text: str, kind: type) -> list:
    """Parse a pandas-written list literal (``[21, 76]``, ``['awol']``); ValueError if not."""
    try:
        value = ast.literal_eval(text.strip()) if text.strip() else []
    except (ValueError, SyntaxError) as exc:
        raise ValueError(f"not a list literal: {text[:60]!r}") from exc
    if not isinstance(value, list) or not all(isinstance(v, kind) for v in value):
        raise ValueError(f"not a list of {kind.__name__}: {text[:60]!r}")
    return value


def _row_to_clip(row: Row, col: dict[tuple[str, str], int], track_id: int, audio_dir: str,
                 titles: dict[int, str] | None, name: str) -> list[Clip | Rejection]:
    """Build one clip; repaired fields come first as ``kept=True`` rejections."""

    def get(group: str, sub: str) -> str:
        i = col.get((group, sub))
        return row.fields[i].strip() if i is not None else ""

    cid = Clip.make_id(NAME, str(track_id), 0.0, None)
    out: list[Clip | Rejection] = []

    def repaired(detail: str) -> None:
        out.append(_reject(name, row.line, IngestReason.invalid_value, detail, item=cid,
                           kept=True))

    attributes = {key: get(*c) for c, key in ATTRIBUTE_COLUMNS.items() if get(*c)}
    top = get("track", "genre_top")
    genres = [top] if top else []
    for sub, key in (("genres", "genre_ids"), ("genres_all", "genre_all_ids")):
        try:
            ids = _parse_list(get("track", sub), int)
        except ValueError as exc:
            repaired(f"track.{sub} unreadable ({exc}); kept without it")
            continue
        if ids:
            attributes[key] = ",".join(str(g) for g in ids)
        if sub == "genres" and titles is not None:
            unknown = [g for g in ids if g not in titles]
            if unknown:
                repaired(f"genre ids {unknown} not in {GENRES_NAME}; titles left out")
            genres += [titles[g] for g in ids if g in titles]
    try:
        tags = _parse_list(get("track", "tags"), str)
    except ValueError as exc:
        tags = []
        repaired(f"track.tags unreadable ({exc}); kept without tags")
    split_text = get("set", "split")
    split = _SPLITS.get(split_text, Split.unsplit)
    if split_text and split_text not in _SPLITS:
        repaired(f"unknown set.split {split_text!r}; kept as unsplit")
    out.append(Clip(
        clip_id=cid, source=NAME, source_id=str(track_id),
        audio_path=audio_relpath(track_id, audio_dir=audio_dir), start_s=0.0, end_s=None,
        split=split, subset=get("set", "subset") or None, license=get("track", "license") or None,
        tags=tags, genres=genres, title=get("track", "title") or None,
        artist=get("artist", "name") or None, album=get("album", "title") or None,
        attributes=attributes,
    ))
    return out


def _read_header(first: Row, second: Row, path: Path) -> dict[tuple[str, str], int]:
    """Map (group, sub-column) → field index from the first two header rows."""
    col: dict[tuple[str, str], int] = {}
    group = ""
    for i, (top, sub) in enumerate(zip(first.fields, second.fields, strict=False)):
        group = top.strip() or group
        if i and sub.strip():
            col.setdefault((group, sub.strip()), i)
    missing = [f"{g}.{s}" for g, s in REQUIRED if (g, s) not in col]
    if missing:
        raise SourceFormatError(f"{path.name}: header lacks columns {missing} (FMA tracks.csv "
                                "has a two-row album/artist/set/track header)")
    return col


def _metadata_dir(root: Path, options: Options) -> Path:
    if options.metadata_dir is not None:
        return root / options.metadata_dir if options.metadata_dir else root
    nested = root / METADATA_DIR
    return nested if (nested / options.tracks_csv).is_file() else root


def iter_clips(root: Path, *, options: Options) -> Iterator[Clip | Rejection]:
    """Yield one whole-file clip per track of the chosen subset (audio checked by ingest).

    Raises
    ------
    SourceFormatError
        If tracks.csv is absent or its header lacks a needed column.
    """
    meta = _metadata_dir(root, options)
    path = meta / options.tracks_csv
    if not path.is_file():
        raise SourceFormatError(
            f"FMA tracks table not found: looked for {root / METADATA_DIR / options.tracks_csv} "
            f"and {root / options.tracks_csv} (set options metadata_dir / tracks_csv)"
        )
    titles: dict[int, str] | None = None
    if (meta / GENRES_NAME).is_file():
        titles, genre_rejections = load_genres(meta / GENRES_NAME)
        yield from genre_rejections
    else:
        logger.warning("fma: %s not found in %s; genres come from track.genre_top only",
                       GENRES_NAME, meta)
    audio_dir = _resolve_audio_dir(root, options)
    name = path.name
    header: list[Row] = []
    col: dict[tuple[str, str], int] = {}
    seen: set[int] = set()
    outside = 0
    held: list[Rejection] = []
    for item in iter_rows(path, stage="ingest", source=NAME):
        if isinstance(item, Rejection):
            # A kept (repaired) rejection precedes its row: hold it until the row is known
            # to belong to the subset, so rows filtered out do not inflate the report.
            if item.kept:
                held.append(item)
            else:
                yield item
            continue
        repairs, held = held, []
        if len(header) < 2:
            header.append(item)
            if len(header) == 2:
                col = _read_header(header[0], header[1], path)
            yield from repairs
            continue
        result = _track_row(item, col, len(header[1].fields), options, seen, audio_dir, titles,
                            name)
        if result is None:
            outside += 1
            continue
        yield from repairs
        yield from result
    logger.info("fma: %d tracks in subset %r, %d outside it skipped", len(seen), options.subset,
                outside)


def _track_row(row: Row, col: dict[tuple[str, str], int], width: int, options: Options,
               seen: set[int], audio_dir: str, titles: dict[int, str] | None,
               name: str) -> list[Clip | Rejection] | None:
    """One data row of tracks.csv: its clip and rejections, or None when outside the subset."""
    first = row.fields[0].strip()
    if first == "track_id" and not any(f.strip() for f in row.fields[1:]):
        return []
    if len(row.fields) != width:
        return [_reject(name, row.line, IngestReason.malformed_row,
                        f"{len(row.fields)} fields, expected {width}")]
    if not first.isdigit():
        return [_reject(name, row.line, IngestReason.malformed_row,
                        f"track_id {first!r} is not a non-negative integer")]
    track_id = int(first)
    row_subset = row.fields[col[("set", "subset")]].strip()
    member = _in_subset(row_subset, options.subset)
    if member is None and options.subset != "full":
        return [_reject(name, row.line, IngestReason.invalid_value,
                        f"unknown set.subset {row_subset!r}; not in subset {options.subset}")]
    if member is False:
        return None
    if track_id in seen:
        return [_reject(name, row.line, IngestReason.duplicate_id,
                        f"track_id {track_id} seen before",
                        item=Clip.make_id(NAME, str(track_id), 0.0, None))]
    seen.add(track_id)
    return _row_to_clip(row, col, track_id, audio_dir, titles, name)


def _genre_table() -> dict[int, tuple[list[str], int, int]]:
    """The embedded genres.csv: id → (row fields, parent, top_level)."""
    rows = list(csv.reader(GENRES_CSV.splitlines()))[1:]
    return {int(r[0]): (r, int(r[2]), int(r[4])) for r in rows}


def _genre_key(title: str) -> str:
    return re.sub(r"[^a-z0-9]", "", title.lower())


def write_native(out_dir: Path, demo_clips: Sequence[DemoClip]) -> dict[str, str]:
    """Write the demo clips as an FMA copy: small-subset tracks.csv, genres.csv, 44.1 kHz mp3s.

    Demo genres are matched to the published genre titles (case and punctuation ignored) and
    written by id, so ``genre_top`` and ``genres_all`` follow the real hierarchy; a genre FMA
    lacks gets a new top-level id from 2000 on.
    """
    import soxr

    from qagen.audio import write_audio

    table = _genre_table()
    by_key = {_genre_key(r[3]): gid for gid, (r, _, _) in table.items()}
    meta = out_dir / METADATA_DIR
    meta.mkdir(parents=True, exist_ok=True)
    ids: dict[str, str] = {}
    rows: list[list[str]] = []
    used: set[int] = set()
    splits = {"train": "training", "valid": "validation", "test": "test"}
    for i, demo in enumerate(demo_clips):
        track_id = 1000 + 997 * i
        genre_ids = []
        for title in demo.genres:
            gid = by_key.get(_genre_key(title))
            if gid is None:
                gid = 2000 + len([g for g in table if g >= 2000])
                table[gid] = ([str(gid), "0", "0", title, str(gid)], 0, gid)
                by_key[_genre_key(title)] = gid
            genre_ids.append(gid)
        genre_ids = list(dict.fromkeys(genre_ids))
        all_ids: list[int] = []
        for gid in genre_ids:
            while gid in table and gid not in all_ids:
                all_ids.append(gid)
                gid = table[gid][1]
        used.update(all_ids)
        roots = {table[g][2] for g in genre_ids}
        values = {
            ("album", "id"): "1", ("album", "title"): "qagen demo corpus",
            ("album", "type"): "Album", ("album", "tracks"): str(len(demo_clips)),
            ("album", "tags"): "[]", ("album", "information"): "<p></p>",
            ("artist", "id"): "1", ("artist", "name"): demo.artist or "qagen demo ensemble",
            ("artist", "tags"): "[]", ("set", "split"): splits.get(demo.split, "training"),
            ("set", "subset"): "small", ("track", "bit_rate"): "320000",
            ("track", "composer"): demo.composer,
            ("track", "date_created"): "2024-01-01 00:00:00",
            ("track", "duration"): str(max(1, round(demo.duration_s))),
            ("track", "genre_top"): table[roots.pop()][0][3] if len(roots) == 1 else "",
            ("track", "genres"): repr(genre_ids), ("track", "genres_all"): repr(sorted(all_ids)),
            ("track", "license"): "Attribution 4.0 International",
            ("track", "number"): str(i + 1), ("track", "tags"): repr(list(demo.tags)),
            ("track", "title"): demo.title or demo.name,
        }
        rows.append([str(track_id), *(values.get(c, "") for c in COLUMNS)])
        y = demo.audio if demo.sr == SAMPLE_RATE else soxr.resample(demo.audio, demo.sr,
                                                                    SAMPLE_RATE)
        write_audio(out_dir / audio_relpath(track_id, audio_dir="fma_small"), y, sr=SAMPLE_RATE)
        ids[demo.name] = Clip.make_id(NAME, str(track_id), 0.0, None)
    with (meta / "tracks.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["", *(g for g, _ in COLUMNS)])
        writer.writerow(["", *(s for _, s in COLUMNS)])
        writer.writerow(["track_id", *("" for _ in COLUMNS)])
        writer.writerows(rows)
    with (meta / GENRES_NAME).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["genre_id", "#tracks", "parent", "title", "top_level"])
        writer.writerows(table[g][0] for g in sorted(used))
    return ids
