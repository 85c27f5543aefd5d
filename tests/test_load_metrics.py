"""tryouts load, its pure parts: the arrival schedule (load/arrivals.py) and a load point's figures
(load/metrics.py), checked against values computed by hand."""

import itertools
import math
import statistics
from decimal import Decimal

import pytest

from tryouts.errors import UsageError
from tryouts.load.arrivals import Ramp, arrival_offsets, paced_send
from tryouts.load.metrics import SLO, RequestRecord, max_concurrency_seen, summarize

MS = 1_000_000


# ---- the schedule --------------------------------------------------------------------------------------------


def test_a_constant_rate_is_an_absolute_schedule_from_zero():
    assert arrival_offsets(4, 2.0, arrival="constant") == [0.0, 0.5, 1.0, 1.5]
    assert arrival_offsets(3, math.inf) == [0.0, 0.0, 0.0]


def test_poisson_is_seeded_and_its_nth_request_lands_at_n_over_rate():
    a = arrival_offsets(500, 20.0, seed=7)
    assert a == arrival_offsets(500, 20.0, seed=7) and a != arrival_offsets(500, 20.0, seed=8)
    assert a[-1] == pytest.approx(500 / 20.0) and all(x <= y for x, y in itertools.pairwise(a))
    gaps = [y - x for x, y in zip([0.0, *a], a, strict=False)]
    cv = statistics.pstdev(gaps) / statistics.mean(gaps)
    assert 0.9 < cv < 1.1  # exponential gaps: coefficient of variation 1


@pytest.mark.parametrize("burstiness", [0.25, 4.0])
def test_burstiness_is_the_gamma_shape(burstiness):
    a = arrival_offsets(4000, 50.0, burstiness=burstiness, seed=1)
    gaps = [y - x for x, y in zip([0.0, *a], a, strict=False)]
    cv = statistics.pstdev(gaps) / statistics.mean(gaps)
    assert cv == pytest.approx(1 / math.sqrt(burstiness), rel=0.1)  # gamma(k): CV = 1/sqrt(k)


def test_a_ramp_sets_each_requests_rate_by_its_index():
    assert arrival_offsets(3, 0, arrival="constant", ramp=Ramp("linear", 1, 3)) == pytest.approx([0, 1, 1.5])
    assert arrival_offsets(3, 0, arrival="constant", ramp=Ramp("exponential", 1, 4)) == pytest.approx([0, 1, 1.5])
    assert Ramp("exponential", 1, 4).rate(1, 3) == pytest.approx(2.0)


@pytest.mark.parametrize(("kw", "words"), [
    ({"n": 0, "rate": 1}, "at least one request"),
    ({"n": 5, "rate": -2}, "must be positive"),
    ({"n": 5, "rate": 1, "burstiness": 0}, "Burstiness"),
    ({"n": 5, "rate": 0, "ramp": Ramp("exponential", 0, 4)}, "positive"),
])
def test_nonsense_schedules_are_refused_saying_why(kw, words):
    n, rate = kw.pop("n"), kw.pop("rate")
    with pytest.raises(UsageError, match=words):
        arrival_offsets(n, rate, **kw)


def test_a_held_request_never_goes_closer_than_one_interval_after_the_last_send():
    assert paced_send(due_s=1.0, now_s=2.0, last_send_s=1.95, rate=10) == pytest.approx(2.05)  # no burst
    assert paced_send(due_s=1.0, now_s=2.0, last_send_s=1.5, rate=10) == 2.0  # the interval has passed
    assert paced_send(due_s=3.0, now_s=2.0, last_send_s=1.99, rate=10) == 3.0  # on time: at its due time


# ---- one load point's figures ----------------------------------------------------------------------------------


def scripted() -> list[RequestRecord]:
    """Four requests, times in ms (see each line), 10 input tokens each, $0.001 each."""
    def rec(i, due, sent, chunks, out, status="ok", done=None):
        return RequestRecord(index=i, due_ns=due * MS, sent_ns=sent * MS, first_ns=chunks[0] * MS if chunks else None,
                             chunk_ns=[c * MS for c in chunks], done_ns=(done or (chunks[-1] if chunks else sent)) * MS,
                             input_tokens=10, output_tokens=out, status=status,
                             cost_usd=Decimal("0.001") if status == "ok" else None)
    return [
        rec(0, 0, 0, [50, 70, 90], 5),          # TTFT 50, E2E 90, TPOT 10, ITL 20 20: good
        rec(1, 100, 110, [260, 300], 3),        # TTFT 150 (> 100): not good; TPOT 20, ITL 40
        rec(2, 200, 200, [230], 1),             # TTFT 30, one token: TPOT counts as met: good
        rec(3, 300, 305, [], None, "error", done=310),
    ]


def test_a_load_points_figures_match_the_hand_computed_ones():
    s = summarize(scripted(), start_ns=0, end_ns=400 * MS, slo=SLO(ttft_ms=100, tpot_ms=20, e2el_ms=500))
    assert s["duration"] == pytest.approx(0.4)
    assert (s["completed"], s["failed"], s["incomplete"], s["num_prompts"]) == (3, 1, 0, 4)
    assert s["request_throughput"] == pytest.approx(7.5) and s["output_throughput"] == pytest.approx(22.5)
    assert s["total_token_throughput"] == pytest.approx(97.5)
    assert s["request_goodput"] == pytest.approx(5.0) and s["slo_attainment"] == pytest.approx(0.5)
    assert s["token_goodput"] == pytest.approx(15.0)
    assert s["mean_ttft_ms"] == pytest.approx(230 / 3) and s["median_ttft_ms"] == pytest.approx(50)
    assert s["std_ttft_ms"] == pytest.approx(math.sqrt(8266.666666 / 3), rel=1e-6)  # population std, as vLLM
    assert s["p99_ttft_ms"] == pytest.approx(50 + (150 - 50) * 0.98)  # linear interpolation
    assert s["mean_tpot_ms"] == pytest.approx(15) and s["mean_itl_ms"] == pytest.approx(80 / 3)
    assert s["mean_e2el_ms"] == pytest.approx((90 + 190 + 30) / 3)
    assert s["mean_scheduled_ttft_ms"] == pytest.approx((50 + 160 + 30) / 3)  # from the due time
    assert s["mean_dispatch_lag_ms"] == pytest.approx(15 / 4)
    assert s["max_concurrent_requests"] == 2
    assert s["cost_usd"] == "0.003" and s["cost_per_good_request_usd"] == pytest.approx(0.0015)
    assert s["cost_per_1m_output_tokens_usd"] == pytest.approx(0.003 * 1e6 / 9)
    assert "p99.9_itl_ms" in s and "p50_e2el_ms" in s


def test_without_slos_there_is_no_goodput_and_a_server_is_priced_by_the_hour():
    s = summarize(scripted(), start_ns=0, end_ns=400 * MS, hourly_usd=Decimal(36))
    assert s["request_goodput"] is None and s["slo_attainment"] is None and s["cost_per_good_request_usd"] is None
    assert Decimal(s["cost_usd"]) == Decimal("0.004")  # $36/h for 0.4 s


def test_an_unknown_price_stays_unknown_and_an_empty_point_has_no_figures():
    rows = scripted()
    rows[0].cost_usd = None
    assert summarize(rows, start_ns=0, end_ns=400 * MS)["cost_usd"] is None
    empty = summarize([], start_ns=0, end_ns=MS)
    assert empty["completed"] == 0 and empty["mean_ttft_ms"] is None and empty["max_concurrent_requests"] == 0


def test_concurrency_counts_requests_in_flight_an_end_before_a_start_at_the_same_instant():
    a = RequestRecord(0, 0, sent_ns=0, done_ns=10)
    b = RequestRecord(1, 0, sent_ns=10, done_ns=20)
    c = RequestRecord(2, 0, sent_ns=5, done_ns=15)
    assert max_concurrency_seen([a, b]) == 1 and max_concurrency_seen([a, b, c]) == 2


# ---- over-saturation ---------------------------------------------------------------------------------------------


def steady_or_queueing(queueing: bool, n: int = 40) -> list[RequestRecord]:
    """One request every 10 ms. Steady: each takes 25 ms. Queueing: each waits 5 ms longer than the last."""
    rows = []
    for i in range(n):
        sent = i * 10 * MS
        ttft = (20 + (5 * i if queueing else (i % 3))) * MS
        rows.append(RequestRecord(i, sent, sent_ns=sent, first_ns=sent + ttft, chunk_ns=[sent + ttft],
                                  done_ns=sent + ttft + 5 * MS, output_tokens=1, status="ok"))
    return rows


def test_a_point_whose_queue_and_ttft_keep_rising_is_over_saturated():
    from tryouts.load.saturation import over_saturated, significant_rise

    assert over_saturated(steady_or_queueing(True))
    assert not over_saturated(steady_or_queueing(False))
    assert summarize(steady_or_queueing(True), start_ns=0, end_ns=600 * MS)["over_saturated"] is True
    assert not significant_rise([0, 1, 2, 3, 4, 5, 6, 7], [5, 1, 6, 2, 7, 1, 5, 3])  # noise is not a rise
    assert not over_saturated(steady_or_queueing(True, n=15))  # too few requests to tell (20 at least)
    assert over_saturated(steady_or_queueing(True, n=20))
