"""The flow scripts under flows/ loaded as modules, inside one Prefect test harness."""

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO

FLOWS = REPO / "flows"


def load_flow_script(name: str) -> ModuleType:
    """Import ``flows/<name>.py`` the way Prefect's loader does (its folder on the path
    while it executes, so the scripts can import each other)."""
    spec = importlib.util.spec_from_file_location(name, FLOWS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(FLOWS))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(FLOWS))
    return module


@pytest.fixture(scope="session")
def flow_module() -> Iterator[ModuleType]:
    """``flows/build_musicqa.py`` with a temporary Prefect API (one per session: ~10 s)."""
    from prefect.testing.utilities import prefect_test_harness

    module = load_flow_script("build_musicqa")
    with prefect_test_harness():
        yield module


@pytest.fixture(scope="session")
def one_source_corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The demo corpus of one source (6 clips): source → root."""
    from qagen.stages import write_demo_corpus

    root = tmp_path_factory.mktemp("demo1")
    return write_demo_corpus(Path(root), sources=["musiccaps"]).sources
