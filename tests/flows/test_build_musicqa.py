"""The Prefect flow is a thin shell: run it for real (ephemeral server) on the demo corpus."""

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def flow_module() -> Iterator[ModuleType]:
    from prefect.testing.utilities import prefect_test_harness

    spec = importlib.util.spec_from_file_location("build_musicqa", REPO / "flows" / "build_musicqa.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_musicqa"] = module
    spec.loader.exec_module(module)
    with prefect_test_harness():
        yield module


def test_flow_builds_the_clip_manifest_from_the_demo_corpus(
    flow_module: ModuleType, tmp_path: Path
) -> None:
    summary = flow_module.build_musicqa(work_dir=str(tmp_path / "out"),
                                        demo_dir=str(tmp_path / "demo"),
                                        stages_to_run=["ingest"])
    assert summary["stages"] == ["ingest"]
    assert set(summary["ingest"]) == {"musiccaps", "mtt", "fma", "musicnet", "audiofolder"}
    assert sum(r["clips"] for r in summary["ingest"].values()) == 26
    assert len(list((tmp_path / "out" / "manifests").glob("clips-*.parquet"))) == 5


def test_flow_refuses_unknown_stages(flow_module: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown stages"):
        flow_module.build_musicqa(work_dir=str(tmp_path), stages_to_run=["ingest", "dance"])
