"""``qagen review`` and ``serve``: the command exists, binds the loopback only, refuses an
empty work dir before starting."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from qagen.cli import app
from qagen.errors import ConfigError
from qagen.review import serve
from qagen.review.server import HOST
from qagen.workdir import WorkDir


def test_review_command_is_registered() -> None:
    result = CliRunner().invoke(app, ["review", "--help"])
    assert result.exit_code == 0
    assert "--port" in result.output and "--reviewer" in result.output
    assert HOST == "127.0.0.1"


def test_serve_refuses_a_work_dir_without_clips(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no clip manifest"):
        serve(WorkDir(tmp_path), port=1)


def test_serve_binds_loopback(work: WorkDir, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: seen.update(kw))
    serve(work, port=8799, reviewer="me")
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8799
