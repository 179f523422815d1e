"""The flow's structure without running it: stage checks, step registry, summary table."""

from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO
from tests.flows.conftest import load_flow_script


@pytest.fixture(scope="module")
def module() -> ModuleType:
    return load_flow_script("build_musicqa")


def test_every_stage_has_a_step_and_implemented_ones_follow_qagen_stages(
    module: ModuleType,
) -> None:
    assert set(module.STEPS) == set(module.ALL_STAGES)
    implemented = module.implemented_stages()
    # Every stage of the pipeline exists today, in pipeline order; `make dataset` runs them all.
    assert implemented == ("ingest", "augment", "generate", "embed", "train", "evaluate",
                           "publish")
    assert module.check_stages(None) == list(implemented)
    assert module.check_stages(["augment", "ingest"]) == ["augment", "ingest"]


def test_unknown_and_unimplemented_stages_are_refused_by_name(
    module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qagen import stages

    with pytest.raises(ValueError, match=r"unknown stages \['dance'\]"):
        module.check_stages(["ingest", "dance"])
    monkeypatch.delattr(stages, "augment")
    assert "augment" not in module.implemented_stages()  # a step needs its stage function
    with pytest.raises(ValueError, match=r"not implemented yet: \['augment'\]"):
        module.check_stages(["ingest", "augment"])


def test_plan_refuses_shards_larger_than_the_manifests_and_bad_runners(
    module: ModuleType,
) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="clips_per_shard"):
        module.BuildPlan(work_dir="w", demo_dir="d", clips_per_shard=501)
    with pytest.raises(ValidationError, match="kind"):
        module.BuildPlan(work_dir="w", demo_dir="d", runner={"kind": "spark"})


def test_summary_table_shows_each_stage_its_seconds_and_report_headline(
    module: ModuleType,
) -> None:
    from qagen.engine import StageReport

    shards = [StageReport(stage="augment", shards=1, shards_reused=1, items_in=4, items_out=4,
                          counts={"ok": 4}),
              StageReport(stage="augment", shards=1, items_in=2, items_out=1,
                          counts={"ok": 1}, skipped={"audio_missing": 1})]
    summary = {
        "timings": {"ingest": 1.25, "augment": 20.0, "generate": 3.0, "total": 25.0},
        "ingest": StageReport(stage="ingest", shards=2, items_in=6, items_out=6).model_dump(),
        "augment": module.sum_reports(shards).model_dump(),
        "generate": StageReport(stage="generate", shards=1, items_in=3, items_out=7,
                                rejected={"junk": 3}).model_dump(),
    }
    lines = module.render_summary_table(summary).splitlines()
    assert lines[0].split() == ["stage", "seconds", "result"]
    assert lines[1].split()[:3] == ["ingest", "1.2", "6"]
    assert "5 out of 6 in; 1/2 shards reused; skipped 1" in lines[2]
    assert lines[3].endswith("7 out of 3 in; 0/1 shards reused; rejected 3")
    assert lines[4].split() == ["total", "25.0"]
    assert summary["augment"]["skipped"] == {"audio_missing": 1}


def test_generate_report_becomes_a_stage_report() -> None:
    from qagen.generate.stage import GenerateReport

    report = GenerateReport(
        shards=2, shards_reused=1, clips=5, requests=10, responses_valid_first_try=8,
        accepted=7, rejected={"junk": 2}, by_kind={"tempo": 7}, seconds=3.5).stage_report()
    assert (report.stage, report.items_in, report.items_out) == ("generate", 5, 7)
    assert report.rejected == {"junk": 2} and report.counts == {"kind:tempo": 7}
    assert report.extras["requests"] == 10 and report.details["first_try_valid_rate"] == 0.8


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_flow_configs_name_real_parameters_and_valid_stage_configs(
    module: ModuleType, path: Path,
) -> None:
    """`make dataset CONFIG=configs/…` passes the file to build_musicqa: every key must be
    one of its parameters and every stage config must validate, before any GPU hour is spent."""
    import inspect

    import yaml

    from qagen.config import GenerateConfig
    from qagen.embed.config import EmbedConfig
    from qagen.generate.backends import BackendConfig
    from qagen.publish.config import PublishConfig
    from qagen.sources import get_source, parse_options
    from qagen.train.config import EvaluateConfig, TrainConfig

    params = yaml.safe_load(path.read_text(encoding="utf-8"))
    accepted = set(inspect.signature(module.build_musicqa.fn).parameters)
    assert set(params) <= accepted, set(params) - accepted
    BackendConfig(**params.get("backend", {}))
    GenerateConfig(**params.get("generate_config", {}))
    EmbedConfig(**params.get("embed_config", {}), encoder=params.get("encoder") or "x")
    TrainConfig(**params.get("train_config", {}))
    EvaluateConfig(**params.get("evaluate_config", {}))
    PublishConfig(**params.get("publish_config", {}))
    for name, options in params.get("source_options", {}).items():
        parse_options(get_source(name), options)


def test_data_dir_maps_source_folders(module: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "mtt").mkdir()
    (tmp_path / "musicnet").mkdir()
    (tmp_path / "notes").mkdir()
    assert module.sources_from_data_dir(tmp_path) == {
        "mtt": str(tmp_path / "mtt"), "musicnet": str(tmp_path / "musicnet")}
    with pytest.raises(ValueError, match="no folder named after a source"):
        module.sources_from_data_dir(tmp_path / "notes")
