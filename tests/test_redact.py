"""Secrets never reach a log line, at any level, from our code or a library's."""

from __future__ import annotations

import logging

import pytest

from qagen.redact import MASK, install, redact


@pytest.mark.parametrize("text", [
    "send_request_headers.started headers=[(b'Authorization', b'Bearer sk-abcdefghijklmnop1234')]",
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
    "POST https://huggingface.co/api/repos/create token=hf_AbCdEfGhIjKlMnOpQrStUv",
    '{"api_key": "s3cr3t-value-123"}',
])
def test_secret_shapes_are_masked(text: str) -> None:
    clean = redact(text)
    assert MASK in clean
    for secret in ("sk-abcdefghijklmnop1234", "eyJhbGciOiJIUzI1NiJ9", "hf_AbCdEfGhIjKlMnOpQrStUv",
                   "s3cr3t-value-123"):
        assert secret not in clean


def test_environment_secrets_are_masked_in_debug_logs_of_any_library(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "plain-looking-key-42")
    install(caplog.handler)
    logging.getLogger("httpcore.http11").debug("headers %s", {"x-key": "plain-looking-key-42"})
    try:
        raise RuntimeError("server said: plain-looking-key-42 is invalid")
    except RuntimeError:
        logging.getLogger("qagen.x").exception("request failed")
    text = caplog.text
    assert "plain-looking-key-42" not in text
    assert text.count(MASK) >= 2 and "request failed" in text
