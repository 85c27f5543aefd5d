"""The replay server's rate limits: token buckets of requests and tokens per minute, with the headers providers send.

A script with ``rpm=R`` and/or ``tpm=T`` is served from a bucket (``bucket=NAME``, default ``default``; every
request naming it shares it) that holds at most ``burst_s`` seconds of its rate and refills continuously: R/60
requests and T/60 tokens a second. A request costs one request and its script's ``prompt_tokens + tokens``
tokens, counted when it arrives (as OpenAI counts ``max_tokens`` at admission). One that does not fit gets a
429 with ``Retry-After`` (whole seconds, rounded up, as providers send it; the OpenAI route adds the exact
``retry-after-ms``) and is not served. ``fail_first`` and scripted statuses apply before the bucket.

Every answer of a limited script carries the limits as the provider sends them (``rl_headers=0``: none):
the OpenAI route ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` with OpenAI's durations (``1.5s``,
``6m0s``), the Anthropic dialect ``anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}`` with RFC 3339
times. ``POST /_replay/limits`` with ``{"bucket": NAME, "rpm": R, "tpm": T}`` changes a bucket's limits while
requests run (a test raises the limit and checks that the client speeds up again); ``GET /_replay/limits``
returns each bucket's limits and counts (``admitted``, ``refused``).
"""

from __future__ import annotations

import math
import time
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any

from .script import Script

__all__ = ["RATE_HEADERS", "Bucket", "admit_rate", "bucket_report", "set_limits"]

#: the rate-limit headers of the request being served (each request runs in its own task); wire.py adds them
#: to whatever the request is answered with
RATE_HEADERS: ContextVar[list[tuple[bytes, bytes]]] = ContextVar("tryouts_replay_rate_headers", default=[])  # noqa: B039
#: buckets kept at most (a script can name any bucket)
MAX_BUCKETS = 1000


class Bucket:
    """Requests and tokens per minute, each a continuously refilled bucket holding ``burst_s`` of its rate."""

    def __init__(self, rpm: float, tpm: float, burst_s: float) -> None:
        self.rpm, self.tpm, self.burst_s = rpm, tpm, burst_s
        self.requests = self.cap_requests
        self.tokens = self.cap_tokens
        self.at = time.monotonic()
        self.admitted = self.refused = 0

    @property
    def cap_requests(self) -> float:
        return max(1.0, self.rpm / 60.0 * self.burst_s) if self.rpm else math.inf

    @property
    def cap_tokens(self) -> float:
        return max(1.0, self.tpm / 60.0 * self.burst_s) if self.tpm else math.inf

    def refill(self, now: float) -> None:
        dt = max(0.0, now - self.at)
        self.at = now
        if self.rpm:
            self.requests = min(self.cap_requests, self.requests + dt * self.rpm / 60.0)
        if self.tpm:
            self.tokens = min(self.cap_tokens, self.tokens + dt * self.tpm / 60.0)

    def take(self, cost: int, now: float) -> float | None:
        """Admit one request costing ``cost`` tokens (None), or the seconds until it would fit."""
        self.refill(now)
        need = min(float(cost), self.cap_tokens)
        wait = 0.0
        if self.rpm and self.requests < 1.0:
            wait = (1.0 - self.requests) / (self.rpm / 60.0)
        if self.tpm and self.tokens < need:
            wait = max(wait, (need - self.tokens) / (self.tpm / 60.0))
        if wait > 0:
            self.refused += 1
            return wait
        if self.rpm:
            self.requests -= 1.0
        if self.tpm:
            self.tokens -= cost
        self.admitted += 1
        return None

    def full_in(self, which: str) -> float:
        """Seconds until the requests (``"requests"``) or tokens bucket is full again."""
        if which == "requests":
            return max(0.0, (self.cap_requests - self.requests) / (self.rpm / 60.0)) if self.rpm else 0.0
        return max(0.0, (self.cap_tokens - self.tokens) / (self.tpm / 60.0)) if self.tpm else 0.0


def _duration(secs: float) -> str:
    """OpenAI's way of writing a reset time: ``20ms``, ``1.5s``, ``6m0s``, ``1h2m3s``."""
    if secs < 1:
        return f"{max(0, round(secs * 1000))}ms"
    h, rest = divmod(secs, 3600)
    m, s = divmod(rest, 60)
    out = f"{int(h)}h" if h else ""
    out += f"{int(m)}m" if h or m else ""
    return out + (f"{s:.3g}s" if not (h or m) else f"{int(s)}s")


def _headers(b: Bucket, dialect: str) -> list[tuple[bytes, bytes]]:
    out: list[tuple[str, str]] = []
    now = datetime.now(UTC)
    for which, limit, level in (("requests", b.rpm, b.requests), ("tokens", b.tpm, b.tokens)):
        if not limit:
            continue
        remaining, reset = str(max(0, math.floor(level))), b.full_in(which)
        if dialect == "anthropic":
            when = (now + timedelta(seconds=reset)).isoformat(timespec="seconds").replace("+00:00", "Z")
            out += [(f"anthropic-ratelimit-{which}-limit", str(int(limit))),
                    (f"anthropic-ratelimit-{which}-remaining", remaining), (f"anthropic-ratelimit-{which}-reset", when)]
        else:
            out += [(f"x-ratelimit-limit-{which}", str(int(limit))), (f"x-ratelimit-remaining-{which}", remaining),
                    (f"x-ratelimit-reset-{which}", _duration(reset))]
    return [(k.encode(), v.encode()) for k, v in out]


def _bucket(app: Any, s: Script) -> Bucket:
    buckets: dict[str, Bucket] = app.__dict__.setdefault("rate_buckets", {})
    b = buckets.get(s.bucket)
    if b is None:
        if len(buckets) >= MAX_BUCKETS:
            buckets.pop(next(iter(buckets)))
        b = buckets[s.bucket] = Bucket(float(s.rpm), float(s.tpm), s.burst_s)
    return b


def admit_rate(app: Any, s: Script, dialect: str) -> tuple[float | None, list[tuple[bytes, bytes]]]:
    """Take a request of script ``s`` from its bucket: ``(None, headers)`` when admitted, else ``(retry-after
    seconds, headers)`` with the 429's headers. No limit in the script: ``(None, [])``. The headers are also
    set for the request's answer (:data:`RATE_HEADERS`)."""
    if not (s.rpm or s.tpm):
        return None, []
    b = _bucket(app, s)
    wait = b.take(s.prompt_tokens + s.tokens, time.monotonic())
    headers = _headers(b, dialect) if s.rl_headers else []
    if wait is not None:
        headers.append((b"retry-after", str(max(1, math.ceil(wait))).encode()))
        if dialect == "openai":
            headers.append((b"retry-after-ms", str(max(1, math.ceil(wait * 1000))).encode()))
    RATE_HEADERS.set(headers)
    return wait, headers


def set_limits(app: Any, req: Any) -> dict[str, Any] | str:
    """``POST /_replay/limits``: change a bucket's ``rpm``/``tpm`` (made when missing); an error message when
    the body is not ``{"bucket": str, "rpm": number >= 0, "tpm": number >= 0}``."""
    if not isinstance(req, dict) or not isinstance(req.get("bucket", "default"), str):
        return "want {\"bucket\": NAME, \"rpm\": R, \"tpm\": T}"
    values = {k: req[k] for k in ("rpm", "tpm") if k in req}
    if any(not isinstance(v, int | float) or isinstance(v, bool) or not 0 <= v < 1e12 for v in values.values()):
        return "rpm and tpm must be numbers >= 0"
    s = Script(bucket=req.get("bucket", "default"))
    s.rpm, s.tpm = int(values.get("rpm", 0)), int(values.get("tpm", 0))
    b = _bucket(app, s)
    b.refill(time.monotonic())
    b.rpm, b.tpm = float(values.get("rpm", b.rpm)), float(values.get("tpm", b.tpm))
    b.requests, b.tokens = min(b.requests, b.cap_requests), min(b.tokens, b.cap_tokens)
    return bucket_report(app)


def bucket_report(app: Any) -> dict[str, Any]:
    """``GET /_replay/limits``: every bucket's limits and counts."""
    buckets: dict[str, Bucket] = app.__dict__.get("rate_buckets", {})
    return {name: {"rpm": b.rpm, "tpm": b.tpm, "burst_s": b.burst_s, "admitted": b.admitted, "refused": b.refused}
            for name, b in buckets.items()}
