"""Scoring never runs on the event loop (the dashboard audit of 2026-12-04: a regex assertion on a long answer
held the dashboard for its whole time limit, and every stream in flight was stamped late meanwhile)."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

from tryouts.engine import scores
from tryouts.scoring.assertions import regex_search
from tryouts.types import Request, Result


def test_a_case_with_checks_is_scored_in_a_worker_thread(monkeypatch):
    seen: list[threading.Thread] = []
    monkeypatch.setattr(scores, "case_scores", lambda case, result: seen.append(threading.current_thread()) or {})
    result = Result(model="m:x", provider="m", model_name="x", ok=True, started_at=datetime.now(UTC),
                    request=Request(messages=[]))

    async def go():
        loop_thread = threading.current_thread()
        got = await scores.scores_off_loop({"asserts": [{"type": "contains", "value": "a"}]}, result)
        none = await scores.scores_off_loop({"vars": {}}, result)  # nothing to score: no thread, no scores
        return loop_thread, got, none

    loop_thread, got, none = asyncio.run(go())
    assert got == {} and none is None
    assert len(seen) == 1 and seen[0] is not loop_thread


def test_an_empty_answer_is_searched_without_the_worker(monkeypatch):
    from tryouts.scoring import assertions

    def busy(*args, **kwargs):
        raise AssertionError("an empty answer waited for the regex worker")

    monkeypatch.setattr(assertions._worker, "search", busy)
    assert regex_search(r"^(a+)+$", "") is None
    assert regex_search(r"^$", "") == ""
