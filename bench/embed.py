"""Benchmark the embed stage against the bare encoder forward on the same audio.

Prints, from one run: the stage's throughput (audio seconds per wall second and clips per
hour, including decoding, resampling, windowing, pooling and writing), the bare forward
pass (feature extractor + ``HubertModel`` with ``output_hidden_states=True``) on the same
windows decoded beforehand, their ratio (goal ≥ 0.9), and peak memory.

    python bench/embed.py [--encoder m-a-p/MERT-v1-95M | DIR] [--audio DIR] [--threads N]

Default audio: the demo corpus (26 clips, ~9 min) rendered under ``--out``; ``--audio`` takes
any folder of audio files (ingested as an audiofolder). The default encoder is the built-in
random tiny model; a real one is passed unchanged (it must be in the local HF cache).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import time
from pathlib import Path
from typing import Any


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bare_forward(windows: list[Any], *, folder: Path, sr: int, batch_size: int,
                 device: str) -> float:
    """Wall seconds of feature extractor + HubertModel over the windows, as a user would."""
    import torch
    from transformers import HubertModel, Wav2Vec2FeatureExtractor

    model = HubertModel.from_pretrained(folder).eval().to(device)
    processor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=sr, do_normalize=True)
    by_length: dict[int, list[Any]] = {}
    for w in windows:
        by_length.setdefault(len(w), []).append(w)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for group in by_length.values():
            for k in range(0, len(group), batch_size):
                inputs = processor(group[k: k + batch_size], sampling_rate=sr,
                                   return_tensors="pt")
                out = model(input_values=inputs["input_values"].to(device),
                            output_hidden_states=True)
                _ = [h.sum().item() for h in out.hidden_states[-1:]]  # wait for the device
    return time.perf_counter() - t0


def main() -> None:
    from qagen.audio import load_audio
    from qagen.embed.config import TINY_ENCODER, EmbedConfig
    from qagen.embed.encoder import resolve_encoder
    from qagen.embed.pooling import MIN_TAIL_S, chunk_bounds
    from qagen.embed.stage import embed
    from qagen.ingest import ingest
    from qagen.manifest import iter_manifest
    from qagen.records import Clip
    from qagen.stages import write_demo_corpus
    from qagen.workdir import WorkDir, dataset_roots

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default=TINY_ENCODER)
    parser.add_argument("--audio", type=Path, default=None, help="Folder of audio files.")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--chunk-s", type=float, default=5.0)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--out", type=Path, default=Path("bench-out/embed"))
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    config = EmbedConfig(encoder=args.encoder, chunk_s=args.chunk_s, batch_size=args.batch_size,
                         threads=args.threads, device=args.device)
    work = WorkDir(args.out / "work")
    shutil.rmtree(work.root, ignore_errors=True)
    if args.audio is None:
        corpus = write_demo_corpus(args.out / "demo")
        for source, root in corpus.sources.items():
            ingest(source, Path(root), work=work)
    else:
        ingest("audiofolder", args.audio, work=work)
    roots = dataset_roots(work)
    clips = [c for c in iter_manifest(work.manifest_shards("clips").values(), Clip)
             if c.audio_status.value in ("ok", "unchecked")]

    # Bare: decode every clip first (not timed), cut the same windows, time the forward only.
    source = resolve_encoder(config.encoder, revision=config.revision)
    chunk, windows, audio_s = round(config.chunk_s * config.sr), [], 0.0
    for c in clips:
        y, _ = load_audio(roots[c.source] / c.audio_path, sr=config.sr, start_s=c.start_s,
                          end_s=c.end_s)
        audio_s += len(y) / config.sr
        tail = max(400, min(chunk, round(MIN_TAIL_S * config.sr)))
        windows += [y[a:b] for a, b in chunk_bounds(len(y), chunk_samples=chunk,
                                                   min_tail_samples=tail)]
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    device = "cpu" if device == "auto" else device
    bare_forward(windows[: min(2, len(windows))], folder=source.path, sr=config.sr,
                 batch_size=config.batch_size, device=device)  # warm-up (kernels, caches)
    bare_wall = bare_forward(windows, folder=source.path, sr=config.sr,
                             batch_size=config.batch_size, device=device)
    rss_bare = _peak_rss_mib()

    t0 = time.perf_counter()
    report = embed(work, config=config, cache=False)
    stage_wall = time.perf_counter() - t0
    shard_s = sum(json.loads(p.read_text())["seconds"] for p in work.markers("embed").values())

    stage_x, bare_x = audio_s / stage_wall, audio_s / bare_wall
    result = {
        "encoder": config.encoder,
        "random_init": source.random_init,
        "device": device,
        "threads": args.threads,
        "clips": len(clips),
        "windows": len(windows),
        "audio_seconds": round(audio_s, 1),
        "stage_wall_s": round(stage_wall, 2),
        "stage_shards_s (without encoder load)": round(shard_s, 2),
        "stage_audio_s_per_s": round(stage_x, 2),
        "stage_clips_per_hour": round(len(clips) / stage_wall * 3600),
        "bare_forward_wall_s": round(bare_wall, 2),
        "bare_audio_s_per_s": round(bare_x, 2),
        "ratio_stage_over_bare": round(stage_x / bare_x, 3),
        "ratio_without_encoder_load": round(bare_wall / shard_s, 3) if shard_s else None,
        "peak_rss_mib_after_bare": round(rss_bare, 1),
        "peak_rss_mib_after_stage": round(_peak_rss_mib(), 1),
        "stage_report": report.model_dump(exclude={"stage"}),
    }
    width = max(len(k) for k in result)
    print(f"embed benchmark: {len(clips)} clips, {audio_s:.0f} s of audio, encoder "
          f"{config.encoder}, {args.threads} threads on {device}")
    for key, value in result.items():
        print(f"  {key:<{width}}  {value}")
    (args.out / "result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
