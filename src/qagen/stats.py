"""What a work directory holds, counted from its own files (so a resumed run reports the same).

Why one core module: the dataset card (publish stage) and the run report (report stage) show
the same counts, distributions and generation settings; both read them from here. Only the
needed columns of each shard are read.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from qagen.workdir import WorkDir, dataset_roots

#: Clip splits → Hub split names (the Hub's convention is "validation").
HUB_SPLITS = {"train": "train", "valid": "validation", "test": "test", "unsplit": "unsplit"}
#: Artist name the demo corpus writes on every synthesised clip that has one.
DEMO_ARTIST = "qagen synth"
DEMO_MARKER = ".qagen-demo.json"


def hub_split(split: str) -> str:
    """Hub split name of a clip split (unknown names pass through)."""
    return HUB_SPLITS.get(split, split)


def _nested(counter: Counter[tuple[str, str]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for (a, b), n in sorted(counter.items()):
        out[a][b] = n
    return dict(out)


class TemplateUse(BaseModel):
    """One prompt template as it appears in the accepted pairs."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    template_id: str
    template_version: str
    template_hash: str
    pairs: int


class WorkStats(BaseModel):
    """Counts and distributions of one work directory."""

    model_config = ConfigDict(extra="forbid")
    clips: dict[str, dict[str, int]] = Field(default_factory=dict, description="source→split→n")
    audio_status: dict[str, int] = Field(default_factory=dict)
    pairs: dict[str, dict[str, int]] = Field(default_factory=dict, description="source→split→n")
    pairs_by_kind: dict[str, int] = Field(default_factory=dict)
    rejections: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="stage → reason → n (generate, ingest, augment)")
    feature_status: dict[str, int] = Field(default_factory=dict)
    templates: list[TemplateUse] = Field(default_factory=list)
    backends: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list)
    sampling: list[str] = Field(default_factory=list)
    extractor_versions: dict[str, str] = Field(default_factory=dict)
    licenses: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="source → clip license text → clips")
    tempos_bpm: list[float] = Field(default_factory=list)
    keys: list[str] = Field(default_factory=list)
    answer_words: list[int] = Field(default_factory=list)
    audio_seconds: float = 0.0
    completion_tokens: int = 0
    demo_clips: int = 0

    @property
    def total_clips(self) -> int:
        return sum(n for by in self.clips.values() for n in by.values())

    @property
    def total_pairs(self) -> int:
        return sum(n for by in self.pairs.values() for n in by.values())

    @property
    def synthetic(self) -> bool:
        """True when every clip comes from qagen's synthesised demo corpus."""
        return self.total_clips > 0 and self.demo_clips == self.total_clips


def read_columns(path: Path, wanted: list[str]) -> dict[str, list]:  # type: ignore[type-arg]
    """The ``wanted`` columns of one parquet shard (None-filled where a column is absent)."""
    names = set(pq.ParquetFile(path).schema_arrow.names)
    table = pq.read_table(path, columns=[c for c in wanted if c in names])
    return {c: (table.column(c).to_pylist() if c in names else [None] * table.num_rows)
            for c in wanted}


def _demo_sources(work: WorkDir) -> set[str]:
    """Sources whose ingested root lies inside a demo corpus (its marker is beside it)."""
    return {source for source, root in dataset_roots(work).items()
            if (root.parent / DEMO_MARKER).is_file()}


def collect_stats(work: WorkDir) -> WorkStats:
    """Count clips, pairs, rejections and measurements of ``work``, shard by shard."""
    stats = WorkStats()
    clips: Counter[tuple[str, str]] = Counter()
    audio: Counter[str] = Counter()
    licenses: Counter[tuple[str, str]] = Counter()
    demo_sources = _demo_sources(work)
    for path in work.manifest_shards("clips").values():
        cols = read_columns(path, ["source", "split", "audio_status", "license", "artist"])
        for source, split, status, lic, artist in zip(*cols.values(), strict=True):
            clips[(source, hub_split(split))] += 1
            audio[status] += 1
            licenses[(source, lic or "(none)")] += 1
            if source in demo_sources or artist == DEMO_ARTIST:
                stats.demo_clips += 1
    stats.clips, stats.audio_status = _nested(clips), dict(sorted(audio.items()))
    stats.licenses = _nested(licenses)

    status: Counter[str] = Counter()
    versions: dict[str, str] = {}
    for path in work.manifest_shards("features").values():
        cols = read_columns(path, ["status", "tempo_bpm", "key", "duration_s",
                                   "extractor_versions"])
        for st, tempo, key, dur, ev in zip(*cols.values(), strict=True):
            status[st] += 1
            if tempo is not None:
                stats.tempos_bpm.append(float(tempo))
            if key:
                stats.keys.append(key)
            stats.audio_seconds += float(dur or 0.0)
            if ev:
                versions.update(json.loads(ev))
    stats.feature_status, stats.extractor_versions = dict(sorted(status.items())), versions

    pairs: Counter[tuple[str, str]] = Counter()
    kinds: Counter[str] = Counter()
    templates: Counter[tuple[str, str, str]] = Counter()
    backends, models, sampling = set(), set(), set()
    for path in sorted(work.qa_dir.glob("qa-*.parquet")):
        cols = read_columns(path, ["source", "split", "kind", "answer", "template_id",
                               "template_version", "template_hash", "backend", "model_id",
                               "sampling", "completion_tokens"])
        for row in zip(*cols.values(), strict=True):
            source, split, kind, answer, tid, tver, thash, be, model, samp, ctok = row
            pairs[(source, hub_split(split))] += 1
            kinds[kind] += 1
            stats.answer_words.append(len(answer.split()))
            templates[(tid, tver, thash)] += 1
            backends.add(be)
            models.add(model)
            sampling.add(samp)
            stats.completion_tokens += int(ctok or 0)
    stats.pairs, stats.pairs_by_kind = _nested(pairs), dict(sorted(kinds.items()))
    stats.templates = [TemplateUse(template_id=t, template_version=v, template_hash=h, pairs=n)
                       for (t, v, h), n in sorted(templates.items())]
    stats.backends, stats.models = sorted(backends), sorted(models)
    stats.sampling = sorted(sampling)
    stats.rejections = collect_rejections(work)
    return stats


def collect_rejections(work: WorkDir) -> dict[str, dict[str, int]]:
    """Rejections by stage and reason: generate (``qa_rejected/``) and every ``rejects/`` file.

    Ingest rows repaired and kept are counted as ``<reason> (kept)``.
    """
    counts: Counter[tuple[str, str]] = Counter()
    for path in sorted(work.qa_rejected_dir.glob("*.parquet")):
        for reason in read_columns(path, ["reason"])["reason"]:
            counts[("generate", reason)] += 1
    for path in sorted(work.rejects.glob("*.parquet")):
        cols = read_columns(path, ["stage", "reason", "kept"])
        for stage, reason, kept in zip(*cols.values(), strict=True):
            counts[(stage, f"{reason} (kept)" if kept else reason)] += 1
    return _nested(counts)
