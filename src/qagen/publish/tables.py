"""Rows of each published config, joined from the work dir shard by shard, and their shards.

The clip manifest is authoritative for splits: a pair takes its clip's split. :class:`ShardJoin`
is the publish stage's per-shard function (clips + features + pairs of shard k → published
rows, written by the engine under ``publish/rows/``); :func:`write_config_shards` streams
those rows into the Hub's split shards, at most one output shard of rows in memory, and
audio bytes and embedding arrays are read only while their own output shard is built.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from qagen.manifest import iter_records, read_records, to_table
from qagen.paths import safe_join
from qagen.publish.files import FolderWriter, parquet_bytes
from qagen.publish.reviews import review_of, shard_decisions
from qagen.records import AudioStatus, Clip, ClipFeatures, QARecord, Rejection, ReviewRecord
from qagen.records.publish import PublishedClip, PublishedQA, PublishReason
from qagen.records.review import ReviewDecision
from qagen.stats import hub_split, read_columns
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


def published_qa(rec: QARecord, clip: Clip, feats: ClipFeatures | None, *,
                 review: ReviewRecord | None = None) -> PublishedQA:
    """The ``qa`` row of one pair, with its clip's labels and features; ``review`` is the
    curator's applied (non-stale) decision, whose edit replaces the text."""
    f = feats
    edit = review if review is not None and review.decision is ReviewDecision.edit else None
    return PublishedQA(
        qa_id=rec.qa_id, clip_id=rec.clip_id, source=rec.source,
        split=hub_split(clip.split.value), question=edit.question if edit else rec.question,
        answer=edit.answer if edit else rec.answer, reviewed=review is not None,
        edited=edit is not None,
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


@dataclass(frozen=True)
class ShardJoin:
    """The publish stage's per-shard function: the clips of shard k, with the features,
    accepted pairs and curators' decisions of shard k, → ``PublishedClip`` and ``PublishedQA``
    rows; a pair whose clip is not in the shard is rejected (``orphan_pair``), one a curator
    rejected too (``reviewer_rejected``), and under ``reviewed_only`` one no curator kept
    (``not_reviewed``)."""

    work: WorkDir
    reviewed_only: bool = False

    def __call__(self, key: str, clips: list[Clip]) -> list[PublishedClip | PublishedQA |
                                                           Rejection]:
        feats_path = self.work.manifest_shard("features", key)
        feats = ({f.clip_id: f for f in iter_records(feats_path, ClipFeatures)}
                 if feats_path.is_file() else {})
        out: list[PublishedClip | PublishedQA | Rejection] = [
            published_clip(c, feats.get(c.clip_id)) for c in clips]
        by_id = {c.clip_id: c for c in clips}
        qa_path = self.work.qa_shard(key)
        if not qa_path.is_file():
            return out
        decisions = shard_decisions(self.work, key)
        for rec in iter_records(qa_path, QARecord):
            clip = by_id.get(rec.clip_id)
            if clip is None:
                out.append(Rejection(stage="publish", source=rec.source, item_id=rec.qa_id,
                                     reason=PublishReason.orphan_pair,
                                     detail=f"pair of clip {rec.clip_id}, which is not in "
                                     f"clip shard {key}"))
                continue
            review = review_of(rec, decisions)
            applied = review.applied if review is not None else None
            if applied is not None and applied.decision is ReviewDecision.reject:
                out.append(Rejection(stage="publish", source=rec.source, item_id=rec.qa_id,
                                     reason=PublishReason.reviewer_rejected,
                                     detail=f"rejected by {applied.reviewer}: {applied.reason}"))
                continue
            if applied is None and self.reviewed_only:
                out.append(Rejection(stage="publish", source=rec.source, item_id=rec.qa_id,
                                     reason=PublishReason.not_reviewed,
                                     detail="stale review: the pair changed since" if review
                                     else "no curator decision"))
                continue
            out.append(published_qa(rec, clip, feats.get(rec.clip_id), review=applied))
        return out


def leakage_keys(work: WorkDir) -> tuple[Iterator[tuple[str, str, str, str | None]],
                                         Iterator[tuple[str, str, str]]]:
    """What the leakage check compares, read lazily column by column, shard by shard (a
    dataset's worth of tuples is never held): per clip ``(clip_id, hub split,
    source/source_id, audio sha256)`` (the measured file's hash when features have one), per
    pair ``(qa_id, clip_id, hub split)``."""
    features = work.manifest_shards("features")
    clip_shards = work.manifest_shards("clips")

    def clips() -> Iterator[tuple[str, str, str, str | None]]:
        for key, path in clip_shards.items():
            measured: dict[str, str] = {}
            if key in features:
                cols = read_columns(features[key], ["clip_id", "audio_sha256"])
                measured = {c: h for c, h in zip(*cols.values(), strict=True) if h}
            cols = read_columns(path, ["clip_id", "split", "source", "source_id",
                                       "audio_sha256"])
            for clip_id, split, source, source_id, sha in zip(*cols.values(), strict=True):
                yield (clip_id, hub_split(split), f"{source}/{source_id}",
                       measured.get(clip_id) or sha)

    def pairs() -> Iterator[tuple[str, str, str]]:
        for key in clip_shards:
            qa_path = work.qa_shard(key)
            if qa_path.is_file():
                cols = read_columns(qa_path, ["qa_id", "clip_id", "split"])
                for q, c, s in zip(*cols.values(), strict=True):
                    yield q, c, hub_split(s)

    return clips(), pairs()


def clip_splits(work: WorkDir) -> dict[str, str]:
    """``clip_id → hub split`` of every clip (two columns read per shard)."""
    out: dict[str, str] = {}
    for path in work.manifest_shards("clips").values():
        cols = read_columns(path, ["clip_id", "split"])
        out.update((c, hub_split(s)) for c, s in zip(*cols.values(), strict=True))
    return out


def iter_part_rows(parts: Mapping[str, Path], model: type[T], *,
                   split: str) -> Iterator[tuple[str, T]]:
    """``(shard key, row)`` of one split from the per-shard row files, in shard order."""
    for key, path in parts.items():
        if split not in set(read_columns(path, ["split"])["split"]):
            continue
        for row in iter_records(path, model):  # type: ignore[type-var]
            if row.split == split:  # type: ignore[attr-defined]
                yield key, row


def write_config_shards(
    writer: FolderWriter, *, config: str, split_rows: Mapping[str, int],
    rows_of: Callable[[str], Iterator[T]], shard_rows: int,
    build_table: Callable[[list[T]], pa.Table],
) -> dict[str, list[str]]:
    """Write ``data/<config>/<split>-NNNNN-of-MMMMM.parquet``, streaming each split's rows
    (``rows_of(split)``, ``split_rows[split]`` of them) into shards of ``shard_rows``;
    returns split → relative paths."""
    out: dict[str, list[str]] = {}
    for split, total in sorted(split_rows.items()):
        if total <= 0:
            continue
        n = (total + shard_rows - 1) // shard_rows
        out[split] = []
        batch: list[T] = []
        for row in rows_of(split):
            batch.append(row)
            if len(batch) == shard_rows:
                out[split].append(_write_shard(writer, config, split, len(out[split]), n,
                                               build_table(batch)))
                batch = []
        if batch:
            out[split].append(_write_shard(writer, config, split, len(out[split]), n,
                                           build_table(batch)))
        if len(out[split]) != n:
            raise RuntimeError(f"{config}/{split}: expected {total} rows, the rows files hold "
                               "another number; re-run publish")
    return out


def _write_shard(writer: FolderWriter, config: str, split: str, i: int, n: int,
                 table: pa.Table) -> str:
    rel = f"data/{config}/{split}-{i:05d}-of-{n:05d}.parquet"
    writer.write(rel, parquet_bytes(table))
    return rel


class ClipLookup:
    """Clip records by id, one clip shard in memory at a time (rows arrive in shard order)."""

    def __init__(self, work: WorkDir) -> None:
        self.work = work
        self._key: str | None = None
        self._clips: dict[str, Clip] = {}

    def get(self, key: str, clip_id: str) -> Clip | None:
        if key != self._key:
            path = self.work.manifest_shard("clips", key)
            self._clips = ({c.clip_id: c for c in read_records(path, Clip)}
                           if path.is_file() else {})
            self._key = key
        return self._clips.get(clip_id)


def clips_table(rows: Sequence[tuple[str, PublishedClip]]) -> pa.Table:
    """Arrow table of ``clips`` rows (no audio)."""
    return to_table([r for _, r in rows], PublishedClip)


def qa_table(rows: Sequence[tuple[str, PublishedQA]]) -> pa.Table:
    """Arrow table of ``qa`` rows."""
    return to_table([r for _, r in rows], PublishedQA)


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
    from qagen.embedding_store import EmbeddingStore

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

