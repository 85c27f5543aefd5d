"""Helpers shared by the provider wire-format tests.

Each ``test_provider_*.py`` points its provider at the replay server's dialect (:func:`point_at_dialect`),
drives it through :class:`ProviderRefs` (``run``, ``raised``, ``events`` for ``<prefix>:<script>`` refs),
checks the timing against the server's own log (:func:`assert_timing_matches_log`) and runs the CLI once
(:func:`cli_compare`). conftest.py has pytest rewrite the asserts here, so a failure shows its values.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tryouts import errors
from tryouts.engine.execute import execute
from tryouts.providers import create_provider
from tryouts.providers.base import Provider
from tryouts.types import Delta, GenParams, Message, ModelSpec, Request, Result

#: the request most tests send: one user message, at most 64 tokens
REQ = Request(messages=[Message(role="user", content="hi")], params=GenParams(max_tokens=64))


def run_provider(provider: Provider, request: Request, *, warm: bool = False, **kw) -> tuple[Result, list[Delta]]:
    """Load ``provider``, execute ``request`` through the engine and close it; return the result and its deltas.

    ``warm`` sends the same request once first, so the measured one reuses an open connection (the server's
    log keeps the second request under a scripted id).
    """
    deltas: list[Delta] = []

    async def go() -> Result:
        await provider.load()
        try:
            if warm:
                await execute(provider, request)
            return await execute(provider, request, on_delta=deltas.append, **kw)
        finally:
            await provider.aclose()

    return asyncio.run(go()), deltas


def stream_events(provider: Provider, request: Request = REQ) -> list:
    """Load ``provider``, collect every event its stream yields for ``request``, close it."""

    async def go() -> list:
        await provider.load()
        try:
            return [ev async for ev in provider.stream(request)]
        finally:
            await provider.aclose()

    return asyncio.run(go())


class ProviderRefs:
    """The provider of ``<prefix>:<script>`` refs, and the ways its tests drive one.

    A test module binds the methods it uses: ``run, raised = cohere.run, cohere.raised``.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def provider(self, script: str, options: dict | None = None) -> Provider:
        return create_provider(ModelSpec.parse(f"{self.prefix}:{script}", options or {}))

    def run(self, script: str, options: dict | None = None, request: Request = REQ, **kw) -> tuple[Result, list[Delta]]:
        """Execute one request through the engine; ``kw`` goes to :func:`run_provider` (``warm``: a first
        request opens the connections and only the second is returned) and on to ``execute``."""
        return run_provider(self.provider(script, options), request, **kw)

    def events(self, script: str, options: dict | None = None) -> list:
        """Every event the provider's stream yields for ``script``."""
        return stream_events(self.provider(script, options))

    def raised(self, script: str, options: dict | None = None) -> errors.ProviderError:
        """The error the provider's stream raises for ``script``."""
        provider = self.provider(script, options)
        with pytest.raises(errors.ProviderError) as info:
            stream_events(provider)
        return info.value


def point_at_dialect(replay_server: str, monkeypatch: pytest.MonkeyPatch, prefix: str, url_var: str, **env: str) -> str:
    """Set ``url_var`` to the replay server's ``/<prefix>`` dialect (as a user points a provider at a proxy)
    and the variables in ``env`` (keys); returns that base URL. ``replay_server`` is its ``.../v1`` URL."""
    base = f"{replay_server.removesuffix('/v1')}/{prefix}"
    monkeypatch.setenv(url_var, base)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return base


def server_log(url: str, rid: str) -> dict:
    """The replay server's own record of request ``rid`` (any URL of that server will do)."""
    parts = urlsplit(url)
    return httpx.get(f"{parts.scheme}://{parts.netloc}/_replay/log/{rid}").json()


def sse_events(text: str) -> list[tuple[str, dict]]:
    """A server-sent-events body whose events each have an ``event`` name and JSON ``data``: (name, data) pairs."""
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def assert_timing_matches_log(r: Result, deltas: list[Delta], log: dict, *, ttft_ms: float, itl_ms: float,
                              tokens: int) -> None:
    """A streamed result of ``tokens`` one-token chunks, scripted ``ttft_ms`` and ``itl_ms``, against the
    server's log (same clock): TTFT at least the scripted delay and within 5 ms of what the server sent,
    the first and last deltas stamped within 5 ms after their chunks were sent, TPOT within 5 ms of the
    server's and of ``itl_ms``."""
    truth_ttft = (log["first_content_sent_ns"] - log["recv_ns"]) / 1e6
    assert r.timing.ttft_ms >= ttft_ms
    assert abs(r.timing.ttft_ms - truth_ttft) < 5
    assert 0 <= deltas[0].t_ns - log["first_content_sent_ns"] < 5e6
    assert 0 <= deltas[-1].t_ns - log["last_content_sent_ns"] < 5e6
    truth_tpot = (log["last_content_sent_ns"] - log["first_content_sent_ns"]) / 1e6 / (tokens - 1)
    assert abs(r.timing.tpot_ms - truth_tpot) < 5
    assert r.timing.tpot_ms == pytest.approx(itl_ms, abs=5)


def cli_compare(ref: str, db: Path, *args: str, prompt: str = "Say hi", env: dict[str, str] | None = None) -> str:
    """``tryouts compare PROMPT -m REF --db DB ARGS`` in a subprocess, with this environment plus ``env``;
    asserts it exits 0 and returns its stdout."""
    cmd = [sys.executable, "-m", "tryouts", "compare", prompt, "-m", ref, "--db", str(db), *args]
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def cli_compare_json(ref: str, db: Path, *, prompt: str = "Say hi", env: dict[str, str] | None = None) -> list[dict]:
    """The results of :func:`cli_compare` with ``--format json``."""
    return json.loads(cli_compare(ref, db, "--format", "json", prompt=prompt, env=env))["results"]


# ---- the dashboard ---------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def text_model(url: str, answer: str, extra: str = "") -> str:
    """An openai-compat model on the replay server at ``url`` that answers ``answer`` (a word per chunk)."""
    from urllib.parse import quote

    return f"openai-compat:{url}#text={quote(answer, safe='')}{extra}"


@contextmanager
def serve_dashboard(db, host: str = "127.0.0.1", token: str | None = None, **policy):
    """The dashboard app in a uvicorn server thread on 127.0.0.1; yields (base URL, app).

    ``token`` is the access token (None: a random one, ``app.state.token``); ``policy`` goes to create_app
    (``allow_options``, ``allow_local_paths``, ``suite_dir``).
    """
    import threading
    import time

    import uvicorn

    from tryouts.web import create_app

    port = free_port()
    app = create_app(str(db), host=host, port=port, token=token, **policy)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(10)


class Listener:
    """A real TCP server on 127.0.0.1 in a thread that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def require_bwrap() -> None:
    """Tests of the bubblewrap sandbox: skipped only where bubblewrap is not installed (``make test`` installs
    it); installed but unable to isolate is a failure with bubblewrap's reason, never a silent skip."""
    import shutil

    from tryouts.scoring import sandbox

    if sandbox.isolation() == "bwrap":
        return
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed (make test installs it)")
    pytest.fail(f"bubblewrap is installed but cannot isolate a process: {sandbox._cached_probe()[1]}")


#: model-written code that switches the sandbox's audit hook off (it cannot be removed, but its data can be
#: changed): the hook is a courtesy for honest code, not the boundary, so what it blocked must stay blocked
HOOK_OFF = """
import gc, socket
for _f in gc.get_objects():
    if type(_f).__name__ == "function" and _f.__name__ == "hook" and _f.__closure__:
        for _c in _f.__closure__:
            if type(_c.cell_contents) is dict:
                _c.cell_contents.clear()
            elif _c.cell_contents == socket.AF_UNIX:
                _c.cell_contents = socket.AF_INET
"""


@contextmanager
def serve_http(handler: type):
    """``handler`` (a ``BaseHTTPRequestHandler``) served on a free 127.0.0.1 port in a thread; yields the base URL
    ``http://127.0.0.1:PORT`` and stops the server afterwards."""
    from http.server import ThreadingHTTPServer

    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def events_until_end(c: httpx.Client, url: str, events: str, headers: dict | None = None) -> list[dict]:
    """A live comparison's server-sent events (``url + events``) up to and including its ``end`` event."""
    out = []
    with c.stream("GET", url + events, headers=headers or {}) as stream:
        assert stream.status_code == 200
        for line in stream.iter_lines():
            if line.startswith("data: "):
                out.append(json.loads(line[6:]))
                if out[-1]["type"] == "end":
                    break
    return out
