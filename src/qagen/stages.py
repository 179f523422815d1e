"""The public stage functions. The CLI and the Prefect flow are thin shells over these.

This is the top floor: the one place that may wire stages together (stages never import each
other), as :func:`write_demo_corpus` does with the demo stage and the sources.
"""

from collections.abc import Sequence
from pathlib import Path

from qagen.augment.stage import augment
from qagen.demo.corpus import DemoCorpus, write_corpus
from qagen.embed.stage import embed
from qagen.engine import StageReport, sum_reports
from qagen.generate.stage import generate
from qagen.ingest import ingest
from qagen.publish import publish
from qagen.sources import get_source, list_sources
from qagen.train.evaluate import evaluate
from qagen.train.stage import train


def write_demo_corpus(
    out: Path, *, sources: Sequence[str] | None = None, seed: int = 0, sr: int = 44100,
    force: bool = False, clips: int | None = None,
) -> DemoCorpus:
    """Render (or reuse) the demo corpus in the native layout of every source the plan covers.

    The demo stage writes through each source's ``write_native``; this hands it every source
    module found by ``qagen.sources.list_sources``. Parameters as
    :func:`qagen.demo.corpus.write_corpus`.

    Raises
    ------
    ConfigError
        If ``sources`` names a source the plan has no clips for.
    """
    writers = {name: get_source(name) for name in list_sources()}
    return write_corpus(out, writers=writers, sources=sources, seed=seed, sr=sr, force=force,
                        clips=clips)


__all__ = [
    "StageReport",
    "augment",
    "embed",
    "evaluate",
    "generate",
    "ingest",
    "publish",
    "sum_reports",
    "train",
    "write_demo_corpus",
]
