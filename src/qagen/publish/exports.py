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
import textwrap
from collections.abc import Iterable, Iterator, Sequence

from qagen.records.publish import PublishedQA

AUDIO_TOKEN = "<audio>"


def audio_name(clip_id: str) -> str:
    """The file name a trainer looks up for a clip's audio."""
    return f"{clip_id}.wav"


def iter_musicqa(rows: Iterable[PublishedQA]) -> Iterator[bytes]:
    """MusicQA JSON of one split in pieces (one record per pair, in row order): the bytes of
    ``json.dumps(records, indent=1)``, without holding the list."""
    first = True
    for r in rows:
        record = {"audio_name": audio_name(r.clip_id),
                  "conversation": [{"from": "human", "value": r.question},
                                   {"from": "gpt", "value": r.answer}],
                  "clip_id": r.clip_id, "qa_id": r.qa_id, "kind": r.kind}
        text = textwrap.indent(json.dumps(record, ensure_ascii=False, indent=1), " ")
        yield (("[\n" if first else ",\n") + text).encode()
        first = False
    yield b"[]\n" if first else b"\n]\n"


def render_musicqa(rows: Sequence[PublishedQA]) -> bytes:
    """MusicQA JSON of one split (one record per pair, in row order)."""
    return b"".join(iter_musicqa(rows))


def iter_llava(shards: Iterable[Sequence[PublishedQA]]) -> Iterator[bytes]:
    """LLaVA-style JSONL of one split, one multi-turn conversation per clip, from the split's
    rows shard by shard (a clip's pairs are all in its own shard)."""
    for rows in shards:
        by_clip: dict[str, list[PublishedQA]] = {}
        for r in rows:
            by_clip.setdefault(r.clip_id, []).append(r)
        for clip_id, pairs in by_clip.items():
            turns = []
            for i, r in enumerate(pairs):
                question = f"{AUDIO_TOKEN}\n{r.question}" if i == 0 else r.question
                turns += [{"from": "human", "value": question},
                          {"from": "gpt", "value": r.answer}]
            line = json.dumps({"id": clip_id, "audio": audio_name(clip_id), "clip_id": clip_id,
                               "qa_ids": [r.qa_id for r in pairs], "conversations": turns},
                              ensure_ascii=False)
            yield f"{line}\n".encode()


def render_llava(rows: Sequence[PublishedQA]) -> bytes:
    """LLaVA-style JSONL of one split: one multi-turn conversation per clip."""
    return b"".join(iter_llava([rows]))
