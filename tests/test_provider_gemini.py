"""Gemini's native wire format through the real provider, against the replay server's ``/gemini`` dialect.

The provider is pointed at the replay server with ``GEMINI_BASE_URL``, as a user points it at a proxy; the
model name is the replay script. Timing is checked against the server's own clock, within 5 ms.
"""

import asyncio
import json
import uuid
from decimal import Decimal

import httpx
import pytest

from helpers import ProviderRefs, assert_timing_matches_log, cli_compare_json, point_at_dialect, server_log
from tryouts import errors
from tryouts.providers import create_provider
from tryouts.types import GenParams, Message, ModelSpec, Request


@pytest.fixture
def gemini(replay_server, monkeypatch):
    """The dialect's base URL, set as GEMINI_BASE_URL with a key."""
    return point_at_dialect(replay_server, monkeypatch, "gemini", "GEMINI_BASE_URL", GEMINI_API_KEY="AIza-test")


refs = ProviderRefs("gemini")
run, raises = refs.run, refs.raised



# ------------------------------------------------------------------------------------ the dialect alone


def test_dialect_streams_documented_chunks(gemini):
    url = f"{gemini}/v1beta/models/tokens%3D4%3Bper_chunk%3D2%3Breasoning%3D1%3Bcached%3D3:streamGenerateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "generationConfig": {"thinkingConfig": {"includeThoughts": True}}}
    r = httpx.post(url, params={"alt": "sse"}, json=body, headers={"x-goog-api-key": "k"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    chunks = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    assert "[DONE]" not in r.text and len(chunks) == 3  # one thought chunk, two content chunks
    parts = [c["candidates"][0]["content"]["parts"][0] for c in chunks]
    assert parts == [{"text": " r0", "thought": True}, {"text": " w0 w1"}, {"text": " w2 w3"}]
    assert all(c["candidates"][0]["content"]["role"] == "model" for c in chunks)
    assert [c["candidates"][0].get("finishReason") for c in chunks] == [None, None, "STOP"]
    usage = [c["usageMetadata"] for c in chunks]  # on every chunk, running totals
    assert [u.get("candidatesTokenCount") for u in usage] == [None, 2, 4]
    assert usage[-1] == {
        "promptTokenCount": 11, "candidatesTokenCount": 4, "totalTokenCount": 16, "cachedContentTokenCount": 3,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 11}],
        "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 3}], "thoughtsTokenCount": 1,
    }
    assert all("x_sent_ns" in c and c["responseId"] == chunks[0]["responseId"] for c in chunks)

    # thoughts only when asked for; no alt=sse: one JSON array; generateContent: one response
    body.pop("generationConfig")
    r = httpx.post(url, json=body)
    array = r.json()
    assert [c["candidates"][0]["content"]["parts"][0]["text"] for c in array] == [" w0 w1", " w2 w3"]
    assert array[-1]["usageMetadata"]["thoughtsTokenCount"] == 1
    r = httpx.post(url.replace("streamGenerateContent", "generateContent"), json=body)
    assert r.json()["candidates"][0]["content"]["parts"] == [{"text": " w0 w1 w2 w3"}]
    assert r.json()["candidates"][0]["finishReason"] == "STOP"


def test_dialect_errors_look_like_google(gemini):
    url = f"{gemini}/v1beta/models/{{}}:streamGenerateContent?alt=sse"
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    for status, name in [(400, "INVALID_ARGUMENT"), (403, "PERMISSION_DENIED"), (404, "NOT_FOUND"),
                         (500, "INTERNAL"), (503, "UNAVAILABLE")]:
        r = httpx.post(url.format(f"status%3D{status}"), json=body)
        err = r.json()["error"]
        assert (r.status_code, err["code"], err["status"]) == (status, status, name) and err["message"]
    r = httpx.post(url.format("status%3D429%3Bretry_after%3D7"), json=body)
    assert r.status_code == 429 and r.headers["retry-after"] == "7"
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"} in r.json()["error"]["details"]
    assert httpx.post(url.format("m"), json={"contents": []}).json()["error"]["status"] == "INVALID_ARGUMENT"
    assert httpx.post(url.format("bogus%3D1"), json=body).status_code == 400
    assert httpx.post(f"{gemini}/v1beta/nothing", json=body).status_code == 404


# ------------------------------------------------------------------------------------ through the provider


@pytest.mark.timing
def test_text_usage_and_timing_against_the_server_clock(gemini):
    run("tokens=1")  # the first async request of a process imports httpcore's backend after t0 (~20 ms, once)
    rid = uuid.uuid4().hex
    r, deltas = run(f"tokens=10;ttft_ms=150;itl_ms=20;prompt_tokens=23;id={rid}")
    assert r.ok, r.error
    assert r.text == "".join(f" w{i}" for i in range(10)) and r.finish_reason == "stop"  # normalised from STOP
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.estimated) == (23, 10, False)
    assert_timing_matches_log(r, deltas, server_log(gemini, rid), ttft_ms=150, itl_ms=20, tokens=10)


def test_thoughts_are_reasoning_and_counted_as_output(gemini):
    r, _ = run("reasoning=3;tokens=4;ttft_ms=30;itl_ms=30;prompt_tokens=40;cached=16", {"thinking_budget": 512})
    assert r.ok, r.error
    assert r.reasoning_text == " r0 r1 r2" and r.text == " w0 w1 w2 w3"
    assert r.timing.ttfat_ms - r.timing.ttft_ms >= 80  # three thought chunks 30 ms apart come first
    u = r.usage
    assert (u.input_tokens, u.cached_input_tokens, u.output_tokens, u.reasoning_tokens) == (40, 16, 7, 3)


def test_without_include_thoughts_thinking_is_billed_but_not_shown(gemini):
    r, _ = run("reasoning=3;tokens=2;itl_ms=10")
    assert r.ok and r.reasoning_text == "" and r.text == " w0 w1"
    assert (r.usage.output_tokens, r.usage.reasoning_tokens) == (5, 3)
    assert r.timing.ttft_ms >= 25  # the hidden thinking still comes before the first text


def test_cost_from_genai_prices_for_a_real_model_name(gemini):
    r, _ = run("gemini-2.5-flash")
    assert r.ok and r.model_name == "gemini-2.5-flash"
    assert r.cost.source == "genai-prices"
    expected = (Decimal(r.usage.input_tokens) * Decimal("0.30") + Decimal(r.usage.output_tokens) * Decimal("2.5")) / 10**6
    assert r.cost.total == expected


def test_request_body_maps_messages_and_parameters(gemini):
    request = Request(
        messages=[Message(role="system", content="Be brief."), Message(role="user", content="a"),
                  Message(role="assistant", content="b"), Message(role="user", content="c")],
        params=GenParams(max_tokens=5, temperature=0, top_p=0.5, seed=7, stop=["x"]),
    )
    provider = create_provider(ModelSpec.parse(
        "gemini:gemini-2.5-flash", {"thinking_budget": 0, "extra_body": {"generationConfig": {"topK": 3}}}))
    body = provider.body(request)
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert [(c["role"], c["parts"][0]["text"]) for c in body["contents"]] == [("user", "a"), ("model", "b"), ("user", "c")]
    assert body["generationConfig"] == {"maxOutputTokens": 5, "temperature": 0, "topP": 0.5, "seed": 7,
                                        "stopSequences": ["x"], "topK": 3,
                                        "thinkingConfig": {"thinkingBudget": 0, "includeThoughts": True}}
    assert provider.url == f"{gemini}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    # and the server takes it
    r, _ = run("tokens=2", request=request)
    assert r.ok, r.error


def test_key_travels_in_the_header_and_a_bad_one_names_the_variable(monkeypatch):
    from tryouts.testing.replay import start_replay_server

    with start_replay_server(require_key="AIza-right") as base:
        point_at_dialect(base, monkeypatch, "gemini", "GEMINI_BASE_URL", GEMINI_API_KEY="AIza-wrong")
        err = raises("tokens=2")
        assert isinstance(err, errors.AuthError) and err.status == 400
        assert "GEMINI_API_KEY" in str(err) and "API key not valid" in str(err)
        monkeypatch.delenv("GEMINI_API_KEY")
        monkeypatch.setenv("GOOGLE_API_KEY", "AIza-right")  # the fallback variable
        r, _ = run("tokens=2")
        assert r.ok, r.error
        provider = create_provider(ModelSpec.parse("gemini:m"))
        assert "key=" not in provider.url


def test_missing_key_fails_before_any_request(gemini, monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY")
    provider = create_provider(ModelSpec.parse("gemini:gemini-2.5-flash"))
    with pytest.raises(errors.MissingKeyError) as info:
        asyncio.run(provider.load())
    assert "GEMINI_API_KEY" in str(info.value)
    from tryouts.keys import set_key

    set_key("GEMINI_API_KEY", "AIza-from-file")  # tryouts keys set gemini
    asyncio.run(provider.load())
    assert provider.key_env == "GEMINI_API_KEY"
    asyncio.run(provider.aclose())


def test_429_carries_retry_after(gemini):
    err = raises("status=429;retry_after=7")
    assert isinstance(err, errors.RateLimitError) and err.retry_after == 7 and err.retryable
    assert "Retry after 7 s" in str(err) and "RESOURCE_EXHAUSTED" in str(err)


def test_server_errors_bad_requests_and_missing_models(gemini):
    for status in (500, 503):
        err = raises(f"status={status}")
        assert isinstance(err, errors.ServerError) and err.retryable and "try again later" in str(err)
    err = raises("status=400")
    assert isinstance(err, errors.BadRequestError) and "INVALID_ARGUMENT" in str(err)
    err = raises("status=404")
    assert isinstance(err, errors.ModelNotFoundError) and "is not found" in str(err)
    err = raises("status=403")
    assert isinstance(err, errors.AuthError) and "GEMINI_API_KEY" in str(err)


def test_cut_stream_keeps_partial_text(gemini):
    r, _ = run("tokens=10;cut_after=3;itl_ms=5")
    assert not r.ok and r.error_kind == "stream_cut"
    assert r.text == " w0 w1 w2" and "partial output is kept" in r.error
    assert r.usage.output_tokens == 3  # Gemini's running totals survive the cut


def test_clean_end_without_finish_reason_is_a_cut(gemini):
    r, _ = run("tokens=3;finish=none")
    assert not r.ok and r.error_kind == "stream_cut" and "finishReason" in r.error
    assert r.text == " w0 w1 w2"


def test_compare_end_to_end(gemini, tmp_path):
    (res,) = cli_compare_json("gemini:gemini-2.5-flash", tmp_path / "g.db")
    assert res["ok"] and res["text"] == " w0 w1 w2 w3 w4 w5 w6 w7"
    assert (res["input_tokens"], res["output_tokens"], res["tokens_estimated"]) == (11, 8, False)
    assert res["cost_usd"] == pytest.approx((11 * 0.30 + 8 * 2.5) / 1e6)
    assert res["ttft_ms"] > 0
