"""The CLI's option defaults are the stage configs' defaults.

Why: each command spells its defaults out (so ``--help`` shows them), and the Pydantic
configs are the single source of truth. Without this check a default changed in a config
(``TrainConfig.prefix_len`` 1 → 10 was one) silently differs between ``qagen train`` and
the flow, which builds the config directly.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from qagen import cli
from qagen.config import AugmentConfig, GenerateConfig
from qagen.embed.config import EmbedConfig
from qagen.generate.backends import BackendConfig
from qagen.publish.config import PublishConfig
from qagen.train.config import EvaluateConfig, TrainConfig

#: (command, config, CLI option → config field where the names differ, options whose
#: default is deliberately a different value, with the reason).
CASES: list[tuple[Callable[..., Any], type[BaseModel], dict[str, str], dict[str, str]]] = [
    (cli.train, TrainConfig, {}, {}),
    (cli.evaluate, EvaluateConfig, {}, {}),
    (cli.embed, EmbedConfig, {"dtype": "compute_dtype"},
     {"encoder": "'auto' picks MERT when real weights are present, else the embedded default"}),
    (cli.generate, GenerateConfig, {},
     {"templates": "a comma-separated string; None (unset) keeps the config's default list"}),
    (cli.generate, BackendConfig, {}, {}),
    (cli.publish, PublishConfig, {"license_id": "license"}, {}),
    (cli.augment, AugmentConfig, {}, {}),
]


def _signature(command: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(inspect.unwrap(command))


@pytest.mark.parametrize(("command", "config", "renamed", "differs"), CASES,
                         ids=[f"{c.__name__}-{m.__name__}" for c, m, _, _ in CASES])
def test_cli_defaults_match_config(command: Callable[..., Any], config: type[BaseModel],
                                   renamed: dict[str, str], differs: dict[str, str]) -> None:
    compared = []
    for name, param in _signature(command).parameters.items():
        field_name = renamed.get(name, name)
        field = config.model_fields.get(field_name)
        if field is None or name in differs:
            continue
        default = field.get_default(call_default_factory=True)
        if default is PydanticUndefined:
            continue
        assert param.default == default, (
            f"qagen {command.__name__} --{name.replace('_', '-')} defaults to "
            f"{param.default!r}, {config.__name__}.{field_name} to {default!r}")
        compared.append(name)
    assert compared, f"no option of {command.__name__} maps onto {config.__name__}"
    for name in differs:
        assert name in _signature(command).parameters, f"stale exception {name!r}"


def test_cli_defaults_check_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison sees a drifted default (the check is not vacuous)."""
    field = TrainConfig.model_fields["steps"]
    monkeypatch.setattr(field, "default", field.default + 1)
    with pytest.raises(AssertionError, match="--steps"):
        test_cli_defaults_match_config(cli.train, TrainConfig, {}, {})
