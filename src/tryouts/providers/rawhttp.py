"""A minimal HTTP/1.1 client over asyncio streams: kept-alive connections, a response head, and the body's
blocks each stamped with ``perf_counter_ns`` the moment it is read.

It is the hot path of two things that must never be the bottleneck: the load client (load/client.py) and
the offloaded transport of the HTTP providers (providers/offload.py), which runs requests in worker
processes so that a run at 128 streams does not queue on one event loop. It sends prebuilt bytes and
parses no more than HTTP itself: no JSON, no SSE (the caller decodes the stamped blocks).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from time import perf_counter_ns

#: the most a response head (status line and headers) may take: a hostile server cannot fill the memory
MAX_HEAD = 64 * 1024
READ_BLOCK = 64 * 1024


class Connection:
    """One kept-alive connection to ``host:port`` (TLS when ``tls``), reopened after the server closes it."""

    def __init__(self, host: str, port: int, tls: bool, ssl_context: ssl.SSLContext | None = None,
                 connect_timeout: float | None = None) -> None:
        self.host, self.port, self.tls, self.ssl = host, port, tls, ssl_context
        self.connect_timeout = connect_timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        """Connect, unless the connection is open. Raises OSError (or TimeoutError) when it cannot."""
        if self.writer is None or self.writer.is_closing():
            context = None
            if self.tls:
                from .http import ssl_context

                context = self.ssl or ssl_context()
            async with asyncio.timeout(self.connect_timeout):
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port, ssl=context,
                                                                         limit=MAX_HEAD)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def read_head(reader: asyncio.StreamReader) -> tuple[int, list[tuple[str, str]]]:
    """The status and the headers (names lower-cased, in order) of a response."""
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = []
    for line in lines[1:]:
        k, sep, v = line.partition(":")
        if sep:
            headers.append((k.strip().lower(), v.strip()))
    return status, headers


def header(headers: list[tuple[str, str]] | dict[str, str], name: str) -> str:
    """A header's value ('' when absent); ``name`` lower-case."""
    items = headers.items() if isinstance(headers, dict) else headers
    return next((v for k, v in items if k == name), "")


async def chunked_blocks(reader: asyncio.StreamReader) -> AsyncIterator[tuple[int, bytes]]:
    """The payload blocks of a chunked body, each with the time its bytes were read."""
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return
        data = await reader.readexactly(size + 2)
        yield perf_counter_ns(), data[:-2]


async def plain_blocks(reader: asyncio.StreamReader, length: int | None) -> AsyncIterator[tuple[int, bytes]]:
    """The blocks of a body of known length (or up to the connection's end), each with its read time."""
    left = length
    while left is None or left > 0:
        data = await reader.read(READ_BLOCK if left is None else min(READ_BLOCK, left))
        if not data:
            if left:  # the connection ended before the length it announced
                raise asyncio.IncompleteReadError(b"", left)
            return
        if left is not None:
            left -= len(data)
        yield perf_counter_ns(), data


def body_blocks(reader: asyncio.StreamReader, headers: list[tuple[str, str]] | dict[str, str]
                ) -> AsyncIterator[tuple[int, bytes]]:
    """The body's blocks, as its headers frame it (chunked, a length, or up to the connection's end)."""
    if header(headers, "transfer-encoding").lower() == "chunked":
        return chunked_blocks(reader)
    length = header(headers, "content-length")
    return plain_blocks(reader, int(length) if length else None)


def keeps_alive(headers: list[tuple[str, str]] | dict[str, str]) -> bool:
    """Whether the connection may carry another request after this response."""
    if header(headers, "connection").lower() == "close":
        return False
    return bool(header(headers, "content-length") or header(headers, "transfer-encoding").lower() == "chunked")
