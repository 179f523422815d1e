"""Task-runner choice: validated specs, and the flow run for real on Dask and on Ray."""

from pathlib import Path
from types import ModuleType

import pytest
from pydantic import ValidationError

from tests.flows.conftest import load_flow_script


@pytest.fixture(scope="module")
def runners() -> ModuleType:
    return load_flow_script("task_runners")


def test_spec_refuses_unknown_runners_and_zero_workers(runners: ModuleType) -> None:
    with pytest.raises(ValidationError, match="kind"):
        runners.TaskRunnerSpec(kind="spark")
    with pytest.raises(ValidationError, match="workers"):
        runners.TaskRunnerSpec(kind="dask", workers=0)


def test_each_kind_builds_its_runner_with_the_address_or_a_local_cluster(
    runners: ModuleType,
) -> None:
    from prefect.task_runners import ThreadPoolTaskRunner

    assert isinstance(runners.make_task_runner(runners.TaskRunnerSpec()), ThreadPoolTaskRunner)
    pytest.importorskip("prefect_dask")
    local = runners.make_task_runner(runners.TaskRunnerSpec(kind="dask", workers=3))
    assert type(local).__name__ == "DaskTaskRunner"
    assert local.cluster_kwargs["n_workers"] == 3
    assert local.cluster_kwargs["threads_per_worker"] == 1
    remote = runners.make_task_runner(
        runners.TaskRunnerSpec(kind="dask", address="tcp://10.0.0.1:8786"))
    assert remote.address == "tcp://10.0.0.1:8786" and not remote.cluster_kwargs
    pytest.importorskip("prefect_ray")
    ray = runners.make_task_runner(runners.TaskRunnerSpec(kind="ray", address="auto"))
    assert type(ray).__name__ == "RayTaskRunner" and ray.address == "auto"
    ray_local = runners.make_task_runner(runners.TaskRunnerSpec(kind="ray", workers=2))
    assert ray_local.address is None and ray_local.init_kwargs["num_cpus"] == 2


def test_placement_annotates_dask_and_ray_submissions_only(runners: ModuleType) -> None:
    with runners.placed(runners.TaskRunnerSpec(), {"GPU": 1}):
        pass  # local: nothing to place
    dask = pytest.importorskip("dask")
    with runners.placed(runners.TaskRunnerSpec(kind="dask"), {"GPU": 1}):
        assert dask.get_annotations() == {"resources": {"GPU": 1}}
    assert dask.get_annotations() == {}
    pytest.importorskip("prefect_ray")
    from prefect_ray.context import RemoteOptionsContext

    with runners.placed(runners.TaskRunnerSpec(kind="ray"), {"GPU": 1, "CPU": 2, "vram_gb": 40}):
        assert RemoteOptionsContext.get().current_remote_options == {
            "num_gpus": 1, "num_cpus": 2, "resources": {"vram_gb": 40}}


def _run_on_cluster(flow_module: ModuleType, kind: str, corpus: dict[str, str],
                    out: Path) -> dict:
    summary = flow_module.build_musicqa(
        work_dir=str(out), sources=corpus, stages_to_run=["ingest", "augment"],
        clips_per_shard=2, task_runner=kind, task_runner_workers=2,
    )
    # 6 clips in 3 shards, each shard one task on a cluster worker (no process pool there).
    assert summary["task_runner"] == kind
    assert summary["ingest"]["items_out"] == 6
    assert set(summary["ingest"]["details"]["roots"]) == {"musiccaps"}
    assert summary["augment"]["shards"] == 3 and summary["augment"]["counts"] == {"ok": 6}
    assert len(list((out / "manifests").glob("features-musiccaps-*.parquet"))) == 3
    assert set(summary["timings"]) == {"ingest", "augment", "total"}
    return summary


@pytest.mark.slow
def test_flow_runs_on_a_local_dask_cluster(
    flow_module: ModuleType, one_source_corpus: dict[str, str], tmp_path: Path
) -> None:
    pytest.importorskip("prefect_dask")
    _run_on_cluster(flow_module, "dask", one_source_corpus, tmp_path / "out")


@pytest.mark.slow
def test_flow_runs_on_a_local_ray_cluster(
    flow_module: ModuleType, one_source_corpus: dict[str, str], tmp_path: Path
) -> None:
    pytest.importorskip("prefect_ray")
    out = tmp_path / "out"
    _run_on_cluster(flow_module, "ray", one_source_corpus, out)
    # A finished build re-run reuses every shard (the stages' markers, not Prefect's cache).
    again = flow_module.build_musicqa(work_dir=str(out), sources=one_source_corpus,
                                      stages_to_run=["ingest", "augment"], clips_per_shard=2)
    assert again["augment"]["shards_reused"] == 3
