"""Split leakage: one recording or clip must never sit in two splits.

Why: splits come from the source datasets at clip level (MTT's folder split, FMA's and
MusicNet's train/test, MusicCaps' eval flag), and every pair inherits its clip's split. That
only holds if no clip appears under two splits, no pair disagrees with its clip, and no
recording (same source id, or same audio bytes under two ids) is cut into windows that land
in different splits. This module checks exactly that on the published rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict


class LeakageViolation(BaseModel):
    """One way the splits leak, with the ids involved."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    #: clip_in_two_splits, recording_in_two_splits, audio_in_two_splits, pair_split_mismatch,
    #: pair_without_clip
    kind: str
    item: str
    splits: list[str]
    detail: str = ""


def find_leakage(
    clips: Iterable[tuple[str, str, str, str | None]],
    pairs: Iterable[tuple[str, str, str]],
) -> list[LeakageViolation]:
    """Check clips and pairs for split leakage.

    Parameters
    ----------
    clips
        ``(clip_id, split, recording, audio_sha256)`` per clip; ``recording`` is
        ``source/source_id`` (the windows of one recording share it).
    pairs
        ``(qa_id, clip_id, split)`` per QA pair, the split the pair was generated under.

    Returns
    -------
    list[LeakageViolation]
        Sorted by kind and item; empty when the splits are clean.
    """
    clip_splits: dict[str, set[str]] = defaultdict(set)
    by_recording: dict[str, set[str]] = defaultdict(set)
    by_audio: dict[str, set[str]] = defaultdict(set)
    for clip_id, split, recording, sha in clips:
        clip_splits[clip_id].add(split)
        by_recording[recording].add(split)
        if sha:
            by_audio[sha].add(split)
    out = [LeakageViolation(kind="clip_in_two_splits", item=c, splits=sorted(s))
           for c, s in clip_splits.items() if len(s) > 1]
    out += [LeakageViolation(kind="recording_in_two_splits", item=r, splits=sorted(s))
            for r, s in by_recording.items() if len(s) > 1]
    out += [LeakageViolation(kind="audio_in_two_splits", item=a[:16], splits=sorted(s),
                             detail=f"audio sha256 {a}")
            for a, s in by_audio.items() if len(s) > 1]
    for qa_id, clip_id, split in pairs:
        known = clip_splits.get(clip_id)
        if known is None:
            out.append(LeakageViolation(kind="pair_without_clip", item=qa_id, splits=[split],
                                        detail=f"clip {clip_id} is not in the clip manifest"))
        elif split not in known:
            out.append(LeakageViolation(kind="pair_split_mismatch", item=qa_id,
                                        splits=sorted({split, *known}),
                                        detail=f"pair says {split}, clip {clip_id} is in "
                                               f"{'/'.join(sorted(known))}"))
    return sorted(out, key=lambda v: (v.kind, v.item))
