"""Serve the deployment **build-musicqa/local** from this process (no work pool needed).

``flow.serve`` registers the deployment with the Prefect server at ``PREFECT_API_URL`` and
runs each of its flow runs in a subprocess here until stopped (stopping pauses it). Start a
run from anywhere that reaches the server::

    prefect deployment run build-musicqa/local --watch
    prefect deployment run build-musicqa/local --params '{"stages_to_run": ["ingest"]}'

The same deployment can instead be hosted by a process work pool (``prefect.yaml``, ``make
deploy``); whichever registered it last owns the name.
"""

from __future__ import annotations

import argparse

from build_musicqa import build_musicqa


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve build-musicqa/local.")
    parser.add_argument("--name", default="local", help="deployment name")
    parser.add_argument("--work-dir", default="out/musicqa-demo",
                        help="default work_dir of its runs (relative to this process's cwd)")
    parser.add_argument("--limit", type=int, default=1, help="flow runs at once")
    args = parser.parse_args()
    build_musicqa.serve(
        name=args.name,
        parameters={"work_dir": args.work_dir},
        description="Build a MusicQA dataset (defaults: the demo corpus, every stage built).",
        tags=["qagen"],
        limit=args.limit,
    )


if __name__ == "__main__":
    main()
