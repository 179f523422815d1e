"""Errors that stop a run. One bad item never raises: it becomes a ``Rejection``."""


class QagenError(Exception):
    """Base class: the run cannot proceed; the message names the bad value and the fix."""


class ConfigError(QagenError):
    """A configuration value is wrong (unknown source, bad option, unwritable work dir)."""


class SourceFormatError(QagenError):
    """A dataset root does not hold the files its source needs (not a per-row problem)."""


class MissingDependencyError(QagenError):
    """An optional extra is not installed; the message says which ``pip install`` fixes it."""


class BackendError(QagenError):
    """An LLM backend cannot start or serve requests."""


class UnsafePathError(QagenError):
    """A path taken from dataset text escapes the dataset root (``../``, absolute, drive)."""
