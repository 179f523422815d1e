"""Does the adapter hear? Train on facts pairs of sampled demo clips, score MIR on held-out ones.

The whole path runs as a user runs it (the stage functions the CLI calls): a sampled demo
corpus (``qagen demo-corpus --clips N``: every key, 60–200 BPM, 3/4 and 4/4), ingest, augment,
the facts family (no LLM), embed with the music-aware embedded encoder
``qagen/madmom-features``, then each architecture (MU-LLaMA adapter, LLark projector) trained on
the MIR kinds of pairs with SmolLM2-135M frozen, and evaluated three ways on held-out clips:
the adapter, the LM alone, and the adapter fed another clip's audio (the ablation: if answers
came from a prior over the training answers, not from the audio, it would score the same).

    python bench/train_hears.py [--clips 480] [--steps 2000] [--out bench-out/train_hears]
                                [--archs mu_llama,llark] [--max-pairs 300] [--json F]

Every stage resumes, so a re-run reuses what is done. Targets (issue: the adapter that
hears): key accuracy ≥ LM alone + 0.25 and ≥ shuffled + 0.25; meter ≥ 0.9; tempo within 8 %
(octave-tolerant) ≥ 0.5; shuffled no better than the LM alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("bench.train_hears")

#: The LLark frame sequence rate: 2 Hz gives 20 audio tokens per 10 s clip. LLark's projector
#: back-propagates through the whole LM (its tokens enter at the bottom), so on CPU every
#: audio token costs; the pooled layers MU-LLaMA reads come from the native 10 Hz frames.
FRAME_RATE_HZ = 2.0
ROWS = [("key accuracy", "mir_key_acc"), ("key (MIREX weighted)", "mir_key_weighted"),
        ("tempo within 4 %", "mir_tempo_acc1"),
        ("tempo within 8 %, octave-tolerant", "mir_tempo_octave8"),
        ("meter accuracy", "mir_meter_acc"), ("instruments F1", "mir_instruments_f1"),
        ("genre F1", "mir_genre_f1"), ("yes/no accuracy", "mir_yes_no_acc"),
        ("BERTScore F1", "bertscore_f1_minilm_l6")]
VARIANTS = (("adapter", "metrics"), ("LM alone", "baseline_metrics"),
            ("another clip's audio", "shuffled_metrics"))


def build_work(out: Path, *, clips: int, seed: int, workers: int = 2) -> Path:
    """Corpus → ingest → augment → facts pairs → madmom-feature embeddings (all resumable)."""
    from qagen.config import GenerateConfig
    from qagen.embed.config import EmbedConfig
    from qagen.embed.madmom_features import MADMOM_ENCODER
    from qagen.stages import augment, embed, generate, ingest, write_demo_corpus
    from qagen.workdir import WorkDir

    corpus = write_demo_corpus(out / "corpus", clips=clips, seed=seed, sources=["musiccaps"])
    work = WorkDir(out / "work")
    stamps: dict[str, float] = {}
    for name, step in (
        ("ingest", lambda: ingest("musiccaps", Path(corpus.sources["musiccaps"]), work=work)),
        ("augment", lambda: augment(work, workers=workers)),
        ("generate", lambda: generate(work, config=GenerateConfig(templates=[], facts=True))),
        ("embed", lambda: embed(work, config=EmbedConfig(encoder=MADMOM_ENCODER,
                                                         frame_rate_hz=FRAME_RATE_HZ))),
    ):
        t0 = time.perf_counter()
        step()
        stamps[name] = round(time.perf_counter() - t0, 1)
    log.info("work dir ready in %s (seconds per stage: %s)", work.root, stamps)
    return work.root


def train_and_evaluate(work_root: Path, *, arch: str, steps: int, max_pairs: int,
                       seed: int, lr: float, tag: str = "",
                       overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """One architecture: train on the MIR kinds, evaluate the three variants."""
    from qagen.records.qa import QAKind
    from qagen.stages import evaluate, train
    from qagen.train.config import EvaluateConfig, TrainConfig
    from qagen.train.mir import MIR_KINDS
    from qagen.workdir import WorkDir

    work = WorkDir(work_root)
    cfg = TrainConfig(**{"run": f"hears-{arch}{tag}", "arch": arch, "steps": steps,
                         "batch_size": 8, "lr": lr, "save_every": 50, "seed": seed,
                         "max_len": 96, "loss_eval_max": 64,
                         "qa_kinds": [QAKind(k) for k in MIR_KINDS], **(overrides or {})})
    t0 = time.perf_counter()
    report = train(work, config=cfg, progress=False)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ev = evaluate(work, run=cfg.run, config=EvaluateConfig(max_pairs=max_pairs,
                                                           max_new_tokens=24, batch_size=16))
    details = report.details
    return {"arch": arch, "steps": steps, "train_s": round(train_s, 1),
            "eval_s": round(time.perf_counter() - t0, 1),
            "train_pairs": details["data"]["train_pairs"],
            "eval_clips": details["data"]["eval_clips"],
            "loss": {k: details.get(k) for k in ("train_loss_before", "train_loss_after",
                                                  "heldout_loss_before", "heldout_loss_after")},
            **{key: ev.details.get(key) for _, key in VARIANTS}, "pairs": ev.details["pairs"]}


def table(results: list[dict[str, Any]]) -> str:
    """Markdown: one row per MIR metric, a column per (architecture, variant)."""
    head = ["metric"] + [f"{r['arch']}: {v}" for r in results for v, _ in VARIANTS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, key in ROWS:
        cells = []
        for r in results:
            for _, field in VARIANTS:
                value = (r.get(field) or {}).get(key)
                cells.append("–" if value is None else f"{value:.3f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    n = results[0].get("metrics") or {}
    lines.append("")
    lines.append("pairs scored per metric: " + ", ".join(
        f"{k.removeprefix('mir_').removesuffix('_n')} {int(n.get(k) or 0)}"
        for k in ("mir_key_n", "mir_tempo_n", "mir_meter_n", "mir_instruments_n",
                  "mir_genre_n", "mir_yes_no_n")))
    return "\n".join(lines)


def check_targets(result: dict[str, Any]) -> dict[str, bool]:
    """The issue's targets for one architecture (None metrics count as missed)."""
    m, b, s = (result.get(f) or {} for _, f in VARIANTS)

    def get(d: dict[str, Any], k: str) -> float:
        v = d.get(k)
        return float("nan") if v is None else float(v)

    key, key_lm, key_sh = get(m, "mir_key_acc"), get(b, "mir_key_acc"), get(s, "mir_key_acc")
    return {
        "key ≥ LM alone + 0.25": key >= key_lm + 0.25,
        "key ≥ shuffled + 0.25": key >= key_sh + 0.25,
        "meter ≥ 0.9": get(m, "mir_meter_acc") >= 0.9,
        "tempo 8 % octave ≥ 0.5": get(m, "mir_tempo_octave8") >= 0.5,
        "shuffled ≤ LM alone (key)": key_sh <= key_lm + 0.05,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=480)
    parser.add_argument("--steps", type=int, default=2000,
                        help="MU-LLaMA adapter steps (~70 min on 2 cores).")
    parser.add_argument("--llark-steps", type=int, default=300,
                        help="LLark projector steps (each costs a backward pass through the "
                             "whole LM: ~4x a MU-LLaMA step on CPU).")
    parser.add_argument("--archs", default="mu_llama,llark")
    parser.add_argument("--max-pairs", type=int, default=300)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--workers", type=int, default=2, help="Augment workers.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="", help="Suffix of the run names (variants).")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                        help="Override a TrainConfig field, e.g. --set adapter_layers=16.")
    parser.add_argument("--out", type=Path, default=Path("bench-out/train_hears"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    work_root = build_work(args.out, clips=args.clips, seed=args.seed, workers=args.workers)
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    results = [train_and_evaluate(work_root, arch=a.strip(),
                                  steps=args.llark_steps if a.strip() == "llark" else args.steps,
                                  max_pairs=args.max_pairs, seed=args.seed, lr=args.lr,
                                  tag=args.tag, overrides=overrides)
               for a in args.archs.split(",") if a.strip()]
    sys.stdout.write(f"\n## Does the adapter hear? ({args.clips} sampled demo clips, "
                     f"SmolLM2-135M frozen, qagen/madmom-features)\n\n")
    sys.stdout.write(table(results) + "\n\n")
    for r in results:
        marks = ", ".join(f"{k}: {'met' if ok else 'MISSED'}"
                          for k, ok in check_targets(r).items())
        sys.stdout.write(f"{r['arch']}: {r['steps']} steps on {r['train_pairs']} pairs in "
                         f"{r['train_s']} s,"
                         f" evaluated {r['pairs']} pairs of {r['eval_clips']} held-out clips in "
                         f"{r['eval_s']} s; loss {r['loss']}\n  targets: {marks}\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
