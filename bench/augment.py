"""Benchmark the augment stage as a user runs it against the bare madmom processors.

One run on the demo corpus, same audio, same parallelism: the stage is the ``qagen augment``
CLI in a subprocess (interpreter start-up, imports, model loading in every worker, decoding,
librosa, loudness, pitch grid, decisions, parquet writing — no cache), the baseline a process
pool that loads madmom's processors and runs them on each decoded clip. Printed for both:
× real time with start-up (wall clock of the whole run) and without (the per-clip analysis
seconds summed over clips ÷ workers), and the stage/bare ratios (goal ≥ 0.9), peak memory,
and the accuracy of the stage's decisions against bare madmom's answers.

    python bench/augment.py [--workers 2] [--clips 100] [--out bench-out/augment]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_PROCS: dict[str, Any] = {}


def _init_bare() -> None:
    """Load the processors the stage uses, exactly as a user of madmom would."""
    import onnxruntime

    onnxruntime.set_default_logger_severity(3)  # its per-call warning costs time in both runs
    from madmom.features.beats import TCNBeatProcessor
    from madmom.features.chords import CNNChordFeatureProcessor, CRFChordRecognitionProcessor
    from madmom.features.downbeats import DBNDownBeatTrackingProcessor, RNNDownBeatProcessor
    from madmom.features.key import CNNKeyRecognitionProcessor
    from madmom.features.tempo import TCNTempoHistogramProcessor, TempoEstimationProcessor

    _PROCS.update(
        tcn=TCNBeatProcessor(tasks=(0, 1)),
        tempo=TempoEstimationProcessor(
            histogram_processor=TCNTempoHistogramProcessor(),
            hist_smooth=15,
            interpolate=True,
            method=None,
            act_smooth=None,
        ),
        rnn=RNNDownBeatProcessor(),
        dbn=DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], fps=100),
        key=CNNKeyRecognitionProcessor(),
        chord_feat=CNNChordFeatureProcessor(),
        crf=CRFChordRecognitionProcessor(),
    )


def _bare_one(job: tuple[str, float, float | None]) -> tuple[float, float]:
    """Decode one clip and run the processors on it: (audio seconds, seconds it took)."""
    from madmom.audio.signal import Signal

    from qagen.audio import load_audio

    t0 = time.perf_counter()
    path, start, end = job
    y, _ = load_audio(Path(path), sr=44100, start_s=start, end_s=end)
    sig = Signal(y, sample_rate=44100, num_channels=1)
    p = _PROCS
    p["tempo"](p["tcn"](sig))
    p["dbn"](p["rnn"](sig))
    p["key"](sig)
    p["crf"](p["chord_feat"](sig))
    return len(y) / 44100, time.perf_counter() - t0


def bare_throughput(
    jobs: list[tuple[str, float, float | None]], workers: int
) -> tuple[float, float, float]:
    """(audio seconds, wall seconds with start-up, summed per-clip seconds) of the baseline."""
    ctx = mp.get_context("spawn")
    t0 = time.perf_counter()
    with ctx.Pool(workers, initializer=_init_bare) as pool:
        done = list(pool.imap(_bare_one, jobs, chunksize=1))
    return sum(a for a, _ in done), time.perf_counter() - t0, sum(s for _, s in done)


def stage_throughput(work: Path, workers: int) -> tuple[float, float]:
    """(wall seconds with start-up, summed per-clip seconds) of ``qagen augment`` run as a
    user runs it: a fresh process, no cache."""
    from qagen.manifest import iter_manifest
    from qagen.records import ClipFeatures
    from qagen.workdir import WorkDir

    exe = Path(sys.executable).with_name("qagen")
    cmd = [str(exe), "augment", "--work", str(work), "--workers", str(workers), "--no-cache"]
    # The user's environment: the stage pins its workers' threads itself.
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - t0
    rows = iter_manifest(WorkDir(work).manifest_shards("features").values(), ClipFeatures)
    return wall, sum(f.seconds or 0.0 for f in rows)


def main() -> None:
    from qagen.augment.evaluate import evaluate_augment
    from qagen.ingest import ingest
    from qagen.manifest import iter_manifest
    from qagen.records import Clip
    from qagen.stages import write_demo_corpus
    from qagen.workdir import WorkDir, dataset_roots

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench-out/augment"))
    parser.add_argument("--clips", type=int, default=None,
                        help="Sample this many demo clips (qagen demo-corpus --clips) instead "
                             "of the 26-clip table.")
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    corpus = (write_demo_corpus(args.out / "demo") if args.clips is None
              else write_demo_corpus(args.out / "demo", clips=args.clips))
    work = WorkDir(args.out / "work")
    shutil.rmtree(work.root, ignore_errors=True)
    for source, root in corpus.sources.items():
        ingest(source, Path(root), work=work)
    roots = dataset_roots(work)
    clips = list(iter_manifest(work.manifest_shards("clips").values(), Clip))
    jobs = [(str(roots[c.source] / c.audio_path), c.start_s, c.end_s) for c in clips]

    # Bare madmom first (also warms the OS file cache for both runs equally).
    audio_s, bare_wall, bare_clip_s = bare_throughput(jobs, args.workers)
    stage_wall, stage_clip_s = stage_throughput(work.root, args.workers)
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    scores = evaluate_augment(work, Path(corpus.truth_path))

    stage_x, bare_x = audio_s / stage_wall, audio_s / bare_wall
    stage_run_x = audio_s / (stage_clip_s / args.workers)
    bare_run_x = audio_s / (bare_clip_s / args.workers)
    result = {
        "clips": len(clips),
        "audio_seconds": round(audio_s, 1),
        "workers": args.workers,
        "stage_wall_s": round(stage_wall, 2),
        "stage_x_realtime_with_startup": round(stage_x, 2),
        "stage_x_realtime_without_startup": round(stage_run_x, 2),
        "bare_madmom_wall_s": round(bare_wall, 2),
        "bare_madmom_x_realtime_with_startup": round(bare_x, 2),
        "bare_madmom_x_realtime_without_startup": round(bare_run_x, 2),
        "ratio_with_startup": round(stage_x / bare_x, 3),
        "ratio_without_startup": round(stage_run_x / bare_run_x, 3),
        "peak_rss_worker_mib": round(peak_children, 1),
        "peak_rss_parent_mib": round(peak_self, 1),
        "tempo_acc1": scores.tempo_acc1,
        "tempo_acc1_bare_tcn": scores.tempo_acc1_tcn_only,
        "key_weighted": scores.key_weighted,
        "key_weighted_bare_cnn": scores.key_weighted_cnn_only,
        "chords_majmin": scores.chords_majmin,
        "downbeat_f": scores.downbeat_f,
        "meter_accuracy": scores.meter_accuracy,
    }
    width = max(len(k) for k in result)
    print(
        f"augment benchmark: {len(clips)} demo clips, {audio_s:.0f} s of audio, "
        f"{args.workers} worker processes"
    )
    for key, value in result.items():
        print(f"  {key:<{width}}  {value}")
    (args.out / "result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
