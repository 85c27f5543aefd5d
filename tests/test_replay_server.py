"""The scripted replay server (tryouts.testing.replay), driven with plain httpx.

The server is a real subprocess on 127.0.0.1 (the session fixture ``replay_server``); its clock,
``perf_counter_ns`` (CLOCK_MONOTONIC), is the same as ours, so its stamps can be checked against ours.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from tryouts.errors import UsageError
from tryouts.testing.replay import (
    ReplayLog,
    Script,
    ScriptError,
    is_loopback,
    parse_script,
    start_replay_server,
)

MSGS = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def client():
    with httpx.Client(timeout=30) as c:
        yield c


def rid() -> str:
    return uuid.uuid4().hex


def stream(client: httpx.Client, base: str, script: str, *, include_usage: bool | None = None, headers=None):
    """POST a streaming request; returns (response, chunks as dicts, whether [DONE] came, read stamps)."""
    body: dict = {"model": script, "messages": MSGS, "stream": True}
    if include_usage is not None:
        body["stream_options"] = {"include_usage": include_usage}
    chunks, stamps, done = [], [], False
    with client.stream("POST", f"{base}/chat/completions", json=body, headers=headers) as resp:
        if resp.status_code != 200:
            resp.read()
            return resp, chunks, done, stamps
        for line in resp.iter_lines():
            if not line:
                continue
            assert line.startswith("data: ")
            data = line[len("data: ") :]
            assert not done, "nothing may follow [DONE]"
            if data == "[DONE]":
                done = True
                continue
            stamps.append(time.perf_counter_ns())
            chunks.append(json.loads(data))
    return resp, chunks, done, stamps


def content_chunks(chunks: list[dict]) -> list[str]:
    return [c["choices"][0]["delta"]["content"] for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]


def log_of(client: httpx.Client, base: str, request_id: str) -> dict:
    resp = client.get(f"{base.removesuffix('/v1')}/_replay/log/{request_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()


# ------------------------------------------------------------------------------------------ stream shape


def test_role_only_first_chunk_then_content_then_finish_and_done(replay_server, client):
    resp, chunks, done, _ = stream(client, replay_server, "tokens=3")
    assert resp.status_code == 200 and done
    assert resp.headers["content-type"].startswith("text/event-stream")
    first = chunks[0]["choices"][0]
    assert first["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert first["finish_reason"] is None and first["logprobs"] is None and first["index"] == 0
    assert content_chunks(chunks) == [" w0", " w1", " w2"]
    last = chunks[-1]["choices"][0]
    assert last["delta"] == {} and last["finish_reason"] == "stop"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    # the fields of a real chat.completion.chunk, the same id throughout
    for c in chunks:
        assert c["object"] == "chat.completion.chunk"
        assert {"id", "created", "model", "system_fingerprint", "choices", "x_sent_ns"} <= set(c)
        assert c["id"] == chunks[0]["id"] and c["id"].startswith("chatcmpl-")
        assert "usage" not in c  # no stream_options: no usage fields at all
    stamps = [c["x_sent_ns"] for c in chunks]
    assert stamps == sorted(stamps)


def test_role_first_off_starts_with_content(replay_server, client):
    _, chunks, done, _ = stream(client, replay_server, "tokens=2;role_first=0")
    assert done and chunks[0]["choices"][0]["delta"] == {"content": " w0"}


@pytest.mark.parametrize(
    ("tokens", "per_chunk", "expected"),
    [
        (10, 4, [" w0 w1 w2 w3", " w4 w5 w6 w7", " w8 w9"]),
        (6, 3, [" w0 w1 w2", " w3 w4 w5"]),
        (5, 1, [" w0", " w1", " w2", " w3", " w4"]),
        (2, 10, [" w0 w1"]),
        (0, 1, []),
    ],
)
def test_tokens_and_per_chunk(replay_server, client, tokens, per_chunk, expected):
    _, chunks, done, _ = stream(client, replay_server, f"tokens={tokens};per_chunk={per_chunk}")
    assert done
    assert content_chunks(chunks) == expected
    assert "".join(expected) == "".join(f" w{i}" for i in range(tokens))
    assert len(chunks) == 1 + len(expected) + 1  # role, content, finish


def test_default_script_and_plain_model_name(replay_server, client):
    _, chunks, done, _ = stream(client, replay_server, "gpt-4o-mini")
    assert done and len(content_chunks(chunks)) == 8
    assert chunks[0]["model"] == "gpt-4o-mini"


def test_finish_reason_is_scripted(replay_server, client):
    _, chunks, _, _ = stream(client, replay_server, "tokens=2;finish=length")
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize(
    ("mode", "include_usage", "sent"),
    [
        ("auto", True, True),
        ("auto", False, False),
        ("auto", None, False),
        ("never", True, False),
        ("always", None, True),
        ("always", False, True),
    ],
)
def test_usage_modes(replay_server, client, mode, include_usage, sent):
    script = f"tokens=5;reasoning=2;usage={mode};prompt_tokens=17;cached=4"
    _, chunks, done, _ = stream(client, replay_server, script, include_usage=include_usage)
    assert done
    usage_chunks = [c for c in chunks if c.get("usage")]
    if not sent:
        assert usage_chunks == []
        return
    assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1]
    assert chunks[-1]["choices"] == []
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"  # usage comes after the finish chunk
    u = chunks[-1]["usage"]
    assert (u["prompt_tokens"], u["completion_tokens"], u["total_tokens"]) == (17, 7, 24)
    assert u["prompt_tokens_details"]["cached_tokens"] == 4
    assert u["completion_tokens_details"]["reasoning_tokens"] == 2
    # as OpenAI does: with usage on, every other chunk says "usage": null
    assert all("usage" in c and c["usage"] is None for c in chunks[:-1])


def test_reasoning_chunks_come_before_content(replay_server, client):
    request_id = rid()
    _, chunks, done, _ = stream(client, replay_server, f"reasoning=3;tokens=2;ttft_ms=20;itl_ms=10;id={request_id}")
    assert done
    deltas = [c["choices"][0]["delta"] for c in chunks[1:-1]]
    assert deltas == [
        {"reasoning_content": " r0"},
        {"reasoning_content": " r1"},
        {"reasoning_content": " r2"},
        {"content": " w0"},
        {"content": " w1"},
    ]
    log = log_of(client, replay_server, request_id)
    recv = log["recv_ns"]
    assert len(log["reasoning_sent_ns"]) == 3 and log["n_chunks"] == 2
    assert log["first_token_sent_ns"] == log["reasoning_sent_ns"][0]
    assert log["reasoning_sent_ns"][0] - recv >= 20e6  # ttft applies to the first reasoning chunk
    assert log["first_content_sent_ns"] - recv >= (20 + 3 * 10) * 1e6  # then itl between every chunk


def test_timings_object_in_the_last_chunk(replay_server, client):
    _, chunks, _, _ = stream(client, replay_server, "tokens=4;itl_ms=2;timings=1;prompt_tokens=9")
    timings = chunks[-1]["timings"]
    assert timings["prompt_n"] == 9 and timings["predicted_n"] == 4
    # the schedule is absolute from recv, so a late first chunk shortens the measured gaps: only > 0 holds
    assert timings["predicted_ms"] > 0 and timings["predicted_per_second"] > 0
    assert all("timings" not in c for c in chunks[:-1])
    _, chunks, _, _ = stream(client, replay_server, "tokens=4;timings=1", include_usage=True)
    assert chunks[-1]["choices"] == [] and "timings" in chunks[-1]  # llama.cpp: on the usage chunk


def test_reasoning_only_and_long_back_to_back_streams(replay_server, client):
    _, chunks, done, _ = stream(client, replay_server, "tokens=0;reasoning=2;itl_ms=3;timings=1")
    assert done and content_chunks(chunks) == []
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["timings"]["predicted_ms"] > 0 and chunks[-1]["timings"]["predicted_n"] == 2
    _, chunks, done, _ = stream(client, replay_server, "tokens=2000;per_chunk=3")
    pieces = content_chunks(chunks)
    assert done and len(pieces) == 667 and "".join(pieces) == "".join(f" w{i}" for i in range(2000))


# -------------------------------------------------------------------------------------------------- cut


@pytest.mark.parametrize("cut_after", [0, 3, 10])
def test_cut_after_is_a_protocol_error_not_a_clean_end(replay_server, client, cut_after):
    request_id = rid()
    body = {"model": f"tokens=10;itl_ms=2;cut_after={cut_after};id={request_id}", "messages": MSGS, "stream": True}
    got: list[str] = []
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        with client.stream("POST", f"{replay_server}/chat/completions", json=body) as resp:
            assert resp.status_code == 200
            for line in resp.iter_lines():
                got.append(line)
    assert "data: [DONE]" not in got
    texts = [json.loads(x[6:])["choices"][0]["delta"].get("content") for x in got if x.startswith("data: {")]
    assert [t for t in texts if t] == [f" w{i}" for i in range(cut_after)]
    log = log_of(client, replay_server, request_id)
    assert log["cut"] is True and log["n_chunks"] == cut_after and log["done_sent_ns"] is None


def test_cut_after_beyond_the_stream_cuts_before_the_finish(replay_server, client):
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        stream(client, replay_server, "tokens=2;cut_after=50")


def test_cut_non_streaming_is_an_incomplete_body(replay_server, client):
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.post(f"{replay_server}/chat/completions", json={"model": "tokens=3;cut_after=1", "messages": MSGS})


def test_server_survives_cuts(replay_server, client):
    for _ in range(3):
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            stream(client, replay_server, "tokens=4;cut_after=1")
    _, chunks, done, _ = stream(client, replay_server, "tokens=4")
    assert done and len(content_chunks(chunks)) == 4


# ----------------------------------------------------------------------------------------------- errors


def test_401_body(replay_server, client):
    resp, *_ = stream(client, replay_server, "status=401")
    assert resp.status_code == 401
    err = resp.json()["error"]
    assert err["code"] == "invalid_api_key" and err["type"] == "invalid_request_error"
    assert err["message"].startswith("Incorrect API key provided") and err["param"] is None


@pytest.mark.parametrize(("status", "retry_after"), [(429, "7"), (503, "2")])
def test_retry_after_header(replay_server, client, status, retry_after):
    resp, *_ = stream(client, replay_server, f"status={status};retry_after={retry_after}")
    assert resp.status_code == status
    assert resp.headers["retry-after"] == retry_after
    assert resp.headers["content-type"] == "application/json"
    err = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    if status == 429:
        assert err["code"] == "rate_limit_exceeded" and "Rate limit reached" in err["message"]
    else:
        assert err["type"] == "server_error"


def test_429_quota_and_no_retry_after(replay_server, client):
    resp, *_ = stream(client, replay_server, "status=429;quota=1")
    assert resp.status_code == 429 and "retry-after" not in resp.headers
    err = resp.json()["error"]
    assert err["type"] == err["code"] == "insufficient_quota"
    assert "exceeded your current quota" in err["message"]


@pytest.mark.parametrize(
    ("status", "type_", "code"),
    [
        (400, "invalid_request_error", None),
        (404, "invalid_request_error", "model_not_found"),
        (500, "server_error", None),
        (503, "server_error", None),
    ],
)
def test_error_bodies(replay_server, client, status, type_, code):
    resp = client.post(f"{replay_server}/chat/completions", json={"model": f"status={status}", "messages": MSGS})
    assert resp.status_code == status
    err = resp.json()["error"]
    assert (err["type"], err["code"], err["param"]) == (type_, code, None) and err["message"]


def test_unknown_script_key_is_a_400_naming_the_key(replay_server, client):
    resp, *_ = stream(client, replay_server, "tokens=3;bogus_key=1")
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert err["type"] == "invalid_request_error" and err["param"] == "model"
    assert "bogus_key" in err["message"]


@pytest.mark.parametrize("script", ["tokens=x", "tokens=-1", "per_chunk=0", "usage=sometimes", "status=302", "ttft_ms=nan"])
def test_bad_script_values_are_400(replay_server, client, script):
    resp, *_ = stream(client, replay_server, script)
    assert resp.status_code == 400
    assert script.split("=")[0] in resp.json()["error"]["message"]


def test_bad_json_and_missing_model(replay_server, client):
    resp = client.post(f"{replay_server}/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request_error"
    resp = client.post(f"{replay_server}/chat/completions", json={"messages": MSGS})
    assert resp.status_code == 400 and "model" in resp.json()["error"]["message"]


def test_require_key(client):
    with start_replay_server(require_key="sk-secret-123456") as base:
        resp, *_ = stream(client, base, "tokens=2")
        assert resp.status_code == 401 and "didn't provide an API key" in resp.json()["error"]["message"]
        resp, *_ = stream(client, base, "tokens=2", headers={"Authorization": "Bearer sk-wrong-key-999"})
        assert resp.status_code == 401
        err = resp.json()["error"]
        assert err["code"] == "invalid_api_key" and "sk-wrong-key-999" not in err["message"]  # masked, as OpenAI does
        _, chunks, done, _ = stream(client, base, "tokens=2", headers={"Authorization": "Bearer sk-secret-123456"})
        assert done and content_chunks(chunks) == [" w0", " w1"]
        assert client.get(f"{base}/models").status_code == 401
        assert client.get(f"{base}/models", headers={"Authorization": "Bearer sk-secret-123456"}).status_code == 200


# --------------------------------------------------------------------------------------- non-streaming


def test_non_streaming_completion(replay_server, client):
    request_id = rid()
    body = {"model": f"tokens=4;reasoning=1;prompt_tokens=5;id={request_id}", "messages": MSGS}
    resp = client.post(f"{replay_server}/chat/completions", json=body)
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    data = resp.json()
    assert data["object"] == "chat.completion" and data["id"].startswith("chatcmpl-")
    choice = data["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"] == " w0 w1 w2 w3"
    assert choice["message"]["reasoning_content"] == " r0"
    assert choice["finish_reason"] == "stop" and choice["index"] == 0
    assert data["usage"]["prompt_tokens"] == 5 and data["usage"]["completion_tokens"] == 5
    assert log_of(client, replay_server, request_id)["sent_ns"] == [data["x_sent_ns"]]
    resp = client.post(f"{replay_server}/chat/completions", json={"model": "tokens=1;usage=never", "messages": MSGS})
    assert "usage" not in resp.json()


def test_non_streaming_waits_for_the_whole_schedule(replay_server, client):
    t = time.perf_counter()
    client.post(f"{replay_server}/chat/completions", json={"model": "tokens=5;ttft_ms=30;itl_ms=10", "messages": MSGS})
    assert time.perf_counter() - t >= 0.070


# ------------------------------------------------------------------------------------------ other routes


def test_models_and_unknown_routes(replay_server, client):
    data = client.get(f"{replay_server}/models").json()
    assert data["object"] == "list" and data["data"][0]["object"] == "model"
    resp = client.get(f"{replay_server}/nope")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "unknown_url"
    resp = client.get(f"{replay_server.removesuffix('/v1')}/_replay/log/never-seen")
    assert resp.status_code == 404 and "never-seen" in resp.json()["error"]["message"]
    assert client.get(f"{replay_server}/chat/completions").status_code == 405
    assert client.get(f"{replay_server.removesuffix('/v1')}/health").json() == {"status": "ok"}  # load tools probe it


# -------------------------------------------------------------------------------------------- timing


def test_log_matches_the_schedule_and_the_chunks(replay_server, client):
    request_id = rid()
    script = f"tokens=6;ttft_ms=60;itl_ms=15;id={request_id}"
    _, chunks, done, stamps = stream(client, replay_server, script)
    assert done
    log = log_of(client, replay_server, request_id)
    recv = log["recv_ns"]
    ttft_ms = (log["first_content_sent_ns"] - recv) / 1e6
    assert 60 <= ttft_ms < 60 + 5, ttft_ms
    assert log["n_chunks"] == 6 and len(log["sent_ns"]) == 6
    # an absolute schedule: chunk k at recv + ttft + k*itl, never early, never drifting
    for k, sent in enumerate(log["sent_ns"]):
        due = recv + (60 + k * 15) * 1e6
        assert 0 <= sent - due < 5e6, (k, (sent - due) / 1e6)
    assert log["last_content_sent_ns"] == log["sent_ns"][-1]
    # the chunks carry the same stamps, and (one clock) each arrives after it was sent
    content = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert [c["x_sent_ns"] for c in content] == log["sent_ns"]
    assert log["role_sent_ns"] == chunks[0]["x_sent_ns"] and log["role_sent_ns"] - recv < 5e6
    for c, seen in zip(chunks, stamps, strict=True):
        assert seen >= c["x_sent_ns"]
    assert log["done_sent_ns"] >= log["last_content_sent_ns"] and log["cut"] is False


def test_many_concurrent_streams(replay_server):
    async def go() -> list[int]:
        limits = httpx.Limits(max_connections=None)
        async with httpx.AsyncClient(timeout=30, limits=limits) as ac:

            async def one(i: int) -> int:
                body = {"model": f"tokens=16;itl_ms=1;per_chunk={1 + i % 3}", "messages": MSGS, "stream": True}
                text = []
                async with ac.stream("POST", f"{replay_server}/chat/completions", json=body) as resp:
                    async for line in resp.aiter_lines():
                        if line.startswith("data: {"):
                            delta = json.loads(line[6:])["choices"][0]["delta"]
                            text.append(delta.get("content", ""))
                assert "".join(text) == "".join(f" w{k}" for k in range(16))
                return i

            return await asyncio.gather(*(one(i) for i in range(64)))

    assert asyncio.run(go()) == list(range(64))


# ------------------------------------------------------------------------------------ host and script


def test_non_loopback_host_is_refused():
    with pytest.raises(UsageError, match="loopback"):
        with start_replay_server(host="0.0.0.0"):
            pass
    proc = subprocess.run(
        [sys.executable, "-m", "tryouts.testing.replay", "--host", "192.168.1.10"],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 2 and "loopback" in proc.stderr and "READY" not in proc.stdout


def test_is_loopback():
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.com", ""))


def test_parse_script():
    assert parse_script("") == Script()
    s = parse_script(" tokens=3 ; ttft_ms=2.5;my-model;id=a=b;usage=always ")
    assert (s.tokens, s.ttft_ms, s.model, s.id, s.usage) == (3, 2.5, "my-model", "a=b", "always")
    assert parse_script("tokens=4.0").tokens == 4
    with pytest.raises(ScriptError) as info:
        parse_script("tokens=1;nope=2")
    assert info.value.key == "nope"
    with pytest.raises(ScriptError):
        parse_script("prompt_tokens=3;cached=4")


def test_log_keeps_the_newest_entries():
    log = ReplayLog(limit=2)
    for name in ("a", "b", "c", "b"):
        log.new(name, 0, Script(), True)
    assert len(log) == 2 and log.get("a") is None and log.get("b") and log.get("c")
    log.new("d", 0, Script(), True)
    assert log.get("c") is None and log.get("b") and log.get("d")  # "b" was refreshed, so "c" went first
    log.new(None, 0, Script(), True)  # no id: not kept
    assert len(log) == 2


def test_text_script_streams_the_given_answer_word_by_word(replay_server):
    """``text=`` (percent-encoded) replaces the `` w{i}`` tokens: each word is one token, joined they are the text."""
    import urllib.parse

    answer = 'def add(a, b):\n    return a + b  # {"json": true}'
    model = "text=" + urllib.parse.quote(answer, safe="")
    r = httpx.post(f"{replay_server}/chat/completions", timeout=10,
                   json={"model": model, "stream": True, "messages": [], "stream_options": {"include_usage": True}})
    chunks = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
    pieces = [c["choices"][0]["delta"].get("content") for c in chunks if c.get("choices")]
    pieces = [p for p in pieces if p]
    assert "".join(pieces) == answer
    assert len(pieces) == len(answer.split())
    assert chunks[-1]["usage"]["completion_tokens"] == len(answer.split())


def test_capacity_queues_requests_and_prompt_ids_log_them(replay_server, client):
    import concurrent.futures
    import itertools

    def ask(i):
        body = {"model": "tokens=1;ttft_ms=100;capacity=1;id=@prompt", "stream": True,
                "messages": [{"role": "user", "content": f"cap-{i}"}]}
        return client.post(f"{replay_server}/chat/completions", json=body).status_code

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        assert list(pool.map(ask, range(3))) == [200] * 3
    logs = sorted((client.get(f"{replay_server.removesuffix('/v1')}/_replay/log/cap-{i}").json() for i in range(3)),
                  key=lambda e: e["first_content_sent_ns"])
    firsts = [e["first_content_sent_ns"] for e in logs]
    # one in service at a time: each first chunk at least 100 ms after the one before
    assert all(b - a >= 95_000_000 for a, b in itertools.pairwise(firsts))
