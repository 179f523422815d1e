"""JSON with a nesting bound: deep input is refused before parsing, never a RecursionError."""

import json

import pytest

from qagen.jsontext import MAX_DEPTH, JSONTooDeepError, loads, nesting_depth


def test_depth_ignores_brackets_in_strings_and_counts_unclosed_ones() -> None:
    assert nesting_depth('{"a": [1, {"b": "[[[{{{"}]}') == 3
    assert nesting_depth('"\\"[[["') == 0
    assert nesting_depth("[" * 1500) == 1500
    assert nesting_depth("plain text") == 0


def test_deep_json_is_refused_with_a_reason_not_a_crash() -> None:
    with pytest.raises(RecursionError):
        json.loads("[" * 100_000 + "]" * 100_000)  # what the bound protects against
    with pytest.raises(JSONTooDeepError, match="100000 levels deep"):
        loads("[" * 100_000 + "]" * 100_000)
    with pytest.raises(JSONTooDeepError):
        loads("{" * 1500)
    nested = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert loads(nested) is not None
    with pytest.raises(json.JSONDecodeError):
        loads("{not json")
