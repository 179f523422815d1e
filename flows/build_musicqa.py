"""The Prefect flow **build-musicqa**: a thin shell over ``qagen.stages``.

Each stage of the pipeline is a task calling the same function the CLI calls. Stages land
issue by issue; the flow reports which ones it ran. Run it locally (Prefect's ephemeral
mode, no server needed)::

    python flows/build_musicqa.py --out out/musicqa-demo
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from qagen import stages
from qagen.workdir import WorkDir

#: Stages in pipeline order; those not yet implemented are refused with a clear error.
ALL_STAGES = ("ingest", "augment", "generate", "embed", "train", "publish")
IMPLEMENTED = ("ingest", "augment", "generate")


@task(name="demo-corpus")
def render_demo(demo_dir: str) -> dict[str, str]:
    """Render (or reuse) the demo corpus; returns source → dataset root."""
    return stages.write_demo_corpus(Path(demo_dir)).sources


@task(name="ingest", task_run_name="ingest-{source}")
def ingest_source(source: str, root: str, work_dir: str, options: dict[str, Any]) -> dict[str, Any]:
    """Ingest one source into the clip manifest; returns its report."""
    report = stages.ingest(source, Path(root), work=WorkDir(Path(work_dir)), options=options)
    return report.model_dump(mode="json")


@task(name="augment", task_run_name="augment-{shard_key}")
def augment_shard(work_dir: str, shard_key: str, workers: int) -> dict[str, Any]:
    """Measure the clips of one manifest shard (a pool of single-threaded workers)."""
    report = stages.augment(WorkDir(Path(work_dir)), shard_keys=[shard_key], workers=workers)
    return report.model_dump(mode="json")


@task(name="generate")
def generate_all(work_dir: str, backend: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Generate QA pairs over every shard with one backend instance (loaded once)."""
    from qagen.config import GenerateConfig
    from qagen.generate.backends import BackendConfig

    report = stages.generate(WorkDir(Path(work_dir)), config=GenerateConfig(**config),
                             backend_config=BackendConfig(**backend))
    return {**report.model_dump(mode="json"), "first_try_valid_rate": report.first_try_valid_rate}


@flow(name="build-musicqa", log_prints=False)
def build_musicqa(
    work_dir: str = "out/musicqa-demo",
    sources: dict[str, str] | None = None,
    source_options: dict[str, dict[str, Any]] | None = None,
    demo_dir: str | None = None,
    stages_to_run: list[str] | None = None,
    augment_workers: int = 2,
    backend: dict[str, Any] | None = None,
    generate_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build a MusicQA dataset.

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
    augment_workers
        Worker processes per augment task (one thread each).
    backend
        LLM backend settings (``qagen.generate.backends.BackendConfig`` fields), e.g.
        ``{"backend": "vllm", "model": "meta-llama/Llama-2-7b-chat-hf"}``; default: the
        packaged SmolLM2 through transformers.
    generate_config
        ``qagen.config.GenerateConfig`` fields (templates, sampling, seed, limits).
    """
    logger = logging.getLogger("build-musicqa")
    wanted = list(stages_to_run or IMPLEMENTED)
    unknown = [s for s in wanted if s not in ALL_STAGES]
    pending = [s for s in wanted if s in ALL_STAGES and s not in IMPLEMENTED]
    if unknown or pending:
        raise ValueError(f"unknown stages {unknown}; not implemented yet: {pending}; "
                         f"implemented: {list(IMPLEMENTED)}")
    if sources is None:
        sources = render_demo(demo_dir or str(Path(work_dir) / "demo-corpus"))
    summary: dict[str, Any] = {"work_dir": work_dir, "stages": wanted, "ingest": {}}
    if "ingest" in wanted:
        futures = {name: ingest_source.submit(name, root, work_dir,
                                              (source_options or {}).get(name, {}))
                   for name, root in sources.items()}
        summary["ingest"] = {name: fut.result() for name, fut in futures.items()}
        create_table_artifact(
            key="ingest-summary",
            table=[{"source": n, "clips": r["clips"], **r["by_audio_status"],
                    "dropped": sum(r["dropped"].values())} for n, r in summary["ingest"].items()],
            description="Clips ingested per source",
        )
    if "augment" in wanted:
        keys = list(WorkDir(Path(work_dir)).manifest_shards("clips"))
        # One task per shard, run one after another: each already uses every core.
        reports = [augment_shard.submit(work_dir, key, augment_workers).result() for key in keys]
        summary["augment"] = _sum_reports(reports)
        create_table_artifact(
            key="augment-summary",
            table=[{"what": k, "count": v} for k, v in summary["augment"].items()
                   if isinstance(v, int)],
            description="Clips measured by the augment stage",
        )
    if "generate" in wanted:
        summary["generate"] = generate_all(work_dir, backend or {}, generate_config or {})
        g = summary["generate"]
        create_table_artifact(
            key="generate-summary",
            table=[{"what": "accepted pairs", "count": g["accepted"]},
                   {"what": "requests", "count": g["requests"]},
                   *({"what": f"rejected: {k}", "count": v} for k, v in g["rejected"].items())],
            description="QA pairs generated",
        )
    logger.info("build-musicqa ran stages %s into %s", wanted, work_dir)
    return summary


def _sum_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Add up per-shard stage reports (counts by key, seconds)."""
    total: dict[str, Any] = {"shards": 0, "shards_reused": 0, "items_in": 0, "items_out": 0,
                             "seconds": 0.0, "counts": {}, "skipped": {}, "rejected": {}}
    for r in reports:
        for k in ("shards", "shards_reused", "items_in", "items_out", "seconds"):
            total[k] += r[k]
        for k in ("counts", "skipped", "rejected"):
            for reason, n in r[k].items():
                total[k][reason] = total[k].get(reason, 0) + n
    total["seconds"] = round(total["seconds"], 3)
    return total


def _main() -> None:
    parser = argparse.ArgumentParser(description="Run build-musicqa locally.")
    parser.add_argument("--out", default="out/musicqa-demo", help="work directory")
    parser.add_argument("--stages", default=None, help="comma-separated stages")
    args = parser.parse_args()
    result = build_musicqa(work_dir=args.out,
                           stages_to_run=args.stages.split(",") if args.stages else None)
    manifests = WorkDir(Path(args.out)).manifest_shards("clips")
    total = sum(r["clips"] for r in result["ingest"].values())
    done = {"stages_ran": result["stages"], "clips": total, "clip_shards": len(manifests),
            "work_dir": str(Path(args.out).resolve())}
    if "augment" in result:
        done["features"] = result["augment"]["counts"]
    if "generate" in result:
        done["qa_pairs"] = result["generate"]["accepted"]
        done["qa_rejected"] = result["generate"]["rejected"]
    print(json.dumps(done, indent=2))  # noqa: T201


if __name__ == "__main__":
    _main()
