"""The replay server's scripts: ``key=value;key=value`` in the request's model name, parsed into a :class:`Script`.

The keys, their defaults and the schedule they fix are listed in :mod:`tryouts.testing.replay`'s docstring.
Every route (the OpenAI one and each dialect) reads the same grammar with :func:`parse_script`; a dialect
may take a key of its own out first (Anthropic's ``cache_write``).
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["ECHOED_HEADERS", "Script", "ScriptError", "auth_echo", "parse_script"]

#: the request headers ``echo_auth=1`` repeats in an error body (a careless proxy's echo)
ECHOED_HEADERS = (b"authorization", b"x-api-key", b"api-key", b"x-goog-api-key")

class ScriptError(ValueError):
    """A bad script: ``key`` names the offending key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(slots=True)
class Script:
    """A parsed scenario; see the module docstring for the meaning of each field."""

    tokens: int = 8
    ttft_ms: float = 0.0
    itl_ms: float = 0.0
    per_chunk: int = 1
    role_first: bool = True
    reasoning: int = 0
    usage: str = "auto"
    prompt_tokens: int = 11
    cached: int = 0
    finish: str = "stop"
    cut_after: int = -1
    status: int = 200
    retry_after: str | None = None
    quota: bool = False
    timings: bool = False
    id: str | None = None
    fail_first: int = 0
    batch_polls: int = 1
    expire: int = 0
    batch_junk: bool = False
    model: str = "replay"
    text: str | None = None
    completion_tokens: str | None = None
    echo_auth: bool = False
    capacity: int = 0
    rpm: int = 0
    tpm: int = 0
    burst_s: float = 1.0
    bucket: str = "default"
    rl_headers: bool = True

    @property
    def n_content_chunks(self) -> int:
        return -(-self.tokens // self.per_chunk)

    def token_text(self, i: int) -> str:
        """The text of output token ``i``."""
        return _words(self.text)[i] if self.text is not None else f" w{i}"

    def full_text(self) -> str:
        """The whole answer."""
        return self.text if self.text is not None else "".join(f" w{i}" for i in range(self.tokens))

    def content_piece(self, k: int) -> str:
        """The text of content chunk ``k``."""
        lo = k * self.per_chunk
        return "".join(self.token_text(i) for i in range(lo, min(lo + self.per_chunk, self.tokens)))

    def reasoning_text(self, n: int | None = None) -> str:
        """The whole reasoning, `` r0 r1 ...``: ``n`` chunks (default ``reasoning``)."""
        return "".join(f" r{j}" for j in range(self.reasoning if n is None else n))

    @property
    def ttft_ns(self) -> int:
        return int(self.ttft_ms * 1e6)

    @property
    def itl_ns(self) -> int:
        return int(self.itl_ms * 1e6)

    def answer_due(self, recv_ns: int, reasoning: int | None = None) -> int:
        """When the last reasoning or content chunk is due: a non-streamed answer is sent then.

        ``reasoning``: the reasoning chunks that take their turn (default ``reasoning``; Ollama's
        ``"think": false`` skips them).
        """
        chunks = (self.reasoning if reasoning is None else reasoning) + self.n_content_chunks
        return recv_ns + self.ttft_ns + max(0, chunks - 1) * self.itl_ns

    def refused(self, stream: bool) -> bool:
        """Whether a scripted error status is answered at once: with ``cut_after`` a stream starts and
        reports it mid-stream instead (in the dialects whose streams carry error events)."""
        return self.status != 200 and not (stream and self.cut_after >= 0)


@functools.lru_cache(maxsize=256)
def _words(text: str) -> list[str]:
    """``text`` cut into words, each with the whitespace before it (joined, they give ``text`` back)."""
    words = re.findall(r"\s*\S+", text)
    tail = text[sum(map(len, words)):]
    if tail and words:
        words[-1] += tail
    return words or ([text] if text else [])


def _int(lo: int, hi: int | None = None) -> Callable[[str, str], int]:
    def conv(key: str, value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            try:
                f = float(value)
            except ValueError:
                raise ScriptError(key, f"script key {key!r} wants an integer, not {value!r}") from None
            if not f.is_integer():
                raise ScriptError(key, f"script key {key!r} wants an integer, not {value!r}") from None
            n = int(f)
        if n < lo or (hi is not None and n > hi):
            bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
            raise ScriptError(key, f"script key {key!r} must be {bound}, not {value!r}")
        return n

    return conv


def _ms(key: str, value: str) -> float:
    try:
        f = float(value)
    except ValueError:
        raise ScriptError(key, f"script key {key!r} wants milliseconds, not {value!r}") from None
    if not 0 <= f < 86_400_000:  # also refuses nan and inf
        raise ScriptError(key, f"script key {key!r} must be >= 0 ms (and under a day), not {value!r}")
    return f


def _seconds(key: str, value: str) -> float:
    try:
        f = float(value)
    except ValueError:
        raise ScriptError(key, f"script key {key!r} wants seconds, not {value!r}") from None
    if not 0 < f <= 3600:  # also refuses nan and inf
        raise ScriptError(key, f"script key {key!r} must be above 0 s and at most 3600 s, not {value!r}")
    return f


def _flag(key: str, value: str) -> bool:
    if value in ("0", "1"):
        return value == "1"
    raise ScriptError(key, f"script key {key!r} wants 0 or 1, not {value!r}")


def _choice(*options: str) -> Callable[[str, str], str]:
    def conv(key: str, value: str) -> str:
        if value not in options:
            raise ScriptError(key, f"script key {key!r} wants one of {', '.join(options)}; not {value!r}")
        return value

    return conv


def _text(key: str, value: str) -> str:
    if not value:
        raise ScriptError(key, f"script key {key!r} wants a value")
    return value


def _status(key: str, value: str) -> int:
    n = _int(200, 599)(key, value)
    if n != 200 and n < 400:
        raise ScriptError(key, f"script key {key!r} wants 200 or an error status (400-599), not {value!r}")
    return n


_CONVERTERS: dict[str, Callable[[str, str], Any]] = {
    "tokens": _int(0, 1_000_000),
    "ttft_ms": _ms,
    "itl_ms": _ms,
    "per_chunk": _int(1),
    "role_first": _flag,
    "reasoning": _int(0, 1_000_000),
    "usage": _choice("auto", "always", "never"),
    "prompt_tokens": _int(0),
    "cached": _int(0),
    "finish": _text,
    "cut_after": _int(-1),
    "status": _status,
    "retry_after": _text,
    "quota": _flag,
    "timings": _flag,
    "id": _text,
    "fail_first": _int(0),
    "batch_polls": _int(1, 100_000),
    "expire": _int(0),
    "batch_junk": _flag,
    "model": _text,
    "text": lambda key, value: urllib.parse.unquote(value),
    "completion_tokens": _text,
    "echo_auth": _flag,
    "capacity": _int(0, 100_000),
    "rpm": _int(0, 10**9),
    "tpm": _int(0, 10**12),
    "burst_s": _seconds,
    "bucket": _text,
    "rl_headers": _flag,
}
assert set(_CONVERTERS) == {f.name for f in fields(Script)}


def auth_echo(scope: dict[str, Any] | None, bearer: str | None = None) -> str:
    """What ``echo_auth=1`` adds to an error message: the request's credentials as a careless server or proxy
    echoes them (`` (request headers: authorization: Bearer sk-...; x-api-key: ...)``), its ``key=`` query
    parameter too; ``bearer`` stands for the Authorization header when there is no ``scope``. Empty when
    the request carried none."""
    parts: list[str] = []
    if scope is not None:
        for name, value in scope.get("headers") or ():
            if name.lower() in ECHOED_HEADERS:
                parts.append(f"{name.decode('latin-1')}: {value.decode('latin-1')}")
        query = urllib.parse.parse_qs((scope.get("query_string") or b"").decode("latin-1"))
        parts += [f"key={v}" for v in query.get("key", ())]
    elif bearer:
        parts.append(f"authorization: Bearer {bearer}")
    if not parts:
        return ""
    # and the bare values, as a server that says "invalid key: <key>" shows them (no header name to spot)
    bare = [p.partition(": ")[2].split(" ")[-1] if ": " in p else p.partition("=")[2] for p in parts]
    return f" (request headers: {'; '.join(parts)}) (credentials seen: {' '.join(bare)})"


def parse_script(model: str) -> Script:
    """Parse a ``key=value;key=value`` script; :class:`ScriptError` names an unknown key or a bad value.

    A part without ``=`` is the model name (``gpt-4o-mini`` alone is a valid script: all defaults).
    """
    values: dict[str, Any] = {}
    for part in model.split(";"):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep:
            values["model"] = key
            continue
        conv = _CONVERTERS.get(key)
        if conv is None:
            raise ScriptError(key, f"unknown script key {key!r}; known keys: {', '.join(_CONVERTERS)}")
        values[key] = conv(key, value)
    script = Script(**values)
    if script.text is not None:
        script.tokens = len(_words(script.text))
    if script.cached > script.prompt_tokens:
        raise ScriptError("cached", f"script key 'cached' ({script.cached}) exceeds prompt_tokens ({script.prompt_tokens})")
    return script

