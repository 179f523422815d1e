"""The public stage functions. The CLI and the Prefect flow are thin shells over these."""

from qagen.augment.stage import augment
from qagen.demo.corpus import write_demo_corpus
from qagen.embed.stage import embed
from qagen.evaluate.stage import evaluate
from qagen.generate.stage import generate
from qagen.ingest import IngestReport, ingest
from qagen.publish import publish
from qagen.train.stage import train

__all__ = [
    "IngestReport", "augment", "embed", "evaluate", "generate", "ingest", "publish", "train",
    "write_demo_corpus",
]
