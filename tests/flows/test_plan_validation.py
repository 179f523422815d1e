"""A flow config with a mistake in any stage's nested config stops before the first stage."""

from types import ModuleType

import pytest
from pydantic import ValidationError

from tests.flows.conftest import load_flow_script


@pytest.fixture(scope="module")
def module() -> ModuleType:
    return load_flow_script("build_musicqa")


@pytest.mark.parametrize(("params", "named"), [
    ({"generate_config": {"tempratur": 1.0}}, "generate_config.tempratur"),
    ({"train_config": {"steps": -3}}, "train_config.steps"),
    ({"embed_config": {"chunk_s": "long"}}, "embed_config.chunk_s"),
    ({"evaluate_config": {"max_pair": 3}}, "evaluate_config.max_pair"),
    ({"publish_config": {"shard_rows": 0}}, "publish_config.shard_rows"),
    ({"backend": {"batchsize": 2}}, "backend.batchsize"),
    ({"source_options": {"musiccaps": {"croped": False}}}, "source_options.musiccaps.croped"),
])
def test_nested_config_mistakes_are_caught_when_the_plan_is_made(
        module: ModuleType, params: dict, named: str) -> None:
    with pytest.raises(ValidationError, match=named.replace(".", r"\.")):
        module.BuildPlan(work_dir="w", demo_dir="d", **params)


def test_a_valid_plan_passes(module: ModuleType) -> None:
    plan = module.BuildPlan(work_dir="w", demo_dir="d", generate_config={"temperature": 0.2},
                            train_config={"steps": 50}, source_options={"musiccaps": {}})
    assert plan.generate_config == {"temperature": 0.2}


def test_a_whole_model_rule_names_the_parameter(module: ModuleType) -> None:
    with pytest.raises(ValidationError, match=r"train_config: Value error, warmup_steps"):
        module.BuildPlan(work_dir="w", demo_dir="d", train_config={"steps": 5})
