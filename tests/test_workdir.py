"""WorkDir: every path under a work directory, the train-run layout, the roots ingest saw."""

import json
from pathlib import Path

from qagen.workdir import RunDir, WorkDir, dataset_roots


def test_stage_outputs_are_named_by_workdir(tmp_path: Path) -> None:
    work = WorkDir(tmp_path)
    assert work.qa_shard("mtt-00000") == tmp_path / "qa" / "qa-mtt-00000.parquet"
    assert work.qa_shard("mtt-00000").parent == work.qa_dir
    assert work.qa_rejected_shard("mtt-00000").parent == work.qa_rejected_dir
    assert work.embedding_index == tmp_path / "embeddings" / "index.parquet"
    assert work.published == tmp_path / "publish" / "hf"
    run = work.train_run("demo")
    assert isinstance(run, RunDir) and run.root == tmp_path / "train" / "demo"
    assert run.name == "demo"
    assert run.checkpoint(7) == run.root / "checkpoints" / "step-000007.pt"
    assert run.metrics == run.root / "eval" / "metrics.json"


def test_dataset_roots_reads_both_ingest_report_shapes(tmp_path: Path) -> None:
    work = WorkDir(tmp_path)
    work.reports.mkdir()
    (work.reports / "ingest-mtt.json").write_text(json.dumps(
        {"stage": "ingest", "details": {"roots": {"mtt": "/data/mtt"}}}))
    (work.reports / "ingest-fma.json").write_text(json.dumps(
        {"source": "fma", "root": "/data/fma"}))  # written before ingest reported a StageReport
    (work.reports / "augment-mtt.json").write_text("{}")
    assert dataset_roots(work) == {"fma": Path("/data/fma"), "mtt": Path("/data/mtt")}
    assert dataset_roots(WorkDir(tmp_path / "empty")) == {}
