"""What the HTTP providers share: a client per concurrent request, one SSL context, Retry-After,
and the mapping of transport failures to Tryouts' errors."""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator, Callable
from time import perf_counter_ns
from typing import Any

import httpx

from .. import errors

__all__ = ["ClientSlots", "retry_after", "ssl_context", "transport_error"]


class ClientSlots:
    """One single-connection client per concurrent request, reused LIFO (keeps connections alive).

    A shared pool costs 2.5x at 32 concurrent streams: httpcore scans every pooled connection for
    every queued request (benchmarks/RESULTS.md). Every client shares one SSL context, built once
    (each new context loads the CA bundle: ~20 ms, blocking).
    """

    def __init__(self, headers: dict[str, str], *, timeout: float = 600, connect_timeout: float = 10) -> None:
        self.headers = headers
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
        return errors.TimeoutError_(
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


def retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from datetime import UTC, datetime
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return None


async def stream_http(
    slots: ClientSlots,
    build: Callable[[httpx.AsyncClient], httpx.Request],
    *,
    where: str,
    http_error: Callable[[httpx.Response], errors.ProviderError],
    decoder: Any = None,
    partial: Callable[[], str] = lambda: "",
) -> AsyncIterator[Any]:
    """Send one streaming request; yield :class:`~tryouts.types.Sent` at t0, then each decoded event.

    The skeleton every HTTP provider shares: check out a client, stamp t0 just before sending, turn an
    HTTP error status into ``http_error(response)``, feed the decoded body (gzip undone) to ``decoder``
    (an :class:`~tryouts.providers.sse.SSEDecoder` by default; anything with ``feed(bytes) -> list``), map
    transport failures with :func:`transport_error` (keeping ``partial()`` text), and always close the
    response and check the client back in. Use it inside ``contextlib.aclosing`` so a consumer that
    stops early releases the connection at once.
    """
    from ..types import Sent
    from .sse import SSEDecoder

    decoder = decoder if decoder is not None else SSEDecoder()
    client = slots.checkout()
    try:
        request = build(client)
        t0 = perf_counter_ns()
        response = await client.send(request, stream=True)
        yield Sent(t0)
        try:
            if response.status_code >= 400:
                await response.aread()
                raise http_error(response)
            async for raw in response.aiter_bytes():
                for event in decoder.feed(raw):
                    yield event
        finally:
            await response.aclose()
    except httpx.HTTPError as exc:
        raise transport_error(exc, where, partial_text=partial()) from exc
    finally:
        slots.checkin(client)
