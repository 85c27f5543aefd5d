"""A json-schema assertion's ``pattern``s are bounded in time like ``regex`` checks, and an assertion's YAML from
the command line or the dashboard has no aliases and a bounded depth (review of 2026-12-04)."""

from __future__ import annotations

import pytest

from tryouts.errors import UsageError
from tryouts.scoring import assertions
from tryouts.scoring.assertions import evaluate, from_cli, parse_assertion


def check(schema: dict):
    return parse_assertion({"type": "json-schema", "value": schema}, "asserts[0]")


def test_schema_patterns_still_decide():
    c = check({"type": "object", "properties": {"id": {"type": "string", "pattern": "^[a-z]+$"}},
               "patternProperties": {"^x-": {"type": "integer"}}, "additionalProperties": False})
    assert evaluate(c, text='{"id": "abc", "x-n": 3}')["passed"]
    assert not evaluate(c, text='{"id": "ABC"}')["passed"]
    assert not evaluate(c, text='{"id": "abc", "x-n": "three"}')["passed"]
    assert not evaluate(c, text='{"id": "abc", "other": 1}')["passed"]


@pytest.mark.parametrize("schema, answer", [
    ({"type": "string", "pattern": "^(a+)+$"}, '"' + "a" * 64 + '!"'),
    ({"type": "object", "patternProperties": {"^(a+)+$": {}}}, '{"' + "a" * 64 + '!": 1}'),
    ({"type": "object", "patternProperties": {"^(a+)+$": {}}, "additionalProperties": False}, '{"' + "a" * 64 + '!": 1}'),
    ({"type": "object", "propertyNames": {"pattern": "^(a+)+$"}}, '{"' + "a" * 64 + '!": 1}'),
])
def test_a_pattern_that_backtracks_fails_the_check_at_the_time_limit(monkeypatch, schema, answer):
    monkeypatch.setattr(assertions, "REGEX_TIMEOUT_S", 0.3)
    got = evaluate(check(schema), text=answer)
    assert got["passed"] is False and "took more than 0.3 s" in got["reason"]


def test_assertion_yaml_refuses_aliases_and_deep_nesting():
    bomb = "json-schema:{a: &a [x, x], b: &b [*a, *a], c: &c [*b, *b]}"
    with pytest.raises(UsageError, match="aliases"):
        from_cli(bomb)
    with pytest.raises(UsageError, match="nested more than 64"):
        from_cli("json-schema:" + "[" * 3000 + "]" * 3000)
    assert from_cli("json-schema:{type: object, required: [a]}")["value"] == {"type": "object", "required": ["a"]}


def test_unevaluated_properties_with_pattern_properties_is_refused():
    """jsonschema matches patternProperties with its own re when it evaluates unevaluatedProperties: refused."""
    with pytest.raises(UsageError, match="unevaluatedProperties together with patternProperties"):
        check({"type": "object", "patternProperties": {"^(a+)+$": {}}, "unevaluatedProperties": False})
    assert evaluate(check({"type": "object", "properties": {"a": {}}, "unevaluatedProperties": False}),
                    text='{"a": 1}')["passed"]
