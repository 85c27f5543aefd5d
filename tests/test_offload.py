"""Offloaded HTTP (providers/offload.py): the HTTP providers' streams sent and read by a worker process give the
same results, errors and (closer) timings as the in-process path, for every SSE provider; the engine hands a
crowded lane to a worker by itself; `tryouts run --client-processes`. Against the replay server and its
dialects, and small hostile servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import re
import socket
import subprocess
import sys
import threading

import httpx
import pytest

from helpers import point_at_dialect, server_log
from tryouts.engine.execute import attempt
from tryouts.providers import create_provider
from tryouts.providers.offload import OffloadPool, offloadable
from tryouts.types import GenParams, Message, ModelSpec, Request

REQ = Request(messages=[Message(role="user", content="hi")], params=GenParams(max_tokens=8))


def _results(ref: str, options: dict | None = None, *, total_timeout: float | None = None):
    """The result of ``ref`` in process and offloaded to a worker, in one event loop each."""
    async def one(pool: OffloadPool | None):
        provider = create_provider(ModelSpec.parse(ref, options or {}))
        await provider.load()
        provider.offload = pool
        try:
            return await attempt(provider, REQ, total_timeout=total_timeout)
        finally:
            await provider.aclose()

    async def both():
        pool = OffloadPool(1)
        await pool.start()
        try:
            return await one(None), await one(pool)
        finally:
            pool.close()

    return asyncio.run(both())


def _same(a, b) -> None:
    (ra, ea), (rb, eb) = a, b
    fields = ("ok", "text", "reasoning_text", "error_kind", "finish_reason")
    assert {f: getattr(ra, f) for f in fields} == {f: getattr(rb, f) for f in fields}
    assert (ra.usage.model_dump() if ra.usage else None) == (rb.usage.model_dump() if rb.usage else None)
    assert type(ea) is type(eb)
    assert getattr(ea, "retry_after", None) == getattr(eb, "retry_after", None)
    def norm(text):  # the server numbers its requests
        return re.sub(r"req_[0-9a-f]+|chatcmpl-\S+", "ID", text) if text else text

    assert norm(ra.error) == norm(rb.error)


@pytest.mark.parametrize("script", [
    "tokens=5;ttft_ms=20;itl_ms=3", "reasoning=2;tokens=3", "status=429;retry_after=3", "status=500",
    "status=404", "tokens=0;finish=none", "tokens=3;completion_tokens=-5", "tokens=6;cut_after=2;itl_ms=2",
])
def test_openai_compatible_answers_and_failures_are_the_same_offloaded(replay_server, script):
    _same(*_results(f"openai-compat:{replay_server}#{script}"))


def test_an_echoed_key_is_masked_the_same_way(replay_server, monkeypatch):
    monkeypatch.setenv("OPENAI_COMPAT_API_KEY", "sk-offload-secret-0123456789")
    a, b = _results(f"openai-compat:{replay_server}#status=401;echo_auth=1")
    _same(a, b)
    assert "sk-offload-secret-0123456789" not in b[0].error and b[0].error_kind == "auth"


@pytest.mark.parametrize("prefix,url_var,key_var,key", [
    ("anthropic", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "sk-ant-test"),
    ("gemini", "GEMINI_BASE_URL", "GEMINI_API_KEY", "AIza-test"),
    ("cohere", "COHERE_BASE_URL", "COHERE_API_KEY", "co-test"),
])
@pytest.mark.parametrize("script", ["tokens=4;ttft_ms=10;itl_ms=2", "status=429;retry_after=2", "tokens=5;cut_after=2"])
def test_every_sse_provider_works_offloaded(replay_server, monkeypatch, prefix, url_var, key_var, key, script):
    point_at_dialect(replay_server, monkeypatch, prefix, url_var, **{key_var: key})
    a, b = _results(f"{prefix}:{script}")
    _same(a, b)
    if a[0].ok:
        assert b[0].text == " w0 w1 w2 w3" and b[0].timing.ttft_ms >= 10


@pytest.mark.timing  # our stamps against the server's clock within ms: one delayed read can shorten the next gap
def test_the_worker_stamps_on_the_servers_clock(replay_server):
    _, (r, _) = _results(f"openai-compat:{replay_server}#tokens=4;ttft_ms=30;itl_ms=10;id=off-stamp")
    log = server_log(replay_server, "off-stamp")
    # TTFT runs from t0 (before the server read the request) to the read of the first chunk (after its write)
    true_ttft = (log["first_content_sent_ns"] - log["recv_ns"]) / 1e6
    assert true_ttft <= r.timing.ttft_ms < true_ttft + 50
    assert r.timing.itl_ms and min(r.timing.itl_ms) >= 9


def test_transport_failures_are_worded_as_in_process(replay_server):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (ra, _), (rb, _) = _results(f"openai-compat:http://127.0.0.1:{port}/v1#x")
    assert ra.error_kind == rb.error_kind == "connect" and "Cannot connect to" in rb.error
    a, b = _results(f"openai-compat:{replay_server}#tokens=2;ttft_ms=1500", {"timeout": 0.3})
    _same(a, b)
    assert b[0].error_kind == "timeout"


def _serve_once(body: bytes) -> tuple[str, threading.Thread]:
    """A server on 127.0.0.1 that answers every connection with ``body`` (a whole HTTP response)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def loop() -> None:
        for _ in range(2):
            conn, _ = srv.accept()
            conn.recv(65536)
            conn.sendall(body)
            conn.close()
        srv.close()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return f"http://127.0.0.1:{srv.getsockname()[1]}/v1", t


def test_a_web_page_instead_of_a_stream_is_refused_the_same_way():
    page = b"<html>login</html>"
    url, t = _serve_once(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (len(page), page))
    a, b = _results(f"openai-compat:{url}#m")
    t.join(5)
    _same(a, b)
    assert b[0].error_kind == "bad_response" and "text/html" in b[0].error


def test_a_stopped_request_is_cancelled_in_the_worker_and_the_pool_goes_on(replay_server):
    async def main():
        pool = OffloadPool(1)
        await pool.start()
        try:
            p = create_provider(ModelSpec.parse(f"openai-compat:{replay_server}#tokens=20;itl_ms=50"))
            await p.load()
            p.offload = pool
            slow, _ = await attempt(p, REQ, total_timeout=0.3)
            q = create_provider(ModelSpec.parse(f"openai-compat:{replay_server}#tokens=3"))
            await q.load()
            q.offload = pool
            fast, _ = await attempt(q, REQ)
            await p.aclose()
            await q.aclose()
            return slow, fast, pool._jobs
        finally:
            pool.close()

    slow, fast, jobs = asyncio.run(main())
    assert slow.error_kind == "timeout" and 0 < len(slow.text.split()) < 20  # what streamed is kept
    assert fast.ok and fast.text == " w0 w1 w2" and jobs == {}


def test_a_proxy_in_the_environment_keeps_requests_in_process(monkeypatch):
    url = httpx.URL("http://api.example.test/v1/chat/completions")
    assert offloadable(url, None, False)
    assert not offloadable(url, object(), False) and not offloadable(url, None, True)  # not an SSE stream
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:3128")
    assert not offloadable(url, None, False)
    monkeypatch.setenv("NO_PROXY", "api.example.test")
    assert offloadable(url, None, False)


def test_the_engine_offloads_a_crowded_lane_by_itself(replay_server, tmp_path):
    from tryouts.engine.events import CellDelta
    from tryouts.engine.run import Policy, run_cells
    from tryouts.store import Store
    from tryouts.types import Cell

    spec = ModelSpec.parse(f"openai-compat:{replay_server}#tokens=3;ttft_ms=20")
    cells = [Cell(spec=spec, request=Request(messages=[Message(role="user", content=f"q{i}")],
                                             params=GenParams(max_tokens=8)), model_index=0, case_index=i,
                  repeat_index=0) for i in range(40)]
    for concurrency, procs, offloaded in ((40, None, True), (8, None, False), (40, 0, False), (8, 1, True)):
        seen: set[str] = set()

        def on_event(ev, seen=seen) -> None:
            if isinstance(ev, CellDelta):
                seen.update(p.name for p in multiprocessing.active_children())

        store = Store(tmp_path / f"{concurrency}-{procs}.db")
        run_id = store.create_run("suite", [spec.ref], {})
        policy = Policy(concurrency={"openai-compat": concurrency}, use_cache=False, client_processes=procs)
        asyncio.run(run_cells(cells, store=store, run_id=run_id, policy=policy, on_event=on_event, stream_deltas=True))
        rows, total = store.results(run_id, columns=["ok", "ttft_ms", "output_tokens"])
        assert total == 40 and all(r["ok"] and r["output_tokens"] == 3 and r["ttft_ms"] >= 20 for r in rows)
        assert ("tryouts-offload-0" in seen) is offloaded, (concurrency, procs, seen)
        assert not [p for p in multiprocessing.active_children() if p.name.startswith("tryouts-offload")]


def test_tryouts_run_takes_client_processes(replay_server, tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text(f"models: ['openai-compat:{replay_server}#tokens=2']\nprompts: ['a', 'b', 'c']\n")

    def run(*args):
        return subprocess.run([sys.executable, "-m", "tryouts", "run", str(suite), "--db", str(tmp_path / "r.db"),
                               "-f", "json", *args], capture_output=True, text=True, timeout=120)

    p = run("--client-processes", "1")
    assert p.returncode == 0, p.stderr
    assert [r["ok"] for r in json.loads(p.stdout)["results"]] == [True] * 3
    bad = run("--client-processes", "99")
    assert bad.returncode == 1 and "--client-processes must be between 0 and 16" in bad.stderr + bad.stdout
