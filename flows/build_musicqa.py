"""The Prefect flow **build-musicqa**: a thin shell over ``qagen.stages``.

Each stage is one small block: a task calling the same function the CLI calls (or one task
per clip-manifest shard, ≤500 clips each, for stages that fan out) and a step that submits
it, registered in ``STEPS``. The stages' own done-markers make a re-run of a finished build
take seconds and let a killed run resume; Prefect caching is therefore off (``NO_CACHE``).
Every step returns the stage's ``StageReport`` (per-shard and per-source reports added with
``sum_reports``); the flow posts them as one table artifact and hands them to the run report.

Tasks run on the task runner the parameters pick: local threads (default), Dask or Ray
(``task_runners.py``). Task bodies use only ``qagen`` and the standard library, so a cluster
worker needs the ``qagen`` package, not this folder. Run it locally (Prefect's ephemeral
mode, no server needed)::

    python flows/build_musicqa.py --out out/musicqa-demo
    python flows/build_musicqa.py --out out/big --task-runner dask --address tcp://sched:8786
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from task_runners import TaskRunnerSpec, make_task_runner, placed

from qagen import stages
from qagen.engine import StageReport, sum_reports, summary_rows
from qagen.progress import ProgressSink, ProgressState
from qagen.workdir import WorkDir

#: Stages in pipeline order; a stage runs when ``STEPS`` has a step and ``qagen.stages`` has it.
ALL_STAGES = ("ingest", "augment", "generate", "embed", "train", "evaluate", "publish")


class BuildPlan(BaseModel):
    """Everything the steps need, validated once before any work."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    work_dir: str
    sources: dict[str, str] | None = None
    source_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    demo_dir: str
    clips_per_shard: int = Field(default=500, ge=1, le=500)
    augment_workers: int = Field(default=2, ge=1)
    backend: dict[str, Any] = Field(default_factory=dict)
    generate_config: dict[str, Any] = Field(default_factory=dict)
    generate_resources: dict[str, float] = Field(default_factory=dict)
    encoder: str | None = None
    embed_config: dict[str, Any] = Field(default_factory=dict)
    train_config: dict[str, Any] = Field(default_factory=dict)
    evaluate_config: dict[str, Any] = Field(default_factory=dict)
    publish_config: dict[str, Any] = Field(default_factory=dict)
    output_repo: str | None = None
    output_private: bool = True
    runner: TaskRunnerSpec = Field(default_factory=TaskRunnerSpec)

    @model_validator(mode="after")
    def _every_stage_config_is_valid(self) -> BuildPlan:
        """Validate every stage's config now, so a typo in a nested key stops the flow before
        the first stage instead of when its stage starts, hours later."""
        for field, model, value in stage_configs(self):
            try:
                model.model_validate(value)
            except ValidationError as exc:
                shown = "; ".join(
                    ".".join([field, *(str(x) for x in e["loc"])]) + f": {e['msg']}"
                    for e in exc.errors())
                raise ValueError(f"invalid flow config: {shown}") from None
        return self


def stage_configs(plan: BuildPlan) -> list[tuple[str, type[BaseModel], dict[str, Any]]]:
    """``(parameter, config model, value)`` of every nested stage config of a plan."""
    from qagen.config import GenerateConfig
    from qagen.embed.config import EmbedConfig
    from qagen.generate.backends import BackendConfig
    from qagen.publish.config import PublishConfig
    from qagen.sources import get_source
    from qagen.train.config import EvaluateConfig, TrainConfig

    embed = embed_params(plan)
    checks: list[tuple[str, type[BaseModel], dict[str, Any]]] = [
        ("backend", BackendConfig, plan.backend),
        ("generate_config", GenerateConfig, plan.generate_config),
        ("embed_config", EmbedConfig, embed),
        ("train_config", TrainConfig, plan.train_config),
        ("evaluate_config", EvaluateConfig, plan.evaluate_config),
        ("publish_config", PublishConfig, plan.publish_config),
    ]
    for source, options in plan.source_options.items():
        checks.append((f"source_options.{source}", get_source(source).Options, options))
    return checks


# --- tasks: each calls one stage function; arguments and results are plain JSON -------------


@task(name="demo-corpus", cache_policy=NO_CACHE)
def render_demo(demo_dir: str) -> dict[str, str]:
    """Render (or reuse) the demo corpus; returns source → dataset root."""
    return stages.write_demo_corpus(Path(demo_dir)).sources


@task(name="ingest", task_run_name="ingest-{source}", cache_policy=NO_CACHE)
def ingest_source(source: str, root: str, work_dir: str, options: dict[str, Any],
                  shard_size: int = 500) -> dict[str, Any]:
    """Ingest one source into the clip manifest; returns its report."""
    report = stages.ingest(source, Path(root), work=WorkDir(Path(work_dir)), options=options,
                           shard_size=shard_size)
    return report.model_dump(mode="json")


@task(name="augment", task_run_name="augment-{shard_key}", cache_policy=NO_CACHE)
def augment_shard(work_dir: str, shard_key: str, workers: int) -> dict[str, Any]:
    """Measure the clips of one manifest shard (``workers`` > 1: a process pool)."""
    report = stages.augment(WorkDir(Path(work_dir)), shard_keys=[shard_key], workers=workers)
    return report.model_dump(mode="json")


def prefect_progress(key: str, *, every_s: float = 30.0) -> ProgressSink:
    """A progress sink for a long task: a Prefect progress artifact (percent done) and a
    run-log line (done/total, tokens/s, ETA), at most every ``every_s`` seconds."""
    artifact: list[Any] = []

    def post(state: ProgressState) -> None:
        percent = 100.0 * state.done / state.total if state.total else 0.0
        get_run_logger().info("%s", state.describe())
        if not artifact:
            artifact.append(create_progress_artifact(percent, key=key,
                                                     description=state.describe()))
        else:
            update_progress_artifact(artifact[0], percent, description=state.describe())

    return ProgressSink(post, every_s)


@task(name="generate", cache_policy=NO_CACHE)
def generate_all(work_dir: str, backend: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Generate QA pairs over every shard with one backend instance (loaded once)."""
    from qagen.config import GenerateConfig
    from qagen.generate.backends import BackendConfig
    from qagen.generate.stage import check_answered

    report = stages.generate(WorkDir(Path(work_dir)), config=GenerateConfig(**config),
                             backend_config=BackendConfig(**backend),
                             progress=[prefect_progress("generate-progress")])
    check_answered(report)  # a backend outage fails the flow instead of training on less
    return report.stage_report().model_dump(mode="json")


@task(name="embed", task_run_name="embed-{label}", cache_policy=NO_CACHE)
def embed_shards(work_dir: str, shard_keys: list[str] | None, config: dict[str, Any],
                 label: str = "all") -> dict[str, Any]:
    """Embed the clips of some shards (None: all) with the audio encoder, loaded once."""
    from qagen.embed.config import EmbedConfig

    report = stages.embed(WorkDir(Path(work_dir)), config=EmbedConfig(**config),
                          shard_keys=shard_keys)
    return report.model_dump(mode="json")


@task(name="train", cache_policy=NO_CACHE)
def train_adapter(work_dir: str, config: dict[str, Any]) -> dict[str, Any]:
    """Train the audio→LM adapter on the QA pairs and embeddings (a finished run is reused)."""
    from qagen.train.config import TrainConfig

    report = stages.train(WorkDir(Path(work_dir)), config=TrainConfig(**config))
    return report.model_dump(mode="json")


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate_adapter(work_dir: str, train_config: dict[str, Any],
                     config: dict[str, Any]) -> dict[str, Any]:
    """Answer the held-out questions with the trained run and score them (reused when done)."""
    from qagen.train.config import EvaluateConfig, TrainConfig

    run = TrainConfig(**train_config).run
    report = stages.evaluate(WorkDir(Path(work_dir)), run=run, config=EvaluateConfig(**config))
    return report.model_dump(mode="json")


@task(name="publish", cache_policy=NO_CACHE)
def publish_dataset(work_dir: str, config: dict[str, Any], push_to: str | None = None,
                    private: bool = True) -> dict[str, Any]:
    """Write the Hugging Face dataset folder and card; upload it when ``push_to`` is given
    (token from ``HF_TOKEN`` or the HF login, read at use)."""
    from qagen.publish import push
    from qagen.publish.config import PublishConfig

    report = stages.publish(WorkDir(Path(work_dir)), config=PublishConfig(**config))
    if push_to:
        pushed = push(Path(report.details["out_dir"]), repo_id=push_to, private=private)
        report.details["push"] = pushed.model_dump(mode="json")
    return report.model_dump(mode="json")


@task(name="run-report", cache_policy=NO_CACHE)
def write_report(work_dir: str, reports: dict[str, dict[str, Any]], timings: dict[str, float],
                 facts: dict[str, Any]) -> str | None:
    """Write ``reports/run.md`` with ``qagen.report`` when that module exists."""
    try:
        from qagen.report import write_run_report
    except ImportError:
        logging.getLogger("build-musicqa").debug("qagen.report not importable; no run report")
        return None
    return str(write_run_report(
        WorkDir(Path(work_dir)), timings=timings, facts=facts,
        reports={s: StageReport.model_validate(r) for s, r in reports.items()}))


# --- steps: run in the flow, submit a stage's tasks, return its StageReport ---------------


def _reports(results: list[dict[str, Any]], stage: str) -> StageReport:
    """The tasks' JSON reports of one stage, added up."""
    return sum_reports((StageReport.model_validate(r) for r in results), stage=stage)


def step_ingest(plan: BuildPlan) -> StageReport:
    """One task per source, submitted together (each is I/O on its own dataset copy)."""
    sources = plan.sources if plan.sources is not None else render_demo(plan.demo_dir)
    futures = [ingest_source.submit(name, root, plan.work_dir, plan.source_options.get(name, {}),
                                    plan.clips_per_shard)
               for name, root in sources.items()]
    return _reports([fut.result() for fut in futures], "ingest")


def step_augment(plan: BuildPlan) -> StageReport:
    """One task per clip shard. Locally the shards run in turn, each on a pool of
    ``augment_workers`` processes; on a cluster they run at once, one in-process analyser each
    (cluster workers are daemonic processes, which cannot start a pool)."""
    keys = list(WorkDir(Path(plan.work_dir)).manifest_shards("clips"))
    if plan.runner.distributed:
        futures = [augment_shard.submit(plan.work_dir, key, 1) for key in keys]
        reports = [fut.result() for fut in futures]
    else:
        reports = [augment_shard.submit(plan.work_dir, key, plan.augment_workers).result()
                   for key in keys]
    return _reports(reports, "augment")


def step_generate(plan: BuildPlan) -> StageReport:
    """One task: the LLM loads once and batches across shards. On a cluster it runs on a worker
    holding ``generate_resources`` (e.g. ``{"GPU": 1}``); past one GPU, scale the backend
    itself (vLLM ``tensor_parallel_size`` / data-parallel replicas), not the task count."""
    with placed(plan.runner, plan.generate_resources):
        future = generate_all.submit(plan.work_dir, plan.backend, plan.generate_config)
    return StageReport.model_validate(future.result())


def embed_params(plan: BuildPlan) -> dict[str, Any]:
    """``EmbedConfig`` fields: ``encoder`` (else ``embed_config``'s) resolved by
    :func:`qagen.embed.choice.choose_encoder` when absent or ``"auto"``: a cached MERT, else
    the embedded ``qagen/madmom-features``."""
    from qagen.embed.choice import choose_encoder

    named = plan.encoder or plan.embed_config.get("encoder")
    return {**plan.embed_config, "encoder": choose_encoder(named)}


def step_embed(plan: BuildPlan) -> StageReport:
    """Locally one task (the encoder loads once, torch uses every core); on a cluster one task
    per shard, submitted together."""
    config = embed_params(plan)
    if not plan.runner.distributed:
        return _reports([embed_shards(plan.work_dir, None, config)], "embed")
    keys = list(WorkDir(Path(plan.work_dir)).manifest_shards("clips"))
    futures = [embed_shards.submit(plan.work_dir, [key], config, key) for key in keys]
    return _reports([fut.result() for fut in futures], "embed")


def step_train(plan: BuildPlan) -> StageReport:
    """One task (one model); placed like generation."""
    with placed(plan.runner, plan.generate_resources):
        future = train_adapter.submit(plan.work_dir, plan.train_config)
    return StageReport.model_validate(future.result())


def step_evaluate(plan: BuildPlan) -> StageReport:
    """One task, on the same kind of worker as training."""
    with placed(plan.runner, plan.generate_resources):
        future = evaluate_adapter.submit(plan.work_dir, plan.train_config, plan.evaluate_config)
    return StageReport.model_validate(future.result())


def step_publish(plan: BuildPlan) -> StageReport:
    """One task; ``output_repo`` becomes the card's repo id and the push target."""
    repo = {"repo_id": plan.output_repo} if plan.output_repo else {}
    return StageReport.model_validate(publish_dataset(
        plan.work_dir, {**plan.publish_config, **repo}, plan.output_repo, plan.output_private))


#: Stage → step. Adding a stage: a task above, a step, one entry here.
STEPS: dict[str, Callable[[BuildPlan], StageReport]] = {
    "ingest": step_ingest, "augment": step_augment, "generate": step_generate,
    "embed": step_embed, "train": step_train, "evaluate": step_evaluate,
    "publish": step_publish,
}


def implemented_stages() -> tuple[str, ...]:
    """Stages with a step whose stage function ``qagen.stages`` exports, in pipeline order."""
    return tuple(s for s in ALL_STAGES if s in STEPS and hasattr(stages, s))


def redact_logs() -> None:
    """Mask secrets (tokens, Authorization headers) in every log handler Prefect set up: the
    terminal, and the run log sent to the Prefect API."""
    from qagen.redact import install

    for name in ("", "prefect", "prefect.flow_runs", "prefect.task_runs"):
        for handler in logging.getLogger(name).handlers:
            install(handler)


@flow(name="build-musicqa-stages", log_prints=False)
def run_stages(plan: BuildPlan, stages_to_run: list[str]) -> dict[str, Any]:
    """The stages in order on this flow's task runner: stage → its report (JSON), and
    ``timings``: wall-clock seconds per stage."""
    summary: dict[str, Any] = {}
    timings: dict[str, float] = {}
    for stage in stages_to_run:
        t0 = time.perf_counter()
        summary[stage] = STEPS[stage](plan).model_dump(mode="json")
        timings[stage] = round(time.perf_counter() - t0, 3)
    summary["timings"] = timings
    return summary


@flow(name="build-musicqa", log_prints=False)
def build_musicqa(
    work_dir: str = "out/musicqa-demo",
    sources: dict[str, str] | None = None,
    source_options: dict[str, dict[str, Any]] | None = None,
    demo_dir: str | None = None,
    stages_to_run: list[str] | None = None,
    clips_per_shard: int = 500,
    augment_workers: int = 2,
    backend: dict[str, Any] | None = None,
    generate_config: dict[str, Any] | None = None,
    generate_resources: dict[str, float] | None = None,
    encoder: str | None = None,
    embed_config: dict[str, Any] | None = None,
    train_config: dict[str, Any] | None = None,
    evaluate_config: dict[str, Any] | None = None,
    publish_config: dict[str, Any] | None = None,
    output_repo: str | None = None,
    output_private: bool = True,
    task_runner: str = "local",
    task_runner_address: str | None = None,
    task_runner_workers: int = 2,
) -> dict[str, Any]:
    """Build a MusicQA dataset; returns ``stages``, each stage's ``StageReport`` (as JSON) by
    name, ``timings`` and ``run_report``.

    Parameters
    ----------
    work_dir
        Where manifests, reports and outputs go.
    sources
        Source name → dataset root. None means the embedded demo corpus, rendered into
        ``demo_dir`` (default ``<work_dir>/demo-corpus``).
    source_options
        Source name → options (see ``qagen sources`` / each source's ``Options``).
    stages_to_run
        Subset of the pipeline stages; default: every implemented stage.
    clips_per_shard
        Clips per manifest shard written by ingest (≤500): the unit of parallel tasks.
    augment_workers
        Local runner: worker processes per augment task (one thread each).
    backend
        LLM backend settings (``qagen.generate.backends.BackendConfig`` fields), e.g.
        ``{"backend": "vllm", "model": "meta-llama/Llama-2-7b-chat-hf"}``; default: the
        packaged SmolLM2 through transformers.
    generate_config
        ``qagen.config.GenerateConfig`` fields (templates, sampling, seed, limits).
    generate_resources
        Cluster resources the generate and train tasks need, e.g. ``{"GPU": 1}``.
    encoder, embed_config
        Audio encoder id or directory (None or ``auto``: a MERT in the local HF cache, else
        the embedded ``qagen/madmom-features``), and the other ``EmbedConfig`` fields.
    train_config, evaluate_config, publish_config
        ``TrainConfig`` / ``EvaluateConfig`` / ``PublishConfig`` fields.
    output_repo, output_private
        Hugging Face dataset repo to push the published folder to (None: no push), created
        private unless ``output_private`` is False; the token is read from the environment.
    task_runner, task_runner_address, task_runner_workers
        ``local`` (threads), ``dask`` or ``ray``; the scheduler/cluster address (None: start a
        local cluster of ``task_runner_workers`` workers).
    """
    t0 = time.perf_counter()
    redact_logs()
    wanted = check_stages(stages_to_run)
    plan = BuildPlan(
        work_dir=work_dir, sources=sources, source_options=source_options or {},
        demo_dir=demo_dir or str(Path(work_dir) / "demo-corpus"), clips_per_shard=clips_per_shard,
        augment_workers=augment_workers, backend=backend or {},
        generate_config=generate_config or {}, generate_resources=generate_resources or {},
        encoder=encoder, embed_config=embed_config or {}, train_config=train_config or {},
        evaluate_config=evaluate_config or {}, publish_config=publish_config or {},
        output_repo=output_repo, output_private=output_private,
        runner=TaskRunnerSpec(kind=task_runner, address=task_runner_address,
                              workers=task_runner_workers),
    )
    runner = make_task_runner(plan.runner, ship=[sys.modules[__name__],
                                                 sys.modules[TaskRunnerSpec.__module__]])
    pipeline = run_stages.with_options(task_runner=runner)
    from qagen.lock import work_lock

    with work_lock(Path(work_dir), command="build-musicqa"):  # one writer per work dir
        summary = {"work_dir": work_dir, "stages": wanted, "task_runner": task_runner,
                   **pipeline(plan, wanted)}
    timings = summary["timings"]
    timings["total"] = round(time.perf_counter() - t0, 3)
    reports = {s: StageReport.model_validate(summary[s]) for s in wanted}
    facts = {"work_dir": work_dir, "task_runner": task_runner, "stages": wanted}
    summary["run_report"] = write_report(work_dir, {s: summary[s] for s in wanted}, timings,
                                         facts)
    create_table_artifact(
        key="stage-reports",
        table=[{**row, "flow_seconds": timings.get(row["stage"])}
               for row in summary_rows(reports)],
        description=f"Stage reports, flow seconds per stage ({task_runner} task runner; "
                    f"total {timings['total']:.1f} s)",
    )
    get_run_logger().info("build-musicqa ran stages %s into %s\n%s", wanted, work_dir,
                          render_summary_table(summary))
    return summary


def check_stages(stages_to_run: list[str] | None) -> list[str]:
    """The stages to run, in the order given; unknown or not yet implemented ones refused."""
    implemented = implemented_stages()
    wanted = list(stages_to_run or implemented)
    unknown = [s for s in wanted if s not in ALL_STAGES]
    pending = [s for s in wanted if s in ALL_STAGES and s not in implemented]
    if unknown or pending:
        raise ValueError(f"unknown stages {unknown}; not implemented yet: {pending}; "
                         f"implemented: {list(implemented)}")
    return wanted


def render_summary_table(summary: dict[str, Any]) -> str:
    """A plain-text table: stage, flow seconds, and its report's headline."""
    rows = [("stage", "seconds", "result")]
    for stage, seconds in summary["timings"].items():
        report = summary.get(stage)
        headline = StageReport.model_validate(report).headline() if report else ""
        rows.append((stage, f"{seconds:.1f}", headline))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def sources_from_data_dir(data: Path) -> dict[str, str]:
    """``make dataset DATA=dir``: each source whose name is a folder of ``data`` (in its
    native layout, e.g. ``data/musiccaps``, ``data/mtt``) → that folder.

    Raises
    ------
    ValueError
        When no folder of ``data`` is named after a known source.
    """
    from qagen.sources import list_sources

    found = {name: str(data / name) for name in list_sources() if (data / name).is_dir()}
    if not found:
        raise ValueError(f"{data}: no folder named after a source ({', '.join(list_sources())})")
    return found


def _main() -> None:
    parser = argparse.ArgumentParser(description="Run build-musicqa locally.")
    parser.add_argument("--out", default="out/musicqa-demo", help="work directory")
    parser.add_argument("--stages", default=None, help="comma-separated stages")
    parser.add_argument("--task-runner", default="local", choices=("local", "dask", "ray"))
    parser.add_argument("--address", default=None, help="Dask scheduler / Ray cluster address")
    parser.add_argument("--workers", type=int, default=2, help="workers of a local cluster")
    parser.add_argument("--data", type=Path, default=None,
                        help="folder with one sub-folder per source (musiccaps/, mtt/, fma/, "
                             "musicnet/, audiofolder/) in its native layout")
    parser.add_argument("--config", type=Path, default=None,
                        help="YAML/JSON file of build_musicqa parameters (real datasets, GPU "
                             "backend…); the options above override it")
    args = parser.parse_args()
    params: dict[str, Any] = {}
    if args.config is not None:
        params = yaml.safe_load(args.config.read_text(encoding="utf-8")) or {}
        if not isinstance(params, dict):
            parser.error(f"{args.config}: expected a mapping of flow parameters")
    params["work_dir"] = args.out
    if args.data is not None:
        params["sources"] = sources_from_data_dir(args.data)
    if args.stages:
        params["stages_to_run"] = args.stages.split(",")
    if args.task_runner != "local" or "task_runner" not in params:
        params["task_runner"] = args.task_runner
    if args.address:
        params["task_runner_address"] = args.address
    params.setdefault("task_runner_workers", args.workers)
    result = build_musicqa(**params)
    reports = {s: StageReport.model_validate(result[s]) for s in result["stages"]}
    manifests = WorkDir(Path(args.out)).manifest_shards("clips")
    done: dict[str, Any] = {"stages_ran": result["stages"], "clip_shards": len(manifests),
                            "work_dir": str(Path(args.out).resolve()),
                            "seconds": result["timings"]}
    if "ingest" in reports:
        done["clips"] = reports["ingest"].items_out
    if "augment" in reports:
        done["features"] = reports["augment"].counts
    if "generate" in reports:
        done["qa_pairs"] = reports["generate"].items_out
        done["qa_rejected"] = reports["generate"].rejected
    if "train" in reports:
        done["train"] = {k: reports["train"].details.get(k)
                         for k in ("run", "first_loss", "last_loss")}
    if "evaluate" in reports:
        done["evaluate"] = reports["evaluate"].details.get("metrics")
    if "publish" in reports:
        done["published"] = reports["publish"].details.get("out_dir")
    if result.get("run_report"):
        done["run_report"] = result["run_report"]
    print(json.dumps(done, indent=2))  # noqa: T201


if __name__ == "__main__":
    _main()
