"""Anthropic's Messages API through the real provider, against the replay server's Anthropic dialect.

The provider is pointed at ``http://127.0.0.1:PORT/anthropic`` through ``ANTHROPIC_BASE_URL``, as a user
points it at a proxy. Timing is checked against the server's own clock (perf_counter is CLOCK_MONOTONIC,
shared across processes), within 5 ms, as in test_openai_wire.py.
"""

import asyncio
import uuid
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest

from helpers import (
    REQ,
    ProviderRefs,
    assert_timing_matches_log,
    cli_compare,
    cli_compare_json,
    point_at_dialect,
    server_log,
    sse_events,
)
from tryouts import errors
from tryouts.types import GenParams, Message, ModelSpec, Request

# claude-3-5-haiku, USD per million tokens: input, output, cache read, cache write (genai-prices)
HAIKU = {"in": Decimal("0.8"), "out": Decimal("4"), "read": Decimal("0.08"), "write": Decimal("1")}


@pytest.fixture
def root(replay_server, monkeypatch):
    """The replay server's root URL; the provider is pointed at its /anthropic dialect by environment."""
    point_at_dialect(replay_server, monkeypatch, "anthropic", "ANTHROPIC_BASE_URL", ANTHROPIC_API_KEY="sk-ant-test")
    return replay_server.removesuffix("/v1")


anthropic = ProviderRefs("anthropic")
provider_for, run, raised, stream_events = anthropic.provider, anthropic.run, anthropic.raised, anthropic.events


@dataclass(frozen=True)
class _Cell:
    model_index: int
    spec: ModelSpec
    request: Request
    case_index: int = 0
    repeat_index: int = 0



# ---- the provider ---------------------------------------------------------------------------------


@pytest.mark.timing
def test_text_timing_matches_the_server_log(root):
    rid = uuid.uuid4().hex
    r, deltas = run(f"tokens=10;ttft_ms=150;itl_ms=20;id={rid}")
    assert r.ok, r.error
    assert r.text == "".join(f" w{i}" for i in range(10)) and r.reasoning_text == ""
    assert r.finish_reason == "stop"  # Anthropic's end_turn, in the engine's common vocabulary
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.method) == (11, 10, "provider")
    assert not r.usage.estimated
    # message_start, content_block_start and ping come at once: not content
    assert_timing_matches_log(r, deltas, server_log(root, rid), ttft_ms=150, itl_ms=20, tokens=10)
    assert r.timing.n_chunks == 10


def test_cache_reads_and_writes_are_in_input_and_priced(root):
    # Anthropic: input_tokens 700 + cache_read 200 + cache_creation 100; Tryouts' input includes both
    r, _ = run("claude-3-5-haiku-latest;prompt_tokens=1000;cached=200;cache_write=100;tokens=5;per_chunk=2")
    assert r.ok, r.error
    u = r.usage
    assert (u.input_tokens, u.cached_input_tokens, u.cache_write_tokens, u.output_tokens) == (1000, 200, 100, 5)
    assert r.timing.n_chunks == 3 and r.timing.tpot_ms == pytest.approx((r.timing.e2e_ms - r.timing.ttft_ms) / 4)
    assert r.cost.source == "genai-prices"
    expected = (700 * HAIKU["in"] + 200 * HAIKU["read"] + 100 * HAIKU["write"] + 5 * HAIKU["out"]) / 10**6
    assert r.cost.total == expected


def test_plain_model_name_is_the_default_script_and_is_priced(root):
    r, _ = run("claude-3-5-haiku-latest")
    assert r.ok, r.error
    assert r.model_name == "claude-3-5-haiku-latest" and r.provider == "anthropic"
    assert r.text == "".join(f" w{i}" for i in range(8))
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.cached_input_tokens) == (11, 8, 0)
    assert r.cost.total == (11 * HAIKU["in"] + 8 * HAIKU["out"]) / 10**6
    evs = stream_events("finish=length;tokens=2")
    assert [type(e).__name__ for e in evs] == ["Sent", "UsageReport", "Delta", "Delta", "UsageReport", "Finish"]
    assert evs[-1].reason == "max_tokens"  # as Anthropic says it; the engine normalises it to "length"
    assert evs[1].usage.output_tokens is None and evs[4].usage.output_tokens == 2  # message_start says 1


@pytest.mark.timing
def test_thinking_goes_to_the_reasoning_channel(root):
    rid = uuid.uuid4().hex
    request = Request(messages=[Message(role="user", content="think")], params=GenParams(max_tokens=2048))
    r, deltas = run(f"reasoning=3;tokens=4;ttft_ms=30;itl_ms=30;id={rid}", {"thinking_budget": 1024}, request)
    assert r.ok, r.error
    assert r.reasoning_text == " r0 r1 r2" and r.text == " w0 w1 w2 w3"
    assert [d.channel for d in deltas] == ["reasoning"] * 3 + ["text"] * 4  # the signature is not content
    assert (r.usage.output_tokens, r.usage.reasoning_tokens) == (7, 3)
    log = server_log(root, rid)
    assert abs(r.timing.ttft_ms - (log["first_token_sent_ns"] - log["recv_ns"]) / 1e6) < 5
    assert abs(r.timing.ttfat_ms - (log["first_content_sent_ns"] - log["recv_ns"]) / 1e6) < 5
    assert r.timing.ttfat_ms - r.timing.ttft_ms >= 80  # three thinking deltas 30 ms apart come first


def test_system_message_goes_to_the_top_level_system_field(root):
    request = Request(
        messages=[Message(role="system", content="Be brief."), Message(role="user", content="hi")],
        params=GenParams(max_tokens=None, temperature=0, top_p=0.9, seed=1, stop=["END"]),
    )
    provider = provider_for("claude-3-5-haiku-latest", {"extra_body": {"metadata": {"user_id": "u1"}}})
    body = provider.body(request)
    assert body["system"] == "Be brief."
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["max_tokens"] == 4096 and body["stream"] is True  # Anthropic requires max_tokens
    assert body["temperature"] == 0 and body["top_p"] == 0.9 and body["stop_sequences"] == ["END"]
    assert "seed" not in body and "thinking" not in body and body["metadata"] == {"user_id": "u1"}
    assert provider_for("m", {"max_tokens_default": 100}).body(request)["max_tokens"] == 100
    # the replay refuses a "system" role in messages as Anthropic does, so this passing proves the wire
    r, _ = run("tokens=2", request=request)
    assert r.ok, r.error


def test_thinking_budget_is_checked(root):
    request = Request(messages=REQ.messages, params=GenParams(max_tokens=3000))
    body = provider_for("m", {"thinking_budget": 2000}).body(request)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    r, _ = run("tokens=2", {"thinking_budget": 1024})  # max_tokens 64 leaves no room
    assert r.error_kind == "bad_request" and "--max-tokens above 1024" in r.error
    with pytest.raises(errors.UsageError, match="thinking_budget must be an integer >= 1024"):
        provider_for("m", {"thinking_budget": 500})
    with pytest.raises(errors.UsageError, match="the anthropic provider accepts"):
        provider_for("m", {"tokenizer": "x"})


def test_base_url_option_beats_the_environment(root, monkeypatch):
    assert provider_for("m").url == f"{root}/anthropic/v1/messages"
    assert provider_for("m", {"base_url": "http://proxy:1/v1/"}).url == "http://proxy:1/v1/messages"
    monkeypatch.delenv("ANTHROPIC_BASE_URL")
    assert provider_for("m").url == "https://api.anthropic.com/v1/messages"
    with pytest.raises(errors.UsageError, match="http://"):
        provider_for("m", {"base_url": "ftp://x"})


def test_401_names_the_key_variable(root):
    r, _ = run("status=401")
    assert not r.ok and r.error_kind == "auth"
    assert "ANTHROPIC_API_KEY" in r.error and "invalid x-api-key" in r.error and "authentication_error" in r.error


def test_the_key_is_sent_as_x_api_key(monkeypatch):
    from tryouts.testing.replay import start_replay_server

    with start_replay_server(require_key="sk-ant-right") as base:
        point_at_dialect(base, monkeypatch, "anthropic", "ANTHROPIC_BASE_URL", ANTHROPIC_API_KEY="sk-ant-right")
        r, _ = run("tokens=2")
        assert r.ok, r.error
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-wrong")
        r, _ = run("tokens=2")
        assert r.error_kind == "auth" and "ANTHROPIC_API_KEY" in r.error


def test_429_carries_retry_after(root):
    exc = raised("status=429;retry_after=7")
    assert isinstance(exc, errors.RateLimitError) and exc.retryable
    assert exc.retry_after == 7 and "Retry after 7 s" in str(exc) and "rate_limit_error" in str(exc)


def test_529_overloaded_is_retryable_and_says_so(root):
    exc = raised("status=529")
    assert isinstance(exc, errors.ServerError) and exc.retryable and exc.status == 529
    assert "Anthropic is overloaded" in str(exc) and "retry later" in str(exc) and "request-id req_" in str(exc)


def test_500_400_404_are_mapped(root):
    r, _ = run("status=500")
    assert r.error_kind == "server" and "try again later" in r.error and "api_error" in r.error
    r, _ = run("status=400")
    assert r.error_kind == "bad_request" and "invalid_request_error" in r.error
    r, _ = run("claude-9;status=404")
    assert r.error_kind == "model_not_found" and "'claude-9;status=404'" in r.error
    assert "e.g. claude-haiku-5-5" in r.error


def test_cut_stream_keeps_partial_text_and_exact_input(root):
    r, _ = run("tokens=10;cut_after=3;itl_ms=5")
    assert not r.ok and r.error_kind == "stream_cut"
    assert r.text == " w0 w1 w2" and "partial output is kept" in r.error
    assert r.usage.input_tokens == 11  # from message_start; the output is counted, and marked estimated
    assert r.usage.estimated and r.timing.ttft_ms is not None
    assert raised("tokens=10;cut_after=3").partial_text == " w0 w1 w2"


def test_mid_stream_overloaded_error_event(root):
    r, _ = run("status=529;cut_after=2;tokens=5")
    assert not r.ok and r.error_kind == "server" and r.text == " w0 w1"
    assert "overloaded" in r.error and "partial output is kept" in r.error
    exc = raised("status=529;cut_after=2;tokens=5")
    assert exc.retryable and exc.status == 529 and exc.partial_text == " w0 w1"
    exc = raised("status=400;cut_after=0;tokens=5")
    assert isinstance(exc, errors.ServerError) and not exc.retryable


def test_the_engine_retries_overloaded_both_ways(root, tmp_path):
    from tryouts.engine.run import Policy, run_cells
    from tryouts.store import Store

    store = Store(tmp_path / "retry.db")
    rid = uuid.uuid4().hex[:8]  # fail_first counts per exact script
    refs = [  # a 529 answer, then a 529 as an error event mid-stream
        f"anthropic:fail_first=1;status=529;tokens=3;id=a{rid}",
        f"anthropic:fail_first=1;status=529;cut_after=1;id=b{rid}",
    ]
    cells = [_Cell(i, ModelSpec.parse(ref, {"warmup": False}), REQ) for i, ref in enumerate(refs)]  # no warm-up: it would take the 529
    run_id = store.create_run("suite", refs, {})
    asyncio.run(run_cells(cells, store=store, run_id=run_id, policy=Policy(max_retries=2, backoff_s=0.01)))
    results = store.get_run(run_id)["results"]
    assert [(r["ok"], r["attempts"]) for r in results] == [(True, 2), (True, 2)]


def test_missing_key_fails_before_any_request(root, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    provider = provider_for("claude-3-5-haiku-latest")
    with pytest.raises(errors.MissingKeyError) as info:
        asyncio.run(provider.load())
    assert "export ANTHROPIC_API_KEY=" in str(info.value)
    monkeypatch.setenv("MY_KEY", "sk-ant-test")
    r, _ = run("tokens=1", {"api_key_env": "MY_KEY"})
    assert r.ok, r.error
    from tryouts.keys import set_key

    set_key("ANTHROPIC_API_KEY", "sk-ant-stored")  # `tryouts keys set anthropic`, in the test's own config dir
    r, _ = run("tokens=1")
    assert r.ok, r.error


def test_nothing_listening_is_a_connect_error(root):
    r, _ = run("tokens=1", {"base_url": "http://127.0.0.1:9"})
    assert r.error_kind == "connect" and "Is the server running" in r.error


# ---- the dialect, through plain httpx -------------------------------------------------------------


def test_dialect_sends_anthropics_event_sequence(root):
    url = f"{root}/anthropic/v1/messages"
    req = {"model": "reasoning=2;tokens=3;per_chunk=2;cached=3;cache_write=2", "max_tokens": 50, "stream": True,
           "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(url, json=req)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    evs = sse_events(r.text)
    assert [name for name, _ in evs] == [
        "message_start", "content_block_start", "ping",
        "content_block_delta", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]
    assert all(name == data["type"] and "x_sent_ns" in data for name, data in evs)
    start = evs[0][1]["message"]
    assert start["role"] == "assistant" and start["content"] == [] and start["stop_reason"] is None
    assert start["usage"] == {"input_tokens": 6, "cache_creation_input_tokens": 2, "cache_read_input_tokens": 3,
                              "output_tokens": 1}
    assert evs[1][1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert [d["delta"]["type"] for _, d in evs[3:6]] == ["thinking_delta", "thinking_delta", "signature_delta"]
    assert evs[7][1] == {**evs[7][1], "index": 1, "content_block": {"type": "text", "text": ""}}
    assert [d["delta"]["text"] for _, d in evs[8:10]] == [" w0 w1", " w2"]
    assert {d["delta"]["type"] for _, d in evs[8:10]} == {"text_delta"}
    final = evs[11][1]
    assert final["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert final["usage"]["output_tokens"] == 5 and final["usage"]["output_tokens_details"] == {"thinking_tokens": 2}


def test_dialect_json_errors_and_checks(root):
    url = f"{root}/anthropic/v1/messages"
    base = {"max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(url, json={**base, "model": "finish=length;tokens=2;reasoning=1"})
    msg = r.json()
    assert msg["type"] == "message" and msg["stop_reason"] == "max_tokens"
    assert [b["type"] for b in msg["content"]] == ["thinking", "text"] and msg["content"][1]["text"] == " w0 w1"
    assert msg["usage"]["output_tokens"] == 3
    r = httpx.post(url, json={**base, "model": "status=529;retry_after=2"})
    assert r.status_code == 529 and r.headers["retry-after"] == "2" and r.headers["request-id"].startswith("req_")
    body = r.json()
    assert body["type"] == "error" and body["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    kinds = {401: "authentication_error", 404: "not_found_error", 500: "api_error", 429: "rate_limit_error"}
    for status, kind in kinds.items():
        assert httpx.post(url, json={**base, "model": f"status={status}"}).json()["error"]["type"] == kind
    r = httpx.post(url, json={"model": "m", "messages": []})
    assert r.status_code == 400 and r.json()["error"]["message"] == "max_tokens: Field required"
    r = httpx.post(url, json={**base, "model": "m", "messages": [{"role": "system", "content": "x"}]})
    assert r.status_code == 400 and "top-level `system` parameter" in r.json()["error"]["message"]
    r = httpx.post(url, json={**base, "model": "nokey=1"})
    assert r.status_code == 400 and "unknown script key" in r.json()["error"]["message"]
    r = httpx.post(f"{root}/anthropic/v1/other", json=base)
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


# ---- the CLI end to end ---------------------------------------------------------------------------


def test_compare_cli_end_to_end(root, tmp_path):
    env = {"ANTHROPIC_BASE_URL": f"{root}/anthropic", "ANTHROPIC_API_KEY": "sk-ant-test"}
    ref, db = "anthropic:claude-3-5-haiku-latest", tmp_path / "cli.db"
    r = cli_compare_json(ref, db, env=env)[0]
    assert r["ok"] and r["text"] == "".join(f" w{i}" for i in range(8))
    assert (r["input_tokens"], r["output_tokens"], r["tokens_estimated"]) == (11, 8, False)
    assert r["cost_source"] == "genai-prices"
    assert Decimal(r["cost_usd_exact"]) == (11 * HAIKU["in"] + 8 * HAIKU["out"]) / 10**6
    assert r["ttft_ms"] is not None and r["finish_reason"] == "stop"
    assert "anthropic:claude-3-5-haiku-latest" in cli_compare(ref, db, env=env)
