"""AudioFolder: any folder of audio files laid out the Hugging Face ``datasets`` way.

This is the door for a user's own music. The convention (``load_dataset("audiofolder",
data_dir=...)``): audio files of any common format, optionally with a ``metadata.csv`` or
``metadata.jsonl`` whose ``file_name`` column holds each file's path relative to that metadata
file. Metadata may sit at the root (``file_name`` = ``train/a.flac``) or inside split folders
(``train/metadata.jsonl`` with ``file_name`` = ``a.flac``); both are read. Splits come from the
top-level folder name (``train``/``training``, ``validation``/``valid``/``val``/``dev``,
``test``/``testing``/``eval``/``evaluation``); a ``split`` column overrides the folder.

Known columns map onto clip fields (``caption``/``text``/``description``; ``tags``;
``genre(s)``, ``instrument(s)``, ``mood(s)`` as comma-separated text or JSON lists; ``title``,
``artist``, ``album``, ``composer``, ``composition``, ``movement``, ``ensemble``, ``license``;
``start_s``/``end_s`` for a window); every other column goes to ``attributes`` as text.
Without any metadata file every audio file found is one unlabelled clip.

Size, audio origin and license are whatever the user brings: the ``license`` option fills rows
that name none. The clip's ``source_id`` is its audio path relative to the root, so the same
file has the same id whether its metadata sits at the root or in its split folder.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from qagen import jsontext
from qagen.errors import SourceFormatError, UnsafePathError
from qagen.paths import safe_join, safe_relpath
from qagen.records import Clip, Rejection, Split
from qagen.records.demo import DemoClip
from qagen.records.rejection import IngestReason
from qagen.tabular import decoded_lines, iter_rows

logger = logging.getLogger(__name__)

NAME = "audiofolder"
HOMEPAGE = "https://huggingface.co/docs/datasets/audio_dataset#audiofolder"
LICENSE = "set by the user: a license column per row, or the license option"
CITATION = (
    "Lhoest et al., Datasets: A Community Library for Natural Language Processing, "
    "EMNLP 2021 (System Demonstrations). Cite the dataset you bring as well."
)
METADATA_NAMES = ("metadata.csv", "metadata.jsonl")
AUDIO_EXTENSIONS = frozenset(
    {".aif", ".aiff", ".au", ".flac", ".m4a", ".mp3", ".oga", ".ogg", ".opus", ".wav", ".wma"}
)
_SPLIT_NAMES = {
    "train": Split.train, "training": Split.train,
    "validation": Split.valid, "valid": Split.valid, "val": Split.valid, "dev": Split.valid,
    "test": Split.test, "testing": Split.test, "eval": Split.test, "evaluation": Split.test,
}
_SPLIT_FOLDERS = {Split.train: "train", Split.valid: "validation", Split.test: "test"}
_CAPTION_COLUMNS = ("caption", "text", "description")
_LIST_COLUMNS = {
    "tags": ("tags",), "genres": ("genre", "genres"),
    "instruments": ("instrument", "instruments"), "moods": ("mood", "moods"),
}
_TEXT_COLUMNS = ("title", "artist", "album", "composer", "composition", "movement", "ensemble")


class Options(BaseModel):
    """What the folder itself cannot say."""

    model_config = ConfigDict(extra="forbid")
    license: str | None = Field(
        default=None, description="License of clips whose metadata row names none."
    )


def _text(value: object) -> str:
    """A metadata value as text: JSON values from jsonl, strings from csv."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def parse_labels(value: object) -> list[str]:
    """Turn a label cell into a list: a JSON list, or comma-separated text.

    Raises
    ------
    ValueError
        If the text looks like a JSON list (starts with ``[``) but is not one of strings.
    """
    if value is None:
        return []
    if isinstance(value, list):
        items = value
    else:
        text = _text(value)
        if text.startswith("["):
            items = jsontext.loads(text)
            if not isinstance(items, list):
                raise ValueError(f"not a JSON list: {text[:60]!r}")
        else:
            items = text.split(",")
    if not all(isinstance(v, str | int | float) for v in items):
        raise ValueError("label list holds nested values")
    return [str(v).strip() for v in items if str(v).strip()]


def _split_of_dir(audio_path: str) -> Split:
    """Split named by the top-level folder of a root-relative path, as HF infers it."""
    head, sep, _ = audio_path.partition("/")
    return _SPLIT_NAMES.get(head.lower(), Split.unsplit) if sep else Split.unsplit


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def _iter_jsonl(path: Path, *, display: str) -> Iterator[tuple[int, dict[str, object]] | Rejection]:
    """Records of a jsonl file with line numbers; bad lines become rejections."""
    repaired: set[int] = set()
    for number, line in enumerate(decoded_lines(path, repaired), start=1):
        if number in repaired:
            yield Rejection(
                stage="ingest", source=NAME, item_id=f"{display}:{number}", file=display,
                line=number, reason=IngestReason.bad_encoding, kept=True,
                detail=f"{display} line {number}: bytes are not UTF-8; decoded as cp1252",
            )
        if not line.strip():
            continue
        try:
            record = jsontext.loads(line)
        except ValueError as exc:
            yield Rejection(
                stage="ingest", source=NAME, item_id=f"{display}:{number}", file=display,
                line=number, reason=IngestReason.malformed_row,
                detail=f"{display} line {number}: invalid JSON ({exc})",
            )
            continue
        if not isinstance(record, dict):
            yield Rejection(
                stage="ingest", source=NAME, item_id=f"{display}:{number}", file=display,
                line=number, reason=IngestReason.malformed_row,
                detail=f"{display} line {number}: a JSON {type(record).__name__}, "
                "not an object",
            )
            continue
        yield number, record


def _iter_csv(path: Path, *, display: str) -> Iterator[tuple[int, dict[str, object]] | Rejection]:
    """Records of a csv file keyed by its header; rows of the wrong width become rejections."""
    header: list[str] | None = None
    for item in iter_rows(path, stage="ingest", source=NAME, display_name=display):
        if isinstance(item, Rejection):
            yield item
        elif header is None:
            header = [h.strip() for h in item.fields]
        elif len(item.fields) != len(header):
            yield Rejection(
                stage="ingest", source=NAME, item_id=f"{display}:{item.line}", file=display,
                line=item.line, reason=IngestReason.malformed_row,
                detail=f"{display} line {item.line}: {len(item.fields)} fields, "
                f"expected {len(header)}",
            )
        else:
            yield item.line, dict(zip(header, item.fields, strict=True))


def _record_to_clip(
    record: dict[str, object], *, line: int, display: str, base_dir: str, options: Options
) -> list[Clip | Rejection]:
    """One metadata record → a clip (plus kept-item notes), or the reason it was dropped."""

    def rej(reason: IngestReason, detail: str, *, item: str | None = None,
            kept: bool = False) -> Rejection:
        return Rejection(stage="ingest", source=NAME, item_id=item or f"{display}:{line}",
                         reason=reason, detail=f"{display} line {line}: {detail}",
                         file=display, line=line, kept=kept)

    cells = {str(k).strip().lower(): v for k, v in record.items()}
    keys = {str(k).strip().lower(): str(k).strip() for k in record}
    file_name = _text(cells.get("file_name"))
    if not file_name:
        return [rej(IngestReason.missing_field, "empty or missing file_name")]
    try:
        audio_path = safe_relpath(f"{base_dir}/{safe_relpath(file_name)}" if base_dir
                                  else file_name)
    except UnsafePathError as exc:
        return [rej(IngestReason.unsafe_path, str(exc))]
    try:
        start = float(_text(cells.get("start_s")) or 0.0)
        end_text = _text(cells.get("end_s"))
        end = float(end_text) if end_text else None
    except ValueError as exc:
        return [rej(IngestReason.malformed_row, f"window: {exc}")]
    if start < 0 or (end is not None and end <= start):
        window = f"{start:g}-{'end' if end is None else f'{end:g}'}"
        return [rej(IngestReason.invalid_value, f"window {window} s is empty or negative")]
    clip_id = Clip.make_id(NAME, audio_path, start, end)
    out: list[Clip | Rejection] = []
    used = {"file_name", "start_s", "end_s", "split", "license"}

    split = _split_of_dir(audio_path)
    split_text = _text(cells.get("split"))
    if split_text:
        if split_text.lower() in _SPLIT_NAMES:
            split = _SPLIT_NAMES[split_text.lower()]
        else:
            out.append(rej(IngestReason.invalid_value, f"unknown split {split_text!r}; kept "
                           f"with the folder's split ({split.value})", item=clip_id, kept=True))

    caption = None
    for column in _CAPTION_COLUMNS:
        if caption is None and _text(cells.get(column)):
            caption = _text(cells[column])
            used.add(column)
    labels: dict[str, list[str]] = {}
    for field, columns in _LIST_COLUMNS.items():
        labels[field] = []
        for column in columns:
            if column not in cells:
                continue
            used.add(column)
            try:
                labels[field].extend(parse_labels(cells[column]))
            except ValueError as exc:
                out.append(rej(IngestReason.invalid_value, f"{keys[column]} unreadable ({exc}); "
                               f"kept without {field}", item=clip_id, kept=True))
    texts = {c: _text(cells.get(c)) or None for c in _TEXT_COLUMNS}
    used.update(_TEXT_COLUMNS)
    attributes = {keys[k]: _text(v) for k, v in cells.items() if k not in used and _text(v)}
    out.append(Clip(
        clip_id=clip_id, source=NAME, source_id=audio_path, audio_path=audio_path,
        start_s=start, end_s=end, split=split,
        license=_text(cells.get("license")) or options.license, caption=caption,
        tags=labels["tags"], genres=labels["genres"], instruments=labels["instruments"],
        moods=labels["moods"], attributes=attributes, **texts,
    ))
    return out


def _metadata_files(root: Path) -> list[Path]:
    """Every metadata file under the root, shallowest first, hidden folders skipped."""
    found = [p for name in METADATA_NAMES for p in root.rglob(name)
             if p.is_file() and not _hidden(p.relative_to(root))]
    return sorted(found, key=lambda p: (len(p.relative_to(root).parts), p.as_posix()))


def _iter_from_metadata(
    root: Path, files: list[Path], options: Options
) -> Iterator[Clip | Rejection]:
    seen: dict[str, str] = {}
    for path in files:
        rel = path.relative_to(root)
        display = rel.as_posix()
        base_dir = rel.parent.as_posix() if rel.parent != Path() else ""
        records = (_iter_csv(path, display=display) if path.suffix == ".csv"
                   else _iter_jsonl(path, display=display))
        for item in records:
            if isinstance(item, Rejection):
                yield item
                continue
            line, record = item
            for out in _record_to_clip(record, line=line, display=display, base_dir=base_dir,
                                       options=options):
                if isinstance(out, Clip):
                    if out.clip_id in seen:
                        yield Rejection(
                            stage="ingest", source=NAME, item_id=out.clip_id, file=display,
                            line=line, reason=IngestReason.duplicate_id,
                            detail=f"{display} line {line}: {out.audio_path} already listed "
                            f"at {seen[out.clip_id]}",
                        )
                        continue
                    seen[out.clip_id] = f"{display}:{line}"
                yield out
    logger.info("audiofolder: %d clips from %d metadata file(s) under %s",
                len(seen), len(files), root)


def _iter_from_files(root: Path, options: Options) -> Iterator[Clip | Rejection]:
    n = 0
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.suffix.lower() not in AUDIO_EXTENSIONS or _hidden(rel) or not path.is_file():
            continue
        audio_path = rel.as_posix()
        try:
            safe_join(root, audio_path)
        except UnsafePathError as exc:
            yield Rejection(stage="ingest", source=NAME, item_id=audio_path, file=audio_path,
                            reason=IngestReason.unsafe_path, detail=f"{audio_path}: {exc}")
            continue
        n += 1
        yield Clip(
            clip_id=Clip.make_id(NAME, audio_path, 0.0, None), source=NAME,
            source_id=audio_path, audio_path=audio_path, start_s=0.0,
            split=_split_of_dir(audio_path), license=options.license,
        )
    logger.info("audiofolder: no metadata file; %d audio files under %s", n, root)


def iter_clips(root: Path, *, options: Options) -> Iterator[Clip | Rejection]:
    """Yield one clip per metadata record, or per audio file when there is no metadata.

    Raises
    ------
    SourceFormatError
        If the root is not a directory.
    """
    if not root.is_dir():
        raise SourceFormatError(f"audiofolder root is not a directory: {root}")
    files = _metadata_files(root)
    if files:
        yield from _iter_from_metadata(root, files, options)
    else:
        yield from _iter_from_files(root, options)


def write_native(out_dir: Path, demo_clips: Sequence[DemoClip]) -> dict[str, str]:
    """Write the demo clips as an AudioFolder: ``<split>/<name>.flac`` plus a root
    ``metadata.jsonl`` whose ``file_name`` includes the split folder.

    Returns ``{demo name: clip_id}``.
    """
    from qagen.audio import write_audio

    out_dir.mkdir(parents=True, exist_ok=True)
    ids: dict[str, str] = {}
    lines = []
    for demo in demo_clips:
        split = _SPLIT_NAMES.get(demo.split.lower(), Split.train)
        file_name = f"{_SPLIT_FOLDERS.get(split, 'train')}/{demo.name}.flac"
        write_audio(out_dir / safe_relpath(file_name), demo.audio, sr=demo.sr)
        record = {
            "file_name": file_name, "caption": demo.caption or None, "tags": list(demo.tags),
            "genres": list(demo.genres), "instruments": list(demo.instruments),
            "moods": list(demo.moods), "title": demo.title or None,
            "artist": demo.artist or None, "composer": demo.composer or None,
            "split": split.value,
        }
        lines.append(json.dumps(record, ensure_ascii=False))
        ids[demo.name] = Clip.make_id(NAME, file_name, 0.0, None)
    (out_dir / "metadata.jsonl").write_text("".join(f"{x}\n" for x in lines), encoding="utf-8")
    return ids
