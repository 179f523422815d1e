"""Audio file I/O: the only module that reads or writes audio files.

soundfile (libsndfile ≥1.1) decodes and encodes wav, flac, ogg and mp3 without ffmpeg;
soxr resamples. Decoding for analysis lives here too as later stages need it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".mp3": ("MP3", None),
            ".ogg": ("OGG", "VORBIS")}


def sha256_file(path: Path, *, chunk_bytes: int = 1 << 20) -> str:
    """Content hash of a file: keys caches, so two ids for the same audio compute once."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk_bytes):
            h.update(block)
    return h.hexdigest()


def write_audio(path: Path, y: np.ndarray, *, sr: int) -> None:
    """Write mono float audio atomically; the format follows the suffix (wav/flac/mp3/ogg).

    Raises
    ------
    ValueError
        For an unsupported suffix.
    """
    import soundfile as sf

    suffix = path.suffix.lower()
    if suffix not in _FORMATS:
        raise ValueError(f"cannot write audio as {suffix!r}; use one of {sorted(_FORMATS)}")
    fmt, subtype = _FORMATS[suffix]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=suffix)
    os.close(fd)
    try:
        sf.write(tmp, np.clip(np.asarray(y, dtype=np.float32), -1.0, 1.0), sr,
                 format=fmt, subtype=subtype)
        Path(tmp).replace(path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def load_audio(
    path: Path, *, sr: int | None = 44100, start_s: float = 0.0, end_s: float | None = None
) -> tuple[np.ndarray, int]:
    """Decode a window of a file to float32 mono, resampled to ``sr`` (None keeps the file's).

    Raises
    ------
    soundfile.LibsndfileError
        On corrupt or unsupported files (callers record it per clip).
    """
    import soundfile as sf

    with sf.SoundFile(str(path)) as f:
        native = f.samplerate
        first = round(start_s * native)
        if first:
            f.seek(min(first, f.frames))
        frames = -1 if end_s is None else max(0, round((end_s - start_s) * native))
        y = f.read(frames=frames, dtype="float32", always_2d=True)
    y = y.mean(axis=1, dtype=np.float32) if y.shape[1] > 1 else y[:, 0]
    if sr is not None and sr != native and len(y):
        import soxr

        y = soxr.resample(y, native, sr).astype(np.float32, copy=False)
        return y, sr
    return y, native
