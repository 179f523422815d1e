"""``WorkDir``: every path under a work directory, defined once."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

_KEY = re.compile(r"^[a-z0-9_]+-\d{5}$")


@dataclass(frozen=True)
class WorkDir:
    """Layout of a work directory.

    ``manifests/<kind>-<shard>.parquet`` hold records; a shard key is ``<source>-<NNNNN>``
    and shard k of every manifest covers the same clips, so stages join by shard key.
    ``.done/<stage>/<shard>.json`` markers make runs resumable; ``rejects/`` records drops.
    Stage outputs beside the manifests: ``qa/`` and ``qa_rejected/`` (generate),
    ``embeddings/`` (embed), ``train/<run>/`` (train and its evaluation), ``publish/hf/``.
    """

    root: Path

    @property
    def manifests(self) -> Path:
        return self.root / "manifests"

    @property
    def rejects(self) -> Path:
        return self.root / "rejects"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def qa_dir(self) -> Path:
        """Accepted QA pairs, ``qa/qa-<shard>.parquet``."""
        return self.root / "qa"

    @property
    def qa_rejected_dir(self) -> Path:
        """Rejected QA pairs, ``qa_rejected/qa_rejected-<shard>.parquet``."""
        return self.root / "qa_rejected"

    @property
    def embeddings(self) -> Path:
        """The embed stage's arrays and index (see ``qagen.embedding_store``)."""
        return self.root / "embeddings"

    @property
    def embedding_index(self) -> Path:
        """The merged embedding index the train stage reads."""
        return self.embeddings / "index.parquet"

    @property
    def train_runs(self) -> Path:
        """Folder of every train run."""
        return self.root / "train"

    def train_run(self, run: str) -> RunDir:
        """Every path of one train run, ``train/<run>/``."""
        return RunDir(self.train_runs / run)

    @property
    def published(self) -> Path:
        """Where the publish stage writes the dataset folder by default."""
        return self.root / "publish" / "hf"

    @property
    def published_rows(self) -> Path:
        """The publish stage's joined rows per shard (``qa-<shard>.parquet``,
        ``clips-<shard>.parquet``), streamed into the dataset folder's shards."""
        return self.root / "publish" / "rows"

    @staticmethod
    def shard_key(source: str, index: int) -> str:
        """Key of shard ``index`` of ``source``: ``musiccaps-00003``."""
        return f"{source}-{index:05d}"

    def manifest_shard(self, kind: str, key: str) -> Path:
        """Path of one shard of a manifest (``kind`` e.g. ``clips``, ``features``)."""
        return self.manifests / f"{kind}-{key}.parquet"

    def manifest_shards(self, kind: str, *, source: str | None = None) -> dict[str, Path]:
        """Existing shards of a manifest, by shard key, in key order."""
        shards = self.shard_files(self.manifests, kind)
        if source:
            shards = {k: p for k, p in shards.items() if k.startswith(f"{source}-")}
        return shards

    @staticmethod
    def shard_files(folder: Path, prefix: str, *, suffix: str = ".parquet") -> dict[str, Path]:
        """Files ``<folder>/<prefix>-<shard key><suffix>``, by shard key, in key order."""
        out = {}
        for path in sorted(folder.glob(f"{prefix}-*{suffix}")):
            key = path.name[len(prefix) + 1 : len(path.name) - len(suffix)]
            if _KEY.match(key):
                out[key] = path
        return out

    def qa_shard(self, key: str) -> Path:
        """Accepted QA pairs of one shard."""
        return self.qa_dir / f"qa-{key}.parquet"

    def qa_rejected_shard(self, key: str) -> Path:
        """Rejected QA pairs (and failed responses) of one shard, with reasons."""
        return self.qa_rejected_dir / f"qa_rejected-{key}.parquet"

    @property
    def reviews(self) -> Path:
        """Curators' decision logs (``qagen review``), ``reviews/reviews-<shard>.jsonl``."""
        return self.root / "reviews"

    def reviews_shard(self, key: str) -> Path:
        """The append-only decision log of one shard's pairs (see ``qagen.decisions``)."""
        return self.reviews / f"reviews-{key}.jsonl"

    def rejects_shard(self, stage: str, key: str) -> Path:
        """Rejections a stage recorded for one shard."""
        return self.rejects / f"{stage}-{key}.parquet"

    def marker(self, stage: str, key: str) -> Path:
        """Done-marker of one shard of one stage (holds fingerprint and counts)."""
        return self.root / ".done" / stage / f"{key}.json"

    def markers(self, stage: str) -> dict[str, Path]:
        """Existing done-markers of a stage, by shard key."""
        folder = self.root / ".done" / stage
        return {p.stem: p for p in sorted(folder.glob("*.json"))}

    def ingest_unfinished(self, source: str) -> Path:
        """Flag file present while an ingest of ``source`` rewrites its shards."""
        return self.root / ".done" / "ingest" / f"{source}.unfinished"

    def check_manifest_complete(self) -> None:
        """Refuse to read a clip manifest an ingest left half rewritten.

        Why: an ingest killed (or failing) after rows were removed leaves new shards beside
        old ones, so clip ids repeat across shards; later stages would duplicate them.

        Raises
        ------
        ConfigError
            Naming the source and the command that heals it.
        """
        from qagen.errors import ConfigError

        flags = sorted((self.root / ".done" / "ingest").glob("*.unfinished"))
        if flags:
            names = [f.stem for f in flags]
            raise ConfigError(
                f"the ingest of {', '.join(names)} in {self.root} did not finish (killed or "
                f"failed), so its shards mix two versions; re-run `qagen ingest {names[0]} "
                f"<root> --work {self.root}` first")

    def missing_audio_list(self, source: str) -> Path:
        """Text file naming every clip of ``source`` whose audio is absent."""
        return self.reports / f"missing-audio-{source}.txt"

    def stage_report(self, stage: str, source: str) -> Path:
        """JSON summary of one stage run over one source."""
        return self.reports / f"{stage}-{source}.json"


@dataclass(frozen=True)
class RunDir:
    """Layout of ``WORKDIR/train/<run>/`` (from :meth:`WorkDir.train_run`).

    ``config.json`` (train config, feature shape, fingerprint), ``split.json`` (clip ids per
    side), ``loss.jsonl``, ``checkpoints/step-NNNNNN.pt`` (adapter + optimizer + scheduler +
    RNG), ``adapter.safetensors`` (trained weights only), ``report.json`` (present = finished),
    ``README.md`` (model card), ``eval/`` (predictions and metrics).
    """

    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def split(self) -> Path:
        return self.root / "split.json"

    @property
    def loss_log(self) -> Path:
        return self.root / "loss.jsonl"

    @property
    def losses_before(self) -> Path:
        """Set losses of the untrained adapter (computed once per run)."""
        return self.root / "losses_before.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"step-{step:06d}.pt"

    @property
    def adapter(self) -> Path:
        return self.root / "adapter.safetensors"

    @property
    def report(self) -> Path:
        return self.root / "report.json"

    @property
    def card(self) -> Path:
        return self.root / "README.md"

    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"

    @property
    def predictions(self) -> Path:
        return self.eval_dir / "predictions.jsonl"

    @property
    def baseline_predictions(self) -> Path:
        return self.eval_dir / "baseline_predictions.jsonl"

    @property
    def metrics(self) -> Path:
        return self.eval_dir / "metrics.json"


def dataset_roots(work: WorkDir) -> dict[str, Path]:
    """Source → dataset root, as recorded by ingest in ``reports/ingest-<source>.json``.

    Why here: augment, embed and publish re-read audio from the roots ingest saw, and must
    not import the ingest stage to find them.
    """
    roots = {}
    for path in sorted(work.reports.glob("ingest-*.json")):
        meta = json.loads(path.read_text(encoding="utf-8"))
        if "details" in meta:  # a StageReport
            roots.update({s: Path(r) for s, r in meta["details"].get("roots", {}).items()})
        else:  # written before ingest reported a StageReport
            roots[meta["source"]] = Path(meta["root"])
    return roots
