"""The longest JSON a schema admits, so a completion budget can make truncation impossible.

Constrained decoding closes every string at its ``maxLength`` and every array at its
``maxItems``, so a schema with both bounds everywhere admits outputs of bounded length. With
``max_tokens`` at least that many characters (a token carries at least one character of
this grammar: strings under ``maxLength`` admit no escapes and no control characters), a
completion can never be cut off by the budget, only by the model choosing to stop. A budget
below the bound trades truncations (retries, wasted tokens) for nothing: the model only
spends what it writes.
"""

from __future__ import annotations

import json
from typing import Any

#: Longest JSON number we count for an integer / number without bounds (``-1.2345e+300``…).
NUMBER_CHARS = 24
#: Separators as the grammars write them: ``", "`` between items, ``": "`` after keys.
ITEM_SEP = 2
KEY_SEP = 2


def max_json_chars(schema: dict[str, Any]) -> int | None:
    """Upper bound on the length of any JSON text valid under ``schema`` (None: unbounded).

    Counts compact JSON with one space after ``,`` and ``:`` (what xgrammar and llama.cpp
    generate without free whitespace). Unsupported keywords (``anyOf`` of unbounded parts,
    ``additionalProperties`` other than false, patterns) make the bound None rather than a guess.
    """
    return _bound(schema, schema.get("$defs", {}))


def _bound(node: dict[str, Any], defs: dict[str, Any]) -> int | None:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return _bound(defs[name], defs) if name in defs else None
    if "enum" in node:
        return max(len(json.dumps(v)) for v in node["enum"])
    if "const" in node:
        return len(json.dumps(node["const"]))
    for key in ("anyOf", "oneOf"):
        if key in node:
            parts = [_bound(p, defs) for p in node[key]]
            return None if any(p is None for p in parts) else max(parts)  # type: ignore[type-var]
    kind = node.get("type")
    if kind == "string":
        n = node.get("maxLength")
        return None if n is None or "pattern" in node or "format" in node else n + 2
    if kind in ("integer", "number"):
        return NUMBER_CHARS
    if kind == "boolean":
        return 5
    if kind == "null":
        return 4
    if kind == "array":
        n, item = node.get("maxItems"), _bound(node.get("items", {}), defs)
        if n is None or item is None:
            return None
        return 2 + n * item + max(n - 1, 0) * ITEM_SEP
    if kind == "object":
        if node.get("additionalProperties", True) is not False and "properties" not in node:
            return None
        props = node.get("properties", {})
        total = 2 + max(len(props) - 1, 0) * ITEM_SEP
        for name, sub in props.items():
            b = _bound(sub, defs)
            if b is None:
                return None
            total += len(json.dumps(name)) + KEY_SEP + b
        return total
    return None
