"""Goodput search: the highest request rate whose SLO attainment stays at or above a target.

:func:`goodput_search` needs only ``evaluate(rate) -> attainment`` (a load point run at that rate). From a
starting rate it doubles while the target is met (or halves while it is not) until the target is bracketed
between a passing and a failing rate, then bisects until the bracket is within ``rel_tol`` of the passing
rate, or ``max_points`` load points are spent. Attainment counts every request of a point: errors and
incomplete requests are misses, so a server that fails under load cannot pass by failing fast. The answer
is the highest passing rate measured, never an interpolation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import UsageError


@dataclass
class SearchResult:
    """The highest passing rate (None when even the lowest tried failed) and every (rate, attainment) tried."""

    rate: float | None
    failing_rate: float | None
    points: list[tuple[float, float]] = field(default_factory=list)


def goodput_search(
    evaluate: Callable[[float], float],
    *,
    target: float,
    start_rate: float,
    rel_tol: float = 0.05,
    max_points: int = 12,
    min_rate: float = 0.01,
    max_rate: float = 100_000.0,
) -> SearchResult:
    """Bracket and bisect the highest rate with ``evaluate(rate) >= target`` (see the module doc)."""
    if not 0 < target <= 1:
        raise UsageError(f"The SLO attainment target is a fraction in (0, 1], e.g. 0.95, not {target:g}.")
    if not start_rate > 0:
        raise UsageError(f"The search needs a positive starting rate, not {start_rate:g}.")
    result = SearchResult(None, None)

    def run(rate: float) -> bool:
        attained = evaluate(rate)
        result.points.append((rate, attained))
        return attained >= target

    good: float | None = None
    bad: float | None = None
    rate = start_rate
    passed = run(rate)
    while len(result.points) < max_points:
        if passed:
            good = rate
            if bad is not None or rate * 2 > max_rate:
                break
            rate *= 2
        else:
            bad = rate
            if good is not None or rate / 2 < min_rate:
                break
            rate /= 2
        passed = run(rate)
    else:  # the budget ran out during the bracketing: take what the last point said
        if passed:
            good = max(good or 0, rate)
        else:
            bad = min(bad or rate, rate)
    while good is not None and bad is not None and (bad - good) / good > rel_tol and len(result.points) < max_points:
        mid = (good + bad) / 2
        if run(mid):
            good = mid
        else:
            bad = mid
    result.rate, result.failing_rate = good, bad
    return result
