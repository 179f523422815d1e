"""End to end with the embedded default: the packaged SmolLM2 through transformers+xgrammar."""

import shutil
from pathlib import Path

import pytest

from qagen.config import GenerateConfig
from qagen.generate.backends import BackendConfig
from qagen.generate.stage import generate
from qagen.manifest import iter_manifest
from qagen.records.qa import GenerateReason, QARecord, QARejected
from qagen.workdir import WorkDir

pytestmark = pytest.mark.slow
pytest.importorskip("transformers")
pytest.importorskip("xgrammar")


def test_demo_corpus_to_grounded_qa_with_the_packaged_model(measured: Path, tmp_path: Path) -> None:
    shutil.copytree(measured, tmp_path / "w")
    work = WorkDir(tmp_path / "w")
    config = GenerateConfig(
        templates=["llark_mir", "musicqa_describe"],
        max_clips_per_shard=1,
        max_tokens=320,
        temperature=0.3,
    )
    backend = BackendConfig(backend="transformers", model="smollm2-135m-instruct", batch_size=8)
    report = generate(work, config=config, backend_config=backend)
    assert report.requests >= 4 and report.generated >= report.requests
    # Constrained decoding: the tiny model still writes schema-valid JSON.
    assert report.first_try_valid_rate >= 0.75
    recs = list(iter_manifest(sorted((work.root / "qa").glob("*.parquet")), QARecord))
    rejected = list(
        iter_manifest(sorted((work.root / "qa_rejected").glob("*.parquet")), QARejected)
    )
    assert recs, f"no pair survived; rejections: {report.rejected}"
    assert {r.model_id for r in recs} == {"smollm2-135m-instruct"}
    assert all(r.backend == "transformers" and r.completion_tokens for r in recs)
    assert {x.reason for x in rejected} <= set(GenerateReason)
    # Re-run: every completion comes from the cache; the model is never loaded.
    again = generate(WorkDir(work.root), config=config, backend_config=backend)
    assert again.shards_reused == again.shards
