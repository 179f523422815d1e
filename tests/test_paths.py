from pathlib import Path

import pytest

from qagen.errors import UnsafePathError
from qagen.paths import safe_join, safe_relpath


@pytest.mark.parametrize(
    ("text", "expected"),
    [("a/b.mp3", "a/b.mp3"), ("./a//b.wav", "a/b.wav"), ("a\\b.wav", "a/b.wav"),
     ("-0Gj8-vB1q4.wav", "-0Gj8-vB1q4.wav")],
)
def test_safe_relpath_normalises(text: str, expected: str) -> None:
    assert safe_relpath(text) == expected


@pytest.mark.parametrize(
    ("text", "match"),
    [("../etc/passwd", "escapes"), ("a/../../x", "escapes"), ("/etc/passwd", "absolute"),
     ("C:\\x.wav", "absolute"), ("\\\\server\\share", "absolute"), ("", "empty"),
     ("a\x00b", "NUL"), (".", "names no file")],
)
def test_safe_relpath_refuses(text: str, match: str) -> None:
    with pytest.raises(UnsafePathError, match=match):
        safe_relpath(text)


def test_safe_join_refuses_symlink_out_of_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "secret.wav"
    outside.write_bytes(b"x")
    (root / "link.wav").symlink_to(outside)
    assert safe_join(root, "ok.wav") == root / "ok.wav"
    with pytest.raises(UnsafePathError, match="outside"):
        safe_join(root, "link.wav")
