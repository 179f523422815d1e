"""Audio decoding faults: truncated files give their decodable part and a warning in every
format; special files named like audio are refused, never opened."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from qagen.audio import NotRegularFileError, load_audio, sha256_file, write_audio

SR = 16000


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3"])
def test_a_truncated_file_decodes_its_first_part_with_a_warning(
        suffix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    t = np.arange(SR * 4) / SR
    full = tmp_path / f"full{suffix}"
    write_audio(full, 0.3 * np.sin(2 * np.pi * 440 * t), sr=SR)
    cut = tmp_path / f"cut{suffix}"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="qagen.audio"):
        y, sr = load_audio(cut, sr=None)
    assert sr == SR
    assert 0.8 * SR < len(y) < 3.2 * SR  # about half of the 4 s, not nothing, not all
    assert np.abs(y).max() > 0.1
    if suffix != ".wav":  # libsndfile trims a cut wav's header itself, silently
        assert "truncated audio" in caplog.text


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_named_like_audio_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "song.wav"
    os.mkfifo(fifo)
    errors: list[BaseException] = []

    def attempt() -> None:
        for fn in (lambda: load_audio(fifo), lambda: sha256_file(fifo)):
            try:
                fn()
            except BaseException as exc:  # collected for the assertion below
                errors.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "opening the FIFO blocked"
    assert len(errors) == 2 and all(isinstance(e, NotRegularFileError) for e in errors)
    assert "FIFO" in str(errors[0])


def test_a_folder_named_like_audio_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.flac").mkdir()
    with pytest.raises(NotRegularFileError, match="directory"):
        load_audio(tmp_path / "x.flac")
