"""The OpenAI wire format through the real provider, against the scripted replay server.

Covers what a real server will not produce on demand: a role-only first chunk, several tokens per
chunk, a trailing usage-only chunk, reasoning content, a stream cut mid-way, 401 and 429 bodies.
Timing is checked against the server's own clock (perf_counter is CLOCK_MONOTONIC, shared across
processes), within 5 ms.
"""

import asyncio
import json
import uuid
from decimal import Decimal

import pytest

from helpers import server_log
from tryouts.engine.execute import execute
from tryouts.providers import create_provider
from tryouts.types import Delta, GenParams, Message, ModelSpec, Request

REQ = Request(messages=[Message(role="user", content="hi")], params=GenParams(max_tokens=64))


def run(base: str, script: str, *, preset: str = "openai-compat", options=None):
    ref = f"openai-compat:{base}#{script}" if preset == "openai-compat" else f"openai:{script}"
    provider = create_provider(ModelSpec.parse(ref, options or {}))
    deltas: list[Delta] = []

    async def go():
        await provider.load()
        try:
            return await execute(provider, REQ, on_delta=deltas.append)
        finally:
            await provider.aclose()

    return asyncio.run(go()), deltas



@pytest.mark.timing
def test_role_only_first_chunk_does_not_count_for_ttft(replay_server):
    rid = uuid.uuid4().hex
    r, deltas = run(replay_server, f"tokens=10;ttft_ms=150;itl_ms=20;role_first=1;id={rid}")
    assert r.ok, r.error
    assert r.text == "".join(f" w{i}" for i in range(10))
    log = server_log(replay_server, rid)
    truth_ttft = (log["first_content_sent_ns"] - log["recv_ns"]) / 1e6
    assert r.timing.ttft_ms >= 150  # not the role-only chunk sent at once
    assert abs(r.timing.ttft_ms - truth_ttft) < 5
    # stamps against the server's own send times, same clock
    assert 0 <= deltas[0].t_ns - log["first_content_sent_ns"] < 5e6
    assert 0 <= deltas[-1].t_ns - log["last_content_sent_ns"] < 5e6
    truth_tpot = (log["last_content_sent_ns"] - log["first_content_sent_ns"]) / 1e6 / 9
    assert abs(r.timing.tpot_ms - truth_tpot) < 5
    assert r.timing.tpot_ms == pytest.approx(20, abs=5)


def test_several_tokens_per_chunk_uses_usage_not_chunks(replay_server):
    r, _ = run(replay_server, "tokens=12;per_chunk=4;itl_ms=10")
    assert r.ok
    assert r.timing.n_chunks == 3
    assert r.usage.output_tokens == 12 and not r.usage.estimated
    assert r.timing.tpot_ms == pytest.approx((r.timing.e2e_ms - r.timing.ttft_ms) / 11)


def test_trailing_usage_only_chunk_is_parsed_and_not_content(replay_server):
    r, deltas = run(replay_server, "tokens=5;itl_ms=5;usage=auto;prompt_tokens=17;cached=4")
    assert r.ok
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.cached_input_tokens) == (17, 5, 4)
    assert r.usage.method == "provider"
    assert len(deltas) == 5 and r.timing.e2e_ms == pytest.approx((deltas[-1].t_ns - deltas[0].t_ns) / 1e6 + r.timing.ttft_ms)


def test_no_usage_is_estimated_and_marked(replay_server):
    r, _ = run(replay_server, "tokens=6;usage=never")
    assert r.ok and r.usage.estimated and r.usage.method == "fallback:chars/4"
    assert r.usage.output_tokens == -(-len(r.text) // 4)


def test_reasoning_content_counts_for_ttft_not_ttfat(replay_server):
    r, _ = run(replay_server, "reasoning=3;tokens=4;ttft_ms=30;itl_ms=30")
    assert r.ok
    assert r.reasoning_text == " r0 r1 r2"
    assert r.text == " w0 w1 w2 w3"
    assert r.timing.ttfat_ms - r.timing.ttft_ms >= 80  # three reasoning chunks 30 ms apart come first
    assert r.usage.reasoning_tokens == 3


def test_stream_cut_midway_keeps_partial_text(replay_server):
    r, _ = run(replay_server, "tokens=10;cut_after=3;itl_ms=5")
    assert not r.ok and r.error_kind == "stream_cut"
    assert r.text == " w0 w1 w2"
    assert "partial output is kept" in r.error
    assert r.timing.ttft_ms is not None and r.usage.estimated


def test_openai_preset_via_base_url_prices_real_usage(replay_server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", replay_server)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    r, _ = run(replay_server, "gpt-4o-mini", preset="openai")
    assert r.ok, r.error
    assert r.model_name == "gpt-4o-mini" and r.usage.input_tokens and r.usage.output_tokens
    assert r.cost.source == "genai-prices"
    expected = (Decimal(r.usage.input_tokens) * Decimal("0.15") + Decimal(r.usage.output_tokens) * Decimal("0.60")) / 10**6
    assert r.cost.total == expected


def test_401_names_the_key_variable(replay_server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", replay_server)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    r, _ = run(replay_server, "status=401", preset="openai")
    assert not r.ok and r.error_kind == "auth"
    assert "OPENAI_API_KEY" in r.error and "Incorrect API key" in r.error


def test_429_carries_retry_after(replay_server):
    provider = create_provider(ModelSpec.parse(f"openai-compat:{replay_server}#status=429;retry_after=7"))

    async def go():
        await provider.load()
        try:
            async for _ in provider.stream(REQ):
                pass
        finally:
            await provider.aclose()

    from tryouts.errors import RateLimitError

    with pytest.raises(RateLimitError) as info:
        asyncio.run(go())
    assert info.value.retry_after == 7 and info.value.retryable
    assert "Retry after 7 s" in str(info.value)


def test_500_and_404_are_mapped(replay_server):
    r, _ = run(replay_server, "status=500")
    assert r.error_kind == "server" and "try again later" in r.error
    r, _ = run(replay_server, "status=404")
    assert r.error_kind == "model_not_found"


def test_request_body_asks_for_usage_and_maps_max_tokens(replay_server):
    compat = create_provider(ModelSpec.parse(f"openai-compat:{replay_server}#m"))
    body = compat.body(Request(messages=[Message(role="user", content="x")], params=GenParams(max_tokens=5, temperature=0)))
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 5 and body["temperature"] == 0
    openai = create_provider(ModelSpec.parse("openai:gpt-5-mini"))
    assert "max_completion_tokens" in openai.body(REQ)


def test_server_reported_timings_are_kept_beside_ours(replay_server):
    r, _ = run(replay_server, "tokens=4;timings=1")
    assert r.ok
    assert r.server_timings is not None and r.server_timings["predicted_n"] == 4
    assert r.timing.ttft_ms is not None  # the client's own figures are still there


@pytest.mark.timing
def test_first_request_of_a_process_pays_no_import_time(replay_server):
    """httpx imports ~70 modules on its first request; that must not land between t0 and the send."""
    import subprocess
    import sys

    code = f"""
import asyncio, json
from tryouts import compare
async def main():
    out = await compare("hi", ["openai-compat:{replay_server}#tokens=2;id=firstreq"])
    r = out.results[0]
    print(json.dumps({{"ok": r.ok, "t0_wall": r.started_at.isoformat(), "ttft_ms": r.timing.ttft_ms}}))
asyncio.run(main())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    result = json.loads(out.splitlines()[-1])
    assert result["ok"]
    log = server_log(replay_server, "firstreq")
    server_ms = (log["first_content_sent_ns"] - log["recv_ns"]) / 1e6
    # what the client adds on top of the server's own time: transit and parsing, not tens of ms of imports
    assert result["ttft_ms"] - server_ms < 15
