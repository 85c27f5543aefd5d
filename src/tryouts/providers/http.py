"""What the HTTP providers share: a client per concurrent request, one SSL context, Retry-After,
the mapping of transport failures to Tryouts' errors, one streaming skeleton (:func:`stream_http`) and
:class:`HTTPProvider`, the base class that puts them together for a provider POSTing one JSON body."""

from __future__ import annotations

import contextlib
import functools
import os
import ssl
import zlib
from collections.abc import AsyncIterator, Callable, Iterable
from time import perf_counter_ns
from typing import Any

import httpx

from .. import errors
from ..keys import get_key
from ..types import Event, Finish, Request, Sent
from .base import Provider

__all__ = [
    "ClientSlots", "HTTPProvider", "decoded", "http_status_error", "read_capped", "retry_after", "same_origin",
    "ssl_context", "stream_http",
    "transport_error",
]


class ClientSlots:
    """One single-connection client per concurrent request, reused LIFO (keeps connections alive).

    A shared pool costs 2.5x at 32 concurrent streams: httpcore scans every pooled connection for
    every queued request (benchmarks/RESULTS.md). Every client shares one SSL context, built once
    (each new context loads the CA bundle: ~20 ms, blocking).
    """

    def __init__(self, headers: dict[str, str], *, timeout: float = 600, connect_timeout: float = 10) -> None:
        # answers uncompressed: a stream's chunk timings stay the server's, and no gzip bomb (see decoded())
        self.headers = {"Accept-Encoding": "identity", **headers}
        self.timeout = httpx.Timeout(float(timeout), connect=float(connect_timeout))
        self._idle: list[httpx.AsyncClient] = []
        self._clients: list[httpx.AsyncClient] = []

    def checkout(self) -> httpx.AsyncClient:
        """An idle client, or a new one; give it back with :meth:`checkin`."""
        if self._idle:
            return self._idle.pop()
        client = httpx.AsyncClient(
            headers=self.headers,
            timeout=self.timeout,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            verify=ssl_context(),
        )
        self._clients.append(client)
        return client

    def checkin(self, client: httpx.AsyncClient) -> None:
        self._idle.append(client)

    async def aclose(self) -> None:
        clients, self._clients, self._idle = self._clients, [], []
        for client in clients:
            await client.aclose()


def transport_error(exc: httpx.HTTPError, where: str, *, partial_text: str = "") -> errors.ProviderError:
    """The Tryouts error for an httpx failure talking to ``where`` (a base URL)."""
    if isinstance(exc, httpx.ConnectError):
        return errors.ConnectError(f"Cannot connect to {where} ({exc}). Is the server running and the URL right?")
    if isinstance(exc, httpx.TimeoutException):
        return errors.RequestTimeoutError(
            f"{where} did not answer in time ({type(exc).__name__}); raise the 'timeout' option or check the server.",
            partial_text=partial_text,
        )
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        return errors.StreamCutError(
            f"The stream from {where} was cut before the model finished ({exc}); "
            "the partial output is kept. Run again, or check the server's logs.",
            partial_text=partial_text,
        )
    return errors.ConnectError(
        f"The request to {where} failed ({type(exc).__name__}: {exc}); check the URL and the network."
    )


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """One SSL context for every client: building one loads the CA bundle (~20 ms, blocking)."""
    return httpx.create_ssl_context()


def http_status_error(response: httpx.Response, **kw: Any) -> errors.ProviderError:
    """:func:`~tryouts.providers.status.status_error` for an HTTP error answer; the wait a 429's Retry-After
    header asks for is read here unless ``retry_after_s`` is given."""
    from .status import status_error

    if kw.get("retry_after_s") is None:
        kw["retry_after_s"] = retry_after(response.headers.get("retry-after"))
    return status_error(response.status_code, **kw)


def retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (a number or an HTTP date), or None when absent or unreadable.

    Never negative, never NaN or infinite, at most a day (:func:`.ratelimits.retry_after_s`)."""
    from .ratelimits import retry_after_s

    return retry_after_s({"retry-after": value} if value else {})


#: what a streamed answer may be sent as (a missing content type is accepted too)
STREAM_TYPES = ("text/event-stream", "application/x-ndjson", "application/ndjson", "application/jsonl",
                "application/json", "application/x-json-stream", "application/stream+json")


def _check_stream_type(response: httpx.Response, where: str) -> None:
    """Refuse a 2xx answer that is not an event stream, NDJSON or JSON (an HTML login or proxy page, say)."""
    ctype = response.headers.get("content-type", "")
    base = ctype.split(";")[0].strip().lower()
    if not base or base in STREAM_TYPES or base.endswith("+json"):
        return
    raise errors.BadResponseError(
        f"{where} answered with {base!r} (HTTP {response.status_code}), not an OpenAI-compatible event stream "
        "(text/event-stream) or JSON: check the base URL points at the model server's API (often ending in /v1), "
        "not at a web page, proxy or login page.",
        status=response.status_code,
    )


async def stream_http(
    slots: ClientSlots,
    build: Callable[[httpx.AsyncClient], httpx.Request],
    *,
    where: str,
    http_error: Callable[[httpx.Response], errors.ProviderError],
    decoder: Any = None,
    partial: Callable[[], str] = lambda: "",
    raw: bool = False,
    on_transport_error: Callable[[httpx.HTTPError, str], errors.ProviderError | None] | None = None,
    on_response: Callable[[int, httpx.Headers], None] | None = None,
) -> AsyncIterator[Any]:
    """Send one streaming request; yield :class:`~tryouts.types.Sent` at t0, then each decoded event.

    The skeleton every HTTP provider shares: check out a client, stamp t0 just before sending, turn an
    HTTP error status into ``http_error(response)``, feed the decoded body (gzip undone; ``raw``: the
    bytes as they came) to ``decoder`` (an :class:`~tryouts.providers.sse.SSEDecoder` by default;
    anything with ``feed(bytes) -> list`` and ``flush() -> list``) and flush it at the end, map transport
    failures with :func:`transport_error` (keeping ``partial()`` text; ``on_transport_error(exc, partial)``
    words them instead, None leaving the httpx error as it is), and always close the response and check
    the client back in. Use it inside ``contextlib.aclosing`` so a consumer that stops early releases the
    connection at once.
    """
    from .sse import SSEDecoder

    decoder = decoder if decoder is not None else SSEDecoder()
    client = slots.checkout()
    try:
        request = build(client)
        t0 = perf_counter_ns()
        response = await client.send(request, stream=True)
        yield Sent(t0)
        try:
            if on_response is not None:
                on_response(response.status_code, response.headers)
            if response.status_code >= 400:
                raise http_error(await read_capped(response))
            _check_stream_type(response, where)
            async for chunk in decoded(response, where, compressed=not raw):
                for event in decoder.feed(chunk):
                    yield event
            for event in decoder.flush():
                yield event
        finally:
            await response.aclose()
    except httpx.HTTPError as exc:
        if on_transport_error is None:
            raise transport_error(exc, where, partial_text=partial()) from exc
        error = on_transport_error(exc, partial())
        if error is None:
            raise
        raise error from exc
    finally:
        slots.checkin(client)


def same_origin(url: str, base_url: str) -> bool:
    """Whether ``url`` (named by a server) is on ``base_url``'s scheme, host and port: the one place a request
    that carries the key may follow it (a server never chooses where the key goes)."""
    from urllib.parse import urlsplit

    a, b = urlsplit(url), urlsplit(base_url)
    return a.scheme in ("http", "https") and (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


#: an error answer is read up to this many bytes (a message, or the start of a page): no server can make
#: Tryouts hold an endless error body in memory
MAX_ERROR_BODY = 64 * 1024


#: one answer's body, decompressed, may be at most this many bytes: far above any real stream (text is
#: capped at 32 M characters by the engine), and what bounds a server that sends padding, comments or a
#: compressed bomb that no chunk or character count sees
MAX_BODY_BYTES = 256 * 1024 * 1024
#: decompressed in steps of at most this many bytes, so one small compressed chunk never becomes a huge one
_INFLATE_STEP = 1024 * 1024


async def decoded(response: httpx.Response, where: str, *, compressed: bool = True,
                  limit: int | None = None) -> AsyncIterator[bytes]:
    """``response``'s body as it arrives, gzip or deflate undone in bounded steps (``compressed=False``: the
    bytes as they came), failing with :class:`~tryouts.errors.BadResponseError` past ``limit`` bytes.

    Tryouts asks for no compression (``Accept-Encoding: identity``); a server that compresses anyway is still
    read, but never expanded past the limit in memory: httpx's own decoder inflates a whole chunk at once.
    """
    encoding = response.headers.get("content-encoding", "").strip().lower() if compressed else ""
    if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
        raise errors.BadResponseError(
            f"{where} compressed its answer with {encoding!r}, which Tryouts does not read (it asks for none: "
            "Accept-Encoding: identity). Check the server or its proxy.")
    inflate = zlib.decompressobj(47) if encoding not in ("", "identity") else None  # 47: gzip or zlib header
    limit = MAX_BODY_BYTES if limit is None else limit
    total = 0
    async for raw in response.aiter_raw():
        data = raw
        while data:
            try:
                piece = inflate.decompress(data, _INFLATE_STEP) if inflate is not None else data
            except zlib.error as exc:
                raise errors.BadResponseError(f"{where} sent a body that does not decompress ({exc}).") from None
            data = inflate.unconsumed_tail if inflate is not None else b""
            total += len(piece)
            if total > limit:
                raise errors.BadResponseError(
                    f"{where}: an answer is over {limit:,} bytes; stopped reading it (decompressed): far beyond any "
                    "model's answer, so the request is counted as failed. Check the server.")
            if piece:
                yield piece
    rest = inflate.flush() if inflate is not None else b""
    if rest and total + len(rest) <= limit:
        yield rest


async def read_capped(response: httpx.Response, limit: int = MAX_ERROR_BODY) -> httpx.Response:
    """The start of a streamed ``response``'s body (at most ``limit`` bytes, decompressed), with every known
    secret masked, as a read response to build an error from; the caller still closes ``response``.

    Masked here, before any provider cuts the message to a few hundred characters: a cut key is no longer the
    key, and redaction would miss it (a key cut by this very limit is masked too)."""
    from ..redact import redact_cut

    body = bytearray()
    try:
        async for chunk in decoded(response, str(response.url)):  # inflated in steps: stops soon after the limit
            body += chunk
            if len(body) >= limit:
                break
    except errors.BadResponseError:
        pass  # an error body that does not decompress: what was read is the message
    text = redact_cut(bytes(body[:limit]).decode("utf-8", "replace"), cut=len(body) >= limit)
    headers = [(k, v) for k, v in response.headers.multi_items()
               if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
    return httpx.Response(response.status_code, headers=headers, content=text.encode(),
                          request=response.request, extensions=response.extensions)


class HTTPProvider(Provider):
    """A provider that streams one POST per request through :class:`ClientSlots`.

    ``__init__`` may read the endpoint with :meth:`configured_base_url`; ``load()`` finds the key with
    :meth:`api_key` and opens the slots with :meth:`client_slots`; a ``stream()`` is one call of
    :meth:`post_stream` naming the URL, the parser and what a cut stream is called; :meth:`aclose`
    closes the slots. Subclasses set ``base_url`` (the ``where`` of transport errors) and define
    ``body(request)`` (the JSON sent) and ``_http_error(response)``; what is on the wire stays theirs.
    """

    base_url: str
    key_env: str | None
    _slots: ClientSlots | None = None
    #: worker processes that send and read this provider's streams (providers/offload.py), set by the engine
    #: for a lane with many concurrent requests; None: this event loop does it
    offload: Any = None
    #: called with each answer's status and headers as they arrive, set by the engine: the lane's throttle reads
    #: the rate-limit headers (engine/throttle.py)
    on_response: Callable[[int, httpx.Headers], None] | None = None
    #: per URL: a request built once and its HTTP/1.1 head, for the offloaded path
    _offload_heads: dict[str, tuple[httpx.Request, bytes]] | None = None

    def configured_base_url(self, env: str, default: str) -> str:
        """The ``base_url`` option, else ``$env``, else ``default``, without a trailing slash; refused
        unless it starts with http:// or https://."""
        base_url = self.spec.options.get("base_url") or os.environ.get(env) or default
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise errors.UsageError(
                f"{self.spec.ref!r}: the base URL {base_url!r} (base_url option or {env}) must start with "
                "http:// or https://."
            )
        return base_url.rstrip("/")

    def api_key(self, envs: tuple[str, ...], label: str) -> str:
        """The key of the first of ``envs`` that has one (the environment, else the keys file); the
        ``api_key_env`` option replaces ``envs``. Sets ``key_env`` to the variable used; with none, raises
        :class:`~tryouts.errors.MissingKeyError` naming the first."""
        if self.spec.options.get("api_key_env"):
            envs = (self.spec.options["api_key_env"],)
        for env in envs:
            key = get_key(env)
            if key:
                self.key_env = env
                return key
        raise errors.MissingKeyError(envs[0], label)

    def client_slots(self, headers: dict[str, str]) -> ClientSlots:
        """Clients sending ``headers``, with the ``timeout`` and ``connect_timeout`` options (600 s, 10 s)."""
        opts = self.spec.options
        return ClientSlots(
            headers, timeout=opts.get("timeout", 600), connect_timeout=opts.get("connect_timeout", 10)
        )

    async def aclose(self) -> None:
        slots, self._slots = self._slots, None
        if slots is not None:
            await slots.aclose()

    def body(self, request: Request) -> dict[str, Any]:
        """The JSON body sent for ``request``."""
        raise NotImplementedError

    def status_error(self, response: httpx.Response, label: str, what: str, **kw: Any) -> errors.ProviderError:
        """The shared status table's error (providers/status.py) for an HTTP error answer: ``label`` names the
        service (``Anthropic``), ``what`` is what its body said; ``kw``: ``hints``, ``kind``, ``retry_after_s``,
        or another ``model`` than :attr:`model_name`."""
        kw.setdefault("model", self.model_name)
        kw.setdefault("key_env", getattr(self, "key_env", None))
        return http_status_error(response, where=f"{label} ({self.base_url})", what=what, url=self.base_url,
                                 provider=self.spec.provider, **kw)

    def _http_error(self, response: httpx.Response) -> errors.ProviderError:
        """The Tryouts error for an HTTP error status (its body already read)."""
        raise NotImplementedError

    async def post_stream(
        self,
        request: Request,
        url: str,
        parse: Callable[[Any], Iterable[Event]],
        *,
        cut: str,
        partial: Callable[[], str] = lambda: "",
        done: Callable[[Any], bool] = lambda item: False,
        decoder: Callable[[], Any] | None = None,
        raw: bool = False,
        on_transport_error: Callable[[httpx.HTTPError, str], errors.ProviderError | None] | None = None,
    ) -> AsyncIterator[Event]:
        """The events of ``request``: POST ``body(request)`` to ``url`` and ``parse`` each decoded item.

        Loads the provider first if it is not, yields :class:`~tryouts.types.Sent` at t0 and then what
        ``parse(item)`` returns for each item of ``decoder()`` (SSE by default); an item for which
        ``done(item)`` is true finishes the stream unparsed. A stream that ends before a
        :class:`~tryouts.types.Finish` (or such an item) was cut: :class:`~tryouts.errors.StreamCutError`
        with the message ``cut`` and the ``partial()`` text. ``raw`` and ``on_transport_error``: as in
        :func:`stream_http`.
        """
        if self._slots is None:
            await self.load()
        slots = self._slots
        assert slots is not None
        body = self.body(request)
        finished = False
        items = self._offloaded(slots, url, body, decoder, raw, partial, on_transport_error)
        if items is None:
            items = stream_http(
                slots, lambda client: client.build_request("POST", url, json=body), where=self.base_url,
                http_error=self._http_error, decoder=decoder() if decoder else None, partial=partial, raw=raw,
                on_transport_error=on_transport_error, on_response=self.on_response,
            )
        async with contextlib.aclosing(items):
            async for item in items:
                if isinstance(item, Sent):
                    yield item
                elif done(item):
                    finished = True
                else:
                    for ev in parse(item):
                        finished = finished or isinstance(ev, Finish)
                        yield ev
        if not finished:
            raise errors.StreamCutError(cut, partial_text=partial())

    def _offloaded(self, slots: ClientSlots, url: str, body: dict[str, Any], decoder: Any, raw: bool,
                   partial: Callable[[], str], on_transport_error: Any) -> AsyncIterator[Any] | None:
        """The stream through :attr:`offload`'s worker processes, or None when it is not set or this request
        cannot go that way (providers/offload.py)."""
        if self.offload is None:
            return None
        from .offload import offload_http, offloadable, request_bytes, request_head

        template = self._offload_heads.get(url) if self._offload_heads is not None else None
        if template is None:  # built once per URL with the clients' headers (nothing is sent)
            client = slots.checkout()
            try:
                request = client.build_request("POST", url, json=body)
            finally:
                slots.checkin(client)
            template = (request, request_head(request))
            self._offload_heads = {**(self._offload_heads or {}), url: template}
        request, head = template
        if not offloadable(request.url, decoder, raw):
            return None

        def mapped(exc: httpx.HTTPError) -> errors.ProviderError | None:
            if on_transport_error is None:
                return transport_error(exc, self.base_url, partial_text=partial())
            return on_transport_error(exc, partial())

        from .sse import SSEDecoder

        return offload_http(self.offload, request, request_bytes(head, body), slots.timeout, where=self.base_url,
                            http_error=self._http_error, on_response=self.on_response,
                            check_type=_check_stream_type, transport_error=mapped, decoder=SSEDecoder())
