"""Dataset sources: one module per dataset, discovered by module name.

A source module defines ``NAME``, ``HOMEPAGE``, ``LICENSE``, ``CITATION``, an ``Options``
Pydantic model, ``iter_clips(root, *, options) -> Iterator[Clip | Rejection]`` and
``write_native(out_dir, demo_clips) -> dict[demo name, clip_id]``. Adding a dataset is adding
one file here; the CLI, demo corpus and contract tests find it unaided.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, cast

from pydantic import BaseModel, ValidationError

from qagen.errors import ConfigError
from qagen.records import Clip, Rejection
from qagen.records.demo import DemoClip


class Source(Protocol):
    """What a source module provides (checked structurally by :func:`get_source`)."""

    NAME: str
    HOMEPAGE: str
    LICENSE: str
    CITATION: str
    Options: type[BaseModel]

    def iter_clips(self, root: Path, *, options: Any) -> Iterator[Clip | Rejection]: ...

    def write_native(self, out_dir: Path, demo_clips: Sequence[DemoClip]) -> dict[str, str]: ...


_REQUIRED = ("NAME", "HOMEPAGE", "LICENSE", "CITATION", "Options", "iter_clips", "write_native")


def list_sources() -> list[str]:
    """Names of every source module in this package, sorted."""
    names = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        names.append(info.name)
    return sorted(names)


def get_source(name: str) -> Source:
    """Import the source module ``name``.

    Raises
    ------
    ConfigError
        If no such source exists or the module lacks part of the contract.
    """
    known = list_sources()
    if name not in known:
        raise ConfigError(f"unknown source {name!r}; known sources: {', '.join(known)}")
    module: ModuleType = importlib.import_module(f"{__name__}.{name}")
    missing = [attr for attr in _REQUIRED if not hasattr(module, attr)]
    if missing or name != module.NAME:
        raise ConfigError(f"source module {name!r} breaks the contract: missing {missing}")
    return cast(Source, module)


def parse_options(source: Source, options: Mapping[str, Any] | None) -> BaseModel:
    """Validate user options (CLI ``--option k=v`` or flow parameters) for a source.

    Raises
    ------
    ConfigError
        Naming the bad option and the accepted ones.
    """
    try:
        return source.Options.model_validate(dict(options or {}))
    except ValidationError as exc:
        fields = ", ".join(source.Options.model_fields) or "none"
        raise ConfigError(
            f"bad options for source {source.NAME!r}: {exc.errors()[0]['msg']} "
            f"({exc.errors()[0]['loc']}); accepted options: {fields}"
        ) from exc
