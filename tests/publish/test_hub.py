"""``push`` against a stand-in for HfApi: the exact calls, the token resolution, redaction."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from qagen.errors import ConfigError
from qagen.publish import hub
from qagen.publish.hub import OWNED_PATTERNS, PushError, push

TOKEN = "hf_SECRETsecretSECRET123"


class FakeApi:
    """Records every call; optionally fails with a message that contains the token."""

    def __init__(self, *, fail_with: str | None = None) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.fail_with = fail_with

    def create_repo(self, *args: Any, **kwargs: Any) -> str:
        self.calls.append(("create_repo", args, kwargs))
        return f"https://huggingface.co/datasets/{args[0]}"

    def create_branch(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("create_branch", args, kwargs))

    def upload_folder(self, **kwargs: Any) -> Any:
        self.calls.append(("upload_folder", (), kwargs))
        if self.fail_with:
            raise RuntimeError(self.fail_with)
        return type("Commit", (), {"commit_url": "https://huggingface.co/c/1"})()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "data" / "qa").mkdir(parents=True)
    (tmp_path / "data" / "qa" / "train-00000-of-00001.parquet").write_bytes(b"x")
    (tmp_path / "README.md").write_text("---\nlicense: other\n---\n")
    return tmp_path


def test_push_makes_the_expected_calls(folder: Path) -> None:
    api = FakeApi()
    report = push(folder, repo_id="me/musicqa", private=True, token=TOKEN, api=api,
                  revision="v1", commit_message="first")
    names = [c[0] for c in api.calls]
    assert names == ["create_repo", "create_branch", "upload_folder"]
    _, args, kw = api.calls[0]
    assert args == ("me/musicqa",) and kw == {"repo_type": "dataset", "private": True,
                                              "exist_ok": True, "token": TOKEN}
    up = api.calls[2][2]
    assert up["folder_path"] == str(folder) and up["repo_type"] == "dataset"
    assert up["revision"] == "v1" and up["commit_message"] == "first" and up["token"] == TOKEN
    assert up["delete_patterns"] == OWNED_PATTERNS
    assert report.files == 2 and report.commit_url == "https://huggingface.co/c/1"
    assert TOKEN not in report.model_dump_json()


def test_token_comes_from_env_then_login(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_fromenv")
    api = FakeApi()
    push(folder, repo_id="me/x", api=api)
    assert api.calls[0][2]["token"] == "hf_fromenv"
    assert [c[0] for c in api.calls] == ["create_repo", "upload_folder"]  # no revision: main
    monkeypatch.delenv("HF_TOKEN")
    pytest.importorskip("huggingface_hub")
    monkeypatch.setattr("huggingface_hub.get_token", lambda: "hf_stored")
    api = FakeApi()
    push(folder, repo_id="me/x", api=api)
    assert api.calls[-1][2]["token"] == "hf_stored"
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(ConfigError, match="no Hugging Face token"):
        push(folder, repo_id="me/x", api=FakeApi())


def test_failure_is_redacted_everywhere(folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    api = FakeApi(fail_with=f"401 Unauthorized for Bearer {TOKEN} (token={TOKEN})")
    with pytest.raises(PushError) as info:
        push(folder, repo_id="me/x", token=TOKEN, api=api)
    message = str(info.value)
    assert "401 Unauthorized" in message and "***" in message and TOKEN not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert TOKEN not in caplog.text and "pushing 2 files" in caplog.text


def test_folder_without_card_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run publish first"):
        push(tmp_path, repo_id="me/x", token=TOKEN, api=FakeApi())


def test_redact() -> None:
    assert hub.redact("a hf_x b hf_x", "hf_x") == "a *** b ***"
    assert hub.redact("nothing", None) == "nothing"
