"""stats: percentiles like numpy's default, describe, and the per-model summary."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from tryouts.stats import decimal_str, describe, percentile, summarize


def test_percentile_interpolates_linearly_like_numpy():
    xs = [1, 2, 3, 4]
    assert percentile(xs, 0) == 1
    assert percentile(xs, 100) == 4
    assert percentile(xs, 50) == 2.5
    assert percentile(xs, 90) == pytest.approx(3.7)  # numpy.percentile([1,2,3,4], 90) == 3.7
    assert percentile([10, 20, 30, 40, 50], 25) == 20
    assert percentile([7], 99) == 7
    assert percentile([3, 1, 2], 50) == 2  # unsorted input


def test_percentile_ignores_none_and_empty_gives_none():
    assert percentile([None, 5, None, 1], 50) == 3
    assert percentile([], 50) is None
    assert percentile([None, None], 90) is None
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_describe():
    d = describe([2, 4, 4, 4, 5, 5, 7, 9, None])
    assert d["n"] == 8
    assert d["mean"] == 5
    assert d["std"] == pytest.approx(math.sqrt(32 / 7))  # sample standard deviation
    assert d["p50"] == 4.5
    assert d["p99"] == pytest.approx(8.86)
    assert set(d) == {"n", "mean", "std", "p50", "p90", "p95", "p99"}
    assert describe([3.0])["std"] == 0.0


def test_describe_empty_is_all_none():
    assert describe([]) == {"n": 0, "mean": None, "std": None, "p50": None, "p90": None, "p95": None, "p99": None}
    assert describe([None])["n"] == 0


def test_decimal_str_never_uses_exponents():
    assert decimal_str(Decimal("1E-7")) == "0.0000001"
    assert decimal_str(Decimal("0.00150")) == "0.0015"
    assert decimal_str(Decimal(0)) == "0"
    assert decimal_str(None) is None


def _r(model_index, model, *, ok=True, cached=False, ttft=None, e2e=None, tps=None, tpot=None, out=None, cost=None):
    return {
        "model": model, "model_index": model_index, "ok": ok, "cached": cached, "ttft_ms": ttft, "e2e_ms": e2e,
        "output_tokens_per_s": tps, "tpot_ms": tpot, "output_tokens": out,
        "cost_usd_exact": cost, "cost_usd": None if cost is None else float(cost),
    }


def test_summarize_per_model_in_model_order():
    results = [
        # case 0
        _r(1, "openai:b", ttft=100, e2e=400, tps=50, out=20, cost="0.001"),
        _r(0, "hf:./a", ttft=10, e2e=110, tps=100, out=10, cost="0"),
        # case 1
        _r(1, "openai:b", ttft=300, e2e=600, tps=70, out=22, cost="0.002"),
        _r(0, "hf:./a", ok=False),
        # case 2: cached results never feed timing statistics
        _r(1, "openai:b", cached=True, ttft=1, e2e=2, tps=9999, out=22, cost="0"),
        _r(0, "hf:./a", ttft=30, e2e=130, tps=120, out=12, cost="0"),
    ]
    a, b = summarize(results)
    assert (a["model"], a["label"], a["model_index"]) == ("hf:./a", "hf:./a", 0)
    assert (b["model"], b["model_index"]) == ("openai:b", 1)
    assert (a["n"], a["failures"], a["cached"]) == (3, 1, 0)
    assert (b["n"], b["failures"], b["cached"]) == (3, 0, 1)
    assert a["ttft_ms"]["n"] == 2 and a["ttft_ms"]["p50"] == 20
    assert b["ttft_ms"]["n"] == 2 and b["ttft_ms"]["p50"] == 200  # the cached 1 ms is not a sample
    assert b["output_tokens_per_s"]["p50"] == 60
    assert b["e2e_ms"]["mean"] == 500
    assert b["output_tokens"]["n"] == 2
    assert a["tpot_ms"]["n"] == 0 and a["tpot_ms"]["p50"] is None
    assert b["cost_total_usd"] == "0.003"
    assert b["cost_per_1k_requests_usd"] == "1.5"  # mean of the fresh ones (0.0015) x 1000
    assert a["cost_total_usd"] == "0" and a["cost_per_1k_requests_usd"] == "0"
    assert a["cost_unknown"] == 0 and b["cost_unknown"] == 0


def test_summarize_unknown_costs_stay_unknown():
    results = [
        _r(0, "openai:x", ttft=5, cost=None),
        _r(0, "openai:x", ttft=6, cost="0.5"),
        _r(0, "openai:x", ok=False, cost=None),  # a failure is not an "unknown cost"
        _r(1, "openai:y", ttft=5, cost=None),
    ]
    x, y = summarize(results)
    assert x["cost_total_usd"] == "0.5"
    assert x["cost_unknown"] == 1
    assert x["cost_per_1k_requests_usd"] == "500"
    assert y["cost_total_usd"] is None  # never a made-up 0
    assert y["cost_per_1k_requests_usd"] is None
    assert y["cost_unknown"] == 1


def test_summarize_empty():
    assert summarize([]) == []


def test_speed_figures_leave_out_cells_whose_timing_is_not_valid():
    rs = [_r(0, "m", ttft=10.0, e2e=20.0, cost="0.001"), _r(0, "m", ttft=12.0, e2e=22.0, cost="0.001"),
          {**_r(0, "m", ttft=900.0, e2e=990.0, cost="0.001"), "timing_valid": False},
          {**_r(0, "m", ttft=14.0, e2e=24.0, cost="0.001"), "timing_valid": True}]
    (s,) = summarize(rs)
    assert s["timing_excluded"] == 1
    assert s["ttft_ms"]["n"] == 3 and s["ttft_ms"]["mean"] == 12.0  # the shared-node sample is left out
    assert s["n"] == 4 and s["cost_total_usd"] == "0.004"  # its answer and cost still count
