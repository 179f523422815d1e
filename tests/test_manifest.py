from pathlib import Path

import pyarrow.parquet as pq

from qagen.manifest import arrow_schema, iter_manifest, read_records, write_records
from qagen.records import Clip, Rejection


def test_clip_round_trip_through_parquet(tmp_path: Path) -> None:
    clips = [
        Clip(clip_id=Clip.make_id("fma", str(i), 0.0, None), source="fma", source_id=str(i),
             audio_path=f"fma_small/000/{i:06d}.mp3", start_s=0.0, end_s=None if i else 30.0,
             split="test", tags=["a", "b"], attributes={"bit_rate": "256000", "ü": "ß"},
             caption="line one\nline two", title="Tïtle")
        for i in range(5)
    ]
    path = tmp_path / "clips-fma-00000.parquet"
    assert write_records(path, clips, Clip) == 5
    assert read_records(path, Clip) == clips
    schema = pq.read_schema(path)
    assert schema.names == list(Clip.model_fields)
    assert schema.equals(arrow_schema(Clip), check_metadata=False)


def test_empty_shard_and_streaming_many(tmp_path: Path) -> None:
    write_records(tmp_path / "r-a-00000.parquet", [], Rejection)
    assert read_records(tmp_path / "r-a-00000.parquet", Rejection) == []
    rej = [Rejection(stage="ingest", item_id=f"x:{i}", reason="malformed_row", line=i + 1)
           for i in range(3)]
    write_records(tmp_path / "r-a-00001.parquet", rej, Rejection)
    paths = sorted(tmp_path.glob("r-a-*.parquet"))
    assert list(iter_manifest(paths, Rejection)) == rej


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    write_records(tmp_path / "x.parquet", [], Rejection)
    assert [p.name for p in tmp_path.iterdir()] == ["x.parquet"]


def test_written_files_follow_the_umask_not_mkstemp_0600(tmp_path: Path) -> None:
    import os
    import stat

    from qagen.manifest import write_json_atomic

    old = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "a.json", {"x": 1})
        os.umask(0o002)
        write_json_atomic(tmp_path / "b.json", {"x": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.json").stat().st_mode) == 0o664


def test_atomic_path_keeps_the_old_file_when_the_writer_fails(tmp_path: Path) -> None:
    import pytest

    from qagen.manifest import atomic_path

    target = tmp_path / "sub" / "a.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("first")
    with pytest.raises(RuntimeError, match="killed"), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "first"
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"]
    with atomic_path(tmp_path / "clip.flac", suffix=".flac") as tmp:
        assert tmp.suffix == ".flac" and tmp.parent == tmp_path  # soundfile reads the suffix
        tmp.write_bytes(b"x")
    assert (tmp_path / "clip.flac").read_bytes() == b"x"


def test_write_bytes_if_changed_leaves_identical_files_alone(tmp_path: Path) -> None:
    from qagen.manifest import write_bytes_if_changed

    path = tmp_path / "card.md"
    assert write_bytes_if_changed(path, b"v1") is True
    mtime = path.stat().st_mtime_ns
    assert write_bytes_if_changed(path, b"v1") is False
    assert path.stat().st_mtime_ns == mtime
    assert write_bytes_if_changed(path, b"v2") is True and path.read_bytes() == b"v2"
