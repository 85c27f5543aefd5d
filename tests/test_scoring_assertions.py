"""Assertions (tryouts.scoring.assertions) and reference metrics (tryouts.scoring.reference)."""

from __future__ import annotations

import pytest

from tryouts.errors import UsageError
from tryouts.scoring.assertions import TYPES, Check, evaluate, parse_assertion, score_case
from tryouts.scoring.reference import (
    REFERENCE_METRICS,
    bleu,
    chrf,
    edit_distance,
    edit_similarity,
    exact_match,
    rouge,
    token_f1,
)

W = "cases[2].assert[0]"


def run(spec: dict, text: str = "", **kw) -> dict:
    return evaluate(parse_assertion(spec, W), text=text, **kw)


# --- every type passes and fails -------------------------------------------------------------------------

PASS_FAIL = [
    ({"type": "equals", "value": "Paris"}, "  Paris\n", "Paris, France"),
    ({"type": "contains", "value": "pretrained"}, "a pretrained model", "a Pretrained model"),
    ({"type": "contains", "value": ["a", "b"]}, "a and b", "a only"),
    ({"type": "contains", "value": ["x", "b"], "mode": "any"}, "b here", "neither"),
    ({"type": "icontains", "value": "PRETRAINED"}, "a Pretrained model", "a trained model"),
    ({"type": "icontains", "value": ["FOO", "bar"], "mode": "all"}, "foo BAR", "foo"),
    ({"type": "icontains", "value": ["FOO", "bar"], "mode": "any"}, "xBaRx", "baz"),
    ({"type": "regex", "value": r"\d{4}"}, "in 1999 it", "in '99 it"),
    ({"type": "starts-with", "value": "Yes"}, "\n Yes, it is", "No. Yes"),
    ({"type": "is-json"}, '{"a": 1}', "{a: 1}"),
    ({"type": "is-json"}, '```json\n[1, 2]\n```', "```json\n[1, 2\n```"),
    ({"type": "json-schema", "value": {"type": "object", "required": ["answer"]}}, '{"answer": 4}', '{"x": 4}'),
    ({"type": "length", "min": 2, "max": 5}, "abc", "abcdef"),
    ({"type": "length", "min": 3}, "abc", "ab"),
    ({"type": "length", "max": 3}, "", "abcd"),
]


@pytest.mark.parametrize(("spec", "good", "bad"), PASS_FAIL)
def test_each_type_passes_and_fails(spec, good, bad):
    ok = run(spec, good)
    assert ok["passed"] is True and ok["score"] == 1.0, ok
    assert ok["type"] == spec["type"] and ok["weight"] == 1.0 and ok["reason"]
    ko = run(spec, bad)
    assert ko["passed"] is False and ko["score"] == 0.0, ko
    assert ko["reason"]


def test_every_type_is_covered():
    covered = {s["type"] for s, _, _ in PASS_FAIL} | {"latency-ms", "cost-usd"}
    assert covered == set(TYPES)


def test_json_schema_reason_names_the_error():
    r = run({"type": "json-schema", "value": {"type": "object", "properties": {"n": {"type": "integer"}}}},
            '{"n": "four"}')
    assert not r["passed"] and "'n'" in r["reason"] and "integer" in r["reason"]
    assert "is not JSON" in run({"type": "json-schema", "value": {}}, "nope")["reason"]


def test_latency():
    spec = {"type": "latency-ms", "max": 1000}
    assert run(spec, e2e_ms=999.0)["passed"]
    assert run(spec, e2e_ms=1000.0)["passed"]
    assert not run(spec, e2e_ms=1000.5)["passed"]
    missing = run(spec)
    assert not missing["passed"] and "not measured" in missing["reason"]
    assert run({"type": "latency-ms", "value": 10}, e2e_ms=5)["passed"]  # 'value' is accepted for 'max'


def test_cost():
    spec = {"type": "cost-usd", "max": 0.01}
    assert run(spec, cost_usd=0.005)["passed"]
    assert run(spec, cost_usd=0.0)["passed"]
    assert not run(spec, cost_usd=0.02)["passed"]
    unknown = run(spec, cost_usd=None)
    assert not unknown["passed"] and unknown["score"] == 0.0 and "unknown" in unknown["reason"]


# --- negation ---------------------------------------------------------------------------------------------

def test_not_prefix_negates():
    c = parse_assertion({"type": "not-contains", "value": "sorry"}, W)
    assert c.type == "contains" and c.negate
    assert evaluate(c, text="fine")["passed"]
    bad = evaluate(c, text="I'm sorry")
    assert not bad["passed"] and bad["type"] == "not-contains" and "negated" in bad["reason"]


def test_negate_flag_negates():
    c = parse_assertion({"type": "regex", "value": "(?i)as an ai", "negate": True}, W)
    assert c.negate and c.label == "not-regex"
    assert evaluate(c, text="Sure.")["passed"]
    assert not evaluate(c, text="As an AI, I")["passed"]


@pytest.mark.parametrize("t", ["not-is-json", "not-equals", "not-icontains", "not-starts-with", "not-length"])
def test_other_negations(t):
    spec = {"type": t, "value": "x"} if t not in ("not-is-json", "not-length") else {"type": t}
    if t == "not-length":
        spec["max"] = 3
    assert run(spec, "hello world, long")["passed"]
    assert not run(spec, "x" if t != "not-is-json" else "[1]")["passed"]


def test_negation_does_not_turn_a_missing_measurement_into_a_pass():
    assert not run({"type": "not-cost-usd", "max": 0.01}, cost_usd=None)["passed"]
    assert not run({"type": "latency-ms", "max": 5, "negate": True})["passed"]
    assert run({"type": "not-latency-ms", "max": 5}, e2e_ms=50)["passed"]


# --- weights and score_case -------------------------------------------------------------------------------

def test_weighted_score():
    checks = [
        parse_assertion({"type": "contains", "value": "a", "weight": 3}, W),
        parse_assertion({"type": "contains", "value": "z", "weight": 1}, W),
    ]
    out = score_case(checks, text="abc")
    assert out["passed"] is False
    assert out["score"] == pytest.approx(0.75)
    assert [r["weight"] for r in out["results"]] == [3.0, 1.0]
    assert [r["passed"] for r in out["results"]] == [True, False]


def test_score_case_all_pass_and_passes_result_fields():
    checks = [parse_assertion({"type": "icontains", "value": "ok"}, W),
              parse_assertion({"type": "latency-ms", "max": 100}, W),
              parse_assertion({"type": "cost-usd", "max": 1}, W)]
    out = score_case(checks, text="OK", e2e_ms=50.0, cost_usd=0.5)
    assert out["passed"] and out["score"] == 1.0 and len(out["results"]) == 3


def test_zero_weight_counts_for_passed_not_for_score():
    checks = [parse_assertion({"type": "contains", "value": "a"}, W),
              parse_assertion({"type": "contains", "value": "z", "weight": 0}, W)]
    out = score_case(checks, text="a")
    assert out["score"] == 1.0 and out["passed"] is False
    all_zero = [parse_assertion({"type": "contains", "value": v, "weight": 0}, W) for v in ("a", "z")]
    assert score_case(all_zero, text="a")["score"] == 0.5


def test_no_checks():
    assert score_case([], text="x") == {"passed": True, "score": 1.0, "results": []}


def test_check_built_directly():
    assert evaluate(Check("regex", r"^\d+$"), text="123")["passed"]
    assert evaluate(Check("json-schema", {"type": "array"}), text="[]")["passed"]


# --- validation errors name where and the field -----------------------------------------------------------

@pytest.mark.parametrize(("spec", "field", "words"), [
    ({"type": "containz", "value": "x"}, "type", ["unknown", "containz", "icontains", "json-schema"]),
    ({"value": "x"}, "type", ["missing"]),
    ({"type": "not-bogus"}, "type", ["unknown"]),
    ({"type": "contains"}, "value", ["needs a 'value'"]),
    ({"type": "json-schema"}, "value", ["needs a 'value'"]),
    ({"type": "contains", "value": 3}, "value", ["string"]),
    ({"type": "contains", "value": []}, "value", ["non-empty"]),
    ({"type": "contains", "value": ["a"], "mode": "some"}, "mode", ["any", "all"]),
    ({"type": "regex", "value": "(unclosed"}, "value", ["invalid regular expression", "missing )"]),
    ({"type": "json-schema", "value": {"type": "objekt"}}, "value", ["invalid JSON Schema"]),
    ({"type": "json-schema", "value": "object"}, "value", ["JSON Schema"]),
    ({"type": "length"}, "min", ["min", "max"]),
    ({"type": "length", "min": -1}, "min", [">= 0"]),
    ({"type": "length", "min": 5, "max": 2}, "max", ["below"]),
    ({"type": "length", "max": "ten"}, "max", ["number"]),
    ({"type": "latency-ms"}, "max", ["needs 'max'"]),
    ({"type": "cost-usd", "max": -0.1}, "max", [">= 0"]),
    ({"type": "cost-usd", "max": True}, "max", ["number"]),
    ({"type": "cost-usd", "max": 1, "value": 2}, "max", ["not both"]),
    ({"type": "contains", "value": "x", "weight": -1}, "weight", [">= 0"]),
    ({"type": "contains", "value": "x", "weight": "heavy"}, "weight", ["number"]),
    ({"type": "contains", "value": "x", "negate": "yes"}, "negate", ["true or false"]),
    ({"type": "not-contains", "value": "x", "negate": True}, "negate", ["already negated"]),
    ({"type": "contains", "vale": "x"}, "vale", ["does not take"]),
])
def test_validation_errors(spec, field, words):
    with pytest.raises(UsageError) as info:
        parse_assertion(spec, W)
    msg = str(info.value)
    assert msg.startswith(f"{W}.{field}:"), msg
    for w in words:
        assert w in msg, (w, msg)


def test_not_a_mapping():
    with pytest.raises(UsageError, match=r"cases\[2\]\.assert\[0\]"):
        parse_assertion("contains", W)  # type: ignore[arg-type]


def test_valid_specs_round_trip_fields():
    c = parse_assertion({"type": "icontains", "value": ["a", "b"], "mode": "any", "weight": 2,
                         "description": "mentions a or b"}, W)
    assert (c.type, c.value, c.mode, c.weight, c.negate) == ("icontains", ["a", "b"], "any", 2.0, False)
    assert parse_assertion({"type": "contains", "value": ["a", "b"]}, W).mode == "all"
    assert parse_assertion({"type": "length", "min": 1, "max": 1}, W).max == 1.0


# --- reference metrics ------------------------------------------------------------------------------------

def test_exact_match():
    assert exact_match("Paris", "Paris") == 1.0
    assert exact_match("  the   PARIS!  ", "the paris") == 1.0
    assert exact_match("Paris.", "paris", normalize=False) == 0.0
    assert exact_match("Paris", "London") == 0.0


def test_token_f1():
    assert token_f1("the cat sat", "the cat sat") == 1.0
    assert token_f1("dog", "cat") == 0.0
    # pred 4 tokens, ref 3 tokens, overlap 2 (the, cat): P=1/2, R=2/3, F1=4/7
    assert token_f1("the cat is here", "The cat sat.") == pytest.approx(4 / 7)
    # multiset overlap: 'a a' vs 'a': P=1/2, R=1 -> 2/3
    assert token_f1("a a", "a") == pytest.approx(2 / 3)
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0


def test_bleu_and_chrf_are_0_to_100():
    s = "the quick brown fox jumps over the lazy dog"
    assert bleu(s, s) == pytest.approx(100.0)
    assert chrf(s, s) == pytest.approx(100.0)
    assert bleu("alpha beta gamma delta", "one two three four") == pytest.approx(0.0)
    assert chrf("aaaa", "zzzz") == pytest.approx(0.0)
    mid = bleu("the quick brown fox jumps over a dog", s)
    assert 0.0 < mid < 100.0


def test_rouge():
    s = "the cat sat on the mat"
    assert rouge(s, s) == {"rouge1": pytest.approx(1.0), "rouge2": pytest.approx(1.0), "rougeL": pytest.approx(1.0)}
    assert rouge("alpha beta", "gamma delta") == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    part = rouge("the cat sat", s)
    assert 0.0 < part["rouge1"] < 1.0 and set(part) == {"rouge1", "rouge2", "rougeL"}


def test_edit_distance_and_similarity():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("sitting", "kitten") == 3
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "abc") == 0
    assert edit_similarity("abc", "abc") == 1.0
    assert edit_similarity("abc", "xyz") == 0.0
    assert edit_similarity("kitten", "sitting") == pytest.approx(1 - 3 / 7)
    assert edit_similarity("", "") == 1.0


def test_reference_metrics_registry():
    assert set(REFERENCE_METRICS) == {"exact_match", "token_f1", "bleu", "chrf", "rouge", "edit_distance",
                                      "edit_similarity"}
    for name, fn in REFERENCE_METRICS.items():
        assert fn.__doc__, name
        fn("a b", "a b")
