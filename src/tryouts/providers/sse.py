"""An incremental server-sent-events decoder.

Our own, rather than a library's, so that each event is stamped with ``perf_counter_ns`` the moment
its terminating blank line is parsed: that stamp is what TTFT and ITL are computed from.
Follows the WHATWG event-stream rules: ``\\n``, ``\\r\\n`` and ``\\r`` line ends; lines starting with
``:`` are comments; ``data`` lines of one event are joined with ``\\n``; a field without a colon has an
empty value; one leading space after the colon is dropped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from time import perf_counter_ns

from ..errors import BadResponseError

#: one event (its unfinished line, or its data lines before the blank line that ends it) may hold at most
#: this many bytes: a server that never ends a line or an event cannot fill the memory
MAX_EVENT_BYTES = 16 * 1024 * 1024


@dataclass(slots=True)
class SSEEvent:
    """One dispatched event and the moment it was parsed."""

    data: str
    event: str = "message"
    id: str | None = None
    t_ns: int = 0


class SSEDecoder:
    """Feed it bytes as they arrive; it returns the events completed by those bytes."""

    __slots__ = ("_buf", "_data", "_data_len", "_event", "_id", "_pending_cr")

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[str] = []
        self._data_len = 0
        self._event = ""
        self._id: str | None = None
        self._pending_cr = False

    def feed(self, chunk: bytes, t_ns: int | None = None) -> list[SSEEvent]:
        """Decode ``chunk`` and return every event it completes, each stamped now (or ``t_ns``: when the
        bytes were read, by a worker process: providers/offload.py)."""
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the \n of a \r\n split across two chunks
        self._pending_cr = False
        buf = self._buf + chunk
        if b"\r" in buf:
            if buf.endswith(b"\r"):
                self._pending_cr = True
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, self._buf = buf.split(b"\n")
        if len(self._buf) > MAX_EVENT_BYTES:
            raise self._too_long("line")
        out: list[SSEEvent] = []
        for raw in lines:
            ev = self._line(raw.decode("utf-8", errors="replace"))
            if ev is not None:
                ev.t_ns = t_ns if t_ns is not None else perf_counter_ns()
                out.append(ev)
        return out

    def flush(self) -> list[SSEEvent]:
        """End of stream: an event not followed by a blank line is dropped, per the spec."""
        self._buf = b""
        self._data, self._event, self._id, self._data_len = [], "", None, 0
        return []

    @staticmethod
    def _too_long(what: str) -> BadResponseError:
        return BadResponseError(
            f"The server sent one {what} of more than {MAX_EVENT_BYTES // (1024 * 1024)} MB without ending it: not a "
            "well-formed event stream (no model answers like that). The request is counted as failed; check the "
            "server or its proxy.")

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            if not self._data and not self._event:
                return None
            ev = SSEEvent(data="\n".join(self._data), event=self._event or "message", id=self._id)
            self._data, self._event, self._data_len = [], "", 0
            return ev
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data_len += len(value) + 1
            if self._data_len > MAX_EVENT_BYTES:
                raise self._too_long("event")
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        return None


async def aiter_sse(byte_stream: AsyncIterator[bytes]) -> AsyncIterator[SSEEvent]:
    """Decode an async byte stream into stamped events."""
    decoder = SSEDecoder()
    async for chunk in byte_stream:
        for ev in decoder.feed(chunk):
            yield ev
