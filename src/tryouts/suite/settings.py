"""A suite's run settings that are plain numbers and switches: retries, rate limits, timeouts (docs/suites.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..types import DEFAULT_FIRST_TOKEN_S, DEFAULT_TOTAL_S

__all__ = ["RateLimit", "Retries", "Timeouts"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class Retries(_Strict):
    """Retrying failures that may pass on a second try (rate limits, server errors, timeouts, cut streams)."""

    max: int = Field(default=3, ge=0, description="Retries after the first try; 0 never retries.")
    backoff_s: float = Field(
        default=1.0, ge=0, description="Seconds to wait before the first retry; later waits grow exponentially.",
    )
    max_backoff_s: float = Field(default=30.0, ge=0, description="The longest wait between two tries, in seconds.")


class RateLimit(_Strict):
    """One provider's budget over a sliding minute, for the whole run (every worker of a cluster together), and
    how its lanes adapt to the server (docs/batch.md, "Adaptive concurrency")."""

    requests_per_minute: float | None = Field(default=None, gt=0, description="Requests started per minute.")
    tokens_per_minute: float | None = Field(
        default=None, gt=0, description="Input plus output tokens per minute, counted from each answer's usage.")
    window_s: float = Field(
        default=60.0, gt=0, le=3600, description="The sliding window the budgets hold over, in seconds: a shorter "
        "one spreads the same rate evenly (12000 a minute over 1 s is at most 200 in any second).")
    adaptive: bool = Field(
        default=True, description="Read the server's rate-limit headers and pace to them, lower concurrency on "
        "429s and raise it again slowly. false: fixed concurrency, and only the cell that got a 429 waits.")
    max_concurrency: int | None = Field(
        default=None, ge=1, le=1024, description="The most requests in flight an adaptive lane grows to while the "
        "server refuses none. Default: 16 for a remote API whose concurrency the suite leaves alone, else its "
        "concurrency.")


class Timeouts(_Strict):
    """Time limits of one request, in seconds; null means no limit."""

    connect_s: float | None = Field(default=10.0, gt=0, description="To open the connection to an API.")
    first_token_s: float | None = Field(default=DEFAULT_FIRST_TOKEN_S, gt=0,
                                        description="From sending the request to the first token.")
    total_s: float | None = Field(default=DEFAULT_TOTAL_S, gt=0, description="From sending the request to the last token.")
