"""Servers that lie in the fields around the answer (the audit of 2026-12-04): content that is not text, a key
echoed in the finish reason, tier or timings, usage whose parts exceed their whole, counts that are not numbers,
a key cut by the error body's limit, a compressed bomb, keep-alive bytes trickled forever. Each fails (or is
cleaned in) its own request, through the one gate every provider's events pass (engine/execute.py), and no key
reaches the store."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from http.server import BaseHTTPRequestHandler

import pytest

from helpers import REQ, run_provider, serve_http
from tryouts.providers import create_provider
from tryouts.store.rows import result_row
from tryouts.types import ModelSpec

KEY = "sk-test-SECRET123456789abcdef"


def chunk(delta=None, finish=None, **extra) -> bytes:
    body = {"id": "x", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}], **extra}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def usage(**u) -> bytes:
    return b"data: " + json.dumps({"id": "x", "choices": [], "usage": u}).encode() + b"\n\n"


WORDS = chunk({"role": "assistant", "content": ""}) + b"".join(chunk({"content": f" w{i}"}) for i in range(3))
DONE = b"data: [DONE]\n\n"


def answer(mode: str, key: str) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) the hostile server sends for ``mode`` (the model name)."""
    sse = {"content-type": "text/event-stream"}
    if mode == "content-not-text":
        return 200, sse, WORDS + chunk({"content": {"text": "a dict"}}) + chunk({}, "stop") + DONE
    if mode == "echo-fields":
        return 200, sse, (WORDS + chunk({}, f"Bearer {key}", timings={"prompt_ms": 1.5, "echo": f"Bearer {key}",
                                                                         key[:20]: 3})
                          + usage(prompt_tokens=5, completion_tokens=3) + DONE)
    if mode == "echo-tier":
        return 200, sse, WORDS + chunk({}, "stop") + b"data: " + json.dumps(
            {"id": "x", "choices": [], "service_tier": key, "usage": {"prompt_tokens": 5, "completion_tokens": 3}}
        ).encode() + b"\n\n" + DONE
    if mode == "cached-over-input":
        return 200, sse, WORDS + chunk({}, "stop") + usage(
            prompt_tokens=10, completion_tokens=3, prompt_tokens_details={"cached_tokens": 9_000_000}) + DONE
    if mode == "reasoning-over-output":
        return 200, sse, WORDS + chunk({}, "stop") + usage(
            prompt_tokens=10, completion_tokens=3, completion_tokens_details={"reasoning_tokens": 50}) + DONE
    if mode in ("count-true", "count-text", "count-key"):
        value = {"count-true": True, "count-text": "7", "count-key": key + "-" + "x" * 40}[mode]
        return 200, sse, WORDS + chunk({}, "stop") + usage(prompt_tokens=5, completion_tokens=value) + DONE
    if mode == "usage-not-object":
        return 200, sse, WORDS + chunk({}, "stop") + b'data: {"id": "x", "choices": [], "usage": [1, 2]}\n\n' + DONE
    if mode == "key-at-the-cut":  # the key straddles the 300 characters providers keep of an error message
        return 401, {"content-type": "text/plain"}, ("x" * 290 + " " + key + " tail").encode()
    if mode == "gzip-bomb":
        return 200, {**sse, "content-encoding": "gzip"}, gzip.compress(b"\n" * (8 * 1024 * 1024), 9)
    raise AssertionError(mode)


@pytest.fixture
def hostile():
    seen: dict[str, dict[str, str]] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            mode = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))["model"]
            seen[mode] = {k.lower(): v for k, v in self.headers.items()}
            if mode == "trickle":  # keep-alive comments, never a token: at most 10 s, then it gives up
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                end = time.monotonic() + 10
                try:
                    while time.monotonic() < end:
                        self.wfile.write(b": keep-alive\n\n")
                        self.wfile.flush()
                        time.sleep(0.05)
                except OSError:  # Tryouts hung up
                    seen[mode]["hung up"] = "yes"
                self.close_connection = True
                return
            status, headers, body = answer(mode, self.headers.get("authorization", "").removeprefix("Bearer "))
            self.send_response(status)
            for k, v in {**headers, "content-length": str(len(body))}.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    with serve_http(Handler) as url:
        yield f"{url}/v1", seen


def run(url: str, mode: str, monkeypatch, **options):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    spec = ModelSpec(ref=f"openai:{mode}", provider="openai", model=mode, options={"base_url": url, **options})
    result, _ = run_provider(create_provider(spec), REQ)
    row = json.dumps(result_row("r", result), default=str)
    assert KEY not in row and KEY[:12] not in row and KEY.lower() not in row.lower()
    return result


def test_content_that_is_not_text_fails_its_request_not_the_run(hostile, monkeypatch):
    r = run(hostile[0], "content-not-text", monkeypatch)
    assert not r.ok and r.error_kind == "bad_response" and "a chunk's content of type dict" in r.error


def test_a_key_echoed_in_the_finish_reason_and_timings_is_not_kept(hostile, monkeypatch):
    r = run(hostile[0], "echo-fields", monkeypatch)
    assert r.ok and r.text == " w0 w1 w2"
    assert r.finish_reason == "other"  # a sentence (or a key) is no finish reason
    assert r.server_timings == {"prompt_ms": 1.5}  # texts and odd names dropped, numbers kept


def test_a_key_echoed_as_the_service_tier_fails_the_request(hostile, monkeypatch):
    r = run(hostile[0], "echo-tier", monkeypatch)
    assert not r.ok and r.error_kind == "bad_response" and "service tier" in r.error and r.cost.total is None


@pytest.mark.parametrize("mode, words", [
    ("cached-over-input", "9,000,000 cache reads plus cache writes within 10 input tokens"),
    ("reasoning-over-output", "50 reasoning tokens within 3 output tokens"),
    ("count-true", "a token count must be a whole number"),
    ("count-text", "a token count must be a whole number"),
    ("count-key", "of type str"),  # the value (here the key, too long for the redaction to know) is never echoed
    ("usage-not-object", "could not be read"),
])
def test_usage_that_cannot_be_fails_its_request_and_is_never_priced(hostile, monkeypatch, mode, words):
    r = run(hostile[0], mode, monkeypatch, price="0.15,0.60")
    assert not r.ok and r.error_kind == "bad_response" and words in r.error, r.error
    assert r.cost.total is None or r.cost.total >= 0
    assert "bug in Tryouts" not in r.error.split("(if the server")[0]


def test_a_key_cut_by_the_error_message_limit_is_still_masked(hostile, monkeypatch):
    r = run(hostile[0], "key-at-the-cut", monkeypatch)
    assert not r.ok and "***" in r.error
    for n in range(6, len(KEY) + 1):  # not even the key's start survives
        assert KEY[:n] not in r.error


def test_a_compressed_bomb_is_not_inflated_past_the_limit(hostile, monkeypatch):
    monkeypatch.setattr("tryouts.providers.http.MAX_BODY_BYTES", 1024 * 1024)
    r = run(hostile[0], "gzip-bomb", monkeypatch)
    assert not r.ok and r.error_kind == "bad_response" and "over 1,048,576 bytes" in r.error
    assert hostile[1]["gzip-bomb"]["accept-encoding"] == "identity"  # Tryouts asked for no compression


def test_the_timeout_option_bounds_a_stream_that_trickles_forever(hostile, monkeypatch):
    r = run(hostile[0], "trickle", monkeypatch, timeout=0.5)
    assert not r.ok and r.error_kind == "timeout" and "0.5 s" in r.error
    deadline = time.monotonic() + 15
    while "hung up" not in hostile[1]["trickle"]:  # the connection was closed, not left to the server
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_compare_has_the_suite_timeouts_by_default():
    from tryouts.engine.policy import Policy
    from tryouts.suite.settings import Timeouts

    assert (Policy().first_token_timeout_s, Policy().total_timeout_s) == (Timeouts().first_token_s, Timeouts().total_s)


def test_a_compare_with_one_lying_model_still_records_the_other(hostile, monkeypatch):
    from tryouts.usecases.compare import compare

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    url = hostile[0]
    outcome = asyncio.run(compare("hi", [f"openai-compat:{url}#content-not-text", f"openai-compat:{url}#echo-fields"]))
    by = {r.model_name: r for r in outcome.results}
    assert not by["content-not-text"].ok and by["echo-fields"].ok


def test_replicate_sends_its_token_only_to_its_own_hosts(monkeypatch):
    from tryouts import errors

    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_testSECRET1234567890")
    own = create_provider(ModelSpec.parse("replicate:meta/llama"))  # Replicate's own API
    assert own._may_follow("https://api.replicate.com/v1/predictions/abc", stream=False)
    assert own._may_follow("https://streaming.api.replicate.com/v1/streams/abc", stream=True)
    assert own._may_follow("https://streaming-api.svc.us.c.replicate.net/v1/streams/abc", stream=True)
    assert not own._may_follow("https://evil.example/v1/streams/abc", stream=True)
    assert not own._may_follow("http://streaming.api.replicate.com/v1/streams/abc", stream=True)  # never plain http
    assert not own._may_follow("https://stream.replicate.com/x", stream=False)  # get and cancel: the API host only

    monkeypatch.setenv("REPLICATE_BASE_URL", "http://127.0.0.1:9")
    local = create_provider(ModelSpec.parse("replicate:meta/llama"))
    urls = local._urls({"id": "p1", "urls": {"stream": "http://127.0.0.1:9/s/p1", "get": "http://127.0.0.2:9/g",
                                             "cancel": "http://127.0.0.2:9/c"}})
    assert urls == {"stream": "http://127.0.0.1:9/s/p1", "get": "http://127.0.0.1:9/v1/predictions/p1",
                    "cancel": "http://127.0.0.1:9/v1/predictions/p1/cancel"}
    with pytest.raises(errors.BadResponseError, match="stream on another site"):
        local._urls({"id": "p1", "urls": {"stream": "http://127.0.0.2:9/s/p1"}})
    assert local._urls({"id": "../x", "urls": {"stream": "http://127.0.0.1:9/s", "get": "http://127.0.0.2/g"}}) == {
        "stream": "http://127.0.0.1:9/s"}  # an id that is not one path segment: no get at all


def test_the_timeout_option_bounds_the_warm_up_too(hostile, monkeypatch):
    """A server on this machine gets an untimed warm-up first: it is bounded by the same option (the server, which
    trickles for 10 s, sees Tryouts hang up instead of finishing its answer)."""
    from tryouts.engine.execute import warm_up

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    url, seen = hostile
    provider = create_provider(ModelSpec(ref="openai:trickle", provider="openai", model="trickle",
                                         options={"base_url": url, "timeout": 0.5, "warmup": True}))

    async def go():
        await provider.load()
        try:
            return await warm_up(provider)
        finally:
            await provider.aclose()

    assert asyncio.run(go()) is not None
    deadline = time.monotonic() + 15
    while "hung up" not in seen.get("trickle", {}):
        assert time.monotonic() < deadline, "the warm-up was not bounded by the timeout option"
        time.sleep(0.05)



def test_reasoning_counted_outside_completion_tokens_is_added_to_the_output():
    """xAI's usage: total_tokens = prompt + completion + reasoning (grok-3-mini: completion 1, reasoning 386). The
    request is not a lie, and its output (billed) is completion + reasoning, as OpenAI counts it."""
    from tryouts.engine.execute import check_usage
    from tryouts.providers.openai_compat import parse_usage

    xai = parse_usage({"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 397,
                       "completion_tokens_details": {"reasoning_tokens": 386}})
    assert (xai.output_tokens, xai.reasoning_tokens) == (387, 386) and check_usage(xai, "x") is None
    openai = parse_usage({"prompt_tokens": 10, "completion_tokens": 400, "total_tokens": 410,
                          "completion_tokens_details": {"reasoning_tokens": 386}})
    assert (openai.output_tokens, openai.reasoning_tokens) == (400, 386)
    liar = parse_usage({"prompt_tokens": 10, "completion_tokens": 3, "completion_tokens_details": {"reasoning_tokens": 50}})
    assert check_usage(liar, "x") is not None  # no total that makes it consistent: still refused


def test_a_replicate_proxy_gets_no_sibling_stream_hosts(monkeypatch):
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_testSECRET1234567890")
    monkeypatch.setenv("REPLICATE_BASE_URL", "https://proxy.corp.co.uk")
    proxy = create_provider(ModelSpec.parse("replicate:meta/llama"))
    assert proxy._may_follow("https://proxy.corp.co.uk/v1/streams/abc", stream=True)
    assert not proxy._may_follow("https://evil.co.uk/v1/streams/abc", stream=True)
    assert not proxy._may_follow("https://stream.replicate.com/v1/streams/abc", stream=True)


def test_a_timing_name_that_is_a_known_key_is_dropped(monkeypatch):
    from tryouts.engine.execute import clean_server_timings

    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-0123456789abcdef0123456789abcdef")
    assert clean_server_timings({"0123456789abcdef0123456789abcdef": 1, "prompt_ms": 2.5}) == {"prompt_ms": 2.5}
