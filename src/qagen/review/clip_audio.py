"""The clip window as WAV bytes, read from the dataset root through ``safe_join`` only, and
the byte ranges a browser asks for when it seeks."""

from __future__ import annotations

import io
import re
from collections import OrderedDict
from pathlib import Path

import numpy as np

from qagen.audio import load_audio
from qagen.errors import UnsafePathError
from qagen.paths import safe_join
from qagen.records import AudioStatus, Clip

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class AudioUnavailableError(Exception):
    """The clip has no playable audio (missing, excluded, unknown source root, undecodable)."""


class WindowCache:
    """Decoded clip windows (WAV bytes and samples), the last ``size`` clips kept."""

    def __init__(self, roots: dict[str, Path], *, size: int = 8) -> None:
        self.roots = roots
        self.size = size
        self._items: OrderedDict[str, tuple[bytes, np.ndarray, int]] = OrderedDict()

    def get(self, clip: Clip) -> tuple[bytes, np.ndarray, int]:
        """``(wav bytes, mono samples, sample rate)`` of the clip window.

        Raises
        ------
        UnsafePathError
            The clip's audio path leaves its dataset root.
        AudioUnavailableError
            Nothing to play.
        """
        if clip.clip_id in self._items:
            self._items.move_to_end(clip.clip_id)
            return self._items[clip.clip_id]
        item = self._load(clip)
        self._items[clip.clip_id] = item
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return item

    def _load(self, clip: Clip) -> tuple[bytes, np.ndarray, int]:
        import soundfile as sf

        if clip.audio_status in (AudioStatus.missing, AudioStatus.excluded):
            raise AudioUnavailableError(f"audio of {clip.clip_id} is {clip.audio_status.value}")
        root = self.roots.get(clip.source)
        if root is None:
            raise AudioUnavailableError(f"no dataset root recorded for source {clip.source}")
        path = safe_join(root, clip.audio_path)  # raises UnsafePathError
        try:
            y, sr = load_audio(path, sr=None, start_s=clip.start_s, end_s=clip.end_s)
        except (OSError, RuntimeError, UnsafePathError) as exc:
            raise AudioUnavailableError(f"{clip.audio_path}: {exc}") from exc
        if not len(y):
            raise AudioUnavailableError(f"{clip.audio_path}: the window holds no audio")
        buf = io.BytesIO()
        sf.write(buf, y, sr, format="WAV", subtype="PCM_16")
        return buf.getvalue(), y, sr


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` byte (inclusive) of a ``Range: bytes=a-b`` header; None for no header.

    Raises
    ------
    ValueError
        A malformed or unsatisfiable range (the caller answers 416).
    """
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        raise ValueError(f"unsupported range {header!r} (one bytes=a-b range only)")
    if not m.group(1):  # the last n bytes
        n = int(m.group(2))
        if n == 0:
            raise ValueError("empty suffix range")
        return max(0, size - n), size - 1
    first = int(m.group(1))
    last = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    if first >= size or last < first:
        raise ValueError(f"range {header!r} outside 0-{size - 1}")
    return first, last
