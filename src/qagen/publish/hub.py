"""Push a published dataset folder to the Hugging Face Hub.

The token comes from the argument, ``HF_TOKEN``, or the user's ``hf auth login``
(``huggingface_hub.get_token()``), is passed to each call and is never stored, logged or
shown: any error raised on the way is re-raised with the token replaced by ``***``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from qagen.errors import ConfigError, MissingDependencyError, QagenError
from qagen.redact import redact as mask_secrets

log = logging.getLogger(__name__)

#: Remote folders the local folder owns: remote files there that are not uploaded are deleted,
#: so shards of an earlier, larger publish do not linger on the Hub.
OWNED_PATTERNS = ["data/**", "exports/**", "assets/**"]


class PushError(QagenError):
    """The Hub refused or failed an upload (the message never holds the token)."""


class PushReport(BaseModel):
    """What was pushed where."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    repo_id: str
    repo_type: str = "dataset"
    private: bool
    revision: str | None
    commit_message: str
    files: int
    repo_url: str | None = None
    commit_url: str | None = None


def redact(text: str, token: str | None) -> str:
    """``text`` with ``token`` (and any other secret-shaped string) masked as ``***``."""
    return mask_secrets(text, secrets=(token,) if token else ())


def resolve_token(token: str | None) -> str:
    """The token to use: argument, then ``HF_TOKEN``, then the stored login.

    Raises
    ------
    ConfigError
        When none is available.
    """
    if token:
        return token
    env = os.environ.get("HF_TOKEN")
    if env:
        return env
    try:
        from huggingface_hub import get_token
    except ImportError as exc:
        raise MissingDependencyError("push needs: pip install 'qagen[publish]'") from exc
    stored = get_token()
    if stored:
        return stored
    raise ConfigError("no Hugging Face token: pass token=..., set HF_TOKEN, or run `hf auth login`")


def push(
    folder: Path, *, repo_id: str, private: bool = True, token: str | None = None,
    api: Any = None, revision: str | None = None, commit_message: str | None = None,
) -> PushReport:
    """Create the dataset repo if needed and upload ``folder`` as one commit.

    Parameters
    ----------
    folder
        A folder written by :func:`qagen.publish.publish` (README.md + data/ + …).
    api
        An ``huggingface_hub.HfApi`` (default: a new one); tests pass a stand-in.
    revision
        Branch to commit to (created from main when missing); None = main.

    Raises
    ------
    ConfigError
        No README.md in ``folder`` (not a published folder), or no token.
    PushError
        The Hub call failed; the message is redacted.
    """
    folder = Path(folder)
    if not (folder / "README.md").is_file():
        raise ConfigError(f"{folder} holds no README.md: run publish first")
    tok = resolve_token(token)
    if api is None:
        try:
            from huggingface_hub import HfApi
        except ImportError as exc:
            raise MissingDependencyError("push needs: pip install 'qagen[publish]'") from exc
        api = HfApi()
    message = commit_message or "Publish dataset with qagen"
    files = sum(1 for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    log.info("pushing %d files from %s to dataset %s (private=%s, revision=%s)", files, folder,
             repo_id, private, revision or "main")
    try:
        repo_url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True,
                                   token=tok)
        if revision:
            api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True,
                              token=tok)
        commit = api.upload_folder(
            repo_id=repo_id, folder_path=str(folder), repo_type="dataset", revision=revision,
            commit_message=message, token=tok, delete_patterns=OWNED_PATTERNS,
            ignore_patterns=[".*", "**/.*"],
        )
    except Exception as exc:  # any failure of the Hub client: never leak the token
        raise PushError(redact(f"push to {repo_id} failed: {type(exc).__name__}: {exc}", tok)
                        ) from None
    return PushReport(
        repo_id=repo_id, private=private, revision=revision, commit_message=message,
        files=files, repo_url=redact(str(repo_url), tok) if repo_url is not None else None,
        commit_url=redact(str(getattr(commit, "commit_url", "") or ""), tok) or None,
    )
