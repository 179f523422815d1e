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
    # One split per key, and a set only where a key has several: the check runs over every
    # clip and pair of a dataset, so it keeps a string per clip, not a set.
    clip_splits: dict[str, str] = {}
    by_recording: dict[str, str] = {}
    by_audio: dict[str, str] = {}
    clashes: dict[str, dict[str, set[str]]] = {"clip": defaultdict(set),
                                               "recording": defaultdict(set),
                                               "audio": defaultdict(set)}

    def note(seen: dict[str, str], kind: str, key: str, split: str) -> None:
        first = seen.setdefault(key, split)
        if first != split:
            clashes[kind][key].update((first, split))

    for clip_id, split, recording, sha in clips:
        note(clip_splits, "clip", clip_id, split)
        note(by_recording, "recording", recording, split)
        if sha:
            note(by_audio, "audio", sha, split)
    del by_recording, by_audio
    out = [LeakageViolation(kind="clip_in_two_splits", item=c, splits=sorted(s))
           for c, s in clashes["clip"].items()]
    out += [LeakageViolation(kind="recording_in_two_splits", item=r, splits=sorted(s))
            for r, s in clashes["recording"].items()]
    out += [LeakageViolation(kind="audio_in_two_splits", item=a[:16], splits=sorted(s),
                             detail=f"audio sha256 {a}")
            for a, s in clashes["audio"].items()]
    for qa_id, clip_id, split in pairs:
        first = clip_splits.get(clip_id)
        known = None if first is None else clashes["clip"].get(clip_id) or {first}
        if known is None:
            out.append(LeakageViolation(kind="pair_without_clip", item=qa_id, splits=[split],
                                        detail=f"clip {clip_id} is not in the clip manifest"))
        elif split not in known:
            out.append(LeakageViolation(kind="pair_split_mismatch", item=qa_id,
                                        splits=sorted({split, *known}),
                                        detail=f"pair says {split}, clip {clip_id} is in "
                                               f"{'/'.join(sorted(known))}"))
    return sorted(out, key=lambda v: (v.kind, v.item))
