"""Benchmark the embed stage against the bare encoder forward on the same audio.

Prints, from one run: the stage's throughput (audio seconds per wall second and clips per
hour, including decoding, resampling, windowing, pooling and writing), the bare forward
pass (feature extractor + ``HubertModel`` with ``output_hidden_states=True``) on the same
windows decoded beforehand, their ratio (goal ≥ 0.9), and peak memory.

The bare baseline is the raw engine at its best, under the stage's own settings: the same
threads, device, compute dtype and windows per batch (the stage's resolved ``batch_size``),
windows of equal length batched across clips, outputs left on the device (one sync at the
end). Both sides are warmed up on every window shape first (oneDNN/cuDNN pick kernels per
shape: an unwarmed side pays that and a later side inherits it), then timed alternately
``--repeats`` times; the best of each is reported, which filters out a shared machine's
bursts.

    python bench/embed.py [--encoder m-a-p/MERT-v1-95M | DIR] [--audio DIR] [--threads N]
                          [--device cpu|cuda|auto] [--dtype auto|fp32|fp16|bf16]

Default audio: the demo corpus (26 clips, ~9 min) rendered under ``--out``; ``--audio`` takes
any folder of audio files (ingested as an audiofolder). The default encoder is the built-in
random tiny model; a real one is passed unchanged (it must be in the local HF cache).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("bench.embed")


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_bare(folder: Path, *, sr: int, device: str, dtype: str) -> tuple[Any, Any]:
    """``HubertModel`` + feature extractor as a user would load them (no qagen code)."""
    import torch
    from transformers import HubertModel, Wav2Vec2FeatureExtractor

    model = HubertModel.from_pretrained(folder, dtype=getattr(torch, dtype)).eval().to(device)
    if dtype == "bfloat16" and device == "cpu":
        # The stage's one fp32 layer on CPU bf16 (oneDNN's bf16 grouped conv1d is wrong,
        # qagen.embed.encoder._float32_island): the same work on both sides.
        from qagen.embed.encoder import _float32_island

        _float32_island(model.encoder.pos_conv_embed, torch=torch)
    processor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=sr, do_normalize=True)
    return model, processor


def bare_forward(windows: list[Any], *, model: Any, processor: Any, sr: int, batch_size: int,
                 device: str, dtype: str) -> tuple[float, float]:
    """Wall and CPU seconds of feature extractor + forward over every window, batched across
    clips."""
    import torch

    by_length: dict[int, list[Any]] = {}
    for w in windows:
        by_length.setdefault(len(w), []).append(w)
    kept = []
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        for group in by_length.values():
            for k in range(0, len(group), batch_size):
                inputs = processor(group[k: k + batch_size], sampling_rate=sr,
                                   return_tensors="pt", return_attention_mask=False)
                values = inputs["input_values"].to(device, dtype=getattr(torch, dtype))
                out = model(input_values=values, output_hidden_states=True)
                kept.append(out.hidden_states[-1].sum())  # stays on the device
        sync()
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    from qagen.audio import load_audio
    from qagen.devices import resolve_device
    from qagen.embed.config import TINY_ENCODER, EmbedConfig
    from qagen.embed.encoder import load_encoder, resolve_encoder
    from qagen.embed.pooling import MIN_TAIL_S, chunk_bounds
    from qagen.embed.stage import compute_dtype_of, embed
    from qagen.ingest import ingest
    from qagen.manifest import iter_manifest
    from qagen.records import Clip
    from qagen.workdir import WorkDir, dataset_roots

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default=TINY_ENCODER)
    parser.add_argument("--audio", type=Path, default=None, help="Folder of audio files.")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-size", default="auto", help="Windows per batch, or auto.")
    parser.add_argument("--chunk-s", type=float, default=5.0)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--dtype", default="auto", help="auto, fp32, fp16 or bf16")
    parser.add_argument("--repeats", type=int, default=3, help="Timed runs of each side.")
    parser.add_argument("--out", type=Path, default=Path("bench-out/embed"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import torch

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    batch = "auto" if args.batch_size == "auto" else int(args.batch_size)
    config = EmbedConfig(encoder=args.encoder, chunk_s=args.chunk_s, batch_size=batch,
                         threads=args.threads, device=device, compute_dtype=args.dtype)
    source = resolve_encoder(config.encoder, revision=config.revision)
    dtype = compute_dtype_of(source, config)
    base = WorkDir(args.out / "ingested")
    shutil.rmtree(base.root, ignore_errors=True)
    if args.audio is None:
        from qagen.stages import write_demo_corpus

        corpus = write_demo_corpus(args.out / "demo")
        for name, root in corpus.sources.items():
            ingest(name, Path(root), work=base)
    else:
        ingest("audiofolder", args.audio, work=base)
    roots = dataset_roots(base)
    clips = [c for c in iter_manifest(base.manifest_shards("clips").values(), Clip)
             if c.audio_status.value in ("ok", "unchecked")]

    # Bare: decode every clip first (not timed) and cut the stage's windows.
    chunk, windows, audio_s = round(config.chunk_s * config.sr), [], 0.0
    for c in clips:
        y, _ = load_audio(roots[c.source] / c.audio_path, sr=config.sr, start_s=c.start_s,
                          end_s=c.end_s)
        audio_s += len(y) / config.sr
        tail = max(400, min(chunk, round(MIN_TAIL_S * config.sr)))
        windows += [y[a:b] for a, b in chunk_bounds(len(y), chunk_samples=chunk,
                                                   min_tail_samples=tail)]
    # The stage's own batch for a full window (auto: 8 on CPU, by free memory on CUDA).
    probe = load_encoder(source, sr=config.sr, device=device, dtype=dtype)
    batch_size = probe.batch_size(chunk, requested=config.batch_size)
    del probe
    model, processor = load_bare(source.path, sr=config.sr, device=device, dtype=dtype)

    def run_bare() -> tuple[float, float]:
        return bare_forward(windows, model=model, processor=processor, sr=config.sr,
                            batch_size=batch_size, device=device, dtype=dtype)

    def run_stage(i: int) -> tuple[float, float, float, Any]:
        work = WorkDir(args.out / f"work-{i}")
        shutil.rmtree(work.root, ignore_errors=True)
        shutil.copytree(base.root, work.root)
        t0, c0 = time.perf_counter(), time.process_time()
        report = embed(work, config=config.model_copy(update={"batch_size": batch_size}),
                       cache=False)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        shard_s = sum(json.loads(p.read_text())["seconds"]
                      for p in work.markers("embed").values())
        shutil.rmtree(work.root, ignore_errors=True)
        return wall, cpu, shard_s, report

    log.info("warm-up: every window shape through both sides")
    run_bare()
    run_stage(0)
    bare_runs, stage_runs = [], []
    for i in range(args.repeats):  # alternate, so a burst of load hits both sides alike
        bare_runs.append(run_bare())
        stage_runs.append(run_stage(i + 1))
        log.info("repeat %d: bare %.2f s, stage %.2f s", i + 1, bare_runs[-1][0],
                 stage_runs[-1][0])
    bare_wall, bare_cpu = min(r[0] for r in bare_runs), min(r[1] for r in bare_runs)
    stage_wall, _, shard_s, report = min(stage_runs, key=lambda r: r[0])
    stage_cpu = min(r[1] for r in stage_runs)
    rss = _peak_rss_mib()

    stage_x, bare_x = audio_s / stage_wall, audio_s / bare_wall
    result = {
        "encoder": config.encoder,
        "random_init": source.random_init,
        "device": device,
        "gpu": torch.cuda.get_device_name(device) if device.startswith("cuda") else None,
        "compute_dtype": dtype,
        "threads": args.threads,
        "batch_size": batch_size,
        "clips": len(clips),
        "windows": len(windows),
        "audio_seconds": round(audio_s, 1),
        "repeats": args.repeats,
        "stage_wall_s": round(stage_wall, 3),
        "stage_wall_s_all": [round(r[0], 3) for r in stage_runs],
        "stage_cpu_s": round(stage_cpu, 3),
        "stage_shards_s (without encoder load)": round(shard_s, 3),
        "stage_audio_s_per_s": round(stage_x, 2),
        "stage_clips_per_hour": round(len(clips) / stage_wall * 3600),
        "bare_forward_wall_s": round(bare_wall, 3),
        "bare_forward_wall_s_all": [round(r[0], 3) for r in bare_runs],
        "bare_forward_cpu_s": round(bare_cpu, 3),
        "bare_audio_s_per_s": round(bare_x, 2),
        "bare_clips_per_hour": round(len(clips) / bare_wall * 3600),
        "ratio_stage_over_bare": round(stage_x / bare_x, 3),
        "ratio_without_encoder_load": round(bare_wall / shard_s, 3) if shard_s else None,
        # CPU seconds (this process, all threads): steadier than wall time on a shared box.
        "ratio_cpu_time": round(bare_cpu / stage_cpu, 3) if stage_cpu else None,
        "peak_rss_mib": round(rss, 1),
        "peak_cuda_mib": round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        if device.startswith("cuda") else None,
        "stage_report": report.model_dump(exclude={"stage"}),
    }
    width = max(len(k) for k in result)
    lines = [f"embed benchmark: {len(clips)} clips, {audio_s:.0f} s of audio, encoder "
             f"{config.encoder}, {args.threads} threads on {device} in {dtype}"]
    lines += [f"  {key:<{width}}  {value}" for key, value in result.items()]
    log.info("\n".join(lines))
    (args.out / "result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
