"""Which Prefect task runner executes build-musicqa's tasks: local threads, Dask or Ray.

The flow takes the choice as parameters (so a deployment run can pick a cluster), and this
module turns them into a task runner. The cluster does the fanning out: shard tasks are
submitted together and each runs in a worker process there. Dask's and Ray's packages are
imported only when chosen (``pip install prefect-dask`` / ``prefect-ray``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from types import ModuleType
from typing import Literal

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from pydantic import BaseModel, ConfigDict, Field

RunnerKind = Literal["local", "dask", "ray"]


class TaskRunnerSpec(BaseModel):
    """Where the flow's tasks run.

    ``local``: threads in the flow's process (augment tasks bring their own process pool).
    ``dask``: the scheduler at ``address`` (``tcp://host:8786``), else a ``LocalCluster`` of
    ``workers`` single-threaded worker processes (``processes=False``: threads instead).
    ``ray``: the cluster at ``address`` (``ray://host:10001`` or ``auto``), else a local Ray
    with ``workers`` CPUs.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: RunnerKind = "local"
    address: str | None = Field(default=None, description="Scheduler / cluster address.")
    workers: int = Field(default=2, ge=1, description="Workers of a cluster started here.")
    processes: bool = Field(default=True, description="Dask LocalCluster: process workers.")

    @property
    def distributed(self) -> bool:
        """Tasks run in cluster workers (daemonic processes: no process pools inside)."""
        return self.kind != "local"


def make_task_runner(spec: TaskRunnerSpec, *, ship: Sequence[ModuleType] = ()) -> TaskRunner:
    """Build the task runner ``spec`` describes (a cluster starts when the flow enters it).

    Parameters
    ----------
    ship
        Modules pickled by value for cluster workers: this folder is a set of scripts, not a
        package, so a worker cannot import the flow's own objects (tasks, parameter models) by
        name; their code travels with each submission instead.

    Raises
    ------
    ImportError
        With the pip command, when ``prefect-dask`` or ``prefect-ray`` is not installed.
    """
    if spec.kind == "local":
        return ThreadPoolTaskRunner()  # Prefect's default, as before runners were choosable
    if spec.kind == "dask":
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError as exc:
            raise ImportError("task_runner='dask' needs: pip install prefect-dask") from exc
        import cloudpickle

        for module in ship:
            cloudpickle.register_pickle_by_value(module)
        if spec.address:
            return DaskTaskRunner(address=spec.address)
        return DaskTaskRunner(cluster_kwargs={
            "n_workers": spec.workers, "threads_per_worker": 1, "processes": spec.processes,
            "dashboard_address": None,
        })
    try:
        from prefect_ray import RayTaskRunner
    except ImportError as exc:
        raise ImportError("task_runner='ray' needs: pip install prefect-ray") from exc
    from ray import cloudpickle as ray_cloudpickle

    for module in ship:
        ray_cloudpickle.register_pickle_by_value(module)
    if spec.address:
        return RayTaskRunner(address=spec.address)
    return RayTaskRunner(init_kwargs={"num_cpus": spec.workers, "include_dashboard": False})


@contextlib.contextmanager
def placed(spec: TaskRunnerSpec, resources: Mapping[str, float] | None) -> Iterator[None]:
    """Tasks submitted inside this block go to cluster workers that hold ``resources``.

    ``{"GPU": 1}`` sends generation to a GPU worker: a Dask worker started with
    ``--resources GPU=1`` or a Ray node with a GPU. No-op for the local runner.
    """
    if not resources or not spec.distributed:
        yield
        return
    if spec.kind == "dask":
        import dask

        with dask.annotate(resources=dict(resources)):
            yield
        return
    from prefect_ray.context import remote_options

    ray_options: dict[str, object] = {}
    rest = {k: v for k, v in resources.items() if k not in ("GPU", "CPU")}
    if "GPU" in resources:
        ray_options["num_gpus"] = resources["GPU"]
    if "CPU" in resources:
        ray_options["num_cpus"] = resources["CPU"]
    if rest:
        ray_options["resources"] = rest
    with remote_options(**ray_options):
        yield
