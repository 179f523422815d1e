"""Embedding files under ``WORKDIR/embeddings/``: shard arrays, the index, and the reader.

Core, not part of the embed stage: the embed stage writes these files, the train stage and
the publish stage read them, and stages never import each other.

Layout (every array is a 2-D ``.npy``, so ``np.load(mmap_mode="r")`` maps it without
reading it; a clip's block is rows ``offset : offset + shape[0]``)::

    embeddings/layers-<shard>-<tag>.npy     [(layers + 1) × clips, hidden]
    embeddings/frames-<shard>-<tag>.npy     [sum of clips' frames, hidden]
    embeddings/index-<shard>.parquet        EmbeddingRow per clip and kind (this shard)
    embeddings/index.parquet                all shards' rows, merged

``<tag>`` is the start of the shard's resume fingerprint: a redone shard writes new files
beside the old ones, so the index in place always points at complete, matching arrays; old
files are removed once the new index is merged.
"""

from __future__ import annotations

import fcntl
import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from qagen.manifest import arrow_schema, write_table_atomic
from qagen.records.embedding import EmbeddingKind, EmbeddingRow
from qagen.workdir import WorkDir

log = logging.getLogger(__name__)

TAG_CHARS = 12
_PART = re.compile(r"^index-(?P<key>[a-z0-9_]+-\d{5})\.parquet$")


@dataclass(frozen=True)
class EmbeddingPaths:
    """File names inside ``WorkDir.embeddings``: a thin view adding the array and index-part
    naming rules to the folder ``WorkDir`` owns."""

    work: WorkDir

    @property
    def root(self) -> Path:
        return self.work.embeddings

    @property
    def index(self) -> Path:
        """The merged index the train stage reads."""
        return self.work.embedding_index

    def index_part(self, key: str) -> Path:
        """Index rows of one shard."""
        return self.root / f"index-{key}.parquet"

    def index_parts(self) -> dict[str, Path]:
        """Existing per-shard index parts, by shard key."""
        if not self.root.is_dir():
            return {}
        found = {}
        for path in sorted(self.root.glob("index-*.parquet")):
            m = _PART.match(path.name)
            if m:
                found[m["key"]] = path
        return found

    @staticmethod
    def array_name(kind: EmbeddingKind, key: str, tag: str) -> str:
        """File name of one shard's array of one kind (relative to :attr:`root`)."""
        return f"{kind.value}-{key}-{tag[:TAG_CHARS]}.npy"

    def arrays_of(self, key: str) -> list[Path]:
        """Every array file of a shard, whatever its tag."""
        if not self.root.is_dir():
            return []
        return [p for kind in EmbeddingKind
                for p in self.root.glob(f"{kind.value}-{key}-*.npy")]


@contextmanager
def _index_lock(paths: EmbeddingPaths) -> Iterator[None]:
    """Serialise merges: shard tasks of a flow may finish at the same moment."""
    paths.root.mkdir(parents=True, exist_ok=True)
    with (paths.root / ".index.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def write_embedding_index(work: WorkDir, *, keys: Iterable[str] | None = None) -> int:
    """Merge the per-shard index parts into ``embeddings/index.parquet``; returns its rows.

    Parameters
    ----------
    keys
        Shards to include (default: every part present).
    """
    paths = EmbeddingPaths(work)
    schema = arrow_schema(EmbeddingRow)
    with _index_lock(paths):
        parts = paths.index_parts()
        chosen = [parts[k] for k in (sorted(parts) if keys is None else keys) if k in parts]
        tables = [pq.read_table(p).cast(schema) for p in chosen]
        table = pa.concat_tables(tables) if tables else schema.empty_table()
        write_table_atomic(table, paths.index)
    return table.num_rows


@dataclass
class EmbeddingStore:
    """Read embeddings by clip id: index in memory, arrays memory-mapped (never read whole).

    The train stage's reader: ``store.load(clip_id)`` is a read-only [layers + 1, hidden]
    view, ``store.load(clip_id, kind="frames")`` a [frames, hidden] one (None if absent).

    Raises
    ------
    FileNotFoundError
        There is no ``embeddings/index.parquet`` (run the embed stage).
    """

    work: WorkDir
    _rows: dict[tuple[str, str], EmbeddingRow] = field(default_factory=dict, repr=False)
    _maps: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        index = EmbeddingPaths(self.work).index
        if not index.is_file():
            raise FileNotFoundError(f"{index} does not exist; run `qagen embed` first")
        for row in pq.read_table(index).to_pylist():
            rec = EmbeddingRow.model_validate(row)
            self._rows[(rec.clip_id, rec.kind.value)] = rec

    def rows(self) -> list[EmbeddingRow]:
        """Every index row, in index order."""
        return list(self._rows.values())

    def clip_ids(self, kind: str = "layers") -> list[str]:
        """Clip ids that have an embedding of ``kind``, in index order."""
        return [cid for cid, k in self._rows if k == kind]

    def row(self, clip_id: str, kind: str = "layers") -> EmbeddingRow:
        """The index row of one clip (encoder, window, audio hash …)."""
        try:
            return self._rows[(clip_id, EmbeddingKind(kind).value)]
        except KeyError:
            raise KeyError(f"no {kind} embedding for clip {clip_id!r}") from None

    def load(self, clip_id: str, kind: str = "layers") -> np.ndarray | None:
        """One clip's array, a read-only view into the memory-mapped shard file; None when
        the clip has no embedding of ``kind`` (rejected, skipped, or frames not computed).

        Satisfies the train stage's ``EmbeddingSource`` protocol.
        """
        rec = self._rows.get((clip_id, EmbeddingKind(kind).value))
        if rec is None:
            return None
        arr = self._maps.get(rec.file)
        if arr is None:
            arr = np.load(EmbeddingPaths(self.work).root / rec.file, mmap_mode="r",
                          allow_pickle=False)
            self._maps[rec.file] = arr
        return arr[rec.offset: rec.offset + rec.shape[0]].reshape(rec.shape)

    @property
    def encoder_id(self) -> str | None:
        """The encoder(s) that made the stored embeddings (for model cards)."""
        return ",".join(sorted({r.encoder for r in self._rows.values()})) or None

    @property
    def encoder_random_init(self) -> bool:
        """Whether any stored embedding came from random weights (carries no music)."""
        return any(r.random_init for r in self._rows.values())

    def __len__(self) -> int:
        return len(self.clip_ids())
