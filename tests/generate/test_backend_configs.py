"""The GPU backend variants under configs/backends/ are valid ``BackendConfig`` blocks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from qagen.generate.backends import KNOWN, BackendConfig
from tests.conftest import REPO

VARIANTS = sorted((REPO / "configs" / "backends").glob("*.yaml"))


def test_there_are_variants_for_tensor_data_parallel_and_mpt() -> None:
    names = {p.stem for p in VARIANTS}
    assert {"vllm-llama2-70b-tp4", "openai-vllm-data-parallel", "transformers-mpt7b"} <= names


@pytest.mark.parametrize("path", VARIANTS, ids=lambda p: p.name)
def test_variant_is_a_valid_backend_block(path: Path) -> None:
    params = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert set(params) <= {"backend", "generate_resources"}, set(params)
    config = BackendConfig(**params["backend"])
    assert config.backend in KNOWN
    assert all(v >= 0 for v in params.get("generate_resources", {}).values())
    if config.chat_template:
        assert (REPO / config.chat_template).is_file(), config.chat_template
    if config.backend == "vllm":
        assert params["generate_resources"].get("GPU") == config.tensor_parallel_size
    documented = (REPO / "configs" / "backends" / "README.md").read_text(encoding="utf-8")
    assert path.name in documented
