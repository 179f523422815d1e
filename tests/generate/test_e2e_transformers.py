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
        facts=False,
        gate=False,  # the provenance of the model's own pairs is under test, not their quality
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


def test_default_build_with_the_judge_on_the_packaged_model(measured: Path, tmp_path: Path
                                                            ) -> None:
    """The embedded default as make dataset runs it (facts + paraphrase), with the LLM judge
    scoring every pair (facts pairs too): scores stored per pair, low ones dropped."""
    shutil.copytree(measured, tmp_path / "w")
    work = WorkDir(tmp_path / "w")
    config = GenerateConfig(max_clips_per_shard=1, paraphrase_per_clip=1, judge="judge",
                            judge_facts=True, judge_min_score=2.0)
    backend = BackendConfig(backend="transformers", model="smollm2-135m-instruct", batch_size=8)
    report = generate(work, config=config, backend_config=backend)
    recs = list(iter_manifest(sorted((work.root / "qa").glob("*.parquet")), QARecord))
    rejected = list(
        iter_manifest(sorted((work.root / "qa_rejected").glob("*.parquet")), QARejected))
    facts = [r for r in recs if r.template_id == "facts"]
    assert facts and all(r.verified and not r.facts.is_empty() for r in facts)
    assert {r.backend for r in facts} == {"rules"} and all(r.created_at is None for r in facts)
    # The judge is constrained to its schema: every pair it scored carries four 1-5 scores.
    assert report.judged > 0
    judged = [r for r in recs if r.judge is not None]
    assert len(judged) + sum(x.reason == GenerateReason.judge_low for x in rejected) == \
        report.judged
    assert all(r.judge_model == "smollm2-135m-instruct" for r in judged)
    assert all(r.judge.mean >= 2.0 for r in judged)
    paraphrases = [r for r in recs if r.template_id == "paraphrase"]
    by_id = {f.qa_id: f for f in facts}
    for r in paraphrases:  # a rewrite states its source's facts (its source may be judged out)
        assert r.derived_from and r.derived_from not in {p.qa_id for p in paraphrases}
        assert r.derived_from not in by_id or by_id[r.derived_from].facts == r.facts
