"""The only way to turn text found in a dataset into a filesystem path."""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

from qagen.errors import UnsafePathError


def safe_relpath(rel: str) -> str:
    """Normalise a dataset-relative path and refuse any that could escape its root.

    Metadata files are untrusted text: ``../../etc/passwd``, ``/abs``, ``C:\\x`` or a
    NUL byte are refused rather than resolved, so a crafted csv cannot make a later stage
    read (or an export copy) files outside the dataset.

    Returns
    -------
    str
        The path with ``/`` separators and no ``.`` parts, e.g. ``"c/abc.mp3"``.

    Raises
    ------
    UnsafePathError
        If ``rel`` is empty, absolute, has a drive, a NUL byte, or a ``..`` part.
    """
    if not rel or not rel.strip():
        raise UnsafePathError("empty path")
    if "\x00" in rel:
        raise UnsafePathError(f"path contains a NUL byte: {rel!r}")
    win = PureWindowsPath(rel)
    if win.drive or win.root or rel.startswith(("/", "\\")):
        raise UnsafePathError(f"absolute path not allowed: {rel!r}")
    parts = [p for p in PurePosixPath(rel.replace("\\", "/")).parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnsafePathError(f"path escapes the dataset root: {rel!r}")
    if not parts:
        raise UnsafePathError(f"path names no file: {rel!r}")
    return "/".join(parts)


def safe_join(root: Path, rel: str) -> Path:
    """Join ``rel`` (dataset text) under ``root``; symlinks that leave ``root`` are refused too.

    Raises
    ------
    UnsafePathError
        If the path is unsafe as text (see :func:`safe_relpath`) or resolves outside ``root``.
    """
    clean = safe_relpath(rel)
    path = root / clean
    resolved_root = root.resolve()
    resolved = path.resolve()
    if resolved != resolved_root and resolved_root not in resolved.parents:
        raise UnsafePathError(f"path resolves outside the dataset root: {rel!r}")
    return path


def optional_safe_relpath(value: str | None) -> str | None:
    """Option validator for a folder under the dataset root: None stays None (autodetect),
    ``""``/``"."`` mean the root itself, anything else must be a safe relative path.

    Raises
    ------
    ValueError
        For an unsafe path (so Pydantic reports it as a validation error of the option).
    """
    if value is None or value.strip() in ("", "."):
        return None if value is None else ""
    try:
        return safe_relpath(value)
    except UnsafePathError as exc:
        raise ValueError(str(exc)) from exc
