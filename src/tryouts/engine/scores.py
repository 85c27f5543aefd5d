"""Scoring a result as it arrives: a suite case's assertions and reference metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from ..types import Result


def needs_scores(case: dict | None) -> bool:
    """Whether a result of ``case`` is scored as it arrives (it has assertions or an expected answer)."""
    return bool(case and (case.get("asserts") or case.get("expected") is not None))


def warm_scoring(cases: Iterable[dict | None]) -> None:
    """Import the scoring libraries before any request is timed when any of ``cases`` needs scores."""
    if any(needs_scores(c) for c in cases):
        from ..scoring.score import warm_reference_metrics

        warm_reference_metrics()


def case_scores(case: dict | None, result: Result) -> dict | None:
    """Quality scores for a result whose case has assertions or an expected answer (imported only then)."""
    if not needs_scores(case):
        return None
    from ..scoring.score import score_result

    cost = float(result.cost.total) if result.cost.total is not None else None
    return score_result(case, text=result.text, ok=result.ok, e2e_ms=result.timing.e2e_ms, cost_usd=cost)


async def scores_off_loop(case: dict | None, result: Result) -> dict | None:
    """:func:`case_scores` in a worker thread: scoring (a regex bounded at seconds, an edit distance over a long
    answer) never holds the event loop, where other requests are being streamed and stamped."""
    if not needs_scores(case):
        return None
    return await asyncio.to_thread(case_scores, case, result)
