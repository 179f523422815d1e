"""Exports that existing trainers read unchanged: MU-LLaMA's MusicQA JSON and LLaVA-style JSONL.

MusicQA (crypto-code/MU-LLaMA, ``MusicQA/*.json``) is a list of single-turn records
``{"audio_name", "conversation": [{"from": "human"}, {"from": "gpt"}]}``; we add the ``clip_id``
it has no field for (extra keys are ignored by its loader). LLaVA-style records group one
clip's pairs into a multi-turn ``conversations`` list with the ``<audio>`` token in the first
human turn. ``audio_name`` is ``<clip_id>.wav``: the clip window, which the ``clips`` config
locates (source, audio_path, start_s, end_s).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from qagen.records.publish import PublishedQA

AUDIO_TOKEN = "<audio>"


def audio_name(clip_id: str) -> str:
    """The file name a trainer looks up for a clip's audio."""
    return f"{clip_id}.wav"


def render_musicqa(rows: Sequence[PublishedQA]) -> bytes:
    """MusicQA JSON of one split (one record per pair, in row order)."""
    records = [
        {"audio_name": audio_name(r.clip_id),
         "conversation": [{"from": "human", "value": r.question},
                          {"from": "gpt", "value": r.answer}],
         "clip_id": r.clip_id, "qa_id": r.qa_id, "kind": r.kind}
        for r in rows
    ]
    return (json.dumps(records, ensure_ascii=False, indent=1) + "\n").encode()


def render_llava(rows: Sequence[PublishedQA]) -> bytes:
    """LLaVA-style JSONL of one split: one multi-turn conversation per clip."""
    by_clip: dict[str, list[PublishedQA]] = {}
    for r in rows:
        by_clip.setdefault(r.clip_id, []).append(r)
    lines = []
    for clip_id, pairs in by_clip.items():
        turns = []
        for i, r in enumerate(pairs):
            question = f"{AUDIO_TOKEN}\n{r.question}" if i == 0 else r.question
            turns += [{"from": "human", "value": question}, {"from": "gpt", "value": r.answer}]
        lines.append(json.dumps({"id": clip_id, "audio": audio_name(clip_id), "clip_id": clip_id,
                                 "qa_ids": [r.qa_id for r in pairs], "conversations": turns},
                                ensure_ascii=False))
    return "".join(f"{line}\n" for line in lines).encode()
