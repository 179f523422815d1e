"""Score measured features against ground truth with mir_eval's standard metrics.

Baselines come from the same run: the stored ``tempo_tcn_bpm`` and ``key_madmom`` are what
bare madmom answers, so the gain of the octave and key decisions is measured, not claimed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from qagen.manifest import iter_manifest
from qagen.records import ClipFeatures, FeatureStatus
from qagen.workdir import WorkDir

TEMPO_TOLERANCE = 0.04


class AugmentScores(BaseModel):
    """Corpus-level scores (means over clips; chords weighted by duration)."""

    clips_scored: int
    clips_missing: int = Field(description="Truth clips without an ok feature row.")
    tempo_acc1: float
    tempo_acc2: float
    tempo_acc1_tcn_only: float = Field(description="Bare madmom TCN tempo, Acc1.")
    tempo_acc2_tcn_only: float
    tempo_acc1_librosa: float = Field(default=0.0, description="librosa.feature.tempo, Acc1.")
    tempo_acc2_librosa: float = 0.0
    key_weighted: float = Field(description="MIREX weighted key score.")
    key_weighted_cnn_only: float = Field(description="Bare madmom key CNN.")
    key_exact: float
    chords_majmin: float
    beat_f: float
    downbeat_f: float
    meter_accuracy: float
    time_signature_accuracy: float | None = Field(
        default=None, description="time_signature equal to the truth's meter ('6/8'), over "
        "rows that state one (meter_accuracy compares beats per bar).")
    scored: dict[str, int] = Field(
        default_factory=dict, description="Clips scored per metric (truth rows may be partial).")
    music_accuracy: float | None = Field(
        default=None, description="is_music right, over truth rows that say music or not.")
    nonmusic_withheld: float | None = Field(
        default=None, description="Share of not-music clips with key, tempo and chords withheld.")
    per_clip: list[dict[str, object]] = Field(default_factory=list)


def tempo_acc(est: float | None, ref: float) -> tuple[float, float]:
    """(Acc1, Acc2) of one estimate: within 4 %; within 4 % of ×1, ×2, ×½, ×3, ×⅓."""
    if est is None:
        return 0.0, 0.0
    acc1 = abs(est - ref) <= TEMPO_TOLERANCE * ref
    acc2 = any(abs(est - ref * f) <= TEMPO_TOLERANCE * ref * f for f in (1, 2, 0.5, 3, 1 / 3))
    return float(acc1), float(acc2)


def chord_majmin(ref: list[dict], est: ClipFeatures) -> tuple[float, float]:
    """(majmin accuracy, scored duration) of one clip, via mir_eval's chord module."""
    import mir_eval

    ref_int = np.array([[c["start_s"], c["end_s"]] for c in ref])
    ref_lab = [c["label"] for c in ref]
    if not est.chords:
        return 0.0, float(ref_int[-1, 1] - ref_int[0, 0])
    est_int = np.array([[c.start_s, c.end_s] for c in est.chords])
    est_lab = [c.label for c in est.chords]
    est_int, est_lab = mir_eval.util.adjust_intervals(
        est_int, est_lab, ref_int.min(), ref_int.max(), mir_eval.chord.NO_CHORD,
        mir_eval.chord.NO_CHORD)
    intervals, r, e = mir_eval.util.merge_labeled_intervals(ref_int, ref_lab, est_int, est_lab)
    durations = mir_eval.util.intervals_to_durations(intervals)
    comparisons = mir_eval.chord.majmin(r, e)
    return float(mir_eval.chord.weighted_accuracy(comparisons, durations)), float(
        durations[comparisons >= 0].sum())


def _f(ref: list[float], est: list[float]) -> float:
    import mir_eval

    ref_a, est_a = np.asarray(ref, dtype=float), np.asarray(est, dtype=float)
    min_t = 5.0 if ref_a.size and ref_a.max() > 12.0 else 0.0  # keep short clips scorable
    return float(mir_eval.beat.f_measure(mir_eval.beat.trim_beats(ref_a, min_t),
                                         mir_eval.beat.trim_beats(est_a, min_t)))


def score_features(truth_rows: Iterable[dict], features: dict[str, ClipFeatures]) -> AugmentScores:
    """Score features against truth rows (``truth.jsonl`` of the demo corpus or hard set).

    A row may be partial (a real recording with only a tempo); each metric averages over the
    rows that have its truth. A row with ``music: false`` scores only the music decision and
    whether key, tempo and chords were withheld.
    """
    import mir_eval

    sums: dict[str, list[float]] = {k: [] for k in (
        "t1", "t2", "t1b", "t2b", "t1l", "t2l", "key", "keyb", "keyx", "beat", "down", "meter",
        "music", "withheld", "ts")}
    chord_num = chord_den = 0.0
    n_chords = 0
    per_clip = []
    missing = 0
    for row in truth_rows:
        feat = features.get(row["clip_id"])
        if feat is None or feat.status is not FeatureStatus.ok:
            missing += 1
            continue
        music = row.get("music", True)
        values: dict[str, float] = {}
        if feat.is_music is not None:  # rows without "music" (the demo corpus) are music
            values["music"] = float(feat.is_music == music)
        clip = {"clip_id": row["clip_id"], "name": row.get("name"), "music_ref": music,
                "music_est": feat.is_music, "music_conf": feat.music_confidence}
        if not music:
            values["withheld"] = float(feat.key is None and feat.tempo_bpm is None
                                       and not feat.chords)
            clip |= {"key_est": feat.key, "tempo_est": feat.tempo_bpm}
        else:
            if row.get("tempo_bpm") is not None:
                values["t1"], values["t2"] = tempo_acc(feat.tempo_bpm, row["tempo_bpm"])
                values["t1b"], values["t2b"] = tempo_acc(feat.tempo_tcn_bpm, row["tempo_bpm"])
                values["t1l"], values["t2l"] = tempo_acc(feat.tempo_librosa_bpm,
                                                         row["tempo_bpm"])
                clip |= {"tempo_ref": row["tempo_bpm"], "tempo_est": feat.tempo_bpm,
                         "tempo_tcn": feat.tempo_tcn_bpm, "tempo_beats": feat.tempo_beats_bpm,
                         "tempo_librosa": feat.tempo_librosa_bpm,
                         "tempo_conf": feat.tempo_confidence}
            if row.get("key"):
                values["key"] = (mir_eval.key.weighted_score(row["key"], feat.key)
                                 if feat.key else 0.0)
                values["keyb"] = (mir_eval.key.weighted_score(row["key"], feat.key_madmom)
                                  if feat.key_madmom else 0.0)
                values["keyx"] = float(values["key"] == 1.0)
                clip |= {"key_ref": row["key"], "key_est": feat.key, "key_cnn": feat.key_madmom,
                         "key_conf": feat.key_confidence}
            if row.get("chords"):
                chord, dur = chord_majmin(row["chords"], feat)
                chord_num += chord * dur
                chord_den += dur
                n_chords += 1
                clip["chords_majmin"] = round(chord, 3)
            if row.get("beats"):
                values["beat"] = _f(row["beats"], feat.beats)
            if row.get("downbeats"):
                values["down"] = _f(row["downbeats"], feat.downbeats)
                clip["downbeat_f"] = round(values["down"], 3)
            if row.get("beats_per_bar"):
                values["meter"] = float(feat.meter == row["beats_per_bar"])
                clip |= {"meter_ref": row["beats_per_bar"], "meter_est": feat.meter}
            if row.get("meter"):
                values["ts"] = float(feat.time_signature == row["meter"])
                clip |= {"time_signature_ref": row["meter"],
                         "time_signature_est": feat.time_signature}
        for k, v in values.items():
            sums[k].append(v)
        per_clip.append(clip)

    def mean(k: str) -> float:
        return round(float(np.mean(sums[k])), 4) if sums[k] else 0.0

    return AugmentScores(
        clips_scored=len(per_clip), clips_missing=missing, tempo_acc1=mean("t1"),
        tempo_acc2=mean("t2"), tempo_acc1_tcn_only=mean("t1b"), tempo_acc2_tcn_only=mean("t2b"),
        tempo_acc1_librosa=mean("t1l"), tempo_acc2_librosa=mean("t2l"),
        key_weighted=mean("key"), key_weighted_cnn_only=mean("keyb"), key_exact=mean("keyx"),
        chords_majmin=round(chord_num / chord_den, 4) if chord_den else 0.0,
        beat_f=mean("beat"), downbeat_f=mean("down"), meter_accuracy=mean("meter"),
        scored={"tempo": len(sums["t1"]), "key": len(sums["key"]), "chords": n_chords,
                "beats": len(sums["beat"]), "downbeats": len(sums["down"]),
                "meter": len(sums["meter"]), "time_signature": len(sums["ts"]),
                "music": len(sums["music"]),
                "not_music": len(sums["withheld"])},
        music_accuracy=mean("music") if sums["music"] else None,
        nonmusic_withheld=mean("withheld") if sums["withheld"] else None,
        time_signature_accuracy=mean("ts") if sums["ts"] else None,
        per_clip=per_clip,
    )


def evaluate_augment(work: WorkDir, truth_path: Path, *, split: str | None = None) -> AugmentScores:
    """Load ``truth.jsonl`` and the features manifest of ``work`` and score them.

    ``split`` keeps only truth rows of that split (the hard set's ``dev`` or ``test`` half).
    """
    rows = [json.loads(line) for line in truth_path.read_text(encoding="utf-8").splitlines()
            if line.strip()]
    if split is not None:
        rows = [r for r in rows if r.get("split") == split]
    features = {f.clip_id: f for f in iter_manifest(work.manifest_shards("features").values(),
                                                    ClipFeatures)}
    return score_features(rows, features)
