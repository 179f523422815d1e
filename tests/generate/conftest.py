"""A measured work directory (two demo sources, ingested and augmented), built once."""

from pathlib import Path

import pytest

from qagen.augment.stage import augment
from qagen.ingest import ingest
from qagen.stages import write_demo_corpus
from qagen.workdir import WorkDir


@pytest.fixture(scope="session")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two demo sources ingested and augmented once per session (copy it before writing)."""
    root = tmp_path_factory.mktemp("gen")
    corpus = write_demo_corpus(root / "demo", sources=["musiccaps", "musicnet"])
    work = WorkDir(root / "work")
    for name, path in corpus.sources.items():
        ingest(name, Path(path), work=work, shard_size=3)
    augment(work, workers=2, strict=True)
    return work.root
