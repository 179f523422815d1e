"""Benchmark the generate stage against the bare backend on the same prompts, in one run.

Prints: output tokens/s through the bare engine (``backend.generate`` on the exact requests
the stage sent, all queued at once), the stage's tokens/s including rendering, caching,
parsing, validation, grounding and writing, their ratio (goal ≥ 0.9), the first-try
validity rate (goal ≥ 99.5 %), the grounding pass rate and the rejection reasons. On CPU
it uses the packaged SmolLM2; the same script takes a GPU backend and model id unchanged:

    python bench/generate.py --backend vllm --model meta-llama/Llama-2-7b-chat-hf
    python bench/generate.py --model DIR --device cuda --dtype bf16 --measured WORK

The bare side is the same backend instance (so the same device, dtype, threads and batch
size) on the exact requests the stage sent, all queued at once; both sides run after a
warm-up that compiled every template's grammar. ``--measured`` takes a work dir that is
already ingested and augmented (``scripts/gpu_check.py --prepare`` makes one), for machines
without the augment extra.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path


class RecordingBackend:
    """Wraps a backend: remembers the requests the stage sent, in the order they were taken."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.requests: list = []
        self.name = inner.name  # type: ignore[attr-defined]
        self.extra = inner.extra  # type: ignore[attr-defined]

    @property
    def model_id(self) -> str:
        return self.inner.model_id  # type: ignore[attr-defined]

    def stream(self, queue: object) -> Iterator:
        from qagen.generate.backends import RequestQueue

        recorder = self

        class Recording(RequestQueue):
            def take(self, n: int) -> list:
                taken = queue.take(n)  # type: ignore[attr-defined]
                recorder.requests.extend(taken)
                return taken

            def __len__(self) -> int:
                return len(queue)  # type: ignore[arg-type]

        yield from self.inner.stream(Recording())  # type: ignore[attr-defined]

    def generate(self, requests: list) -> list:
        self.requests.extend(requests)
        return self.inner.generate(requests)  # type: ignore[attr-defined]

    def close(self) -> None:
        pass


def main() -> None:
    from qagen.config import GenerateConfig
    from qagen.generate.backends import BackendConfig, load_backend
    from qagen.generate.stage import generate
    from qagen.ingest import ingest
    from qagen.stages import write_demo_corpus
    from qagen.workdir import WorkDir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="transformers")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of the backend.")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--dtype", default="auto", help="auto, fp32, fp16 or bf16")
    parser.add_argument("--measured", type=Path, default=None,
                        help="An ingested + augmented work dir (skips rendering/augment).")
    parser.add_argument("--clips-per-shard", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=None,
                        help="completion budget (default: each template's output bound)")
    parser.add_argument("--out", type=Path, default=Path("bench-out/generate"))
    args = parser.parse_args()

    base = WorkDir(args.measured or args.out / "measured")
    if not base.manifest_shards("features"):
        from qagen.augment.stage import augment

        corpus = write_demo_corpus(args.out / "demo")
        for source, root in corpus.sources.items():
            ingest(source, Path(root), work=base)
        augment(base, workers=2)
    work = WorkDir(args.out / "work")
    shutil.rmtree(work.root, ignore_errors=True)
    shutil.copytree(base.root, work.root)

    bcfg = BackendConfig(backend=args.backend, model=args.model, batch_size=args.batch_size,
                         threads=args.threads, device=args.device, dtype=args.dtype)
    t0 = time.perf_counter()
    backend = load_backend(bcfg)
    load_s = time.perf_counter() - t0
    # Warm-up outside both timings: compile each template's grammar once (xgrammar caches
    # compiled schemas per backend instance, so the first timed run would otherwise pay it).
    from qagen.generate.backends import GenRequest, SamplingConfig
    from qagen.generate.prompts import load_templates

    warm = [GenRequest(request_id=f"warm-{t.meta.id}", json_schema=t.json_schema(), seed=0,
                       messages=[{"role": "user", "content": "Say something about music."}],
                       sampling=SamplingConfig(max_tokens=16)) for t in load_templates()]
    backend.generate(warm)
    rec = RecordingBackend(backend)
    cfg = GenerateConfig(max_clips_per_shard=args.clips_per_shard, max_tokens=args.max_tokens)
    t0 = time.perf_counter()
    report = generate(work, config=cfg, backend_config=bcfg, backend=rec, cache=False)  # type: ignore[arg-type]
    stage_s = time.perf_counter() - t0
    # The bare engine on exactly the same requests (same seeds, so the same work), all of
    # them queued at once: the best the engine can do with them.
    t0 = time.perf_counter()
    bare = backend.generate(rec.requests)
    bare_s = time.perf_counter() - t0
    bare_tokens = sum(r.completion_tokens or 0 for r in bare)
    backend.close()

    stage_tps = report.completion_tokens / stage_s if stage_s else 0.0
    bare_tps = bare_tokens / bare_s if bare_s else 0.0
    parsed = report.responses_valid_first_try
    pairs_screened = report.accepted + sum(
        v
        for k, v in report.rejected.items()
        if k.startswith(("grounding", "leak", "junk", "near_dup", "kind"))
    )
    grounding_rejects = sum(v for k, v in report.rejected.items() if k.startswith("grounding"))
    result = {
        "backend": args.backend,
        "model": args.model,
        "device": args.device,
        "dtype": bcfg.dtype,
        "batch_size": args.batch_size,
        "load_s": round(load_s, 1),
        "requests": report.requests,
        "responses_parsed_first_try": parsed,
        "first_try_valid_rate": round(report.first_try_valid_rate, 4),
        "stage_wall_s": round(stage_s, 1),
        "stage_tokens": report.completion_tokens,
        "stage_tok_per_s": round(stage_tps, 1),
        "bare_wall_s": round(bare_s, 1),
        "bare_tokens": bare_tokens,
        "bare_tok_per_s": round(bare_tps, 1),
        "ratio_stage_over_bare": round(stage_tps / bare_tps, 3) if bare_tps else None,
        "accepted_pairs": report.accepted,
        "grounding_pass_rate": round(1 - grounding_rejects / pairs_screened, 4)
        if pairs_screened
        else None,
        "rejected": report.rejected,
    }
    width = max(len(k) for k in result)
    print(f"generate benchmark: {report.clips} demo clips, {report.requests} requests")
    for key, value in result.items():
        print(f"  {key:<{width}}  {value}")
    (args.out / "result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
