"""``WorkDir``: every path under a work directory, defined once."""

from __future__ import annotations

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

    @staticmethod
    def shard_key(source: str, index: int) -> str:
        """Key of shard ``index`` of ``source``: ``musiccaps-00003``."""
        return f"{source}-{index:05d}"

    def manifest_shard(self, kind: str, key: str) -> Path:
        """Path of one shard of a manifest (``kind`` e.g. ``clips``, ``features``)."""
        return self.manifests / f"{kind}-{key}.parquet"

    def manifest_shards(self, kind: str, *, source: str | None = None) -> dict[str, Path]:
        """Existing shards of a manifest, by shard key, in key order."""
        prefix = f"{kind}-" + (f"{source}-" if source else "")
        out = {}
        for path in sorted(self.manifests.glob(f"{prefix}*.parquet")):
            key = path.stem[len(kind) + 1 :]
            if _KEY.match(key):
                out[key] = path
        return out

    def qa_shard(self, key: str) -> Path:
        """Accepted QA pairs of one shard."""
        return self.root / "qa" / f"qa-{key}.parquet"

    def qa_rejected_shard(self, key: str) -> Path:
        """Rejected QA pairs (and failed responses) of one shard, with reasons."""
        return self.root / "qa_rejected" / f"qa_rejected-{key}.parquet"

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

    def missing_audio_list(self, source: str) -> Path:
        """Text file naming every clip of ``source`` whose audio is absent."""
        return self.reports / f"missing-audio-{source}.txt"

    def stage_report(self, stage: str, source: str) -> Path:
        """JSON summary of one stage run over one source."""
        return self.reports / f"{stage}-{source}.json"
