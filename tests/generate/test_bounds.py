"""The schema length bound that sizes completion budgets."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qagen.generate.bounds import max_json_chars
from qagen.generate.prompts import load_templates


def _compact(value: object) -> str:
    """JSON as the grammars write it: ``", "`` and ``": "`` separators."""
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False)


def test_unbounded_schemas_have_no_bound() -> None:
    assert max_json_chars({"type": "string"}) is None
    assert max_json_chars({"type": "array", "items": {"type": "integer"}}) is None
    assert max_json_chars({"type": "object"}) is None
    assert max_json_chars({"type": "string", "maxLength": 5, "pattern": "a+"}) is None


def test_bound_is_tight_for_a_longest_value() -> None:
    schema = {"type": "object", "properties": {
        "tags": {"type": "array", "maxItems": 3, "items": {"type": "string", "maxLength": 4}},
        "kind": {"enum": ["tempo", "key"]}}, "required": ["tags", "kind"]}
    longest = {"tags": ["abcd", "abcd", "abcd"], "kind": "tempo"}
    assert max_json_chars(schema) == len(_compact(longest))


#: What a grammar string under maxLength may hold: no quote, backslash or control character.
_CHARS = st.characters(exclude_characters='"\\', exclude_categories=("Cc", "Cs"))


@settings(max_examples=60, deadline=None)
@given(pairs=st.lists(st.tuples(st.text(_CHARS, min_size=8, max_size=200),
                                st.text(_CHARS, min_size=2, max_size=400),
                                st.sampled_from(["tempo", "mood", "genre", "reasoning"])),
                      min_size=5, max_size=5))
def test_every_valid_open_qa_output_fits_its_template_budget(
    pairs: list[tuple[str, str, str]],
) -> None:
    template = next(t for t in load_templates() if t.meta.id == "musicqa_open")
    text = _compact({"pairs": [{"question": q, "answer": a, "kind": k} for q, a, k in pairs]})
    assert len(text) <= template.output_token_bound()


@pytest.mark.parametrize("template", load_templates(), ids=lambda t: t.meta.id)
def test_every_template_has_a_bounded_budget_within_llamacpp_grammar_limits(template) -> None:
    schema = template.json_schema()
    bound = max_json_chars(schema)
    assert bound is not None and 100 < bound <= template.output_token_bound() <= 8192

    def string_bounds(node: object) -> list[int]:
        if isinstance(node, dict):
            is_bounded = node.get("type") == "string" and "maxLength" in node
            found = [node["maxLength"]] if is_bounded else []
            return found + [b for v in node.values() for b in string_bounds(v)]
        if isinstance(node, list):
            return [b for v in node for b in string_bounds(v)]
        return []

    # Every string is bounded (a judge's output has integers only).
    assert max(string_bounds(schema), default=0) <= 1000
    assert string_bounds(schema) or template.meta.mode == "judge"
