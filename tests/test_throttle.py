"""Adaptive concurrency: rate-limit headers, the lane's throttle, and runs against a rate-limited scripted server."""

from __future__ import annotations

import asyncio
import math
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tryouts import errors
from tryouts.engine.limits import RateBudget
from tryouts.engine.policy import GROW_TO, Policy
from tryouts.engine.throttle import MARGIN, LaneThrottle
from tryouts.providers.ratelimits import parse_duration, parse_rate_headers

# ---- the headers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "secs"), [
    ("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("0.5", 0.5), ("12", 12.0),
    ("", None), ("soon", None), ("1x", None), ("-3s", None), ("nan", None), ("inf", None), ("1s2", None),
])
def test_openai_durations(text, secs):
    assert parse_duration(text) == secs


def test_openai_headers():
    info = parse_rate_headers(httpx.Headers({
        "X-RateLimit-Limit-Requests": "500", "x-ratelimit-remaining-requests": "499",
        "x-ratelimit-reset-requests": "120ms", "x-ratelimit-limit-tokens": "30000",
        "x-ratelimit-remaining-tokens": "29000", "x-ratelimit-reset-tokens": "2s", "retry-after-ms": "250",
        "retry-after": "9"}))
    assert (info.requests_limit, info.requests_remaining, info.requests_reset_s) == (500, 499, 0.12)
    assert (info.tokens_limit, info.tokens_remaining, info.tokens_reset_s) == (30000, 29000, 2.0)
    assert info.retry_after_s == 0.25  # the exact wait wins over the rounded one


def test_anthropic_headers():
    now = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)
    info = parse_rate_headers({
        "anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": (now + timedelta(seconds=7)).isoformat().replace("+00:00", "Z"),
        "anthropic-ratelimit-tokens-limit": "40000", "anthropic-ratelimit-tokens-remaining": "100",
        "anthropic-ratelimit-tokens-reset": "2026-12-03T11:59:00Z", "retry-after": "7"}, now=now)
    assert (info.requests_limit, info.requests_remaining, info.requests_reset_s) == (50, 0, 7.0)
    assert (info.tokens_limit, info.tokens_remaining, info.tokens_reset_s) == (40000, 100, 0.0)  # past: now
    assert info.retry_after_s == 7.0


def test_hostile_headers_are_ignored_not_fatal():
    info = parse_rate_headers({
        "x-ratelimit-limit-requests": "nan", "x-ratelimit-remaining-requests": "-5", "x-ratelimit-reset-requests": "9" * 400,
        "x-ratelimit-limit-tokens": "0", "retry-after": "Tue, 99 Foo 2026"})
    assert info is not None
    assert info.requests_limit is None and info.requests_remaining is None
    assert info.requests_reset_s is None  # 1e400 s: not a number
    assert parse_rate_headers({"x-ratelimit-limit-requests": "5", "x-ratelimit-reset-requests": "99999999s"}
                              ).requests_reset_s == 86_400.0  # capped at a day, never an endless wait
    assert info.tokens_limit is None  # a zero limit would stop the lane for good
    assert info.retry_after_s is None
    assert parse_rate_headers({"content-type": "text/event-stream"}) is None
    assert parse_rate_headers({"retry-after": "3"}).retry_after_s == 3.0


@pytest.mark.parametrize(("value", "seconds"), [
    ("3", 3.0), ("0.5", 0.5), ("inf", None), ("nan", None), ("-5", None), ("1e400", None), ("soon", None),
    ("99999999", 86_400.0), ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0), ("", None), (None, None)])
def test_every_provider_reads_retry_after_the_same_bounded_way(value, seconds):
    from tryouts.providers.http import retry_after

    assert retry_after(value) == seconds  # what the OpenAI, Gemini and Bedrock paths use, like the throttle


# ---- the throttle, on a fake clock ------------------------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, s: float) -> None:
        self.now += s
        await asyncio.sleep(0)


def test_a_429_halves_once_per_round_trip_and_successes_grow_it_back():
    async def go():
        t = FakeTime()
        th = LaneThrottle(8, ceiling=8, clock=t.clock, sleep=t.sleep)
        starts = [th.started() for _ in range(8)]
        t.now = 1.0
        for s in starts:  # eight 429s of requests sent together: one signal, one decrease
            th.outcome(errors.RateLimitError("429"), s)
        assert th.slots == 4 and th.rate_limited == 8
        t.now = 2.0
        th.outcome(errors.RateLimitError("429"), th.started())  # sent after the decrease: a new signal
        assert th.slots == 2
        loop = asyncio.get_running_loop()

        def success():
            th._waiters.append(loop.create_future())  # a cell waits for a slot (woken by the growth)
            th.outcome(None, th.started())

        for _ in range(4):
            success()
        assert 2 < th.limit < 4  # additive: about +1 per round of `limit` answers
        for _ in range(400):
            success()
        assert th.slots == 8
        th.outcome(errors.ServerError("500"), th.started())  # not a rate limit: no decrease
        assert th.slots == 8

    asyncio.run(go())


def test_slow_start_grows_by_one_per_success_only_while_cells_wait():
    async def go():
        t = FakeTime()
        th = LaneThrottle(2, ceiling=GROW_TO, clock=t.clock, sleep=t.sleep)
        for _ in range(5):
            th.outcome(None, th.started())
        assert th.slots == 2  # nobody waits: no reason to grow
        loop = asyncio.get_running_loop()
        for _ in range(5):
            th._waiters.append(loop.create_future())
            th.outcome(None, th.started())
        assert th.slots == 7
        for _ in range(50):
            th._waiters.append(loop.create_future())
            th.outcome(None, th.started())
        assert th.slots == GROW_TO

    asyncio.run(go())


def test_retry_after_holds_the_whole_lane_and_headers_set_the_pace():
    async def go():
        t = FakeTime()
        reasons: list = []
        th = LaneThrottle(4, clock=t.clock, sleep=t.sleep, on_change=reasons.append)
        th.observe(429, {"x-ratelimit-limit-requests": "600"})  # 10 a second
        assert th.interval_s() == pytest.approx(1 / (10 * MARGIN))
        err = errors.RateLimitError("slow down", retry_after=3.0)
        th.outcome(err, th.started())
        assert reasons and "wait" in reasons[-1]
        await th.acquire()  # any cell, not only the one that got the 429, waits out the Retry-After
        assert t.now >= 3.0
        before = t.now
        th.release()
        for _ in range(3):
            await th.acquire()
            th.release()
        # paced: one start per interval, the first of them allowed one step early (a late start's catch-up)
        assert t.now - before == pytest.approx(2 * th.interval_s(), rel=0.01)

    asyncio.run(go())


def test_fixed_concurrency_when_not_adaptive():
    async def go():
        t = FakeTime()
        th = LaneThrottle(4, ceiling=64, adaptive=False, budget=RateBudget(requests=2, window_s=1.0,
                                                                            clock=t.clock, sleep=t.sleep),
                          clock=t.clock, sleep=t.sleep)
        th.observe(200, {"x-ratelimit-limit-requests": "6"})  # not read
        assert th.interval_s() == 0 and th.ceiling == 4
        th.outcome(errors.RateLimitError("429"), th.started())
        assert th.slots == 4
        for _ in range(3):  # the suite's hard budget still holds: 2 a second
            await th.acquire()
            th.release()
        assert t.now >= 1.0

    asyncio.run(go())


def test_policy_ceilings():
    p = Policy(concurrency={"anthropic": 3}, max_concurrency={"groq": 40}, adaptive={"mistral": False})
    assert p.limits_for("openai").max_concurrency == GROW_TO  # a remote API left alone may grow
    assert p.limits_for("anthropic").max_concurrency is None  # fixed by the suite
    assert p.limits_for("groq").max_concurrency == 40
    assert p.limits_for("openai", on_this_machine=True).max_concurrency is None  # never a local server
    assert p.limits_for("mistral").adaptive is False


# ---- against the scripted server -------------------------------------------------------------------------


def test_replay_server_sends_each_providers_headers(replay_server):
    root = replay_server.removesuffix("/v1")
    r = httpx.post(f"{replay_server}/chat/completions", json={
        "model": "rpm=120;tpm=6000;bucket=hdr-openai", "messages": [{"role": "user", "content": "hi"}]})
    info = parse_rate_headers(r.headers)
    assert r.status_code == 200
    assert (info.requests_limit, info.tokens_limit, info.requests_remaining) == (120, 6000, 1)  # 2 a second's burst
    r = httpx.post(f"{root}/anthropic/v1/messages", headers={"anthropic-version": "2023-06-01"}, json={
        "model": "rpm=60;bucket=hdr-anthropic", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200 and r.headers["anthropic-ratelimit-requests-limit"] == "60"
    r = httpx.post(f"{root}/anthropic/v1/messages", headers={"anthropic-version": "2023-06-01"}, json={
        "model": "rpm=60;bucket=hdr-anthropic", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(r.headers["retry-after"]) <= 2
    assert parse_rate_headers(r.headers).requests_remaining == 0


def _suite(tmp_path, base, script, rate, *, concurrency=4, cells=120, retries=""):
    (tmp_path / "n.csv").write_text("n\n" + "\n".join(str(i) for i in range(cells)) + "\n")
    suite = tmp_path / "s.yaml"
    suite.write_text(
        f'models:\n  - model: "openai-compat:{base}#{script}"\n    label: m\n'
        'prompts:\n  - "Q{{n}}"\ndataset: n.csv\n'
        f"concurrency: {{openai-compat: {concurrency}}}\nrate_limits: {{openai-compat: {rate}}}\n{retries}")
    return suite


def _rows(db):
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT count(*), coalesce(sum(ok), 0), max(attempts) FROM results").fetchone()
    finally:
        con.close()


def test_adaptive_lane_converges_with_few_429s_and_recovers_when_the_limit_is_raised(replay_server, tmp_path):
    root = replay_server.removesuffix("/v1")
    bucket = "converge"
    script = f"tokens=4;ttft_ms=20;rpm=300;bucket={bucket}"  # 5 a second
    suite = _suite(tmp_path, replay_server, script, "{max_concurrency: 32}", cells=160)
    db = tmp_path / "r.db"
    proc = subprocess.Popen([sys.executable, "-m", "tryouts", "run", str(suite), "--db", str(db), "--no-cache"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while httpx.get(f"{root}/_replay/limits").json().get(bucket, {}).get("admitted", 0) < 40:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        raised_at = time.perf_counter_ns()
        httpx.post(f"{root}/_replay/limits", json={"bucket": bucket, "rpm": 1800})  # 30 a second from now
        out, _ = proc.communicate(timeout=240)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert _rows(db)[:2] == (160, 160)
    report = httpx.get(f"{root}/_replay/limits").json()[bucket]
    assert report["refused"] <= 2, report  # under 1 % of the requests were answered 429 (the target)
    arrivals = [t for t, s in httpx.get(f"{root}/_replay/arrivals").json()["arrivals"] if s.endswith(script)]
    after = [t for t in arrivals if t > raised_at]
    rate_after = (len(after) - 1) / ((after[-1] - after[0]) / 1e9)
    assert rate_after > 10, rate_after  # twice the old limit: the lane learned the new one and grew to it
    assert "throttled" in out and "pacing at" in " ".join(out.split())  # progress says why the lane is held back


def test_fixed_lane_gets_429s_and_max_retries_zero_never_retries(replay_server, tmp_path):
    script = "tokens=4;ttft_ms=30;rpm=120;burst_s=1;bucket=noretry"  # 2 a second, 4 sent at once
    suite = _suite(tmp_path, replay_server, script, "{adaptive: false}", cells=12, retries="retries: {max: 0}\n")
    db = tmp_path / "r.db"
    p = subprocess.run([sys.executable, "-m", "tryouts", "run", str(suite), "--db", str(db), "--no-cache"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    n, ok, attempts = _rows(db)
    report = httpx.get(f"{replay_server.removesuffix('/v1')}/_replay/limits").json()["noretry"]
    assert n == 12 and attempts == 1 and ok < 12  # refused cells failed at once: no retry at all
    assert report["admitted"] + report["refused"] == 13  # the warm-up and one request per cell, nothing more
    assert math.isclose(report["admitted"], ok + 1)
