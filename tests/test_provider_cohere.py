"""Cohere's v2 Chat API through the real provider, against the replay server's Cohere dialect.

The provider is pointed at ``http://127.0.0.1:PORT/cohere`` through ``COHERE_BASE_URL``, as a user points
it at a proxy. Timing is checked against the server's own clock (perf_counter is CLOCK_MONOTONIC, shared
across processes), within 5 ms, as in test_openai_wire.py.
"""

import asyncio
import json
import uuid
from decimal import Decimal

import httpx
import pytest

from helpers import (
    REQ,
    ProviderRefs,
    assert_timing_matches_log,
    cli_compare_json,
    point_at_dialect,
    server_log,
    sse_events,
)
from tryouts import errors
from tryouts.providers import create_provider
from tryouts.providers.cohere import parse_usage
from tryouts.types import GenParams, Message, ModelSpec, Request

# command-r, USD per million tokens (genai-prices)
COMMAND_R = {"in": Decimal("0.15"), "out": Decimal("0.6")}


@pytest.fixture
def root(replay_server, monkeypatch):
    """The replay server's root URL; the provider is pointed at its /cohere dialect by environment."""
    point_at_dialect(replay_server, monkeypatch, "cohere", "COHERE_BASE_URL", COHERE_API_KEY="co-test")
    return replay_server.removesuffix("/v1")


cohere = ProviderRefs("cohere")
provider_for, run, raised = cohere.provider, cohere.run, cohere.raised


# ---- the provider ---------------------------------------------------------------------------------


@pytest.mark.timing
def test_text_timing_matches_the_server_log(root):
    rid = uuid.uuid4().hex
    r, deltas = run(f"tokens=10;ttft_ms=150;itl_ms=20;id={rid}", warm=True)
    assert r.ok, r.error
    assert r.text == "".join(f" w{i}" for i in range(10)) and r.reasoning_text == ""
    assert r.finish_reason == "stop"  # COMPLETE
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.method) == (11, 10, "provider")
    # message-start and content-start come at once: not content
    assert_timing_matches_log(r, deltas, server_log(root, rid), ttft_ms=150, itl_ms=20, tokens=10)
    assert r.timing.n_chunks == 10


def test_plain_model_name_is_the_default_script_and_is_priced(root):
    r, _ = run("command-r")
    assert r.ok, r.error
    assert r.model_name == "command-r" and r.provider == "cohere"
    assert r.text == "".join(f" w{i}" for i in range(8))
    # billed input (11), not the 209 tokens the model processed with its template
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.estimated) == (11, 8, False)
    assert r.cost.source == "genai-prices"
    assert r.cost.total == (11 * COMMAND_R["in"] + 8 * COMMAND_R["out"]) / 10**6


def test_usage_prefers_billed_input_and_generated_output():
    both = {"billed_units": {"input_tokens": 17, "output_tokens": 12}, "tokens": {"input_tokens": 215, "output_tokens": 13}}
    u = parse_usage(both)
    assert (u.input_tokens, u.output_tokens) == (17, 13)
    u = parse_usage({"tokens": {"input_tokens": 215.0, "output_tokens": 12.0}})  # the SDK types them as floats
    assert (u.input_tokens, u.output_tokens) == (215, 12)
    assert parse_usage({"billed_units": {"output_tokens": 4}}).output_tokens == 4


def test_tool_plan_and_tool_calls_are_parsed():
    from tryouts.providers.cohere import _Stream
    from tryouts.providers.sse import SSEEvent

    provider = create_provider(ModelSpec.parse("cohere:m"))
    st = _Stream()
    events = [
        {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "I will look"}}},
        {"type": "tool-call-start", "index": 1, "delta": {"message": {"tool_calls": {
            "id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}}}},
        {"type": "tool-call-delta", "index": 1, "delta": {"message": {"tool_calls": {"function": {"arguments": "{}"}}}}},
        {"type": "tool-call-end", "index": 1},
        {"type": "message-end", "delta": {"finish_reason": "TOOL_CALL"}},
    ]
    out = [ev for e in events for ev in provider._parse(SSEEvent(json.dumps(e), t_ns=1), st)]
    assert [(d.channel, d.text) for d in out[:3]] == [("reasoning", "I will look"), ("tool", "get_weather"), ("tool", "{}")]
    assert out[3].reason == "TOOL_CALL" and st.finished


def test_several_tokens_per_chunk_and_max_tokens_finish(root):
    r, _ = run("tokens=12;per_chunk=4;itl_ms=10;finish=length")
    assert r.ok, r.error
    assert r.timing.n_chunks == 3 and r.usage.output_tokens == 12
    assert r.timing.tpot_ms == pytest.approx((r.timing.e2e_ms - r.timing.ttft_ms) / 11)
    assert r.finish_reason == "length"  # MAX_TOKENS


@pytest.mark.timing
def test_thinking_goes_to_the_reasoning_channel(root):
    rid = uuid.uuid4().hex
    r, deltas = run(f"reasoning=3;tokens=4;ttft_ms=30;itl_ms=30;id={rid}", {"thinking_budget": 500}, warm=True)
    assert r.ok, r.error
    assert r.reasoning_text == " r0 r1 r2" and r.text == " w0 w1 w2 w3"
    assert [d.channel for d in deltas] == ["reasoning"] * 3 + ["text"] * 4
    assert r.usage.output_tokens == 7
    log = server_log(root, rid)
    assert abs(r.timing.ttft_ms - (log["first_token_sent_ns"] - log["recv_ns"]) / 1e6) < 5
    assert abs(r.timing.ttfat_ms - (log["first_content_sent_ns"] - log["recv_ns"]) / 1e6) < 5
    assert r.timing.ttfat_ms - r.timing.ttft_ms >= 80


def test_no_usage_is_estimated(root):
    r, _ = run("tokens=6;usage=never")
    assert r.ok and r.usage.estimated and r.usage.method == "fallback:chars/4"


def test_request_body_maps_messages_and_parameters(root):
    request = Request(
        messages=[Message(role="system", content="Be brief."), Message(role="user", content="hi")],
        params=GenParams(max_tokens=5, temperature=0, top_p=0.9, seed=1, stop=["END"]),
    )
    body = provider_for("command-r", {"extra_body": {"k": 10}}).body(request)
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert body["stream"] is True and body["model"] == "command-r"
    assert (body["max_tokens"], body["temperature"], body["p"], body["seed"]) == (5, 0, 0.9, 1)
    assert body["stop_sequences"] == ["END"] and body["k"] == 10
    assert "top_p" not in body and "stop" not in body and "thinking" not in body
    assert provider_for("m", {"thinking_budget": 0}).body(REQ)["thinking"] == {"type": "disabled"}
    assert provider_for("m", {"thinking_budget": 900}).body(REQ)["thinking"] == {"type": "enabled", "token_budget": 900}
    r, _ = run("tokens=2", request=request)  # the system role passes the replay's v2 checks
    assert r.ok, r.error


def test_options_and_base_url(root, monkeypatch):
    assert provider_for("m").url == f"{root}/cohere/v2/chat"
    assert provider_for("m", {"base_url": "http://proxy:1/v2/"}).url == "http://proxy:1/v2/chat"
    monkeypatch.delenv("COHERE_BASE_URL")
    assert provider_for("m").url == "https://api.cohere.com/v2/chat"
    with pytest.raises(errors.UsageError, match="http://"):
        provider_for("m", {"base_url": "ftp://x"})
    with pytest.raises(errors.UsageError, match="thinking_budget"):
        provider_for("m", {"thinking_budget": "lots"})
    with pytest.raises(errors.UsageError, match="the cohere provider accepts"):
        provider_for("m", {"tokenizer": "x"})


def test_the_key_is_sent_as_bearer_and_a_bad_one_names_the_variable(monkeypatch):
    from tryouts.testing.replay import start_replay_server

    with start_replay_server(require_key="co-right") as base:
        # CO_API_KEY: the SDKs' variable works too
        point_at_dialect(base, monkeypatch, "cohere", "COHERE_BASE_URL", CO_API_KEY="co-right")
        r, _ = run("tokens=2")
        assert r.ok, r.error
        monkeypatch.setenv("COHERE_API_KEY", "co-wrong")  # and wins
        r, _ = run("tokens=2")
        assert r.error_kind == "auth" and "COHERE_API_KEY" in r.error and "invalid api token" in r.error


def test_missing_key_fails_before_any_request(root, monkeypatch):
    monkeypatch.delenv("COHERE_API_KEY")
    with pytest.raises(errors.MissingKeyError) as info:
        asyncio.run(provider_for("command-r").load())
    assert "export COHERE_API_KEY=" in str(info.value)
    monkeypatch.setenv("MY_KEY", "co-test")
    r, _ = run("tokens=1", {"api_key_env": "MY_KEY"})
    assert r.ok, r.error


def test_429_carries_retry_after(root):
    exc = raised("status=429;retry_after=7")
    assert isinstance(exc, errors.RateLimitError) and exc.retryable
    assert exc.retry_after == 7 and "Retry after 7 s" in str(exc) and "per minute request limit" in str(exc)


def test_errors_are_mapped(root):
    r, _ = run("status=500")
    assert r.error_kind == "server" and "try again later" in r.error
    r, _ = run("status=400")
    assert r.error_kind == "bad_request" and "invalid request" in r.error
    r, _ = run("command-x;status=404")
    assert r.error_kind == "model_not_found" and "model 'command-x' not found" in r.error
    assert "command-r-08-2024" in r.error
    r, _ = run("status=402")
    assert r.error_kind == "bad_request" and "billing" in r.error
    assert isinstance(raised("status=499"), errors.ServerError)


def test_cut_stream_keeps_partial_text(root):
    r, _ = run("tokens=10;cut_after=3;itl_ms=5")
    assert not r.ok and r.error_kind == "stream_cut"
    assert r.text == " w0 w1 w2" and "partial output is kept" in r.error
    assert r.usage.estimated and r.timing.ttft_ms is not None
    assert raised("tokens=10;cut_after=3").partial_text == " w0 w1 w2"


def test_message_end_with_error_is_a_server_error(root):
    r, _ = run("status=500;cut_after=2;tokens=5")
    assert not r.ok and r.error_kind == "server" and r.text == " w0 w1"
    assert "mid-stream" in r.error and "internal server error" in r.error
    exc = raised("status=500;cut_after=2;tokens=5")
    assert exc.retryable and exc.partial_text == " w0 w1"


# ---- the dialect, through plain httpx -------------------------------------------------------------


def test_dialect_sends_cohere_v2_events(root):
    url = f"{root}/cohere/v2/chat"
    req = {"model": "reasoning=2;tokens=3;per_chunk=2", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(url, json=req)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    evs = sse_events(r.text)
    assert [name for name, _ in evs] == [
        "message-start", "content-start", "content-delta", "content-delta", "content-end",
        "content-start", "content-delta", "content-delta", "content-end", "message-end",
    ]
    assert all(name == data["type"] and "x_sent_ns" in data for name, data in evs)
    assert evs[0][1]["delta"]["message"]["role"] == "assistant" and evs[0][1]["id"]
    assert evs[1][1]["delta"]["message"]["content"] == {"type": "thinking", "thinking": ""}
    assert [d["delta"]["message"]["content"] for _, d in evs[2:4]] == [{"thinking": " r0"}, {"thinking": " r1"}]
    assert evs[5][1]["index"] == 1 and evs[5][1]["delta"]["message"]["content"] == {"type": "text", "text": ""}
    assert [d["delta"]["message"]["content"]["text"] for _, d in evs[6:8]] == [" w0 w1", " w2"]
    end = evs[-1][1]["delta"]
    assert end["finish_reason"] == "COMPLETE"
    assert end["usage"] == {"billed_units": {"input_tokens": 11, "output_tokens": 5},
                            "tokens": {"input_tokens": 209, "output_tokens": 5}}


def test_dialect_json_answer_and_errors(root):
    url = f"{root}/cohere/v2/chat"
    msgs = [{"role": "user", "content": "hi"}]
    body = httpx.post(url, json={"model": "tokens=2;reasoning=1;finish=length", "messages": msgs}).json()
    assert body["finish_reason"] == "MAX_TOKENS" and body["message"]["role"] == "assistant"
    assert body["message"]["content"] == [{"type": "thinking", "thinking": " r0"}, {"type": "text", "text": " w0 w1"}]
    r = httpx.post(url, json={"model": "status=429;retry_after=2", "messages": msgs})
    assert r.status_code == 429 and r.headers["retry-after"] == "2"
    assert set(r.json()) == {"id", "message"}
    assert httpx.post(url, json={"model": "status=401", "messages": msgs}).json()["message"] == "invalid api token"
    r = httpx.post(url, json={"messages": msgs})
    assert r.status_code == 400 and "model parameter is required" in r.json()["message"]
    r = httpx.post(url, json={"model": "nokey=1", "messages": msgs})
    assert r.status_code == 400 and "unknown script key" in r.json()["message"]
    assert httpx.post(f"{root}/cohere/v1/other", json={}).status_code == 404


# ---- the CLI end to end ---------------------------------------------------------------------------


def test_compare_cli_end_to_end(root, tmp_path):
    env = {"COHERE_BASE_URL": f"{root}/cohere", "COHERE_API_KEY": "co-test"}
    r = cli_compare_json("cohere:command-r", tmp_path / "cli.db", env=env)[0]
    assert r["ok"] and r["text"] == "".join(f" w{i}" for i in range(8))
    assert (r["input_tokens"], r["output_tokens"], r["tokens_estimated"]) == (11, 8, False)
    assert r["cost_source"] == "genai-prices"
    assert Decimal(r["cost_usd_exact"]) == (11 * COMMAND_R["in"] + 8 * COMMAND_R["out"]) / 10**6
    assert r["ttft_ms"] is not None and r["finish_reason"] == "stop"
