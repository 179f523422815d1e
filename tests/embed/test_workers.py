"""Clips in flight at once (``workers``, auto = 4 on CUDA): the same arrays as one at a time,
the encoder loaded once, and ``auto`` decided without importing torch on a GPU-less box."""

from __future__ import annotations

from pathlib import Path

import pytest

from qagen.embed import families as embed_families
from qagen.embed.config import TINY_ENCODER, EmbedConfig
from qagen.embed.encoder import resolve_encoder
from qagen.embed.stage import embed, workers_of
from qagen.embedding_store import EmbeddingStore
from qagen.ingest import ingest
from qagen.workdir import WorkDir


def _snapshot(work: WorkDir) -> dict[tuple[str, str], bytes]:
    store = EmbeddingStore(work)
    return {(cid, kind): store.load(cid, kind).tobytes()  # type: ignore[union-attr]
            for kind in ("layers", "frames") for cid in store.clip_ids(kind)}


def test_threads_of_clips_store_the_same_arrays(audio_folder: Path, tmp_path: Path,
                                               tiny_home: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    loads = []
    real = embed_families.load_encoder

    def counted(*args: object, **kwargs: object) -> object:
        loads.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(embed_families, "load_encoder", counted)
    snaps = []
    for workers in (1, 3):
        work = WorkDir(tmp_path / f"w{workers}")
        ingest("audiofolder", audio_folder, work=work, shard_size=7)  # one shard: 4 clips
        report = embed(work, config=EmbedConfig(device="cpu", workers=workers, threads=1),
                       cache=False, cache_root=tiny_home, strict=True)
        assert (report.items_out, report.rejected) == (
            4, {"decode_error": 1, "empty": 1, "too_short": 1})
        snaps.append(_snapshot(work))
    assert len(snaps[0]) == 8 and snaps[0] == snaps[1]
    assert len(loads) == 2  # once per run, though three clips asked for it together


def test_auto_workers_follow_the_device(tiny_home: Path) -> None:
    tiny = resolve_encoder(TINY_ENCODER, cache_root=tiny_home)
    assert workers_of(tiny, EmbedConfig(device="cpu")) == 1
    assert workers_of(tiny, EmbedConfig(device="cpu", workers=3)) == 3
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        assert workers_of(tiny, EmbedConfig(device="cuda")) == 4


def test_auto_device_on_a_gpu_less_machine_needs_no_torch(
    monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from qagen import devices

    monkeypatch.setattr(devices, "GPU_DRIVER_NODES", ("/nonexistent/nvidia",))
    monkeypatch.setitem(sys.modules, "torch", None)  # importing it would fail
    assert devices.resolve_device("auto") == "cpu"
    assert devices.resolve_dtype("auto", device="cpu") == "float32"
