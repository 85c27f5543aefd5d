"""Pricing from real usage, through the real providers against the replay server's wire formats.

Each provider is pointed at the replay server through the base-URL override a user sets for a proxy
(``ANTHROPIC_BASE_URL``, ``OPENAI_BASE_URL``, ``BEDROCK_ENDPOINT_URL``, ``DEEPSEEK_BASE_URL``). The expected
figures are computed by hand from the providers' published prices, with the page each comes from.
"""

import json
import socket
from decimal import Decimal

import pytest

from helpers import REQ, ProviderRefs, cli_compare, point_at_dialect
from tryouts.providers.anthropic import parse_usage as anthropic_usage
from tryouts.providers.bedrock import parse_usage as bedrock_usage
from tryouts.providers.openai_compat import parse_usage as openai_usage

M = Decimal(10**6)

#: Claude Haiku 4.5, USD per million tokens: https://docs.anthropic.com/en/docs/about-claude/pricing
#: ("Base Input Tokens $1 / MTok, 5m Cache Writes $1.25, 1h Cache Writes $2, Cache Hits & Refreshes $0.10,
#: Output Tokens $5"; 5-minute writes are 1.25x the base input price, 1-hour writes 2x, cache reads 0.1x)
HAIKU_45 = {"in": Decimal("1"), "w5m": Decimal("1.25"), "w1h": Decimal("2"), "read": Decimal("0.10"), "out": Decimal("5")}

#: GPT-5, USD per million tokens, standard and Flex processing: https://platform.openai.com/docs/pricing
#: (Flex: half the standard price) and https://platform.openai.com/docs/guides/flex-processing
GPT5 = {"in": Decimal("1.25"), "out": Decimal("10")}
GPT5_FLEX = {"in": Decimal("0.625"), "out": Decimal("5")}

#: GPT-5.6 Sol: cache writes at 1.25x the input price (prompt caching on gpt-5.6 and later:
#: https://developers.openai.com/api/docs/guides/prompt-caching; Azure's copy of the rule:
#: https://learn.microsoft.com/azure/ai-foundry/openai/how-to/prompt-caching "On gpt-5.6 and later models, cache
#: writes are billed"); $4 input, $5 cache write, $20 output (genai-prices 0.2.3 has the same)
SOL = {"in": Decimal("4"), "write": Decimal("5"), "out": Decimal("20")}

#: DeepSeek's list price for deepseek-chat / deepseek-reasoner from 2025-09-29 (DeepSeek-V3.2), no night discount
#: (cancelled 2025-09-05): https://api-docs.deepseek.com/quick_start/pricing
DEEPSEEK = {"in": Decimal("0.28"), "read": Decimal("0.028"), "out": Decimal("0.42")}


# ---- Anthropic: 1-hour cache writes ------------------------------------------------------------------------


@pytest.fixture
def anthropic_root(replay_server, monkeypatch):
    point_at_dialect(replay_server, monkeypatch, "anthropic", "ANTHROPIC_BASE_URL", ANTHROPIC_API_KEY="sk-ant-test")
    return replay_server.removesuffix("/v1")


anthropic = ProviderRefs("anthropic")

#: the test request: 1,000 input tokens (200 read from the cache, 300 written to it, 500 fresh), 50 output
REQUEST = "claude-haiku-4-5;prompt_tokens=1000;cached=200;cache_write=300;tokens=50;per_chunk=10"


def test_anthropic_one_hour_cache_writes_are_priced_at_twice_the_input_price(anthropic_root):
    r, _ = anthropic.run(REQUEST + ";cache_write_1h=300")
    assert r.ok, r.error
    u = r.usage
    assert (u.input_tokens, u.cached_input_tokens, u.cache_write_tokens, u.cache_write_1h_tokens) == (1000, 200, 300, 300)
    p = HAIKU_45
    # 500 x $1 + 200 x $0.10 + 300 x $2 + 50 x $5 = $1,370 per million requests = $0.00137
    assert r.cost.total == (500 * p["in"] + 200 * p["read"] + 300 * p["w1h"] + 50 * p["out"]) / M == Decimal("0.00137")
    assert r.cost.source == "genai-prices"
    # before: every write at the 5-minute rate, 500 + 20 + 375 + 250 = $0.001145, 16.4 % under
    five_minute = (500 * p["in"] + 200 * p["read"] + 300 * p["w5m"] + 50 * p["out"]) / M
    assert five_minute == Decimal("0.001145") and round(1 - five_minute / r.cost.total, 3) == Decimal("0.164")


def test_anthropic_mixed_lifetimes_and_five_minute_writes(anthropic_root):
    r, _ = anthropic.run(REQUEST + ";cache_write_1h=100")  # 100 to the 1-hour cache, 200 to the 5-minute one
    assert r.ok, r.error
    assert (r.usage.cache_write_tokens, r.usage.cache_write_1h_tokens) == (300, 100)
    p = HAIKU_45
    assert r.cost.total == (500 * p["in"] + 200 * p["read"] + 200 * p["w5m"] + 100 * p["w1h"] + 50 * p["out"]) / M
    r, _ = anthropic.run(REQUEST)  # no breakdown: Anthropic's default lifetime, 5 minutes
    assert r.usage.cache_write_1h_tokens is None
    assert r.cost.total == Decimal("0.001145")


def test_anthropic_usage_breakdown_on_the_wire(anthropic_root):
    import httpx

    body = {"model": "prompt_tokens=50;cache_write=30;cache_write_1h=10;tokens=1", "max_tokens": 5,
            "messages": [{"role": "user", "content": "hi"}]}
    usage = httpx.post(f"{anthropic_root}/anthropic/v1/messages", json=body).json()["usage"]
    assert usage["cache_creation_input_tokens"] == 30 and usage["input_tokens"] == 20
    assert usage["cache_creation"] == {"ephemeral_5m_input_tokens": 20, "ephemeral_1h_input_tokens": 10}
    bad = httpx.post(f"{anthropic_root}/anthropic/v1/messages",
                     json={**body, "model": "prompt_tokens=50;cache_write=5;cache_write_1h=10"})
    assert bad.status_code == 400 and "cache_write_1h" in bad.json()["error"]["message"]
    u = anthropic_usage({"input_tokens": 20, "cache_creation_input_tokens": 30, "cache_read_input_tokens": 0,
                         "cache_creation": {"ephemeral_5m_input_tokens": 20, "ephemeral_1h_input_tokens": 10},
                         "output_tokens": 1, "service_tier": "standard"})
    assert (u.input_tokens, u.cache_write_tokens, u.cache_write_1h_tokens, u.service_tier) == (50, 30, 10, "standard")


def test_one_hour_writes_with_no_one_hour_price_are_unknown():
    from datetime import UTC, datetime

    from tryouts.pricing import price
    from tryouts.types import Usage

    # genai-prices has no 1-hour write price for this Bedrock model id: never the 5-minute price
    usage = Usage(input_tokens=1000, output_tokens=50, cache_write_tokens=300, cache_write_1h_tokens=300)
    at = datetime(2026, 11, 1, tzinfo=UTC)
    assert price("aws", "regional.anthropic.claude-3-5-haiku-20241022-v1:0", usage, at).total is None
    assert price("aws", "regional.anthropic.claude-3-5-haiku-20241022-v1:0",
                 usage.model_copy(update={"cache_write_1h_tokens": None}), at).total is not None


# ---- Bedrock: the same split, from cacheDetails ------------------------------------------------------------


@pytest.fixture
def bedrock(replay_server, monkeypatch, tmp_path):
    real = socket.getaddrinfo

    def loopback_only(host, *args, **kw):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise OSError(f"test guard: no network beyond 127.0.0.1 ({host})")
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK",
                "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTRYOUTSTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
    return point_at_dialect(replay_server, monkeypatch, "bedrock", "BEDROCK_ENDPOINT_URL")


def test_bedrock_reports_one_hour_writes_in_cache_details_and_they_are_priced(bedrock):
    pytest.importorskip("boto3")
    from datetime import UTC, datetime

    from genai_prices import Usage as GPUsage
    from genai_prices import calc_price

    model = "anthropic.claude-haiku-4-5-20251001-v1:0"
    r, _ = ProviderRefs("bedrock").run(f"{model};prompt_tokens=1000;cached=200;cache_write=300;cache_write_1h=300;"
                                       "tokens=50;per_chunk=10")
    assert r.ok, r.error
    u = r.usage
    assert (u.input_tokens, u.cached_input_tokens, u.cache_write_tokens, u.cache_write_1h_tokens) == (1000, 200, 300, 300)
    # Bedrock's Claude prices (https://aws.amazon.com/bedrock/pricing/), as genai-prices lists them: the 1-hour
    # write price is twice the input price, as on Anthropic's own API
    p = calc_price(GPUsage(input_tokens=1, output_tokens=1), model, provider_id="aws",
                   genai_request_timestamp=datetime.now(UTC)).model_price
    assert p.cache_write_1h_mtok == 2 * p.input_mtok and p.cache_write_mtok == Decimal("1.25") * p.input_mtok
    want = (500 * p.input_mtok + 200 * p.cache_read_mtok + 300 * p.cache_write_1h_mtok + 50 * p.output_mtok) / M
    assert r.cost.source == "genai-prices" and r.cost.total == want
    assert bedrock_usage({"inputTokens": 5, "outputTokens": 1, "cacheWriteInputTokens": 30,
                          "cacheDetails": [{"ttl": "1h", "inputTokens": 10}, {"ttl": "5m", "inputTokens": 20}]}
                         ).cache_write_1h_tokens == 10


# ---- OpenAI: cache writes and service tiers ----------------------------------------------------------------


@pytest.fixture
def openai(replay_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", replay_server)
    return replay_server


openai_refs = ProviderRefs("openai")


def test_openai_cache_writes_are_read_and_priced(openai):
    r, _ = openai_refs.run("gpt-5.6-sol", {"extra_body": {"replay_script": "prompt_tokens=1000;cache_write=400;"
                                                                             "tokens=100;per_chunk=20"}})
    assert r.ok, r.error
    assert (r.usage.input_tokens, r.usage.cache_write_tokens, r.usage.cached_input_tokens) == (1000, 400, 0)
    # 600 x $4 + 400 x $5 + 100 x $20 = $0.0064; ignoring the writes (all input at $4) gave $0.006, 6.25 % under
    assert r.cost.total == (600 * SOL["in"] + 400 * SOL["write"] + 100 * SOL["out"]) / M == Decimal("0.0064")
    assert r.cost.source == "genai-prices"
    u = openai_usage({"input_tokens": 10, "output_tokens": 2, "input_tokens_details": {"cached_tokens": 1,
                                                                                         "cache_write_tokens": 4}})
    assert (u.input_tokens, u.cached_input_tokens, u.cache_write_tokens) == (10, 1, 4)  # the Responses API's names


@pytest.mark.parametrize(("tier", "source", "prices"), [
    (None, "genai-prices", GPT5), ("default", "genai-prices", GPT5), ("auto", "genai-prices", GPT5),
    ("flex", "genai-prices (flex)", GPT5_FLEX),
])
def test_openai_service_tier_is_sent_reported_and_priced(openai, tier, source, prices):
    options = {"service_tier": tier} if tier else {}
    provider = openai_refs.provider("gpt-5", options)
    assert provider.body(REQ).get("service_tier") == tier
    r, _ = openai_refs.run("gpt-5", options)  # the default script: 11 input tokens, 8 output
    assert r.ok, r.error
    assert r.usage.service_tier == ("default" if tier in (None, "auto") else tier)  # as the server reported it
    assert r.cost.source == source
    assert r.cost.total == (11 * prices["in"] + 8 * prices["out"]) / M


def test_a_tier_without_its_own_price_is_unknown_not_the_standard_price(openai):
    # genai-prices lists Flex for gpt-5-nano but no Priority price: unknown, never the standard price
    r, _ = openai_refs.run("gpt-5-nano", {"service_tier": "priority"})
    assert r.ok and r.usage.service_tier == "priority"
    assert (r.cost.total, r.cost.source) == (None, "unknown")
    r, _ = openai_refs.run("gpt-4o-mini", {"service_tier": "flex"})  # no Flex price for gpt-4o-mini either
    assert r.cost.total is None


def test_the_tier_reaches_the_store_and_the_export(openai, tmp_path):
    db = tmp_path / "t.db"
    cli_compare("openai:gpt-5", db, "-o", "service_tier=flex", "--max-tokens", "8")
    from tryouts.store import Store

    record = Store(db).records(Store(db).resolve_run_id("latest"))[0]
    assert record.service_tier == "flex" and record.cost_source == "genai-prices (flex)"
    assert Decimal(record.cost_usd_exact) == (11 * GPT5_FLEX["in"] + 8 * GPT5_FLEX["out"]) / M


def test_the_replay_refuses_a_tier_openai_does_not_have(openai):
    import httpx

    body = {"model": "gpt-5", "service_tier": "cheap", "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(f"{openai}/chat/completions", json=body, headers={"Authorization": "Bearer sk-test"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "service_tier"
    body = {**body, "service_tier": "flex", "stream": False}
    assert httpx.post(f"{openai}/chat/completions", json=body).json()["service_tier"] == "flex"


# ---- DeepSeek: the catalog's newer price wins over genai-prices' stale night discount ----------------------


def test_deepseek_is_priced_at_the_catalogs_current_list_price(replay_server, monkeypatch):
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-test")
    monkeypatch.setenv("DEEPSEEK_BASE_URL", replay_server)
    r, _ = ProviderRefs("deepseek").run("deepseek-chat")  # the default script: 11 input tokens, 8 output
    assert r.ok, r.error
    assert r.cost.source == "catalog (2025-09-29)"
    # 11 x $0.28 + 8 x $0.42 = $6.44 per million requests, whatever the hour (genai-prices 0.2.3 said $11.77 by
    # day, 00:30-16:30 UTC, and $5.885 by night)
    assert r.cost.total == (11 * DEEPSEEK["in"] + 8 * DEEPSEEK["out"]) / M == Decimal("0.00000644")


def test_models_json_says_where_each_price_comes_from(capsys):
    from tryouts.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["models", "--license", "mit", "--format", "json"])
    assert exc.value.code == 0
    rows = {r["id"]: r["price"] for r in json.loads(capsys.readouterr().out)}
    ds = rows["deepseek-r1"]  # the reasoner: deepseek-v3's licence is DeepSeek's own
    assert (ds["source"], ds["as_of"], ds["source_label"]) == ("catalog", "2025-09-29", "catalog, as of 2025-09-29")
    assert (ds["input_per_mtok"], ds["cached_input_per_mtok"], ds["output_per_mtok"]) == ("0.28", "0.028", "0.42")
    with pytest.raises(SystemExit):
        main(["models", "--license", "mit"])
    out = capsys.readouterr().out
    assert "Price from" in out and "catalog 2025-09-29" in out
