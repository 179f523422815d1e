"""Audio file I/O: the only module that reads or writes audio files.

soundfile (libsndfile ≥1.1) decodes and encodes wav, flac, ogg and mp3 without ffmpeg;
soxr resamples. Decoding for analysis lives here too as later stages need it.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import stat
from pathlib import Path

import numpy as np

from qagen.manifest import atomic_path

log = logging.getLogger(__name__)

_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".mp3": ("MP3", None),
            ".ogg": ("OGG", "VORBIS")}


#: Frames decoded per read: a decoder error past the first block keeps what came before.
_BLOCK = 1 << 12


class NotRegularFileError(OSError):
    """A path named like audio that is a FIFO, socket, device or directory."""


def check_regular_file(path: Path) -> None:
    """Refuse anything but a regular file (after symlinks) before opening it.

    Why: opening a FIFO named ``x.wav`` blocks forever, a device can stream without end.

    Raises
    ------
    NotRegularFileError
        Naming what the path is instead.
    FileNotFoundError
        The path does not exist.
    """
    mode = Path(path).stat().st_mode
    if not stat.S_ISREG(mode):
        kind = ("directory" if stat.S_ISDIR(mode) else "FIFO" if stat.S_ISFIFO(mode)
                else "socket" if stat.S_ISSOCK(mode) else "device" if stat.S_ISCHR(mode)
                or stat.S_ISBLK(mode) else "special file")
        raise NotRegularFileError(errno.EINVAL, f"not a regular file but a {kind}", str(path))


def sha256_file(path: Path, *, chunk_bytes: int = 1 << 20) -> str:
    """Content hash of a file: keys caches, so two ids for the same audio compute once."""
    check_regular_file(path)
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
    with atomic_path(path, suffix=suffix) as tmp:
        sf.write(tmp, np.clip(np.asarray(y, dtype=np.float32), -1.0, 1.0), sr,
                 format=fmt, subtype=subtype)


def load_audio(
    path: Path, *, sr: int | None = 44100, start_s: float = 0.0, end_s: float | None = None
) -> tuple[np.ndarray, int]:
    """Decode a window of a file to float32 mono, resampled to ``sr`` (None keeps the file's).

    A truncated file gives the part that decodes and a logged warning, whatever its format:
    libsndfile stops a cut flac with "lost sync" and a cut mp3 short of its declared length;
    both now return the frames read before the cut.

    Raises
    ------
    NotRegularFileError
        The path is a FIFO, socket, device or directory.
    soundfile.LibsndfileError
        On corrupt or unsupported files where nothing decodes (callers record it per clip).
    """
    import soundfile as sf

    check_regular_file(path)
    with sf.SoundFile(str(path)) as f:
        native, declared = f.samplerate, f.frames
        first = round(start_s * native)
        if first:
            f.seek(min(first, f.frames))
        want = None if end_s is None else max(0, round((end_s - start_s) * native))
        blocks, got, cut = [], 0, None
        while want is None or got < want:
            n = _BLOCK if want is None else min(_BLOCK, want - got)
            try:
                block = f.read(frames=n, dtype="float32", always_2d=True)
            except sf.LibsndfileError as exc:
                if not blocks:
                    raise
                cut = str(exc).strip()
                break
            if not len(block):
                break
            blocks.append(block)
            got += len(block)
    y = np.concatenate(blocks) if blocks else np.zeros((0, 1), dtype=np.float32)
    expected = min(want, max(declared - first, 0)) if want is not None else declared - first
    if cut is not None or (declared > 0 and got < expected):
        log.warning("%s: truncated audio, decoded %.2f s of %.2f s (%s)", path, got / native,
                    max(expected, got) / native, cut or "file ends early")
    y = y.mean(axis=1, dtype=np.float32) if y.shape[1] > 1 else y[:, 0]
    if sr is not None and sr != native and len(y):
        import soxr

        y = soxr.resample(y, native, sr).astype(np.float32, copy=False)
        return y, sr
    return y, native
