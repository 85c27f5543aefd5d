"""One table from an HTTP error status to a Tryouts error, for every HTTP provider.

A provider reads its own error body (each has its own shape) into ``what`` (``HTTP 404: model not
found``, with whatever else it says) and calls :func:`status_error`. The status picks the error, and its
category (errors.py: transient errors are retried, permanent ones are not):

======================  ====================  ==========  ========================================
status                  error                 category    message
======================  ====================  ==========  ========================================
401, 403                AuthError             permanent   refused the key; check the key variable
402                     BadRequestError       permanent   refused the request for billing
404                     ModelNotFoundError    permanent   has no model ...
408                     RequestTimeoutError   transient   did not answer in time
429                     RateLimitError        transient   is rate limiting; Retry-After honoured
499, 500-599 (529)      ServerError           transient   failed; try again later
any other 4xx           BadRequestError       permanent   refused the request
======================  ====================  ==========  ========================================

``hints`` adds a provider's own advice, keyed by status or by kind (``auth``, ``billing``,
``model_not_found``, ``timeout``, ``rate_limit``, ``server``, ``bad_request``); a provider with a rule of
its own (Anthropic's 529 ``overloaded_error``, a Gemini 400 that says the key is invalid) handles it
before calling the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import errors

#: status -> kind, beyond the ranges (4xx: bad_request, 5xx: server)
STATUS_KINDS: dict[int, str] = {
    401: "auth", 403: "auth", 402: "billing", 404: "model_not_found", 408: "timeout", 429: "rate_limit",
    499: "server",
}


def status_kind(status: int) -> str:
    """The kind of error an HTTP status means (see the table above)."""
    if status in STATUS_KINDS:
        return STATUS_KINDS[status]
    return "server" if status >= 500 else "bad_request"


def status_error(
    status: int,
    *,
    where: str,
    what: str,
    model: str,
    key_env: str | None = None,
    hints: Mapping[int | str, str] | None = None,
    retry_after_s: float | None = None,
    url: str | None = None,
    provider: str | None = None,
    kind: str | None = None,
) -> errors.ProviderError:
    """The error for an HTTP error answer from ``where`` (a label with the base URL) about ``model``.

    ``what``: what the server said (``HTTP 429: slow down``); ``key_env``: the key's variable, named in an
    auth error; ``retry_after_s``: the wait the server asked for (a 429); ``kind``: overrides the status's
    kind where the body says more than the status (a 400 whose body says the key is invalid is ``auth``).
    """
    hints = hints or {}
    kind = kind or status_kind(status)
    hint = hints.get(status) or hints.get(kind)
    about: dict[str, Any] = {"status": status, "provider": provider, "model": model, "url": url}
    if kind == "auth":
        advice = hint or (f"check {key_env}" if key_env else "check the server's key")
        return errors.AuthError(f"{where} refused the key ({what}); {advice}.", **about)
    if kind == "billing":
        advice = hint or "check the account's billing"
        return errors.BadRequestError(f"{where} refused the request for billing ({what}); {advice}.", **about)
    if kind == "model_not_found":
        advice = f"; {hint}" if hint else "; check the name and the base URL"
        return errors.ModelNotFoundError(f"{where} has no model {model!r} ({what}){advice}.", **about)
    if kind == "timeout":
        advice = hint or "try again, or check the server"
        return errors.RequestTimeoutError(f"{where} timed out ({what}); {advice}.", **about)
    if kind == "rate_limit":
        wait = f" Retry after {retry_after_s:g} s." if retry_after_s is not None else ""
        advice = hint or "Lower the concurrency or wait."
        return errors.RateLimitError(f"{where} is rate limiting ({what}).{wait} {advice}", retry_after=retry_after_s,
                                     **about)
    if kind == "server":
        advice = hint or "try again later"
        return errors.ServerError(f"{where} failed ({what}); {advice}.", **about)
    advice = f" {hint}" if hint else ""
    return errors.BadRequestError(f"{where} refused the request ({what}).{advice}", **about)
