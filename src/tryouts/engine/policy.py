"""How a run's cells are run: concurrency and rate limits per lane, retries, timeouts, cache use."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

from ..types import DEFAULT_FIRST_TOKEN_S, DEFAULT_TOTAL_S
from .limits import RateBudget


@dataclass(frozen=True)
class LaneLimits:
    """What one lane (one server of one provider) may have in flight and send.

    ``concurrency``: requests in flight at once. ``requests_per_minute`` and ``tokens_per_minute`` (input
    plus output tokens, counted from each answer's usage): budgets over a sliding minute, None for none.
    The limits hold for the lane as a whole, however many workers an executor spreads it over.
    """

    concurrency: int
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    #: the sliding window the budgets are held over, in seconds: a minute by default; a shorter one holds the same
    #: rate more evenly (12,000 a minute over 1 s is at most 200 in any second)
    window_s: float = 60.0
    #: the most requests in flight the lane may grow to while nothing is refused (None: ``concurrency``)
    max_concurrency: int | None = None
    #: read rate-limit headers, pace to them, and lower concurrency on 429s (engine/throttle.py)
    adaptive: bool = True

    def rate_budget(self) -> RateBudget | None:
        """This lane's :class:`~tryouts.engine.limits.RateBudget` (None without budgets)."""
        if not (self.requests_per_minute or self.tokens_per_minute):
            return None
        share = self.window_s / 60.0
        return RateBudget(self.requests_per_minute and self.requests_per_minute * share,
                          self.tokens_per_minute and self.tokens_per_minute * share, window_s=self.window_s)


#: a lane with this many concurrent requests is carried by a worker process by default: below it one event loop
#: keeps the reported TTFT within a millisecond of the truth (benchmarks/RESULTS.md, "tryouts run at 128 streams")
OFFLOAD_AT = 32
#: an adaptive remote API lane whose concurrency the suite leaves alone may grow to this many requests in flight
#: while the server refuses none (below :data:`OFFLOAD_AT`: it never needs a worker process)
GROW_TO = 16


@dataclass
class Policy:
    """How cells are run. Defaults suit commercial APIs; suites override them."""

    concurrency: dict[str, int] = field(default_factory=dict)
    default_concurrency: int = 4
    #: servers on this machine (a loopback URL) unless ``concurrency`` names their provider: llama.cpp's server
    #: aborts a running request when another arrives, and any local server shares the CPU with the others
    local_server_concurrency: int = 1
    #: budgets per provider name (see :class:`LaneLimits`); none by default
    requests_per_minute: dict[str, float] = field(default_factory=dict)
    tokens_per_minute: dict[str, float] = field(default_factory=dict)
    #: the window each provider's budgets hold over, in seconds (default: a minute, as providers count)
    rate_windows: dict[str, float] = field(default_factory=dict)
    #: per provider: whether its lanes adapt to the server (engine/throttle.py); on by default
    adaptive: dict[str, bool] = field(default_factory=dict)
    #: per provider: the concurrency an adaptive lane may grow to; by default :data:`GROW_TO` for a remote API
    #: whose concurrency the suite does not fix, else its concurrency
    max_concurrency: dict[str, int] = field(default_factory=dict)
    max_retries: int = 3
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    connect_timeout_s: float | None = None
    #: the suite's defaults (suite/settings.py), for every entry point: a server that trickles keep-alive bytes
    #: forever never reaches httpx's read timeout, so only these end it
    first_token_timeout_s: float | None = DEFAULT_FIRST_TOKEN_S
    total_timeout_s: float | None = DEFAULT_TOTAL_S
    use_cache: bool = True
    #: one cell at a time in the whole run (``tryouts compare --sequential``)
    sequential: bool = False
    #: worker processes that send and read the HTTP providers' streams (providers/offload.py): None (auto)
    #: gives one to a run with a lane of at least :data:`OFFLOAD_AT` concurrent requests, 0 never offloads,
    #: N gives N to a run with any HTTP lane
    client_processes: int | None = None
    #: send cells through the provider's batch API where it has one (docs/batch.md): True for every model, or
    #: the indices of the models that asked for it
    batch: bool | frozenset[int] = False
    #: seconds between two polls of a batch job
    batch_poll_s: float = 30.0

    def wants_batch(self, model_index: int) -> bool:
        """Whether model ``model_index``'s cells go through its provider's batch API (when it has one)."""
        return self.batch is True or (isinstance(self.batch, frozenset) and model_index in self.batch)

    def offload_workers(self, lane_concurrency: int) -> int:
        """How many worker processes should carry a lane with this concurrency (0: this event loop)."""
        if self.client_processes is not None:
            return max(0, int(self.client_processes))
        return 1 if lane_concurrency >= OFFLOAD_AT else 0

    def concurrency_for(self, provider: str, on_this_machine: bool = False, declared: int | None = None) -> int:
        """Requests in flight at once on one server of ``provider``: the limit set for it (a suite's
        ``concurrency``), else what its registry entry declares (``declared``), else 1 for a server on this
        machine, else the default."""
        if provider in self.concurrency:
            return max(1, int(self.concurrency[provider]))
        if declared is not None:
            return max(1, int(declared))
        return max(1, int(self.local_server_concurrency if on_this_machine else self.default_concurrency))

    def limits_for(self, provider: str, on_this_machine: bool = False, declared: int | None = None) -> LaneLimits:
        """The limits of one lane of ``provider`` (``declared``: its registry entry's concurrency)."""
        concurrency = 1 if self.sequential else self.concurrency_for(provider, on_this_machine, declared)
        ceiling = self.max_concurrency.get(provider)
        if ceiling is None and not (self.sequential or on_this_machine or provider in self.concurrency
                                    or declared is not None):
            ceiling = max(concurrency, GROW_TO)
        return LaneLimits(
            concurrency=concurrency,
            requests_per_minute=self.requests_per_minute.get(provider),
            tokens_per_minute=self.tokens_per_minute.get(provider),
            window_s=self.rate_windows.get(provider, 60.0),
            max_concurrency=None if self.sequential else ceiling,
            adaptive=self.adaptive.get(provider, True),
        )

    def backoff(self, attempt_no: int, retry_after: float | None) -> float | None:
        """Seconds to wait before try ``attempt_no + 1``: Retry-After when given, else 2^n backoff with jitter,
        never more than ``max_backoff_s``. None when the server asks for a longer wait: the cell then fails."""
        if retry_after is not None:
            if retry_after > self.max_backoff_s:
                return None
            return retry_after + random.uniform(0, min(0.1, self.max_backoff_s - retry_after))
        base = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt_no - 1))
        return base * random.uniform(0.5, 1.0)


@dataclass
class Progress:
    """Counts per model, updated as cells finish."""

    done: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    failed: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    cached: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    retries: int = 0
    #: cells left unrun because the run was cancelled (they have no row: a resume runs them)
    cancelled: int = 0
