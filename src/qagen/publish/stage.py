"""``publish``: a work directory → a Hugging Face dataset folder (parquet configs, card, exports).

Layout written (the Hub's): ``data/<config>/<split>-NNNNN-of-MMMMM.parquet``, ``README.md``
(YAML ``configs`` that ``datasets.load_dataset(folder)`` reads), ``assets/*.png`` linked from
the card, ``exports/musicqa/<split>.json`` and ``exports/llava/<split>.jsonl``. Re-publishing
unchanged inputs rewrites nothing; files of an earlier run that this run does not produce are
removed. Everything is derived from the work dir's files, so it can run in a fresh process.

Two steps, neither holding the dataset in memory: the engine joins clips, features and pairs
shard by shard into ``publish/rows/`` (resumable, one marker per shard), then each config's
split shards and the exports are streamed from those rows.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from itertools import groupby
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from qagen.engine import ManifestShards, ParquetSink, StageReport, run_stage
from qagen.errors import ConfigError
from qagen.manifest import write_json_atomic
from qagen.plots import render_plots
from qagen.publish.card import card_header, render_card, stats_context, training_runs
from qagen.publish.config import PublishConfig
from qagen.publish.exports import audio_name, iter_llava, iter_musicqa
from qagen.publish.files import FolderWriter
from qagen.publish.leakage import LeakageViolation, find_leakage
from qagen.publish.licenses import MADMOM_MODELS_LICENSE, AggregateLicense, aggregate_licenses
from qagen.publish.licenses import parse_license as _parse
from qagen.publish.reviews import review_tally
from qagen.publish.tables import (
    ClipLookup,
    ShardJoin,
    clip_audio_bytes,
    clip_splits,
    clips_table,
    embeddings_table,
    iter_part_rows,
    leakage_keys,
    open_embeddings,
    qa_table,
    with_audio,
    write_config_shards,
)
from qagen.quality import collect_quality, quality_rows
from qagen.records.publish import PublishedClip, PublishedQA
from qagen.stats import WorkStats, collect_stats
from qagen.workdir import WorkDir, dataset_roots

log = logging.getLogger(__name__)

STAGE = "publish"
#: Bump when the joined rows (``publish/rows/``) change for the same inputs.
STAGE_VERSION = "2"  # 2: curators' decisions applied, reviewed/edited columns

CONFIG_DOCS = {
    "qa": "one QA pair with provenance, its clip's labels and measured features",
    "clips": "one clip: source metadata, labels, measured features (and audio if embedded)",
    "embeddings": "one audio embedding of a clip (fp16 values, flattened, with shape)",
}


class PublishReport(BaseModel):
    """The publish stage's own facts: ``StageReport.details`` of a publish run."""

    model_config = ConfigDict(extra="forbid")
    out_dir: str
    default_config: str
    configs: dict[str, dict[str, int]] = Field(description="config → split → rows")
    files_written: list[str] = Field(default_factory=list)
    files_removed: list[str] = Field(default_factory=list)
    leakage: list[LeakageViolation] = Field(default_factory=list)
    license: AggregateLicense
    synthetic: bool


class _RowsConfig(BaseModel):
    """What besides the input files decides the joined rows (the resume fingerprint)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    reviewed_only: bool


def _label(row: PublishedClip | PublishedQA) -> str:
    return f"{'qa' if isinstance(row, PublishedQA) else 'clips'}:{row.split}"


def publish(work: WorkDir, *, config: PublishConfig | None = None,
            strict: bool = False) -> StageReport:
    """Write the dataset folder for ``work`` (default ``WORKDIR/publish/hf``).

    Returns
    -------
    StageReport
        ``items_in`` clips, ``items_out`` joined rows (``counts``: ``qa:<split>``,
        ``clips:<split>``), ``rejected`` pairs whose clip is gone (``orphan_pair``);
        ``details`` a :class:`PublishReport` (folder, configs, files, leakage, license).
        Also saved as ``reports/publish.json``.

    Raises
    ------
    ConfigError
        No clip manifest in ``work``; split leakage under ``leakage="error"``.
    """
    t0 = time.perf_counter()
    cfg = config or PublishConfig()
    if not work.manifest_shards("clips"):
        raise ConfigError(f"no clip manifest in {work.root}; run `qagen ingest` first")
    out = cfg.out_dir or default_out_dir(work)
    qa_sink = ParquetSink(PublishedQA, work.published_rows, "qa")
    clip_sink = ParquetSink(PublishedClip, work.published_rows, "clips")
    rows = run_stage(
        work, stage=STAGE, version=STAGE_VERSION,
        batch_fn=ShardJoin(work, reviewed_only=cfg.reviewed_only),
        inputs=ManifestShards(work, also=[lambda k: work.manifest_shard("features", k),
                                          work.qa_shard, work.reviews_shard]),
        config=_RowsConfig(reviewed_only=cfg.reviewed_only),
        sinks=[qa_sink, clip_sink], strict=strict, label=_label)
    stats = collect_stats(work)
    clip_keys, pair_keys = leakage_keys(work)
    leakage = find_leakage(clips=clip_keys, pairs=pair_keys)
    if leakage and cfg.leakage == "error":
        shown = "; ".join(f"{v.kind} {v.item} ({'/'.join(v.splits)})" for v in leakage[:5])
        raise ConfigError(f"split leakage ({len(leakage)}): {shown}; fix the splits or publish "
                          f"with leakage='report'")
    split_of = clip_splits(work) if "embeddings" in cfg.configs else {}
    writer = FolderWriter(out, managed=("data", "assets", "exports", "README.md"))
    parts = _Parts(work, qa=qa_sink, clips=clip_sink)
    written = _write_configs(work, writer, cfg, rows, parts, split_of)
    default = "qa" if "qa" in written else next(iter(written), "clips")
    if cfg.exports and "qa" in written:
        _write_exports(work, writer, parts, splits=list(written["qa"]),
                       audio=cfg.export_audio)
    plots = {}
    if cfg.plots:
        for name, data in render_plots(stats).items():
            writer.write(f"assets/{name}", data)
            plots[name] = f"assets/{name}"
    license_rows, agg = license_table(stats)
    license_id = cfg.license or agg.hub_id
    counts = {c: {s: n for s, n in splits.items()} for c, splits in written.items()}
    header = card_header(configs={c: {s: [] for s in v} for c, v in counts.items()},
                         default=default, license_id=license_id, pretty_name=cfg.pretty_name,
                         total_rows=sum(counts.get(default, {}).values()))
    context = {
        **stats_context(stats), "pretty_name": cfg.pretty_name, "repo_id": cfg.repo_id,
        "sources": sorted(stats.clips), "synthetic": stats.synthetic,
        "demo_clips": stats.demo_clips, "configs": counts, "default_config": default,
        "config_docs": CONFIG_DOCS, "embed_audio": cfg.embed_audio and "clips" in counts,
        "plots": plots, "leakage": leakage, "license": agg, "license_rows": license_rows,
        "training_runs": training_runs(work),
        "quality": (quality := collect_quality(work)), "quality_rows": quality_rows(quality),
        "review": review_tally(work), "reviewed_only": cfg.reviewed_only,
    }
    card = render_card(header=header, context=context, template=cfg.card_template)
    writer.write("README.md", card.encode())
    removed = writer.remove_stale()
    details = PublishReport(
        out_dir=str(out), default_config=default, configs=counts,
        files_written=sorted(writer.written), files_removed=removed, leakage=leakage,
        license=agg, synthetic=stats.synthetic)
    report = rows.model_copy(update={
        "seconds": round(time.perf_counter() - t0, 3),
        "extras": {"files_written": len(writer.written), "files_removed": len(removed),
                   "leakage_violations": len(leakage)},
        "details": details.model_dump(mode="json")})
    write_json_atomic(work.reports / "publish.json", report.model_dump(mode="json"))
    log.info("publish: %s → %s (%d files written, %d removed, %d leakage violations)",
             {c: sum(v.values()) for c, v in counts.items()}, out, len(writer.written),
             len(removed), len(leakage))
    return report


class _Parts:
    """The joined rows per shard (``publish/rows/``), streamed split by split."""

    def __init__(self, work: WorkDir, *, qa: ParquetSink[PublishedQA],
                 clips: ParquetSink[PublishedClip]) -> None:
        keys = list(work.manifest_shards("clips"))
        self.qa = {k: qa.path(k) for k in keys}
        self.clips = {k: clips.path(k) for k in keys}

    def qa_rows(self, split: str) -> Iterator[tuple[str, PublishedQA]]:
        return iter_part_rows(self.qa, PublishedQA, split=split)

    def clip_rows(self, split: str) -> Iterator[tuple[str, PublishedClip]]:
        return iter_part_rows(self.clips, PublishedClip, split=split)


def _write_configs(
    work: WorkDir, writer: FolderWriter, cfg: PublishConfig, rows: StageReport, parts: _Parts,
    split_of: dict[str, str],
) -> dict[str, dict[str, int]]:
    """Write each requested config's shards; returns config → split → rows (non-empty only)."""
    written: dict[str, dict[str, int]] = {}
    qa_counts = {s: n for s, n in rows.counted("qa").items() if n}
    if "qa" in cfg.configs and qa_counts:
        write_config_shards(writer, config="qa", split_rows=qa_counts, rows_of=parts.qa_rows,
                            shard_rows=cfg.shard_rows, build_table=qa_table)
        written["qa"] = qa_counts
    clip_counts = {s: n for s, n in rows.counted("clips").items() if n}
    if "clips" in cfg.configs and clip_counts:
        if cfg.embed_audio:
            roots = dataset_roots(work)
            lookup = ClipLookup(work)

            def build(batch: Sequence[tuple[str, PublishedClip]]) -> pa.Table:
                clips = [lookup.get(key, r.clip_id) for key, r in batch]
                audio = [clip_audio_bytes(c, roots.get(c.source)) if c is not None else None
                         for c in clips]
                return with_audio(clips_table(batch), audio,
                                  [f"{r.clip_id}.flac" for _, r in batch])

            write_config_shards(writer, config="clips", split_rows=clip_counts,
                                rows_of=parts.clip_rows, shard_rows=cfg.audio_shard_rows,
                                build_table=build)
        else:
            write_config_shards(writer, config="clips", split_rows=clip_counts,
                                rows_of=parts.clip_rows, shard_rows=cfg.shard_rows,
                                build_table=clips_table)
        written["clips"] = clip_counts
    store = open_embeddings(work) if "embeddings" in cfg.configs else None
    index = store.rows() if store is not None else []
    if index:
        known = [r for r in index if r.clip_id in split_of]
        if len(known) < len(index):
            log.warning("publish: %d embeddings name clips not in the manifest; left out",
                        len(index) - len(known))
        emb_counts = dict(sorted(Counter(split_of[r.clip_id] for r in known).items()))
        write_config_shards(writer, config="embeddings", split_rows=emb_counts,
                            rows_of=lambda s: (r for r in known if split_of[r.clip_id] == s),
                            shard_rows=cfg.audio_shard_rows,
                            build_table=lambda batch: embeddings_table(store, batch))
        written["embeddings"] = emb_counts
    return written


def _write_exports(work: WorkDir, writer: FolderWriter, parts: _Parts, *, splits: list[str],
                   audio: bool) -> None:
    """MusicQA JSON and LLaVA JSONL per split, streamed; with ``audio``, the ``audio_name``
    files they point to (``exports/audio/<clip_id>.wav``, the clip window), so MU-LLaMA's
    loader reads the export unchanged."""
    for split in sorted(splits):
        writer.write_chunks(f"exports/musicqa/{split}.json",
                            iter_musicqa(r for _, r in parts.qa_rows(split)))
        by_shard = ([r for _, r in group] for _, group in
                    groupby(parts.qa_rows(split), key=lambda kr: kr[0]))
        writer.write_chunks(f"exports/llava/{split}.jsonl", iter_llava(by_shard))
    if not audio:
        return
    roots = dataset_roots(work)
    lookup = ClipLookup(work)
    for split in sorted(splits):
        done: set[str] = set()
        for key, row in parts.qa_rows(split):
            if row.clip_id in done:
                continue
            done.add(row.clip_id)
            clip = lookup.get(key, row.clip_id)
            data = None if clip is None else clip_audio_bytes(clip, roots.get(clip.source),
                                                              fmt="wav")
            if data is not None:
                writer.write(f"exports/audio/{audio_name(row.clip_id)}", data)


def license_table(stats: WorkStats) -> tuple[list[dict[str, Any]], AggregateLicense]:
    """Per-input license rows for the card and their aggregate (madmom's models included when
    any clip was measured)."""
    rows = []
    texts: Counter[str] = Counter()
    for source, by_text in sorted(stats.licenses.items()):
        for text, n in sorted(by_text.items()):
            rows.append({"input": source, "text": text, "clips": n,
                         "nc": _parse(None if text == "(none)" else text).non_commercial})
            texts[text] += n
    inputs: list[str | None] = [None if t == "(none)" else t for t in texts]
    if stats.feature_status:
        rows.append({"input": "madmom models (measured features)", "text": MADMOM_MODELS_LICENSE,
                     "clips": sum(stats.feature_status.values()), "nc": True})
        inputs.append(MADMOM_MODELS_LICENSE)
    return rows, aggregate_licenses(inputs)


def default_out_dir(work: WorkDir) -> Path:
    """Where :func:`publish` writes by default."""
    return work.published
