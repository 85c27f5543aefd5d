"""Ollama's native API: the replay dialect with plain httpx, then the real provider against it.

The provider is pointed at the replay server the way a user points it at a server elsewhere:
``OLLAMA_HOST=http://127.0.0.1:PORT/ollama``. Timing is checked against the server's own clock
(perf_counter is CLOCK_MONOTONIC, shared across processes), within 5 ms.
"""

import json
import socket
import uuid

import httpx
import pytest

from helpers import ProviderRefs, assert_timing_matches_log, cli_compare_json, point_at_dialect, server_log
from tryouts.providers import create_provider
from tryouts.providers.ollama import NDJSONDecoder, ollama_base_url, server_timings
from tryouts.types import GenParams, Message, ModelSpec, Request


@pytest.fixture
def ollama(replay_server, monkeypatch):
    """OLLAMA_HOST pointing at the replay server's Ollama dialect; yields that base URL."""
    return point_at_dialect(replay_server, monkeypatch, "ollama", "OLLAMA_HOST")


run = ProviderRefs("ollama").run



def chat(base: str, model: str, **body) -> httpx.Response:
    return httpx.post(f"{base}/api/chat", json={"model": model, "messages": [{"role": "user", "content": "hi"}], **body})


# ---- the dialect, with plain httpx ----------------------------------------------------------------


def test_dialect_streams_ndjson_with_consistent_durations(ollama):
    rid = uuid.uuid4().hex
    r = chat(ollama, f"tokens=4;ttft_ms=40;itl_ms=10;prompt_tokens=9;id={rid}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
    assert r.text.endswith("\n")
    lines = [json.loads(line) for line in r.text.splitlines()]
    *chunks, final = lines
    assert [c["message"] for c in chunks] == [{"role": "assistant", "content": f" w{i}"} for i in range(4)]
    assert all(c["done"] is False and c["model"] == f"tokens=4;ttft_ms=40;itl_ms=10;prompt_tokens=9;id={rid}"
               and c["created_at"].endswith("Z") for c in chunks)
    assert final["done"] is True and final["done_reason"] == "stop"
    assert final["message"] == {"role": "assistant", "content": ""}
    assert (final["prompt_eval_count"], final["eval_count"]) == (9, 4)
    log = server_log(ollama, rid)
    ns = {k: final[k] for k in ("load_duration", "prompt_eval_duration", "eval_duration", "total_duration")}
    assert all(isinstance(v, int) and v >= 0 for v in ns.values()) and ns["load_duration"] > 0
    # the durations are what was really sent, on the server's clock
    assert ns["load_duration"] + ns["prompt_eval_duration"] == log["first_content_sent_ns"] - log["recv_ns"]
    assert ns["eval_duration"] == log["last_content_sent_ns"] - log["first_content_sent_ns"]
    assert ns["total_duration"] == log["done_sent_ns"] - log["recv_ns"] >= 40e6 + 30e6
    assert [c["x_sent_ns"] for c in chunks] == log["sent_ns"]


def test_dialect_thinking_follows_the_think_flag(ollama):
    def kinds(resp):
        return [("thinking" if m.get("thinking") else "content") for m in
                (json.loads(x)["message"] for x in resp.text.splitlines()[:-1])]

    assert kinds(chat(ollama, "reasoning=2;tokens=2")) == ["thinking", "thinking", "content", "content"]
    on = chat(ollama, "reasoning=2;tokens=2", think=True)
    assert kinds(on) == ["thinking", "thinking", "content", "content"]
    assert json.loads(on.text.splitlines()[0])["message"] == {"role": "assistant", "content": "", "thinking": " r0"}
    assert json.loads(on.text.splitlines()[-1])["eval_count"] == 4
    off = chat(ollama, "reasoning=2;tokens=2", think=False)
    assert kinds(off) == ["content", "content"] and json.loads(off.text.splitlines()[-1])["eval_count"] == 2
    refused = chat(ollama, "llama3.1;tokens=2", think=True)
    assert refused.status_code == 400 and refused.json() == {"error": '"llama3.1" does not support thinking'}


def test_dialect_non_streaming_tags_version_and_errors(ollama):
    one = chat(ollama, "reasoning=1;tokens=3;finish=length", stream=False)
    assert one.headers["content-type"].startswith("application/json")
    data = one.json()
    assert data["message"] == {"role": "assistant", "content": " w0 w1 w2", "thinking": " r0"}
    assert data["done"] is True and data["done_reason"] == "length" and data["eval_count"] == 4
    assert data["total_duration"] >= data["load_duration"] + data["prompt_eval_duration"] + data["eval_duration"]

    loaded = httpx.post(f"{ollama}/api/chat", json={"model": "llama3.1", "messages": []}).json()
    assert loaded["done_reason"] == "load" and loaded["done"] is True

    tags = httpx.get(f"{ollama}/api/tags").json()
    assert {"name", "model", "modified_at", "size", "digest", "details"} <= set(tags["models"][0])
    assert set(httpx.get(f"{ollama}/api/version").json()) == {"version"}
    assert httpx.get(f"{ollama}/").text == "Ollama is running"

    missing = chat(ollama, "nosuch;status=404")
    assert missing.status_code == 404 and missing.json() == {"error": "model 'nosuch;status=404' not found"}
    assert chat(ollama, "status=500").json()["error"]
    limited = chat(ollama, "status=429;retry_after=3")
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
    bad = chat(ollama, "tokens=x")
    assert bad.status_code == 400 and "tokens" in bad.json()["error"]
    assert httpx.post(f"{ollama}/api/chat", json={"messages": []}).json() == {"error": "model is required"}
    assert httpx.get(f"{ollama}/api/chat").status_code == 404  # Ollama's router: wrong method is a 404


def test_dialect_cut_drops_the_connection(ollama):
    with pytest.raises(httpx.RemoteProtocolError):
        chat(ollama, "tokens=5;cut_after=2")


# ---- pure units ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("127.0.0.1:11500", "http://127.0.0.1:11500"),
        ("gpu-box", "http://gpu-box:11434"),
        (":8080", "http://127.0.0.1:8080"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("http://example.com", "http://example.com:80"),
        ("https://example.com/ollama/", "https://example.com:443/ollama"),
        ("[::1]:9000", "http://[::1]:9000"),
        ("::", "http://[::1]:11434"),
    ],
)
def test_ollama_host_is_read_like_ollama(value, url):
    assert ollama_base_url(value) == url


def test_bad_host_and_options_are_refused():
    from tryouts.errors import UsageError

    with pytest.raises(UsageError, match="scheme"):
        create_provider(ModelSpec.parse("ollama:m", {"base_url": "ftp://x"}))
    with pytest.raises(UsageError, match="think"):
        create_provider(ModelSpec.parse("ollama:m", {"think": "maybe"}))
    with pytest.raises(UsageError, match="num_ctx"):
        create_provider(ModelSpec.parse("ollama:m", {"num_ctx": "big"}))


def test_ndjson_lines_split_across_reads():
    dec = NDJSONDecoder()
    assert dec.feed(b'{"a":') == []
    got = dec.feed(b'1}\n\n{"b":2}\n{"c"')
    assert [line for line, _ in got] == [b'{"a":1}', b'{"b":2}']
    assert [line for line, _ in dec.flush()] == [b'{"c"']


def test_request_body_maps_params_and_options(monkeypatch):
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    provider = create_provider(ModelSpec.parse("ollama:qwen3:8b", {
        "num_ctx": 8192, "think": True, "keep_alive": "10m", "extra_body": {"options": {"top_k": 20}, "format": "json"},
    }))
    assert provider.base_url == "http://127.0.0.1:11434" and provider.model_name == "qwen3:8b"
    params = GenParams(max_tokens=5, temperature=0, top_p=0.9, seed=7, stop=["\n"])
    body = provider.body(Request(messages=[Message(role="user", content="x")], params=params))
    assert body["model"] == "qwen3:8b" and body["stream"] is True and body["think"] is True
    assert body["keep_alive"] == "10m" and body["format"] == "json"
    assert body["options"] == {"num_predict": 5, "temperature": 0, "top_p": 0.9, "seed": 7, "stop": ["\n"],
                               "num_ctx": 8192, "top_k": 20}
    assert provider.count_tokens("anything") is None


def test_an_error_line_mid_stream_is_a_server_error():
    from tryouts.errors import ServerError

    provider = create_provider(ModelSpec.parse("ollama:m", {"base_url": "127.0.0.1:1"}))
    with pytest.raises(ServerError, match="mid-stream: out of memory") as info:
        provider._parse(b'{"error":"out of memory"}', 0, [" w0"])
    assert info.value.partial_text == " w0"
    assert provider._parse(b'{"message":{"role":"assistant","content":""},"done":false}', 0, []) == []  # no content


def test_server_timings_in_ms():
    t = server_timings({"total_duration": 5_000_000, "load_duration": 1_000_000, "prompt_eval_count": 26,
                        "prompt_eval_duration": 2_000_000, "eval_count": 11, "eval_duration": 2_000_000})
    assert t == {"load_ms": 1.0, "prompt_eval_ms": 2.0, "eval_ms": 2.0, "total_ms": 5.0, "prompt_eval_count": 26,
                 "eval_count": 11, "eval_tokens_per_s": 5500.0, "prompt_eval_tokens_per_s": 13000.0}


# ---- the provider, through the engine ----------------------------------------------------------------


@pytest.mark.timing
def test_text_exact_usage_timing_and_server_timings(ollama):
    rid = uuid.uuid4().hex
    r, deltas = run(f"tokens=10;ttft_ms=120;itl_ms=20;prompt_tokens=17;id={rid}", warm=True)  # the log: 2nd
    assert r.ok, r.error
    assert r.text == "".join(f" w{i}" for i in range(10)) and r.finish_reason == "stop"
    assert (r.usage.input_tokens, r.usage.output_tokens) == (17, 10)
    assert not r.usage.estimated and r.usage.method == "provider"
    assert_timing_matches_log(r, deltas, server_log(ollama, rid), ttft_ms=120, itl_ms=20, tokens=10)
    # Ollama's own figures, stored beside ours (not in place of them)
    st = r.server_timings
    assert st["prompt_eval_count"] == 17 and st["eval_count"] == 10
    assert {"load_ms", "prompt_eval_ms", "eval_ms", "total_ms", "eval_tokens_per_s"} <= set(st)
    assert abs(st["load_ms"] + st["prompt_eval_ms"] - r.timing.ttft_ms) < 5
    assert abs(st["eval_ms"] - (r.timing.e2e_ms - r.timing.ttft_ms)) < 5
    assert abs(st["total_ms"] - r.timing.e2e_ms) < 5


def test_ollama_costs_nothing(ollama):
    r, _ = run("tokens=3")
    assert r.ok and r.cost.total == 0 and r.cost.source == "local"
    provider = create_provider(ModelSpec.parse("ollama:llama3.1"))
    assert provider.free and not provider.local  # priced as local, scheduled as a server


def test_thinking_is_reasoning(ollama):
    r, _ = run("reasoning=3;tokens=4;ttft_ms=30;itl_ms=30", {"think": True})
    assert r.ok, r.error
    assert r.reasoning_text == " r0 r1 r2" and r.text == " w0 w1 w2 w3"
    assert r.timing.ttfat_ms - r.timing.ttft_ms >= 80  # three thinking lines 30 ms apart come first
    assert r.usage.output_tokens == 7 and r.server_timings["eval_count"] == 7


def test_several_tokens_per_line_and_length_finish(ollama):
    r, _ = run("tokens=12;per_chunk=4;itl_ms=10;finish=length")
    assert r.ok and r.timing.n_chunks == 3 and r.usage.output_tokens == 12 and r.finish_reason == "length"


def test_missing_counts_are_estimated(ollama):
    r, _ = run("tokens=6;usage=never")
    assert r.ok and r.usage.estimated and r.usage.method == "fallback:chars/4"
    assert "eval_count" not in r.server_timings and r.server_timings["eval_ms"] > 0


def test_404_says_ollama_pull(ollama):
    r, _ = run("llama3.9;status=404")
    assert not r.ok and r.error_kind == "model_not_found"
    assert "ollama pull llama3.9;status=404" in r.error and "not found" in r.error


def test_500_is_a_server_error(ollama):
    r, _ = run("status=500")
    assert r.error_kind == "server" and "llama runner process has terminated" in r.error and "log" in r.error
    r, _ = run("status=503")
    assert r.error_kind == "server" and "OLLAMA_NUM_PARALLEL" in r.error


def test_think_on_a_model_that_cannot_think_is_a_bad_request(ollama):
    r, _ = run("tokens=2", {"think": True})
    assert r.error_kind == "bad_request" and "does not support thinking" in r.error and "think option" in r.error


def test_dead_port_says_start_ollama(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{port}")
    r, _ = run("llama3.1")
    assert not r.ok and r.error_kind == "connect"
    assert "ollama serve" in r.error and f"127.0.0.1:{port}" in r.error


def test_cut_stream_keeps_partial_text(ollama):
    r, _ = run("tokens=10;cut_after=3;itl_ms=5")
    assert not r.ok and r.error_kind == "stream_cut"
    assert r.text == " w0 w1 w2" and "partial output is kept" in r.error
    assert r.timing.ttft_ms is not None and r.server_timings is None


def test_fail_first_then_success(ollama):
    rid = uuid.uuid4().hex
    script = f"fail_first=1;status=503;tokens=2;id={rid}"
    first, _ = run(script)
    second, _ = run(script)
    assert first.error_kind == "server" and second.ok and second.text == " w0 w1"


def test_compare_cli_end_to_end(ollama, tmp_path):
    [r] = cli_compare_json("ollama:llama3.1", tmp_path / "o.db", prompt="Say hello", env={"OLLAMA_HOST": ollama})
    assert r["ok"] and r["text"] == "".join(f" w{i}" for i in range(8))
    assert r["output_tokens"] == 8 and r["input_tokens"] == 11 and not r["tokens_estimated"]
    assert r["ttft_ms"] > 0 and r["cost_usd"] == 0
