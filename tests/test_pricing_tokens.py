from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tryouts.errors import UsageError
from tryouts.pricing import PriceOverride, price
from tryouts.tokens import complete_usage, fallback_count
from tryouts.types import Message, Usage

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def test_known_model_priced_from_genai_prices_as_decimal():
    cost = price("openai", "gpt-4o-mini", Usage(input_tokens=1000, output_tokens=500), NOW)
    assert cost.source == "genai-prices"
    assert isinstance(cost.total, Decimal)
    # $0.15 / 1M input, $0.60 / 1M output
    assert cost.total == Decimal("0.00015") + Decimal("0.0003")


def test_cached_input_is_cheaper():
    full = price("openai", "gpt-4o-mini", Usage(input_tokens=1000, output_tokens=0), NOW)
    cached = price("openai", "gpt-4o-mini", Usage(input_tokens=1000, output_tokens=0, cached_input_tokens=500), NOW)
    assert cached.total < full.total


def test_unknown_price_is_unknown_never_zero():
    assert price("openai", "no-such-model-xyz", Usage(input_tokens=10, output_tokens=10), NOW).total is None
    assert price(None, "anything", Usage(input_tokens=10, output_tokens=10), NOW).total is None


def test_local_models_cost_nothing_and_say_so():
    cost = price(None, "x", Usage(input_tokens=10, output_tokens=10), NOW, local=True)
    assert cost.total == 0 and cost.source == "local"


def test_override_wins_and_parses_both_forms():
    o = PriceOverride.parse("1,2", "m")
    cost = price("openai", "gpt-4o-mini", Usage(input_tokens=1_000_000, output_tokens=500_000), NOW, override=o)
    assert cost.total == Decimal(2) and cost.source == "override"
    o2 = PriceOverride.parse({"input": 1, "output": 2, "cached_input": "0.5"}, "m")
    assert o2.cost(Usage(input_tokens=2_000_000, cached_input_tokens=1_000_000, output_tokens=0)).total == Decimal("1.5")
    with pytest.raises(UsageError, match="USD per million"):
        PriceOverride.parse("cheap", "m")


def test_complete_usage_keeps_provider_usage():
    u = complete_usage(Usage(input_tokens=3, output_tokens=4), [Message(role="user", content="hi")], "abc")
    assert (u.input_tokens, u.output_tokens, u.estimated, u.method) == (3, 4, False, "provider")


def test_complete_usage_fallback_is_marked():
    u = complete_usage(None, [Message(role="user", content="12345678")], "abcdefghij")
    assert u.estimated and u.method == "fallback:chars/4"
    assert u.output_tokens == fallback_count("abcdefghij") == 3
    assert u.input_tokens == 2


def test_complete_usage_with_model_counter():
    u = complete_usage(Usage(input_tokens=7), [], "a b c", model_counter=lambda s: len(s.split()))
    assert (u.input_tokens, u.output_tokens, u.estimated, u.method) == (7, 3, True, "tokenizer:model")


def test_complete_usage_counts_chunks_only_when_told_and_says_so():
    msgs = [Message(role="user", content="12345678")]
    u = complete_usage(None, msgs, "abcdefghij", n_chunks=7)
    assert (u.input_tokens, u.output_tokens, u.estimated, u.method) == (2, 7, True, "chunks+chars/4")
    u = complete_usage(Usage(input_tokens=30), msgs, "abcdefghij", n_chunks=7)
    assert (u.input_tokens, u.output_tokens, u.method) == (30, 7, "chunks")


def test_complete_usage_prefers_the_tokenizer_and_its_template_to_chunks():
    from tryouts.tokens import TokenCounter

    counter = TokenCounter("tok", lambda s: len(s.split()), lambda ms: 10 + sum(len(m["content"].split()) for m in ms))
    u = complete_usage(None, [Message(role="user", content="a b c")], "x y", counter=counter, n_chunks=9)
    assert (u.input_tokens, u.output_tokens, u.estimated, u.method) == (13, 2, True, "tokenizer+template:tok")
    plain = TokenCounter("tok", lambda s: len(s.split()))
    u = complete_usage(None, [Message(role="user", content="a b c")], "x y", counter=plain)
    assert (u.input_tokens, u.output_tokens, u.method) == (3, 2, "tokenizer:tok")


def test_complete_usage_with_an_unloadable_tokenizer_ref_falls_back_without_raising(tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"not a gguf")
    u = complete_usage(None, [Message(role="user", content="12345678")], "abcd", tokenizer_ref=str(bad))
    assert (u.output_tokens, u.method) == (1, "fallback:chars/4")
