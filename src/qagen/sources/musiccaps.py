"""MusicCaps: 5,521 ten-second YouTube clips with expert captions and aspect lists.

Origin: Agostinelli et al. 2023 (MusicLM), released on Kaggle as ``musiccaps-public.csv``
(columns ``ytid,start_s,end_s,audioset_positive_labels,aspect_list,caption,author_id,
is_balanced_subset,is_audioset_eval``). The audio is not distributed: users fetch each window
from YouTube, and about a tenth of the videos are gone, so missing audio is normal and kept
as ``audio_status=missing``. Known quirks: ``aspect_list`` is a Python list literal; five
captions contain line breaks; ytids may start with ``-``. ``is_audioset_eval`` marks the
AudioSet eval clips, the usual test split. Captions: CC BY-SA 4.0.
"""

from __future__ import annotations

import ast
import csv
import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from qagen.errors import SourceFormatError, UnsafePathError
from qagen.records import Clip, Rejection, Split
from qagen.records.demo import DemoClip
from qagen.records.rejection import IngestReason
from qagen.tabular import Row, iter_rows, parse_bool

NAME = "musiccaps"
HOMEPAGE = "https://www.kaggle.com/datasets/googleai/musiccaps"
LICENSE = "CC-BY-SA-4.0"
CITATION = "Agostinelli et al., MusicLM: Generating Music From Text, arXiv:2301.11325, 2023."
COLUMNS = (
    "ytid",
    "start_s",
    "end_s",
    "audioset_positive_labels",
    "aspect_list",
    "caption",
    "author_id",
    "is_balanced_subset",
    "is_audioset_eval",
)
CLIP_LICENSE = "CC-BY-SA-4.0 (caption); audio: YouTube, rights with the uploader"


class Options(BaseModel):
    """How the user's copy is laid out."""

    model_config = ConfigDict(extra="forbid")
    csv_name: str = "musiccaps-public.csv"
    audio_pattern: str = Field(
        default="audio/{ytid}_{start_s}-{end_s}.wav",
        description="Audio path under the root; fields {ytid}, {start_s}, {end_s} (integers).",
    )
    cropped: bool = Field(
        default=True,
        description="Files hold only the 10 s window (True) or the whole video (False).",
    )


def _audio_relpath(options: Options, ytid: str, start: float, end: float) -> str:
    return options.audio_pattern.format(ytid=ytid, start_s=int(start), end_s=int(end))


def _parse_aspects(text: str) -> list[str]:
    value = ast.literal_eval(text) if text.strip() else []
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError("aspect_list is not a list of strings")
    return list(value)


def _row_to_clip(
    row: Row, col: dict[str, int], options: Options, name: str
) -> list[Clip | Rejection]:
    f = row.fields

    def rej(
        reason: IngestReason, detail: str, *, item: str | None = None, kept: bool = False
    ) -> Rejection:
        return Rejection(
            stage="ingest",
            source=NAME,
            item_id=item or f"{name}:{row.line}",
            reason=reason,
            detail=f"{name} line {row.line}: {detail}",
            file=name,
            line=row.line,
            kept=kept,
        )

    ytid = f[col["ytid"]].strip()
    if not ytid:
        return [rej(IngestReason.missing_field, "empty ytid")]
    try:
        start, end = float(f[col["start_s"]]), float(f[col["end_s"]])
        split = Split.test if parse_bool(f[col["is_audioset_eval"]]) else Split.train
        balanced = parse_bool(f[col["is_balanced_subset"]])
    except ValueError as exc:
        return [rej(IngestReason.malformed_row, str(exc))]
    if start < 0 or end <= start:
        return [rej(IngestReason.invalid_value, f"window {start}-{end} s is empty or negative")]
    out: list[Clip | Rejection] = []
    clip_id = Clip.make_id(NAME, ytid, start, end)
    try:
        aspects = _parse_aspects(f[col["aspect_list"]])
    except (ValueError, SyntaxError) as exc:
        aspects = []
        out.append(
            rej(
                IngestReason.invalid_value,
                f"aspect_list unreadable ({exc}); kept without aspects",
                item=clip_id,
                kept=True,
            )
        )
    try:
        audio_path = _audio_relpath(options, ytid, start, end)
        window = (0.0, end - start) if options.cropped else (start, end)
        clip = Clip(
            clip_id=clip_id,
            source=NAME,
            source_id=ytid,
            audio_path=audio_path,
            start_s=window[0],
            end_s=window[1],
            split=split,
            subset="balanced" if balanced else None,
            license=CLIP_LICENSE,
            caption=f[col["caption"]].strip() or None,
            aspects=aspects,
            attributes={
                "youtube_start_s": f"{start:g}",
                "youtube_end_s": f"{end:g}",
                "audioset_positive_labels": f[col["audioset_positive_labels"]],
                "author_id": f[col["author_id"]].strip(),
                "is_balanced_subset": str(balanced),
            },
        )
    except UnsafePathError as exc:
        return [rej(IngestReason.unsafe_path, str(exc), item=clip_id)]
    out.append(clip)
    return out


def iter_clips(root: Path, *, options: Options) -> Iterator[Clip | Rejection]:
    """Yield one clip per csv row (audio presence is checked by the ingest stage).

    Raises
    ------
    SourceFormatError
        If the csv is absent or its header lacks a MusicCaps column.
    """
    path = root / options.csv_name
    if not path.is_file():
        raise SourceFormatError(f"MusicCaps csv not found: {path} (set option csv_name)")
    rows = iter_rows(path, stage="ingest", source=NAME)
    col: dict[str, int] | None = None
    for item in rows:
        if isinstance(item, Rejection):
            yield item
            continue
        if col is None:
            header = [h.strip() for h in item.fields]
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise SourceFormatError(f"{path.name}: header lacks columns {missing}")
            col = {c: header.index(c) for c in COLUMNS}
            width = len(header)
            continue
        if len(item.fields) != width:
            yield Rejection(
                stage="ingest",
                source=NAME,
                item_id=f"{path.name}:{item.line}",
                reason=IngestReason.malformed_row,
                file=path.name,
                line=item.line,
                detail=f"{path.name} line {item.line}: {len(item.fields)} fields, expected {width}",
            )
            continue
        yield from _row_to_clip(item, col, options, path.name)


def write_native(out_dir: Path, demo_clips: Sequence[DemoClip]) -> dict[str, str]:
    """Write the demo clips as a MusicCaps copy: the csv plus cropped ``<ytid>_<s>-<e>.wav``.

    Each clip gets an 11-character ytid (some starting with ``-``, as real ones do) and a
    YouTube window of its own length starting at 30 s.
    """
    from qagen.audio import write_audio

    options = Options()
    out_dir.mkdir(parents=True, exist_ok=True)
    ids: dict[str, str] = {}
    rows = []
    for i, clip in enumerate(demo_clips):
        digest = hashlib.blake2b(clip.name.encode(), digest_size=8).hexdigest()
        ytid = ("-" if i % 3 == 0 else "Q") + digest[:10]  # 11 chars, like a YouTube id
        start, end = 30, 30 + round(clip.duration_s)
        write_audio(out_dir / _audio_relpath(options, ytid, start, end), clip.audio, sr=clip.sr)
        rows.append(
            [
                ytid,
                start,
                end,
                "/m/04rlf",
                repr(list(clip.aspects)),
                clip.caption,
                i % 10,
                i % 2 == 0,
                clip.split == "test",
            ]
        )
        ids[clip.name] = Clip.make_id(NAME, ytid, float(start), float(end))
    with (out_dir / options.csv_name).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return ids
