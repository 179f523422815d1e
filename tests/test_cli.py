import json
from pathlib import Path

import pytest

from qagen.cli import main, parse_option_pairs
from qagen.errors import ConfigError
from qagen.records.demo import DemoClip
from qagen.sources import musiccaps


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr("sys.argv", ["qagen", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_option_pairs_are_typed() -> None:
    assert parse_option_pairs(["cropped=false", "crop_s=30", "audio_pattern={ytid}.wav"]) == {
        "cropped": False, "crop_s": 30, "audio_pattern": "{ytid}.wav"}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_option_pairs(["nothing"])


def test_ingest_command_writes_manifest_and_summary(
    tmp_path: Path, toy_clips: list[DemoClip], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    musiccaps.write_native(tmp_path / "mc", toy_clips)
    rc = run_cli(monkeypatch, "ingest", "musiccaps", str(tmp_path / "mc"), "--work",
                 str(tmp_path / "w"), "--hash-audio")
    assert rc == 0
    out = capsys.readouterr().out
    assert "clips" in out and "audio ok" in out
    assert list((tmp_path / "w" / "manifests").glob("clips-musiccaps-*.parquet"))
    report = json.loads((tmp_path / "w" / "reports" / "ingest-musiccaps.json").read_text())
    assert report["items_out"] == 3 and report["counts"]["audio:ok"] == 3

    assert run_cli(monkeypatch, "manifest", "--work", str(tmp_path / "w")) == 0
    assert "3 clips in 1 shards" in " ".join(capsys.readouterr().out.split())


def test_errors_exit_2_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(monkeypatch, "ingest", "nope", str(tmp_path)) == 2
    assert "known sources" in capsys.readouterr().err
    assert run_cli(monkeypatch, "ingest", "musiccaps", str(tmp_path), "--option", "x") == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert run_cli(monkeypatch, "train", "--work", str(tmp_path), "--qa-kinds", "key,bogus") == 2
    err = capsys.readouterr().err
    assert "--qa-kinds" in err and "'bogus'" in err and "Traceback" not in err


def test_schemas_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_cli(monkeypatch, "schemas", "--out", str(tmp_path)) == 0
    from qagen.records import RECORD_MODELS

    assert {p.name for p in tmp_path.iterdir()} == {f"{n}.schema.json" for n in RECORD_MODELS}
    assert {"clip", "clip_features", "qa_record", "qa_rejected", "rejection"} <= set(RECORD_MODELS)


def test_embed_and_publish_commands_on_a_finished_work_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.publish.conftest import make_work

    work = make_work(tmp_path)
    assert run_cli(monkeypatch, "embed", "--work", str(work.root), "--threads", "1",
                   "--frame-rate-hz", "0") == 0
    out = capsys.readouterr().out
    assert "clips embedded" in out and (work.root / "embeddings" / "index.parquet").is_file()
    assert run_cli(monkeypatch, "publish", "--work", str(work.root)) == 0
    out = capsys.readouterr().out
    assert "qa" in out and "leakage findings: 0" in out
    assert (work.root / "publish" / "hf" / "README.md").is_file()
    # Nothing was reviewed: a reviewed-only subset holds no pair, and says why.
    assert run_cli(monkeypatch, "publish", "--work", str(work.root), "--reviewed-only",
                   "--out", str(tmp_path / "reviewed")) == 0
    assert "not_reviewed" in capsys.readouterr().out
    assert "holds only the reviewed pairs" in (tmp_path / "reviewed" / "README.md").read_text()
    # A training run that does not exist is a clear error (exit 2), not a traceback.
    assert run_cli(monkeypatch, "evaluate", "--work", str(work.root), "--run", "nope") == 2
    assert "has not finished" in capsys.readouterr().err
