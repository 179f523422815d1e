"""Request cache: raw completions keyed by hash(prompt, schema, backend, model, sampling, seed).

Kept apart from parsing on purpose: changing a filter or a grounding rule re-parses cached
outputs without calling the model, and a killed run resumes without regenerating.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qagen.generate.backends import GenResult, SamplingConfig
from qagen.manifest import write_json_atomic


def request_key(
    messages: list[dict[str, str]], schema: dict[str, Any], *, backend: str, model: str,
    sampling: SamplingConfig, seed: int,
) -> str:
    """Content address of one request."""
    payload = json.dumps([messages, schema, backend, model, sampling.model_dump(mode="json"),
                          seed], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class CachedResult:
    """A completion and when it was produced."""

    result: GenResult
    created_at: str


@dataclass(frozen=True)
class RequestCache:
    """A directory of ``<key[:2]>/<key>.json`` files (None root: caching off)."""

    root: Path | None

    def _path(self, key: str) -> Path | None:
        return None if self.root is None else self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> CachedResult | None:
        """The cached completion, or None (errors are never cached)."""
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return CachedResult(result=GenResult.model_validate(data["result"]),
                            created_at=data["created_at"])

    def put(self, result: GenResult, *, created_at: str) -> None:
        """Store a completion (backend errors are not stored: they should be retried)."""
        path = self._path(result.request_id)
        if path is None or result.finish_reason == "error":
            return
        write_json_atomic(path, {"result": result.model_dump(mode="json"),
                                 "created_at": created_at})
