"""The embed stage end to end on a small audio folder: outputs, cache, resume, refusals."""

import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from qagen.audio import load_audio
from qagen.embed import families as embed_families
from qagen.embed import stage as embed_stage
from qagen.embed.config import TINY_ENCODER, EmbedConfig
from qagen.embed.encoder import load_encoder, resolve_encoder
from qagen.embed.stage import embed
from qagen.embedding_store import EmbeddingPaths, EmbeddingStore
from qagen.engine import StageReport
from qagen.errors import ConfigError
from qagen.ingest import ingest
from qagen.manifest import iter_manifest, read_records
from qagen.records import Clip, Rejection
from qagen.workdir import WorkDir


def ingested(folder: Path, work_dir: Path, *, shard_size: int = 3) -> WorkDir:
    """Shards of 3 in file-name order: [a, b_copy, c], [d, e_corrupt, f_empty], [g_tiny]."""
    work = WorkDir(work_dir)
    ingest("audiofolder", folder, work=work, shard_size=shard_size)
    return work


def run(work: WorkDir, home: Path, **kw: object) -> StageReport:
    return embed(work, cache_root=home, strict=True, **kw)  # type: ignore[arg-type]


def clip_ids(work: WorkDir) -> dict[str, str]:
    """Audio file name → clip id."""
    clips = iter_manifest(work.manifest_shards("clips").values(), Clip)
    return {Path(c.audio_path).name: c.clip_id for c in clips}


def snapshot(work: WorkDir) -> dict[tuple[str, str], bytes]:
    """Every clip's stored arrays, by (clip id, kind), as bytes."""
    store = EmbeddingStore(work)
    return {(cid, kind): np.asarray(store.load(cid, kind)).tobytes()
            for kind in ("layers", "frames") for cid in store.clip_ids(kind)}


def loaded(store: EmbeddingStore, clip_id: str, kind: str = "layers") -> np.ndarray:
    arr = store.load(clip_id, kind)
    assert arr is not None, f"no {kind} for {clip_id}"
    return arr


def test_outputs_rejections_and_shared_blocks(audio_folder: Path, tmp_path: Path,
                                              tiny_home: Path) -> None:
    work = ingested(audio_folder, tmp_path / "w")
    report = run(work, tiny_home)
    assert (report.shards, report.items_in, report.items_out) == (3, 7, 4)
    assert report.rejected == {"decode_error": 1, "empty": 1, "too_short": 1}
    assert report.counts == {"cache_hit": 1, "computed": 3}  # b_copy = a_good's bytes
    ids = clip_ids(work)
    store = EmbeddingStore(work)
    assert sorted(store.clip_ids()) == sorted(ids[n] for n in ("a_good.wav", "b_copy.wav",
                                                              "c_long.flac", "d_mp3.mp3"))
    for name in ("a_good.wav", "c_long.flac", "d_mp3.mp3"):
        layers, frames = loaded(store, ids[name]), loaded(store, ids[name], "frames")
        row = store.row(ids[name], "frames")
        assert isinstance(layers, np.memmap) and layers.dtype == np.float16
        assert layers.shape == (5, 64) and np.isfinite(layers).all()
        assert frames.shape == (math.ceil(row.seconds * 10 - 1e-9), 64)
        assert frames.dtype == np.float16 and not layers.flags.writeable
        assert row.random_init and row.encoder == TINY_ENCODER and row.frame_rate_hz == 10.0
    assert store.row(ids["c_long.flac"]).seconds == pytest.approx(6.3, abs=1e-3)
    assert loaded(store, ids["a_good.wav"], "frames").shape[0] == 20
    # The copy shares the original's block: same file, same rows.
    a, b = store.row(ids["a_good.wav"]), store.row(ids["b_copy.wav"])
    assert (a.file, a.offset, a.audio_sha256) == (b.file, b.offset, b.audio_sha256)
    assert a.shape == [5, 64] and a.layer == "all" and a.frame_rate_hz is None
    index = pq.read_table(EmbeddingPaths(work).index).to_pylist()
    assert len(index) == 8 and len({(r["clip_id"], r["kind"]) for r in index}) == 8
    shard2 = list(work.manifest_shards("clips"))[1]
    rejected = {r.item_id: r for r in read_records(work.rejects_shard("embed", shard2),
                                                     Rejection)}
    assert rejected[ids["e_corrupt.mp3"]].reason == "decode_error"
    assert "e_corrupt.mp3" in rejected[ids["e_corrupt.mp3"]].detail
    assert rejected[ids["f_empty.wav"]].reason == "empty"
    (tiny,) = read_records(work.rejects_shard("embed", list(work.manifest_shards("clips"))[2]),
                           Rejection)
    assert tiny.reason == "too_short" and "needs 400" in tiny.detail


def test_windows_and_batches_reassemble_the_whole_clip(audio_folder: Path, tmp_path: Path,
                                                       tiny_home: Path) -> None:
    """One window per clip equals a bare forward; batch size does not change results."""
    work = ingested(audio_folder, tmp_path / "w")
    run(work, tiny_home, config=EmbedConfig(chunk_s=10.0, frame_rate_hz=None), cache=False)
    cid = clip_ids(work)["c_long.flac"]
    enc = load_encoder(resolve_encoder(TINY_ENCODER, cache_root=tiny_home), sr=24000,
                       device="cpu")
    y, _ = load_audio(audio_folder / "c_long.flac", sr=24000)
    sums, _ = enc.forward([y], frame_layer=None)
    n_frames = int(enc.model._get_feat_extract_output_lengths(len(y)))
    stored = loaded(EmbeddingStore(work), cid)
    assert np.array_equal(stored, (sums[0] / n_frames).astype(np.float32).astype(np.float16))
    small = [EmbedConfig(chunk_s=1.0, batch_size=b) for b in (1, 8)]
    got = []
    for i, cfg in enumerate(small):
        w = ingested(audio_folder, tmp_path / f"b{i}")
        run(w, tiny_home, config=cfg, cache=False, shard_keys=list(w.manifest_shards("clips"))[:1])
        got.append(loaded(EmbeddingStore(w), cid, "frames").astype(np.float32))
    assert np.allclose(got[0], got[1], atol=2e-3)


def test_two_runs_write_identical_bytes(audio_folder: Path, tmp_path: Path,
                                        tiny_home: Path) -> None:
    works = [ingested(audio_folder, tmp_path / f"w{i}") for i in range(2)]
    for w in works:
        run(w, tiny_home, cache=False)
    paths = [EmbeddingPaths(w) for w in works]
    names = [sorted(p.name for p in ep.root.glob("*.npy")) for ep in paths]
    assert names[0] == names[1] and len(names[0]) == 6
    for name in names[0]:
        assert (paths[0].root / name).read_bytes() == (paths[1].root / name).read_bytes()
    assert pq.read_table(paths[0].index).equals(pq.read_table(paths[1].index))


def test_rerun_is_a_no_op_and_a_lost_marker_redoes_one_shard(
    audio_folder: Path, tmp_path: Path, tiny_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = ingested(audio_folder, tmp_path / "w")
    run(work, tiny_home)
    before = snapshot(work)
    index = EmbeddingPaths(work).index
    mtime = index.stat().st_mtime_ns

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("the encoder was loaded")

    monkeypatch.setattr(embed_families, "load_encoder", refuse)
    again = run(work, tiny_home)
    assert (again.shards, again.shards_reused) == (3, 3)
    assert index.stat().st_mtime_ns == mtime  # nothing rewritten
    monkeypatch.undo()
    first = next(iter(work.manifest_shards("clips")))
    work.marker("embed", first).unlink()
    redo = run(work, tiny_home)
    assert (redo.shards_reused, redo.items_out) == (2, 4)
    assert redo.counts == {"cache_hit": 3, "computed": 1}  # the redone shard came from cache
    assert snapshot(work) == before
    assert len(list(EmbeddingPaths(work).root.glob("*.npy"))) == 6


def test_a_killed_run_resumes_without_duplicates(
    audio_folder: Path, tmp_path: Path, tiny_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean = ingested(audio_folder, tmp_path / "clean")
    run(clean, tiny_home, cache=False)
    work = ingested(audio_folder, tmp_path / "w")
    real = embed_stage.ClipEmbedder.__call__

    def killed_at_d(self: embed_stage.ClipEmbedder, clip: Clip) -> object:
        if clip.audio_path == "d_mp3.mp3":
            raise KeyboardInterrupt  # the process dies inside shard 2
        return real(self, clip)

    monkeypatch.setattr(embed_stage.ClipEmbedder, "__call__", killed_at_d)
    with pytest.raises(KeyboardInterrupt):
        run(work, tiny_home, cache=False)
    assert len(list(EmbeddingPaths(work).index_parts())) == 1
    monkeypatch.undo()
    report = run(work, tiny_home, cache=False)
    assert (report.shards_reused, report.items_out) == (1, 4)
    assert snapshot(work) == snapshot(clean)
    rows = pq.read_table(EmbeddingPaths(work).index).to_pylist()
    assert len(rows) == len({(r["clip_id"], r["kind"]) for r in rows}) == 8


def test_a_config_change_redoes_and_removes_old_arrays(audio_folder: Path, tmp_path: Path,
                                                       tiny_home: Path) -> None:
    work = ingested(audio_folder, tmp_path / "w")
    run(work, tiny_home)
    report = run(work, tiny_home, config=EmbedConfig(frame_rate_hz=None, batch_size=2))
    assert report.shards_reused == 0
    store = EmbeddingStore(work)
    assert store.clip_ids("frames") == [] and len(store.clip_ids()) == 4
    assert sorted(p.name.split("-")[0] for p in EmbeddingPaths(work).root.glob("*.npy")) == [
        "layers"] * 3
    # Speed settings alone never redo work.
    assert run(work, tiny_home, config=EmbedConfig(frame_rate_hz=None, batch_size=1,
                                                   threads=1)).shards_reused == 3


def test_missing_audio_is_skipped_and_counted(audio_folder: Path, tmp_path: Path,
                                              tiny_home: Path) -> None:
    (audio_folder / "metadata.csv").write_text(
        "file_name,caption\na_good.wav,one\nb_copy.wav,two\nnot_here.wav,three\n")
    work = ingested(audio_folder, tmp_path / "w")
    (audio_folder / "b_copy.wav").unlink()  # vanished after ingest: a rejection, not a crash
    report = run(work, tiny_home)
    assert report.items_in == 3 and report.items_out == 1
    assert report.skipped == {"audio_missing": 1} and report.rejected == {"decode_error": 1}


def test_threads_are_set_for_the_run_and_restored(
    audio_folder: Path, tmp_path: Path, tiny_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    seen: list[int] = []
    real = embed_families.load_encoder

    def spy(*a: object, **k: object) -> object:
        seen.append(torch.get_num_threads())
        return real(*a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(embed_families, "load_encoder", spy)
    work = ingested(audio_folder, tmp_path / "w")
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    run(work, tiny_home, config=EmbedConfig(threads=target))
    assert seen == [target] and torch.get_num_threads() == before


@pytest.mark.parametrize(("cfg", "match"), [
    ({"frame_rate_hz": 100.0}, "exceeds the encoder's 75 frames/s"),
    ({"frame_layer": 5}, "frame_layer=5 is out of range"),
    ({"frame_layer": -6}, "out of range"),
    ({"encoder": "./not/here"}, "neither an existing folder"),
])
def test_bad_settings_stop_before_any_work(audio_folder: Path, tmp_path: Path,
                                           tiny_home: Path, cfg: dict[str, object],
                                           match: str) -> None:
    work = ingested(audio_folder, tmp_path / "w")
    with pytest.raises(ConfigError, match=match):
        run(work, tiny_home, config=EmbedConfig(**cfg))  # type: ignore[arg-type]
    assert not EmbeddingPaths(work).root.exists()


def test_unknown_shards_and_empty_work_dirs_are_refused(audio_folder: Path, tmp_path: Path,
                                                        tiny_home: Path) -> None:
    with pytest.raises(ConfigError, match="no dataset root"):
        work = WorkDir(tmp_path / "empty")
        (work.manifests).mkdir(parents=True)
        (work.manifests / "clips-x-00000.parquet").write_bytes(b"")
        run(work, tiny_home)
    work = ingested(audio_folder, tmp_path / "w")
    with pytest.raises(ConfigError, match="no clip shards"):
        run(work, tiny_home, shard_keys=["audiofolder-00042"])


def test_one_shard_at_a_time_builds_the_same_index(audio_folder: Path, tmp_path: Path,
                                                   tiny_home: Path) -> None:
    """The flow maps one task per shard: each merges what is there."""
    whole = ingested(audio_folder, tmp_path / "whole")
    run(whole, tiny_home)
    work = ingested(audio_folder, tmp_path / "w")
    for key in work.manifest_shards("clips"):
        run(work, tiny_home, shard_keys=[key])
    assert snapshot(work) == snapshot(whole)


def test_store_needs_an_index_and_answers_none_for_unknown_clips(
    audio_folder: Path, tmp_path: Path, tiny_home: Path
) -> None:
    with pytest.raises(FileNotFoundError, match="run `qagen embed` first"):
        EmbeddingStore(WorkDir(tmp_path))
    work = ingested(audio_folder, tmp_path / "w")
    run(work, tiny_home, config=EmbedConfig(frame_rate_hz=None),
        shard_keys=[next(iter(work.manifest_shards("clips")))])
    store = EmbeddingStore(work)
    ids = clip_ids(work)
    assert store.load(ids["a_good.wav"]) is not None and store.encoder_id == TINY_ENCODER
    assert store.load(ids["a_good.wav"], "frames") is None  # not computed
    assert store.load(ids["e_corrupt.mp3"]) is None  # rejected
    with pytest.raises(KeyError, match="no layers embedding"):
        store.row(ids["e_corrupt.mp3"])
    with pytest.raises(ValueError, match="'pixels' is not a valid EmbeddingKind"):
        store.load(ids["a_good.wav"], "pixels")
