"""``publish``: a work directory → a Hugging Face dataset folder (parquet configs, card, exports).

Layout written (the Hub's): ``data/<config>/<split>-NNNNN-of-MMMMM.parquet``, ``README.md``
(YAML ``configs`` that ``datasets.load_dataset(folder)`` reads), ``assets/*.png`` linked from
the card, ``exports/musicqa/<split>.json`` and ``exports/llava/<split>.jsonl``. Re-publishing
unchanged inputs rewrites nothing; files of an earlier run that this run does not produce are
removed. Everything is derived from the work dir's files, so it can run in a fresh process.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from qagen.errors import ConfigError
from qagen.manifest import write_json_atomic
from qagen.publish.card import card_header, render_card, stats_context, training_runs
from qagen.publish.config import PublishConfig
from qagen.publish.exports import audio_name, render_llava, render_musicqa
from qagen.publish.files import FolderWriter
from qagen.publish.leakage import LeakageViolation, find_leakage
from qagen.publish.licenses import MADMOM_MODELS_LICENSE, AggregateLicense, aggregate_licenses
from qagen.publish.licenses import parse_license as _parse
from qagen.publish.plots import render_plots
from qagen.publish.quality import collect_quality, quality_rows
from qagen.publish.stats import WorkStats, collect_stats, hub_split
from qagen.publish.tables import (
    JoinedRows,
    by_split,
    clip_audio_bytes,
    clips_table,
    embeddings_table,
    join_work,
    open_embeddings,
    published_qa,
    qa_table,
    with_audio,
    write_config_shards,
)
from qagen.records import Clip, ClipFeatures
from qagen.workdir import WorkDir

log = logging.getLogger(__name__)

CONFIG_DOCS = {
    "qa": "one QA pair with provenance, its clip's labels and measured features",
    "clips": "one clip: source metadata, labels, measured features (and audio if embedded)",
    "embeddings": "one audio embedding of a clip (fp16 values, flattened, with shape)",
}


class PublishReport(BaseModel):
    """What one publish run wrote."""

    model_config = ConfigDict(extra="forbid")
    out_dir: str
    default_config: str
    configs: dict[str, dict[str, int]] = Field(description="config → split → rows")
    files_written: list[str] = Field(default_factory=list)
    files_removed: list[str] = Field(default_factory=list)
    leakage: list[LeakageViolation] = Field(default_factory=list)
    license: AggregateLicense
    synthetic: bool
    seconds: float = 0.0


def publish(work: WorkDir, *, config: PublishConfig | None = None) -> PublishReport:
    """Write the dataset folder for ``work`` (default ``WORKDIR/publish/hf``).

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
    stats = collect_stats(work)
    joined = join_work(work)
    leakage = find_leakage(
        clips=[(c.clip_id, hub_split(c.split.value), f"{c.source}/{c.source_id}",
                (f.audio_sha256 if f else None) or c.audio_sha256) for c, f in joined.clips],
        pairs=joined.pair_splits,
    )
    if leakage and cfg.leakage == "error":
        shown = "; ".join(f"{v.kind} {v.item} ({'/'.join(v.splits)})" for v in leakage[:5])
        raise ConfigError(f"split leakage ({len(leakage)}): {shown}; fix the splits or publish "
                          f"with leakage='report'")
    writer = FolderWriter(out, managed=("data", "assets", "exports", "README.md"))
    written = _write_configs(work, writer, cfg, joined)
    default = "qa" if "qa" in written else next(iter(written), "clips")
    if cfg.exports and "qa" in written:
        _write_exports(work, writer, joined, audio=cfg.export_audio)
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
        "training_runs": training_runs(work.root),
        "quality": (quality := collect_quality(work)), "quality_rows": quality_rows(quality),
    }
    card = render_card(header=header, context=context, template=cfg.card_template)
    writer.write("README.md", card.encode())
    removed = writer.remove_stale()
    report = PublishReport(
        out_dir=str(out), default_config=default, configs=counts,
        files_written=sorted(writer.written), files_removed=removed, leakage=leakage,
        license=agg, synthetic=stats.synthetic, seconds=round(time.perf_counter() - t0, 3),
    )
    write_json_atomic(work.reports / "publish.json", report.model_dump(mode="json"))
    log.info("publish: %s → %s (%d files written, %d removed, %d leakage violations)",
             {c: sum(v.values()) for c, v in counts.items()}, out, len(writer.written),
             len(removed), len(leakage))
    return report


def _write_configs(
    work: WorkDir, writer: FolderWriter, cfg: PublishConfig, joined: JoinedRows,
) -> dict[str, dict[str, int]]:
    """Write each requested config's shards; returns config → split → rows (non-empty only)."""
    written: dict[str, dict[str, int]] = {}
    if "qa" in cfg.configs and joined.pairs:
        rows = by_split(joined.pairs, lambda r: hub_split(r[1].split.value))
        write_config_shards(writer, config="qa", rows_by_split=rows, shard_rows=cfg.shard_rows,
                            build_table=qa_table)
        written["qa"] = {s: len(r) for s, r in rows.items()}
    if "clips" in cfg.configs and joined.clips:
        clip_rows = by_split(joined.clips, lambda r: hub_split(r[0].split.value))
        if cfg.embed_audio:
            from qagen.ingest import dataset_roots

            roots = dataset_roots(work)

            def build(rows: Sequence[tuple[Clip, ClipFeatures | None]]) -> pa.Table:
                audio = [clip_audio_bytes(c, roots.get(c.source)) for c, _ in rows]
                return with_audio(clips_table(rows), audio, [f"{c.clip_id}.flac" for c, _ in rows])

            write_config_shards(writer, config="clips", rows_by_split=clip_rows,
                                shard_rows=cfg.audio_shard_rows, build_table=build)
        else:
            write_config_shards(writer, config="clips", rows_by_split=clip_rows,
                                shard_rows=cfg.shard_rows, build_table=clips_table)
        written["clips"] = {s: len(r) for s, r in clip_rows.items()}
    store = open_embeddings(work) if "embeddings" in cfg.configs else None
    index = store.rows() if store is not None else []
    if index:
        split_of = {c.clip_id: hub_split(c.split.value) for c, _ in joined.clips}
        known = [r for r in index if r.clip_id in split_of]
        if len(known) < len(index):
            log.warning("publish: %d embeddings name clips not in the manifest; left out",
                        len(index) - len(known))
        emb_rows = by_split(known, lambda r: split_of[r.clip_id])
        write_config_shards(writer, config="embeddings", rows_by_split=emb_rows,
                            shard_rows=cfg.audio_shard_rows,
                            build_table=lambda rows: embeddings_table(store, rows))
        written["embeddings"] = {s: len(r) for s, r in emb_rows.items()}
    return written


def _write_exports(work: WorkDir, writer: FolderWriter, joined: JoinedRows, *,
                   audio: bool) -> None:
    """MusicQA JSON and LLaVA JSONL per split; with ``audio``, the ``audio_name`` files they
    point to (``exports/audio/<clip_id>.wav``, the clip window), so MU-LLaMA's loader reads
    the export unchanged."""
    rows = [published_qa(r, c, f) for r, c, f in joined.pairs]
    for split, split_rows in by_split(rows, lambda r: r.split).items():
        writer.write(f"exports/musicqa/{split}.json", render_musicqa(split_rows))
        writer.write(f"exports/llava/{split}.jsonl", render_llava(split_rows))
    if not audio:
        return
    from qagen.ingest import dataset_roots

    roots = dataset_roots(work)
    clips = {c.clip_id: c for _, c, _ in joined.pairs}
    for clip_id, clip in clips.items():
        data = clip_audio_bytes(clip, roots.get(clip.source), fmt="wav")
        if data is not None:
            writer.write(f"exports/audio/{audio_name(clip_id)}", data)


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
    return work.root / "publish" / "hf"
