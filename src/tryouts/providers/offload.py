"""Offloaded HTTP: the streaming requests of the HTTP providers, sent and read by worker processes.

At 128 concurrent streams, one event loop that writes every request, reads every block and parses every
event queues them behind each other, and the time to first token it reports grows with that queue
(benchmarks/RESULTS.md). An :class:`OffloadPool` moves the network half to worker processes. Each worker
runs an event loop that does only this, with the load client's raw HTTP/1.1 client (providers/rawhttp.py):
write the prebuilt request, stamp t0, read the response and stamp every block with ``perf_counter_ns`` as it
is read. It sends the stamped blocks back in batches. On Linux that clock is CLOCK_MONOTONIC, one clock for
every process of the machine.

The main process decodes the blocks (SSE) with the workers' stamps, and the provider parses the events
exactly as it parses its own. So a result is measured as it would be in process, from the moment the bytes
were read, however busy the main loop is. Errors come out the same too: an error status is handed to the
provider's own ``_http_error``, and a transport failure becomes the httpx exception it would have been.

:func:`offloadable` says when a request can go this way: an SSE stream without an HTTP(S) proxy in the
environment (the raw client speaks to the server directly).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import itertools
import json
import multiprocessing
import os
import queue
import threading
import zlib
from collections.abc import AsyncIterator, Callable
from time import perf_counter_ns
from typing import Any
from urllib.request import getproxies_environment, proxy_bypass_environment

import httpx

from .. import errors
from . import rawhttp

#: an error answer's body is read up to this many bytes (as the in-process path: providers/http.py)
MAX_ERROR_BODY = 64 * 1024


class OffloadPool:
    """``workers`` worker processes that run HTTP exchanges for this process's event loop. Start with
    :meth:`start` (in the loop that will use it; the first exchange starts it otherwise), stop with
    :meth:`close`."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = max(1, workers)
        self._pipes: list[Any] = []
        self._procs: list[Any] = []
        self._jobs: dict[int, asyncio.Queue] = {}
        self._owner: dict[int, int] = {}
        self._ids = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: list[asyncio.Future] = []

    async def start(self, timeout_s: float = 60.0) -> None:
        """Start the workers and wait until each is ready, so no request's time includes a process start."""
        if self._procs:
            await asyncio.gather(*self._ready)  # started, maybe not ready yet: a second caller waits too
            return
        self._loop = asyncio.get_running_loop()
        self._ready = [self._loop.create_future() for _ in range(self.workers)]
        ctx = multiprocessing.get_context("spawn")
        for w in range(self.workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(child, w), daemon=True, name=f"tryouts-offload-{w}")
            proc.start()
            child.close()
            self._pipes.append(parent)
            self._procs.append(proc)
            threading.Thread(target=self._read, args=(w, parent), daemon=True, name=f"tryouts-offload-read-{w}").start()
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.gather(*self._ready)
        except (TimeoutError, RuntimeError) as exc:
            self.close()
            raise errors.TryoutsError(f"The client worker processes did not start ({exc or 'no answer'}). Run with "
                                      "--client-processes 0 to send from this process.") from None

    def _read(self, w: int, pipe: Any) -> None:
        """A thread per worker: hand each batch of messages to the event loop."""
        loop = self._loop
        assert loop is not None
        while True:
            try:
                batch = pipe.recv()
            except (EOFError, OSError):
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                    loop.call_soon_threadsafe(self._worker_gone, w)
                return
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._dispatch, batch)

    def _dispatch(self, batch: list[tuple]) -> None:
        for msg in batch:
            if msg[0] == "ready":
                if not self._ready[msg[1]].done():
                    self._ready[msg[1]].set_result(None)
                continue
            q = self._jobs.get(msg[1])
            if q is not None:
                q.put_nowait(msg)

    def _worker_gone(self, w: int) -> None:
        if not self._ready[w].done():
            self._ready[w].set_exception(RuntimeError(f"worker {w} ended before it was ready"))
        for job, owner in list(self._owner.items()):
            if owner == w and job in self._jobs:
                self._jobs[job].put_nowait(("end", job, ("read", "the client worker process ended")))

    async def exchange(self, host: str, port: int, tls: bool, payload: bytes, *, connect_timeout: float | None,
                       read_timeout: float | None) -> AsyncIterator[tuple]:
        """Send ``payload`` to ``host:port``; yield the worker's messages for it: ``("sent", job, t0_ns)``,
        ``("head", job, status, headers)``, ``("data", job, t_ns, bytes)`` ..., and ``("end", job, None)`` or
        ``("end", job, (kind, message))`` with kind ``connect``, ``connect_timeout``, ``timeout`` or ``read``.
        Stopping early cancels the request in the worker (its connection is closed)."""
        await self.start()
        job = next(self._ids)
        w = job % self.workers
        q: asyncio.Queue = asyncio.Queue()
        self._jobs[job], self._owner[job] = q, w
        ended = False
        try:
            self._pipes[w].send(("go", job, host, port, tls, payload, connect_timeout, read_timeout))
            while True:
                msg = await q.get()
                ended = msg[0] == "end"
                yield msg
                if ended:
                    return
        finally:
            del self._jobs[job], self._owner[job]
            if not ended:
                with contextlib.suppress(OSError):
                    self._pipes[w].send(("cancel", job))

    def close(self) -> None:
        """Stop the workers (their open connections close with them)."""
        for pipe in self._pipes:
            with contextlib.suppress(OSError):
                pipe.send(("stop",))
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
        for pipe in self._pipes:
            pipe.close()
        self._pipes, self._procs = [], []


def offloadable(url: httpx.URL, decoder: Any, raw: bool) -> bool:
    """Whether a request to ``url`` can be offloaded: an SSE stream (the default decoder) sent directly, not
    through an HTTP(S) proxy named in the environment."""
    if decoder is not None or raw or url.scheme not in ("http", "https"):
        return False
    names = (f"{url.scheme}_proxy", "all_proxy", "no_proxy")
    key = tuple(os.environ.get(n) or os.environ.get(n.upper()) for n in names)  # a few lookups, not all of them
    return not _proxied(url.scheme, url.host, key)


@functools.lru_cache(maxsize=256)
def _proxied(scheme: str, host: str, _env: tuple) -> bool:
    """Whether the environment (``_env``: its proxy variables, the cache key) sends ``host`` through a proxy."""
    proxies = getproxies_environment()
    return bool((proxies.get(scheme) or proxies.get("all")) and not proxy_bypass_environment(host))


def request_head(request: httpx.Request) -> bytes:
    """``request``'s HTTP/1.1 request line and headers, without its length, asking for an unencoded answer: the
    same for every request a provider sends to one URL, so it is built once (:func:`request_bytes`)."""
    lines = [f"{request.method} {request.url.raw_path.decode('ascii')} HTTP/1.1"]
    for name, value in request.headers.multi_items():
        if name.lower() in ("accept-encoding", "connection", "content-length", "transfer-encoding"):
            continue
        lines.append(f"{name}: {value}")
    lines.append("Accept-Encoding: identity")
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


def request_bytes(head: bytes, body: Any) -> bytes:
    """A whole request: ``head`` (:func:`request_head`) and ``body`` as JSON, encoded as httpx encodes it."""
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return head + f"Content-Length: {len(data)}\r\n\r\n".encode("latin-1") + data


def _httpx_error(kind: str, message: str, request: httpx.Request) -> httpx.HTTPError:
    """The httpx exception the in-process path would have raised for a worker's failure."""
    cls = {"connect": httpx.ConnectError, "connect_timeout": httpx.ConnectTimeout, "timeout": httpx.ReadTimeout,
           "read": httpx.RemoteProtocolError}.get(kind, httpx.ReadError)
    return cls(message, request=request)


async def offload_http(
    pool: OffloadPool,
    request: httpx.Request,
    payload: bytes,
    timeout: httpx.Timeout,
    *,
    where: str,
    http_error: Callable[[httpx.Response], errors.ProviderError],
    check_type: Callable[[httpx.Response, str], None],
    transport_error: Callable[[httpx.HTTPError], errors.ProviderError | None],
    decoder: Any,
    on_response: Callable[[int, httpx.Headers], None] | None = None,
) -> AsyncIterator[Any]:
    """:func:`~tryouts.providers.http.stream_http`'s contract over the pool for ``payload`` (the whole request;
    ``request``: one to the same URL, for the responses and errors built here): yield ``Sent`` at t0 (the
    worker's stamp), then each event the decoder completes, stamped when its bytes were read."""
    from ..types import Sent

    url = request.url
    exchange = pool.exchange(url.host, url.port or (443 if url.scheme == "https" else 80), url.scheme == "https",
                             payload, connect_timeout=timeout.connect, read_timeout=timeout.read)
    unzip = None
    async with contextlib.aclosing(exchange):
        async for msg in exchange:
            kind = msg[0]
            if kind == "sent":
                yield Sent(msg[2])
            elif kind == "head":
                response = httpx.Response(msg[2], headers=msg[3], request=request)
                if on_response is not None:
                    on_response(msg[2], response.headers)
                if msg[2] >= 400:
                    body = b""
                    async for more in exchange:
                        if more[0] == "data":
                            body += more[3]
                        elif more[0] == "end":
                            break
                    raise http_error(httpx.Response(msg[2], headers=[h for h in msg[3] if h[0] not in (
                        "content-encoding", "content-length", "transfer-encoding")], content=body[:MAX_ERROR_BODY],
                        request=request))
                check_type(response, where)
                encoding = response.headers.get("content-encoding", "").lower()
                if encoding in ("gzip", "deflate"):
                    unzip = zlib.decompressobj(zlib.MAX_WBITS | 32)
            elif kind == "data":
                data = unzip.decompress(msg[3]) if unzip is not None else msg[3]
                for event in decoder.feed(data, t_ns=msg[2]):
                    yield event
            elif msg[2] is None:  # the body ended cleanly
                for event in decoder.flush():
                    yield event
            else:
                error = transport_error(_httpx_error(*msg[2], request))
                if error is None:
                    raise _httpx_error(*msg[2], request)
                raise error


# ---- the worker process ---------------------------------------------------------------------------------------


def _worker_main(pipe: Any, index: int) -> None:
    """A worker: serve exchanges until told to stop (or the parent is gone)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    gc.collect()
    gc.freeze()  # what exists now is never scanned again
    pipe.send([("ready", index)])
    asyncio.run(_serve(pipe))


async def _serve(pipe: Any) -> None:
    loop = asyncio.get_running_loop()
    out: list[tuple] = []
    idle: dict[tuple, list[rawhttp.Connection]] = {}
    tasks: dict[int, asyncio.Task] = {}
    stop = asyncio.Event()

    outbox: queue.SimpleQueue = queue.SimpleQueue()

    def post() -> None:  # a thread writes to the pipe: a parent slow to read never blocks the loop that stamps
        while (batch := outbox.get()) is not None:
            with contextlib.suppress(OSError):
                pipe.send(batch)

    poster = threading.Thread(target=post, daemon=True, name="tryouts-offload-post")
    poster.start()

    def flush() -> None:
        outbox.put(out[:])
        out.clear()

    def emit(msg: tuple) -> None:
        if not out:
            loop.call_soon(flush)  # everything emitted in this turn of the loop goes in one message
        out.append(msg)

    def readable() -> None:
        while pipe.poll():
            try:
                msg = pipe.recv()
            except (EOFError, OSError):
                stop.set()
                return
            if msg[0] == "go":
                job = msg[1]
                tasks[job] = asyncio.create_task(_exchange(emit, idle, *msg[1:]))
                tasks[job].add_done_callback(lambda _t, j=job: tasks.pop(j, None))
            elif msg[0] == "cancel" and msg[1] in tasks:
                tasks[msg[1]].cancel()
            elif msg[0] == "stop":
                stop.set()
                return

    loop.add_reader(pipe.fileno(), readable)
    await stop.wait()
    loop.remove_reader(pipe.fileno())
    for task in list(tasks.values()):
        task.cancel()
    outbox.put(None)
    poster.join(timeout=5)
    for conns in idle.values():
        for conn in conns:
            conn.close()


async def _exchange(emit: Callable[[tuple], None], idle: dict[tuple, list[rawhttp.Connection]], job: int,
                    host: str, port: int, tls: bool, payload: bytes, connect_timeout: float | None,
                    read_timeout: float | None) -> None:
    """One request on a kept-alive connection to ``host:port``; its messages go to ``emit``."""
    key = (host, port, tls)
    pool = idle.setdefault(key, [])
    conn = pool.pop() if pool else rawhttp.Connection(host, port, tls, connect_timeout=connect_timeout)
    reuse = False
    t0 = perf_counter_ns()  # before a connection is opened, as the in-process path stamps t0 (providers/http.py)
    try:
        try:
            await conn.open()
        except TimeoutError:
            emit(("end", job, ("connect_timeout", f"no connection to {host}:{port} within {connect_timeout:g} s")))
            return
        except OSError as exc:
            emit(("end", job, ("connect", str(exc) or type(exc).__name__)))
            return
        reader, writer = conn.reader, conn.writer
        assert reader is not None and writer is not None
        loop = asyncio.get_running_loop()
        emit(("sent", job, t0))
        writer.write(payload)
        async with asyncio.timeout(loop.time() + read_timeout if read_timeout else None) as limit:
            status, headers = await rawhttp.read_head(reader)
            emit(("head", job, status, headers))
            taken = 0
            async for t, data in rawhttp.body_blocks(reader, headers):
                emit(("data", job, t, data))
                if read_timeout:
                    limit.reschedule(loop.time() + read_timeout)  # a timeout between bytes, as httpx's read
                taken += len(data)
                if status >= 400 and taken >= MAX_ERROR_BODY:
                    break  # an error body is read no further; the connection is closed below
            else:
                reuse = rawhttp.keeps_alive(headers)
        emit(("end", job, None))
    except TimeoutError:
        emit(("end", job, ("timeout", f"no byte from {host}:{port} within {read_timeout:g} s")))
    except asyncio.IncompleteReadError:
        emit(("end", job, ("read", "peer closed connection without sending complete message body (incomplete "
                                   "chunked read)")))
    except (OSError, EOFError, asyncio.LimitOverrunError, ValueError, IndexError) as exc:
        emit(("end", job, ("read", f"the connection failed mid-answer ({type(exc).__name__}: {exc})")))
    finally:
        if reuse:
            pool.append(conn)
        else:
            conn.close()
