"""The rate-limit headers providers send with every answer, read into one shape.

* OpenAI (and the services that copy its headers): ``x-ratelimit-limit-requests``,
  ``x-ratelimit-remaining-requests``, ``x-ratelimit-reset-requests`` (a duration: ``1s``, ``6m0s``, ``20ms``),
  and the same three for ``-tokens``.
* Anthropic: ``anthropic-ratelimit-requests-limit``, ``-remaining``, ``-reset`` (an RFC 3339 time), and the
  same for ``anthropic-ratelimit-tokens-*`` (the most restrictive token limit in effect).
* ``Retry-After`` (seconds or an HTTP date) and ``retry-after-ms``, on a 429 or a 503.

Limits are per minute, as both providers count. A value that is not a finite, non-negative number is ignored:
a server's headers are input from outside, and one absurd value must not stop a run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["RateHeaders", "parse_duration", "parse_rate_headers", "retry_after_s"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
#: no reset or wait longer than a day is believed
_MAX_WAIT_S = 86_400.0


@dataclass(frozen=True, slots=True)
class RateHeaders:
    """What one answer's headers said about the lane's limits (None: not sent)."""

    requests_limit: float | None = None
    requests_remaining: float | None = None
    requests_reset_s: float | None = None
    tokens_limit: float | None = None
    tokens_remaining: float | None = None
    tokens_reset_s: float | None = None
    retry_after_s: float | None = None


def parse_duration(value: str) -> float | None:
    """Seconds in an OpenAI duration (``6m0s``, ``1.5s``, ``20ms``, ``1h2m``), or a bare number of seconds."""
    value = value.strip()
    try:
        return _finite(float(value))
    except ValueError:
        pass
    total, pos = 0.0, 0
    for m in _DURATION.finditer(value):
        if m.start() != pos:
            return None
        n = float(m.group(1))
        total += n * {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}[m.group(2)]
        pos = m.end()
    return _finite(total) if pos == len(value) and pos else None


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) and x >= 0 else None


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return _finite(float(value.strip()))
    except ValueError:
        return None


def _until(value: str | None, now: datetime) -> float | None:
    """Seconds from ``now`` to an RFC 3339 time (Anthropic's resets), or a duration (OpenAI's)."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        secs = parse_duration(value)
    else:
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        secs = max(0.0, (when - now).total_seconds())
    return min(secs, _MAX_WAIT_S) if secs is not None else None


def retry_after_s(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (a number or an HTTP date) in lower-cased
    ``headers``; None when absent or unreadable. Finite, never negative, at most a day."""
    now = now or datetime.now(UTC)
    ms = _number(headers.get("retry-after-ms"))
    if ms is not None:
        return min(ms / 1000.0, _MAX_WAIT_S)
    value = headers.get("retry-after")
    if value is None:
        return None
    secs = _number(value)
    if secs is None:
        from email.utils import parsedate_to_datetime

        try:
            secs = max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
        except (TypeError, ValueError, IndexError):
            return None
    return min(secs, _MAX_WAIT_S)


def parse_rate_headers(headers: Mapping[str, str], now: datetime | None = None) -> RateHeaders | None:
    """The rate-limit information in ``headers`` (case-insensitive, as httpx gives them), or None when there is
    none. ``now``: the wall-clock time Anthropic's reset times are counted from (default: now)."""
    now = now or datetime.now(UTC)
    h = {k.lower(): v for k, v in headers.items()} if not hasattr(headers, "get_list") else headers
    get = h.get
    if get("x-ratelimit-limit-requests") is not None or get("x-ratelimit-limit-tokens") is not None:
        info = RateHeaders(
            requests_limit=_number(get("x-ratelimit-limit-requests")),
            requests_remaining=_number(get("x-ratelimit-remaining-requests")),
            requests_reset_s=_until(get("x-ratelimit-reset-requests"), now),
            tokens_limit=_number(get("x-ratelimit-limit-tokens")),
            tokens_remaining=_number(get("x-ratelimit-remaining-tokens")),
            tokens_reset_s=_until(get("x-ratelimit-reset-tokens"), now),
            retry_after_s=retry_after_s(h, now),
        )
    elif get("anthropic-ratelimit-requests-limit") is not None or get("anthropic-ratelimit-tokens-limit") is not None:
        info = RateHeaders(
            requests_limit=_number(get("anthropic-ratelimit-requests-limit")),
            requests_remaining=_number(get("anthropic-ratelimit-requests-remaining")),
            requests_reset_s=_until(get("anthropic-ratelimit-requests-reset"), now),
            tokens_limit=_number(get("anthropic-ratelimit-tokens-limit")),
            tokens_remaining=_number(get("anthropic-ratelimit-tokens-remaining")),
            tokens_reset_s=_until(get("anthropic-ratelimit-tokens-reset"), now),
            retry_after_s=retry_after_s(h, now),
        )
    else:
        wait = retry_after_s(h, now)
        return RateHeaders(retry_after_s=wait) if wait is not None else None
    if info.requests_limit == 0:  # a zero limit would stop the lane for good: not believed
        info = RateHeaders(None, None, None, info.tokens_limit, info.tokens_remaining, info.tokens_reset_s,
                           info.retry_after_s)
    if info.tokens_limit == 0:
        info = RateHeaders(info.requests_limit, info.requests_remaining, info.requests_reset_s, None, None, None,
                           info.retry_after_s)
    return info
