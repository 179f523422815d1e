"""JSON from untrusted text (dataset cells, metadata lines, LLM completions) with a depth bound.

Why: ``json.loads`` recurses once per nesting level, so one line of 1,500 unclosed brackets
raises ``RecursionError`` and takes the whole stage down with it. Real data nests a few levels
deep; anything past :data:`MAX_DEPTH` is refused as malformed, with a reason, before parsing.
"""

from __future__ import annotations

import json
from typing import Any

#: Deeper than any dataset or completion we read (MusicCaps, MTT, FMA, audiofolder: ≤ 4).
MAX_DEPTH = 64


class JSONTooDeepError(ValueError):
    """The text nests arrays/objects deeper than the bound."""


def nesting_depth(text: str) -> int:
    """The deepest ``[``/``{`` nesting in ``text``, ignoring brackets inside strings.

    Unclosed brackets count: ``"[[["`` has depth 3.
    """
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(depth - 1, 0)
    return deepest


def loads(text: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` that refuses text nested deeper than ``max_depth``.

    Raises
    ------
    JSONTooDeepError
        The nesting bound is exceeded (checked before parsing, so no RecursionError).
    json.JSONDecodeError
        The text is not JSON.
    """
    depth = nesting_depth(text)
    if depth > max_depth:
        raise JSONTooDeepError(f"JSON nested {depth} levels deep (the limit is {max_depth})")
    return json.loads(text)
