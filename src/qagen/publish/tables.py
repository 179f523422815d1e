"""Rows of each published config, joined from the work dir shard by shard, and their shards.

The clip manifest is authoritative for splits: a pair takes its clip's split. Rows without
audio or embeddings are small and collected in memory; audio bytes and embedding arrays are
read only while their own shard is being built, so memory stays bounded by the shard size.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from qagen.manifest import iter_records, read_records, to_table
from qagen.paths import safe_join
from qagen.publish.files import FolderWriter, parquet_bytes
from qagen.publish.stats import hub_split
from qagen.records import AudioStatus, Clip, ClipFeatures, QARecord
from qagen.records.publish import PublishedClip, PublishedQA
from qagen.workdir import WorkDir

log = logging.getLogger(__name__)

T = TypeVar("T")


def _chord_labels(feats: ClipFeatures | None) -> list[str]:
    return [c.label for c in feats.chords] if feats else []


def published_clip(clip: Clip, feats: ClipFeatures | None) -> PublishedClip:
    """The ``clips`` row of one clip (features None when it was not measured)."""
    f = feats
    return PublishedClip(
        clip_id=clip.clip_id, source=clip.source, source_id=clip.source_id,
        split=hub_split(clip.split.value), audio_path=clip.audio_path, start_s=clip.start_s,
        end_s=clip.end_s, subset=clip.subset, license=clip.license, caption=clip.caption,
        aspects=clip.aspects, tags=clip.tags, genres=clip.genres, instruments=clip.instruments,
        moods=clip.moods, composer=clip.composer, composition=clip.composition,
        ensemble=clip.ensemble, title=clip.title, artist=clip.artist, attributes=clip.attributes,
        feature_status=f.status.value if f else None, duration_s=f and f.duration_s,
        loudness_lufs=f and f.loudness_lufs, peak_dbfs=f and f.peak_dbfs,
        tempo_bpm=f and f.tempo_bpm, tempo_confidence=f and f.tempo_confidence,
        tempo_agreement=f.tempo_agreement.value if f and f.tempo_agreement else None,
        meter=f and f.meter, key=f and f.key, key_confidence=f and f.key_confidence,
        chords=_chord_labels(f),
        chords_json=json.dumps([c.model_dump() for c in f.chords]) if f and f.chords else None,
        beats=f.beats if f else [], downbeats=f.downbeats if f else [],
        extractor_versions=f.extractor_versions if f else {},
    )


def published_qa(rec: QARecord, clip: Clip, feats: ClipFeatures | None) -> PublishedQA:
    """The ``qa`` row of one pair, with its clip's labels and features."""
    f = feats
    return PublishedQA(
        qa_id=rec.qa_id, clip_id=rec.clip_id, source=rec.source,
        split=hub_split(clip.split.value), question=rec.question, answer=rec.answer,
        kind=rec.kind.value, question_form=rec.question_form.value, topic=rec.topic,
        facts_json=None if rec.facts.is_empty() else rec.facts.model_dump_json(
            exclude_defaults=True),
        verified=rec.verified, derived_from=rec.derived_from,
        judge_mean=rec.judge.mean if rec.judge else None,
        template_id=rec.template_id, template_version=rec.template_version,
        template_hash=rec.template_hash, backend=rec.backend, model_id=rec.model_id,
        sampling=rec.sampling, seed=rec.seed, prompt_tokens=rec.prompt_tokens,
        completion_tokens=rec.completion_tokens, start_s=clip.start_s, end_s=clip.end_s,
        license=clip.license, caption=clip.caption, tags=clip.tags, genres=clip.genres,
        instruments=clip.instruments, moods=clip.moods, duration_s=f and f.duration_s,
        loudness_lufs=f and f.loudness_lufs, tempo_bpm=f and f.tempo_bpm,
        tempo_agreement=f.tempo_agreement.value if f and f.tempo_agreement else None,
        meter=f and f.meter, key=f and f.key, chords=_chord_labels(f),
    )


@dataclass
class JoinedRows:
    """Everything the publish stage reads from a work dir, in shard-key order."""

    clips: list[tuple[Clip, ClipFeatures | None]] = field(default_factory=list)
    pairs: list[tuple[QARecord, Clip, ClipFeatures | None]] = field(default_factory=list)
    pair_splits: list[tuple[str, str, str]] = field(default_factory=list)  # qa_id, clip, split
    orphan_pairs: int = 0


def join_work(work: WorkDir) -> JoinedRows:
    """Join clips, features and accepted pairs shard by shard (shard k covers the same clips)."""
    out = JoinedRows()
    features = work.manifest_shards("features")
    for key, path in work.manifest_shards("clips").items():
        clips = read_records(path, Clip)
        feats = ({f.clip_id: f for f in read_records(features[key], ClipFeatures)}
                 if key in features else {})
        by_id = {c.clip_id: c for c in clips}
        out.clips += [(c, feats.get(c.clip_id)) for c in clips]
        qa_path = work.qa_shard(key)
        if not qa_path.is_file():
            continue
        for rec in iter_records(qa_path, QARecord):
            out.pair_splits.append((rec.qa_id, rec.clip_id, hub_split(rec.split)))
            clip = by_id.get(rec.clip_id)
            if clip is None:
                out.orphan_pairs += 1
                continue
            out.pairs.append((rec, clip, feats.get(rec.clip_id)))
    return out


def write_config_shards(
    writer: FolderWriter, *, config: str, rows_by_split: dict[str, Sequence[T]],
    shard_rows: int, build_table: Callable[[Sequence[T]], pa.Table],
) -> dict[str, list[str]]:
    """Write ``data/<config>/<split>-NNNNN-of-MMMMM.parquet``; returns split → relative paths."""
    out: dict[str, list[str]] = {}
    for split, rows in sorted(rows_by_split.items()):
        if not rows:
            continue
        n = (len(rows) + shard_rows - 1) // shard_rows
        out[split] = []
        for i in range(n):
            rel = f"data/{config}/{split}-{i:05d}-of-{n:05d}.parquet"
            table = build_table(rows[i * shard_rows : (i + 1) * shard_rows])
            writer.write(rel, parquet_bytes(table))
            out[split].append(rel)
    return out


def by_split(rows: Sequence[T], split_of: Callable[[T], str]) -> dict[str, list[T]]:
    """Group rows by split, keeping their order."""
    out: dict[str, list[T]] = {}
    for row in rows:
        out.setdefault(split_of(row), []).append(row)
    return out


def clips_table(rows: Sequence[tuple[Clip, ClipFeatures | None]]) -> pa.Table:
    """Arrow table of ``clips`` rows (no audio)."""
    return to_table([published_clip(c, f) for c, f in rows], PublishedClip)


def qa_table(rows: Sequence[tuple[QARecord, Clip, ClipFeatures | None]]) -> pa.Table:
    """Arrow table of ``qa`` rows."""
    return to_table([published_qa(r, c, f) for r, c, f in rows], PublishedQA)


def clip_audio_bytes(clip: Clip, root: Path | None, *, fmt: str = "flac") -> bytes | None:
    """The clip's window as ``fmt`` (flac/wav) bytes at the file's own rate, or None when
    unreadable."""
    from qagen.audio import load_audio, write_audio

    if root is None or clip.audio_status in (AudioStatus.missing, AudioStatus.excluded):
        return None
    try:
        y, sr = load_audio(safe_join(root, clip.audio_path), sr=None, start_s=clip.start_s,
                           end_s=clip.end_s)
        if not len(y):
            return None
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"clip.{fmt}"
            write_audio(path, y, sr=sr)
            return path.read_bytes()
    except Exception as exc:  # one unreadable file must not stop publishing
        log.warning("publish: no audio for %s: %s: %s", clip.clip_id, type(exc).__name__, exc)
        return None


def with_audio(table: pa.Table, audio: list[bytes | None], names: list[str]) -> pa.Table:
    """Add a ``datasets.Audio`` column (struct of bytes + path) with the Hub's feature metadata.

    The schema metadata (``huggingface`` key) tells ``datasets`` to present the column as
    Audio; decoding needs torchcodec, reading the bytes does not.
    """
    from datasets import Audio, Features

    column = pa.array(
        [None if b is None else {"bytes": b, "path": n} for b, n in zip(audio, names, strict=True)],
        type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
    )
    table = table.append_column("audio", column)
    features = Features.from_arrow_schema(table.schema)
    features["audio"] = Audio()
    return table.cast(features.arrow_schema)


# --- embeddings -------------------------------------------------------------------------

def open_embeddings(work: WorkDir) -> Any:
    """The embed stage's reader (``EmbeddingStore``: index in memory, arrays memory-mapped),
    or None when the work dir has no embeddings."""
    from qagen.embed.store import EmbeddingStore

    try:
        return EmbeddingStore(work)
    except FileNotFoundError:
        return None


def embeddings_table(store: Any, rows: Sequence[Any]) -> pa.Table:
    """``embeddings`` rows (``EmbeddingRow``s of ``store``): clip id, kind, encoder, shape and
    the fp16 values (flattened), read through the store so the file format has one owner."""
    values = [np.asarray(store.load(r.clip_id, kind=r.kind.value), dtype=np.float16).ravel()
              for r in rows]
    return pa.table({
        "clip_id": pa.array([r.clip_id for r in rows], pa.string()),
        "kind": pa.array([r.kind.value for r in rows], pa.string()),
        "encoder": pa.array([r.encoder for r in rows], pa.string()),
        "shape": pa.array([list(r.shape) for r in rows], pa.list_(pa.int64())),
        "values": pa.array(values, pa.list_(pa.float16())),
    })

