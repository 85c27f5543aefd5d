"""A scripted server that replays the OpenAI Chat Completions wire format with exact, known timing.

Used by Tryouts' tests and benchmarks, and by anyone who wants to check a client's timing. The
request's ``model`` field is a script, ``key=value;key=value``, that fixes what is sent back and when::

    python -m tryouts.testing.replay [--host 127.0.0.1] [--port 0]   # prints "READY http://127.0.0.1:PORT"

    with start_replay_server() as base_url:          # http://127.0.0.1:PORT/v1, in a subprocess
        httpx.post(f"{base_url}/chat/completions",
                   json={"model": "tokens=32;ttft_ms=50;itl_ms=10;id=r1", "stream": True, "messages": []})
        httpx.get(base_url.removesuffix("/v1") + "/_replay/log/r1").json()  # what was really sent, when

Script keys (unknown keys and bad values get a 400 that names the key; a part without ``=`` is the
model name echoed back, so ``gpt-4o-mini`` alone is a valid script with every default):

=============  =========  ===============================================================================
key            default    meaning
=============  =========  ===============================================================================
tokens         8          output tokens; token ``i`` is the text `` w{i}``
text           (none)     the answer text instead, percent-encoded (``text=Paris%2C%20France``); it is sent
                          one word (with its leading whitespace) per token, and ``tokens`` is its word count
ttft_ms        0          request received -> first content chunk (first reasoning chunk if ``reasoning``)
itl_ms         0          between consecutive content (and reasoning) chunks
per_chunk      1          tokens per content chunk; the last chunk may hold fewer
role_first     1          send ``{"role":"assistant","content":""}`` at once, before the TTFT delay
reasoning      0          that many ``reasoning_content`` chunks (`` r{i}``) before the content
usage          auto       trailing usage-only chunk: ``auto`` (if ``stream_options.include_usage``),
                          ``always``, ``never``
prompt_tokens  11         reported ``prompt_tokens``
cached         0          reported ``prompt_tokens_details.cached_tokens``
finish         stop       the ``finish_reason``; ``none`` sends none (with ``tokens=0``: llama.cpp's server's
                          aborted stream, a role chunk and ``[DONE]``)
completion_tokens (auto)  the reported ``completion_tokens``, as JSON (``1e10``, ``-5``) or else as a string:
                          a server that lies about usage
cut_after      -1         drop the connection mid-body after that many content chunks (no ``[DONE]``)
status         200        answer with this HTTP status (400-599) and OpenAI's error body for it
retry_after    (none)     with an error status: a ``Retry-After`` header with this value
quota          0          1: a 429 says ``insufficient_quota`` instead of ``rate_limit_exceeded``
timings        0          1: a llama.cpp-style ``timings`` object in the last chunk
id             (none)     record server-side times under this id: ``GET /_replay/log/{id}``; ``@prompt``: under
                          the last message's text (the chat route), for many requests of one model
fail_first     0          the first N requests with this exact script fail (``status``, or ``cut_after``);
                          later ones succeed: for testing retries
batch_polls    1          a batch (each batch API, below) stays in progress for that many GETs of it (the
                          largest over its requests), a share of its requests settled at each
expire         0          the first N batch submissions of a request with this exact script expire (the
                          batch ends ``expired``/the result is ``expired``); later ones succeed: for resends
batch_junk     0          1: the results of a batch holding this request are hostile: a line with an unknown
                          ``custom_id`` first, a line that is not JSON, a duplicate, 100 KB of plain text last
model          (none)     the model name echoed back (same as a part without ``=``)
capacity       0          N: at most N requests with this capacity are served at once (the chat route); the
                          others wait in one queue, their schedule starting when served: an overloaded server
echo_auth      0          1: an error's message repeats the request's credentials (``Authorization``,
                          ``x-api-key``, ``api-key``, ``x-goog-api-key``, a ``key=`` query parameter), as a
                          careless server or proxy does; every dialect (the OpenAI route: the Bearer key)
rpm            0          N: the request is served from a token bucket of N requests per minute (the chat
                          route and Anthropic's); over it, a 429 with ``Retry-After`` (:mod:`.ratelimit`)
tpm            0          N: the same bucket also holds N tokens per minute (a request costs its script's
                          ``prompt_tokens + tokens``, counted on arrival)
burst_s        1          the bucket holds this many seconds of its rates (its burst)
bucket         default    the bucket's name: every request naming it shares it (``POST /_replay/limits``
                          changes its rates while requests run)
rl_headers     1          0: send no rate-limit headers (only the 429s): a server that does not advertise
=============  =========  ===============================================================================

The schedule is absolute, from the moment the request body was read (``recv``): reasoning chunk ``j``
at ``recv + ttft + j*itl``, content chunk ``k`` at ``recv + ttft + (reasoning + k)*itl``. The chunk with
``finish_reason`` (empty delta, as OpenAI sends it), the usage chunk and ``[DONE]`` follow the last
content chunk at once. With ``cut_after=k`` the connection is dropped when content chunk ``k`` is due
(right after the last one if ``k`` is not smaller than the number of content chunks); a client sees
an incomplete chunked body (httpx: ``RemoteProtocolError``), never a clean end. Sleeps never end early
but may end late: up to about a millisecond (timer resolution), more on a loaded machine; the stamps
below are the truth, the schedule only the intent.

Every chunk carries ``"x_sent_ns"``: ``time.perf_counter_ns()`` taken right before its write. On
Linux that clock is CLOCK_MONOTONIC, shared by every process on the machine, so a client can compare
its own stamps with the server's. A request with an ``id`` is logged (the last 100,000 ids are kept):
``recv_ns``, ``sent_ns`` (one per content chunk), ``first_content_sent_ns``, ``last_content_sent_ns``,
``n_chunks`` (content chunks), plus ``role_sent_ns``, ``reasoning_sent_ns``, ``first_token_sent_ns``
(first reasoning or content chunk), ``done_sent_ns``, ``status``, ``stream``, ``cut`` and ``script``.

A non-streaming request waits until the last content chunk would have been sent, then answers with a
``chat.completion`` (its log has one ``sent_ns``; ``cut_after`` sends half the body, then drops). With the environment variable
``REPLAY_REQUIRE_KEY=<key>``, ``/v1/*`` answers 401 unless the request has ``Authorization: Bearer <key>``.
``GET /health`` answers ``{"status": "ok"}``, as vLLM's and llama.cpp's servers do (load tools probe it).
Only loopback addresses can be served.

Two batch APIs are replayed, with the same scripts (in each request's ``model``), answered at once when the
batch moves (no timings, no cuts; ``status``, ``fail_first``, ``usage`` and the rest as for a non-streamed
request): OpenAI's Files and Batch APIs (``POST /v1/files`` multipart upload, ``GET /v1/files/{id}[/content]``,
``DELETE /v1/files/{id}``, ``POST /v1/batches``, ``GET /v1/batches[/{id}]``, ``POST /v1/batches/{id}/cancel``;
output and error files as OpenAI writes them; see :mod:`tryouts.testing.dialects.openai_batch`) and
Anthropic's Message Batches (``/anthropic/v1/messages/batches...``, JSONL results; see
:mod:`tryouts.testing.dialects.anthropic_batch`). A batch moves one step per GET of it: OpenAI's
``validating`` -> ``in_progress`` (``batch_polls`` GETs) -> ``finalizing`` -> ``completed`` (or ``failed``,
``expired``, ``cancelling`` -> ``cancelled``), Anthropic's ``in_progress`` (``batch_polls`` GETs) -> ``ended``.
OpenRouter's Batch API is replayed too (``POST /v1/batches`` with the requests inline, ``endpoint`` and ``model``
first; ``GET /v1/batches/{id}[/results]``, ``POST .../cancel``, ``DELETE``; also under ``/beta/batches``), so that
``OPENROUTER_BASE_URL=http://127.0.0.1:PORT/v1`` serves chat and batches: ``validating`` -> ``in_progress`` ->
``finalizing`` -> ``completed`` with the results inline (or ``failed``, ``expired``, ``cancelled``, without
results); see :mod:`tryouts.testing.dialects.openrouter_batch`.

The server is split into modules under :mod:`tryouts.testing`; this one runs it (:func:`serve`, in this
process; :func:`start_replay_server`, in a subprocess; ``python -m tryouts.testing.replay``) and re-exports
the names below from the others:

* :mod:`~tryouts.testing.script`: the script grammar (:class:`Script`, :func:`parse_script`);
* :mod:`~tryouts.testing.wire`: the request log (:class:`ReplayLog`) and what every route sends with;
* :mod:`~tryouts.testing.app`: the ASGI application (:class:`ReplayApp`), its routing and ``DIALECTS``;
* :mod:`~tryouts.testing.openai_route`: the chat completions route, the one described above;
* :mod:`tryouts.testing.dialects`: the other providers' wire formats, one module each, and the batch APIs;
* :mod:`~tryouts.testing.batchjob`: what the batch APIs share (a job's progress, ``expire``, ``batch_junk``).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import logging
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from .._proc import stop_process
from .app import DIALECTS, MAX_BODY, ReplayApp
from .script import Script, ScriptError, parse_script
from .wire import LOG_LIMIT, Cut, ReplayLog, log_content_sent

__all__ = [
    "DIALECTS",
    "LOG_LIMIT",
    "MAX_BODY",
    "ReplayApp",
    "ReplayLog",
    "Script",
    "ScriptError",
    "is_loopback",
    "log_content_sent",
    "main",
    "parse_script",
    "serve",
    "start_replay_server",
]


class _DropCutTracebacks(logging.Filter):
    """A cut (``cut_after``) is the script's doing, not an error: uvicorn need not print its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, Cut)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _refuse(host: str) -> str:
    return f"the replay server only listens on loopback addresses (127.0.0.1, ::1, localhost), not {host!r}"


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    require_key: str | None = None,
    loop: str = "auto",
    http: str = "auto",
    log_limit: int = LOG_LIMIT,
    exit_on_stdin_eof: bool = False,
) -> None:
    """Serve until interrupted; print ``READY http://HOST:PORT`` (one line, flushed) once listening.

    Uses uvloop and httptools when they are installed (``loop``/``http`` as in uvicorn).
    """
    try:
        import uvicorn
    except ImportError:
        raise SystemExit("The replay server needs uvicorn: pip install uvicorn (it is in Tryouts' dev extra).") from None

    if not is_loopback(host):
        raise ValueError(_refuse(host))
    host = "127.0.0.1" if host == "localhost" else host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # the loops set it on each connection too
    sock.bind((host, port))
    sock.listen(2048)  # connections queue from here on: no race with the READY line
    sock.set_inheritable(False)
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    url = f"http://{shown}:{sock.getsockname()[1]}"

    config = uvicorn.Config(
        ReplayApp(require_key, log_limit=log_limit),
        loop=loop,  # type: ignore[arg-type]
        http=http,  # type: ignore[arg-type]
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=75,  # longer than clients' keep-alive (httpx: 5 s), so they close first
        timeout_graceful_shutdown=1,
        backlog=2048,
    )
    logging.getLogger("uvicorn.error").addFilter(_DropCutTracebacks())

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                print(f"READY {url}", flush=True)

    server = _Server(config)
    if exit_on_stdin_eof:  # the parent died or closed the pipe: stop rather than linger

        def watch() -> None:
            with contextlib.suppress(Exception):
                while sys.stdin.buffer.read(65536):
                    pass
            server.should_exit = True

        threading.Thread(target=watch, name="replay-stdin", daemon=True).start()
    server.run(sockets=[sock])


def _child_env(require_key: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("REPLAY_REQUIRE_KEY", None)
    if require_key:
        env["REPLAY_REQUIRE_KEY"] = require_key
    # the folder holding the ``tryouts`` package, so ``-m tryouts.testing.replay`` imports this very copy
    root = str(Path(__file__).resolve().parents[2])
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if Path(root).name not in ("site-packages", "dist-packages") and root not in parts:
        parts.insert(0, root)
    if parts:
        env["PYTHONPATH"] = os.pathsep.join(parts)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextlib.contextmanager
def start_replay_server(
    *, host: str = "127.0.0.1", require_key: str | None = None, timeout: float = 30.0
) -> Iterator[str]:
    """Run ``python -m tryouts.testing.replay`` in a subprocess; yield its base URL, ``http://HOST:PORT/v1``.

    Args:
        host: a loopback address; anything else raises :class:`~tryouts.errors.UsageError` at once.
        require_key: start the server with ``REPLAY_REQUIRE_KEY`` (the parent's value is not passed on).
        timeout: seconds to wait for the ``READY`` line.

    On exit the server is terminated (killed after 5 s). It also exits by itself if this process dies.
    """
    from ..errors import TryoutsError, UsageError

    if not is_loopback(host):
        raise UsageError(_refuse(host) + ".")
    err = tempfile.TemporaryFile()
    cmd = [sys.executable, "-m", "tryouts.testing.replay", "--host", host, "--port", "0", "--exit-on-stdin-eof"]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=_child_env(require_key), close_fds=True
    )
    lines: queue.Queue[bytes] = queue.Queue()

    def pump() -> None:  # also keeps draining stdout afterwards, so the child never blocks on it
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(b"")

    threading.Thread(target=pump, name="replay-stdout", daemon=True).start()

    def stderr_tail() -> str:
        err.seek(0)
        return err.read().decode(errors="replace")[-4000:].strip() or "(nothing on stderr)"

    try:
        deadline = time.monotonic() + timeout
        url = None
        while url is None:
            left = deadline - time.monotonic()
            try:
                line = lines.get(timeout=max(0.0, left))
            except queue.Empty:
                raise TryoutsError(
                    f"The replay server did not print READY within {timeout:g} s. Its stderr:\n{stderr_tail()}"
                ) from None
            if line.startswith(b"READY "):
                url = line.decode().split()[1]
            elif not line:
                proc.wait(5)
                raise TryoutsError(
                    f"The replay server exited with code {proc.returncode} before it was ready. "
                    f"Its stderr:\n{stderr_tail()}"
                )
        yield url + "/v1"
    finally:
        stop_process(proc)
        for f in (proc.stdin, proc.stdout):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        err.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tryouts.testing.replay",
        description="A scripted OpenAI-style chat completions server with exact timing (see the module docstring).",
    )
    ap.add_argument("--host", default="127.0.0.1", help="a loopback address (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    ap.add_argument("--loop", default="auto", choices=["auto", "asyncio", "uvloop"], help="event loop (default: uvloop if installed)")
    ap.add_argument("--http", default="auto", choices=["auto", "h11", "httptools"], help="HTTP parser (default: httptools if installed)")
    ap.add_argument("--log-limit", type=int, default=LOG_LIMIT, help=f"logged requests kept (default {LOG_LIMIT})")
    ap.add_argument("--exit-on-stdin-eof", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not is_loopback(args.host):
        ap.error(_refuse(args.host))
    with contextlib.suppress(KeyboardInterrupt):
        serve(
            args.host,
            args.port,
            require_key=os.environ.get("REPLAY_REQUIRE_KEY") or None,
            loop=args.loop,
            http=args.http,
            log_limit=max(1, args.log_limit),
            exit_on_stdin_eof=args.exit_on_stdin_eof,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
