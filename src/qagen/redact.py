"""Keep secrets out of logs at every level.

Why a filter on the handler and not care at each call site: at ``-v`` third-party libraries
(httpx, httpcore, huggingface_hub) log request headers and URLs themselves, and an
``Authorization: Bearer …`` header or an ``hf_…`` token must not reach a terminal, a CI log
or a Prefect run log.
"""

from __future__ import annotations

import logging
import os
import re

#: Environment variables whose values are secrets wherever they appear.
SECRET_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "OPENAI_API_KEY", "QAGEN_API_KEY")
#: Shapes of secrets: bearer/basic credentials, Hugging Face and OpenAI-style keys.
_PATTERNS = (
    re.compile(r"(?i)(authorization['\"]?\s*[:=,]\s*['\"]?(?:bearer|basic|token)\s+)[^\s'\",)]+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"()\bhf_[A-Za-z0-9]{16,}"),
    re.compile(r"()\bsk-[A-Za-z0-9_-]{16,}"),
    re.compile(r"(?i)((?:api[_-]?key|token|password)['\"]?\s*[:=]\s*['\"]?)[^\s'\",&)]{6,}"),
)
MASK = "***"


def redact(text: str, *, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with every given secret value and secret-shaped string masked."""
    for value in secrets:
        if value:
            text = text.replace(value, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def env_secrets(extra_env: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The current values of the secret environment variables (read at use, never stored)."""
    # Shorter values ("1", "yes") would mask ordinary words: they are not secrets.
    return tuple(v for name in (*SECRET_ENV, *extra_env)
                 if (v := os.environ.get(name)) and len(v) >= 6)


class RedactingFilter(logging.Filter):
    """A handler filter that masks secrets in the formatted message (and traceback text)."""

    def __init__(self, extra_env: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.extra_env = extra_env

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = env_secrets(self.extra_env)
        message = record.getMessage()
        clean = redact(message, secrets=secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets=secrets)
        return True


def install(handler: logging.Handler, *, extra_env: tuple[str, ...] = ()) -> logging.Handler:
    """Add the redacting filter to ``handler`` (idempotent) and return it."""
    if not any(isinstance(f, RedactingFilter) for f in handler.filters):
        handler.addFilter(RedactingFilter(extra_env))
    return handler
