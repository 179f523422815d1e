"""Score augment on the hard set (dev and test halves) and, optionally, the demo corpus.

Renders the hard set (``qagen.augment.hardset``: General-MIDI arrangements through
fluidsynth, noise, the real recordings when ``--realaudio`` is given), measures every clip
once (cached in ``OUT/cache`` by clip id, audio hash and ``MEASURE_VERSION``), then decides
and scores with mir_eval — so re-running after a decision-rule change costs seconds.

    python bench/hardset.py [--out bench-out/hardset] [--realaudio ../shared/realaudio]
                            [--demo out/musicqa-demo/demo-corpus] [--workers 2] [--json F]
                            [--fit-calibration]

Tune on the dev half only; the test half is for reporting. ``--fit-calibration`` refits the
tempo-confidence map (``qagen/augment/tempo_calibration.json``) on the dev half's raw
confidences before scoring; every run prints the reliability table (confidence bin: clips,
mean confidence, accuracy) and, with matplotlib installed, writes ``OUT/calibration.png``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import sys
from pathlib import Path

_MODELS: dict = {}


def _measure(job: tuple[str, str, str, str]) -> tuple[str, str]:
    """(clip json, root, cache path) → (clip id, measurement json), measured in a worker."""
    from qagen.augment.extract import measure_clip
    from qagen.augment.models import MadmomModels
    from qagen.config import AugmentConfig
    from qagen.records import Clip

    clip_json, root, cache, _ = job
    clip = Clip.model_validate_json(clip_json)
    if "m" not in _MODELS:
        _MODELS["m"] = MadmomModels()
    m = measure_clip(clip, root=Path(root), models=_MODELS["m"], config=AugmentConfig())
    text = m.model_dump_json()
    Path(cache).parent.mkdir(parents=True, exist_ok=True)
    Path(cache).write_text(text, encoding="utf-8")
    return clip.clip_id, text


def _init() -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"


def measure_all(clips_by_root: list[tuple[Path, object]], cache_dir: Path,
                workers: int) -> dict[str, object]:
    """Measurements of every clip, from the cache where present."""
    from qagen.audio import sha256_file
    from qagen.augment.extract import MEASURE_VERSION, Measurement
    from qagen.paths import safe_join

    out: dict[str, Measurement] = {}
    jobs = []
    for root, clip in clips_by_root:
        sha = sha256_file(safe_join(root, clip.audio_path))
        clip = clip.model_copy(update={"audio_sha256": sha})
        key = hashlib.sha256(f"{MEASURE_VERSION}|{clip.clip_id}|{sha}".encode()).hexdigest()
        path = cache_dir / f"{key}.json"
        if path.is_file():
            out[clip.clip_id] = Measurement.model_validate_json(path.read_text(encoding="utf-8"))
        else:
            jobs.append((clip.model_dump_json(), str(root), str(path), clip.clip_id))
    if jobs:
        print(f"measuring {len(jobs)} clips with {workers} workers…", file=sys.stderr)
        with mp.get_context("spawn").Pool(workers, initializer=_init) as pool:
            for i, (cid, text) in enumerate(pool.imap_unordered(_measure, jobs), 1):
                out[cid] = Measurement.model_validate_json(text)
                print(f"  {i}/{len(jobs)}", file=sys.stderr, end="\r")
    return out


def iter_source_clips(name: str, root: Path) -> list:
    from qagen.records import Clip
    from qagen.sources import get_source

    src = get_source(name)
    options = src.Options() if hasattr(src, "Options") else None
    return [c for c in src.iter_clips(root, options=options) if isinstance(c, Clip)]


def decide_all(measurements: dict, clips: dict, calibration=None) -> dict:
    from qagen.augment.extract import decide_features
    from qagen.augment.models import extractor_versions
    from qagen.config import AugmentConfig

    config, versions = AugmentConfig(), extractor_versions()
    return {cid: decide_features(m, clip=clips[cid], config=config, versions=versions,
                                 tempo_calibration=calibration)
            for cid, m in measurements.items()}


def tempo_pairs(rows: list[dict], features: dict, *,
                evidence: bool = False) -> list[tuple[float, bool]]:
    """(tempo confidence, Acc1 right) of every music clip with a notated tempo; with
    ``evidence``, the calibration's input (``confidence.tempo_evidence``) instead."""
    from qagen.augment.confidence import tempo_evidence
    from qagen.augment.evaluate import tempo_acc

    out = []
    for r in rows:
        f = features.get(r["clip_id"])
        if (r.get("music", True) and r.get("tempo_bpm") and f is not None
                and f.tempo_bpm is not None and f.tempo_confidence is not None):
            x = f.tempo_confidence
            if evidence:
                x = tempo_evidence(f.tempo_bpm, x, [f.tempo_tcn_bpm, f.tempo_beats_bpm,
                                                    f.tempo_librosa_bpm])
            out.append((x, tempo_acc(f.tempo_bpm, r["tempo_bpm"])[0] == 1.0))
    return out


def reliability_table(title: str, raw: list, calibrated: list) -> str:
    """Tempo reliability, raw share vs calibrated: per bin clips, mean confidence, accuracy."""
    from qagen.augment.confidence import reliability

    lines = [f"  tempo reliability, {title} (bin: n, mean confidence → accuracy):"]
    for name, pairs in (("raw", raw), ("calibrated", calibrated)):
        table = reliability(pairs)
        cells = [f"[{lo:.2f},{hi:.2f}) {n}: {conf:.2f}→{acc:.2f}"
                 for lo, hi, n, conf, acc in table]
        if pairs:
            ece = sum(n * abs(conf - acc) for _, _, n, conf, acc in table)
            brier = sum((c - y) ** 2 for c, y in pairs) / len(pairs)
            cells.append(f"ECE {ece / len(pairs):.3f} Brier {brier:.3f}")
        lines.append(f"    {name:10s} " + "  ".join(cells))
    return "\n".join(lines)


def plot_calibration(path: Path, curves: dict[str, list[tuple[float, bool]]]) -> bool:
    """Reliability diagram (accuracy against mean confidence per bin); False without
    matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    from qagen.augment.confidence import reliability

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="perfect")
    for name, pairs in curves.items():
        table = reliability(pairs)
        if table:
            ax.plot([t[3] for t in table], [t[4] for t in table], marker="o",
                    label=f"{name} (n={len(pairs)})")
            for t in table:
                ax.annotate(str(t[2]), (t[3], t[4]), fontsize=7, xytext=(3, -9),
                            textcoords="offset points")
    ax.set(xlabel="tempo confidence (bin mean)", ylabel="tempo Acc1", xlim=(0, 1.02),
           ylim=(0, 1.02), title="augment tempo confidence, hard set")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def table(title: str, scores) -> str:
    rows = [("tempo Acc1 / bare TCN", scores.tempo_acc1, scores.tempo_acc1_tcn_only),
            ("tempo Acc2 / bare TCN", scores.tempo_acc2, scores.tempo_acc2_tcn_only),
            ("  librosa Acc1 / Acc2", scores.tempo_acc1_librosa, scores.tempo_acc2_librosa),
            ("key weighted / bare CNN", scores.key_weighted, scores.key_weighted_cnn_only),
            ("chords majmin", scores.chords_majmin, None),
            ("beat F", scores.beat_f, None), ("downbeat F", scores.downbeat_f, None),
            ("meter accuracy", scores.meter_accuracy, None),
            ("time signature", scores.time_signature_accuracy, None),
            ("music decision", scores.music_accuracy, None),
            ("not-music withheld", scores.nonmusic_withheld, None)]
    lines = [f"{title}: {scores.clips_scored} clips scored, {scores.clips_missing} without "
             f"features; scored per metric {scores.scored}"]
    for name, a, b in rows:
        a_s = "-" if a is None else f"{a:.3f}"
        lines.append(f"  {name:26s} {a_s:>6s}" + ("" if b is None else f"  {b:.3f}"))
    cells = []
    for name, p, key in (("tempo Acc1", scores.tempo_acc1, "tempo"),
                         ("Acc2", scores.tempo_acc2, "tempo"),
                         ("meter", scores.meter_accuracy, "meter")):
        n = scores.scored.get(key, 0)
        if n:
            lo, hi = wilson(p, n)
            cells.append(f"{name} [{lo:.2f}, {hi:.2f}]")
    if cells:
        lines.append("  95% interval (Wilson):    " + ", ".join(cells))
    return "\n".join(lines)


def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` over ``n`` clips: how far one more or one
    fewer miss could move it."""
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def calibration(scores) -> str:
    """Accuracy per confidence bin (tempo Acc1, key weighted): does confidence track it?"""
    import mir_eval

    from qagen.augment.confidence import reliability
    from qagen.augment.evaluate import tempo_acc

    pairs: dict[str, list[tuple[float, float]]] = {"tempo": [], "key": []}
    for c in scores.per_clip:
        if c.get("tempo_ref") and c.get("tempo_est") and c.get("tempo_conf") is not None:
            pairs["tempo"].append((c["tempo_conf"], tempo_acc(c["tempo_est"], c["tempo_ref"])[0]))
        if c.get("key_ref") and c.get("key_est") and c.get("key_conf") is not None:
            pairs["key"].append((c["key_conf"],
                                 mir_eval.key.weighted_score(c["key_ref"], c["key_est"])))
    lines = ["  calibration (confidence bin: n, accuracy):"]
    for name, xs in pairs.items():
        cells = [f"[{lo:.2f},{hi:.2f}) {n}: {acc:.2f}"
                 for lo, hi, n, _, acc in reliability(xs, edges=(0.0, 0.6, 0.8, 0.95, 1.0))]
        lines.append(f"    {name:6s} " + "  ".join(cells))
    return "\n".join(lines)


def breakdown(rows: list[dict], features: dict) -> str:
    """Tempo Acc1/Acc2, key, downbeat F and meter per meter and per drum feel."""
    from qagen.augment.evaluate import score_features

    groups: dict[str, list[dict]] = {}
    for r in rows:
        if r.get("kind") != "rendered":
            continue
        groups.setdefault(f"meter {r['meter']}", []).append(r)
        groups.setdefault(f"feel {r['extra']['feel']}", []).append(r)
    lines = ["  by group:               n  Acc1  Acc2   key  downF meter"]
    for name in sorted(groups):
        s = score_features(groups[name], features)
        lines.append(f"    {name:20s} {s.clips_scored:2d} {s.tempo_acc1:5.2f} {s.tempo_acc2:5.2f} "
                     f"{s.key_weighted:5.2f} {s.downbeat_f:5.2f} {s.meter_accuracy:5.2f}")
    return "\n".join(lines)


def main() -> None:
    from qagen.augment.confidence import (
        CALIBRATION_FILE,
        fit_tempo_calibration,
        load_tempo_calibration,
    )
    from qagen.augment.evaluate import score_features
    from qagen.augment.hardset import HARDSET_VERSION, write_hard_set

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("bench-out/hardset"))
    ap.add_argument("--n", type=int, default=160)
    ap.add_argument("--realaudio", type=Path, default=None)
    ap.add_argument("--demo", type=Path, default=None, help="A built demo corpus folder.")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="Write scores + per-clip rows.")
    ap.add_argument("--fit-calibration", action="store_true",
                    help="Refit the tempo-confidence map on the dev half and store it.")
    args = ap.parse_args()

    truth_path = write_hard_set(args.out / "set", n=args.n, realaudio=args.realaudio)
    truth = [json.loads(x) for x in truth_path.read_text(encoding="utf-8").splitlines() if x]
    root = truth_path.parent / "audiofolder"
    jobs = [(root, c) for c in iter_source_clips("audiofolder", root)]
    demo_truth: list[dict] = []
    if args.demo:
        demo_truth = [json.loads(x) for x in (args.demo / "truth.jsonl").read_text(
            encoding="utf-8").splitlines() if x]
        for source in sorted({r["source"] for r in demo_truth}):
            jobs += [(args.demo / source, c) for c in iter_source_clips(source, args.demo / source)]
    clips = {c.clip_id: c for _, c in jobs}
    measurements = measure_all(jobs, args.out / "cache", args.workers)
    raw = decide_all(measurements, clips)  # uncalibrated: the evidence the map reads
    dev_rows = [r for r in truth if r["split"] == "dev"]
    if args.fit_calibration:
        cal = fit_tempo_calibration(tempo_pairs(dev_rows, raw, evidence=True), fitted_on=(
            f"hard set v{HARDSET_VERSION} (n={args.n}) dev half, tempo Acc1"))
        CALIBRATION_FILE.write_text(json.dumps(cal.model_dump(mode="json"), indent=1) + "\n",
                                    encoding="utf-8")
        print(f"tempo calibration refitted on {cal.clips} dev clips → {CALIBRATION_FILE}",
              file=sys.stderr)
    else:
        cal = load_tempo_calibration()
    features = decide_all(measurements, clips, cal)
    report = {}
    curves = {}
    for split in ("dev", "test"):
        rows = [r for r in truth if r["split"] == split]
        scores = score_features(rows, features)
        report[split] = scores.model_dump(mode="json")
        print(table(f"hard set, {split} half", scores))
        print(breakdown(rows, features))
        print(calibration(scores))
        curves[f"{split}, calibrated"] = tempo_pairs(rows, features)
        print(reliability_table(f"{split} half", tempo_pairs(rows, raw), curves[
            f"{split}, calibrated"]))
    curves["test, raw"] = tempo_pairs([r for r in truth if r["split"] == "test"], raw)
    if plot_calibration(args.out / "calibration.png", curves):
        print(f"calibration plot: {args.out / 'calibration.png'}", file=sys.stderr)
    if demo_truth:
        scores = score_features(demo_truth, features)
        report["demo"] = scores.model_dump(mode="json")
        print(table("demo corpus", scores))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
