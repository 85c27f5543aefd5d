from __future__ import annotations

from itertools import product
from math import comb

import numpy as np
import pytest

from tryouts.scoring.statistics import (
    MIN_BOOTSTRAP_CASES,
    bootstrap_mean,
    bootstrap_statistic,
    bradley_terry,
    exact_test_can_reject,
    paired_bootstrap,
    paired_comparison,
    paired_permutation_test,
    pass_at_k,
    pass_hat_k,
    sign_test,
)


def test_bootstrap_mean_covers_true_mean_and_shrinks():
    rng = np.random.default_rng(1)
    small = rng.normal(0.5, 0.2, 30)
    large = rng.normal(0.5, 0.2, 3000)
    rs = bootstrap_mean(small, seed=3)
    rl = bootstrap_mean(large, seed=3)
    assert rs["n"] == 30 and rl["n"] == 3000
    for r in (rs, rl):
        assert r["low"] <= 0.5 <= r["high"]
        assert r["low"] <= r["mean"] <= r["high"]
    assert (rl["high"] - rl["low"]) < (rs["high"] - rs["low"]) / 5
    assert bootstrap_mean(small, seed=3) == rs  # deterministic


def test_bootstrap_mean_edge_cases():
    assert bootstrap_mean([]) == {"n": 0, "mean": None, "low": None, "high": None}
    assert bootstrap_mean([0.7]) == {"n": 1, "mean": 0.7, "low": 0.7, "high": 0.7}


def test_bootstrap_statistic_of_a_sum_is_the_bootstrap_of_the_mean():
    # a statistic of summed counts: the mean is sum/n, so with the same seed both draw the same resamples
    x = np.random.default_rng(2).normal(0.4, 0.3, 57)
    r = bootstrap_statistic([[v] for v in x], lambda total: total[0] / len(x), seed=5)
    assert r == pytest.approx(bootstrap_mean(x, seed=5))


def test_bootstrap_statistic_covers_a_ratio_of_sums_and_shrinks():
    # micro precision tp/(tp+fp) over sentences whose sizes differ: not the mean of per-sentence ratios
    rng = np.random.default_rng(4)

    def sentences(n):
        size = rng.integers(1, 8, n)
        return [[tp, s - tp] for s, tp in zip(size, rng.binomial(size, 0.7), strict=True)]

    def precision(total):
        return total[0] / (total[0] + total[1]) if total.sum() else None

    small, large = bootstrap_statistic(sentences(40), precision), bootstrap_statistic(sentences(4000), precision)
    for r in (small, large):
        assert r["low"] <= 0.7 <= r["high"] and r["low"] <= r["mean"] <= r["high"]
    assert (large["high"] - large["low"]) < (small["high"] - small["low"]) / 5


def test_bootstrap_statistic_edge_cases():
    assert bootstrap_statistic([], sum) == {"n": 0, "mean": None, "low": None, "high": None}
    assert bootstrap_statistic([[3, 1]], lambda t: t[0] / t.sum()) == {"n": 1, "mean": 0.75, "low": 0.75, "high": 0.75}
    assert bootstrap_statistic([[0], [0]], lambda t: None) == {"n": 2, "mean": None, "low": None, "high": None}
    with pytest.raises(ValueError, match="non-finite"):
        bootstrap_statistic([[1.0], [float("nan")]], sum)


def test_paired_bootstrap_finds_planted_difference():
    rng = np.random.default_rng(7)
    a = rng.uniform(0, 1, 100)
    b = a + 0.2 + rng.normal(0, 0.1, 100)
    r = paired_bootstrap(a, b, seed=0)
    assert r["n"] == 100
    assert r["diff"] == pytest.approx(float(np.mean(b - a)))
    assert r["p_value"] < 0.01
    assert r["low"] > 0


def test_paired_bootstrap_false_positive_rate():
    rejections = 0
    for s in range(200):
        rng = np.random.default_rng(1000 + s)
        a = rng.normal(0.6, 0.2, 60)
        b = rng.normal(0.6, 0.2, 60)
        if paired_bootstrap(a, b, n_resamples=500, seed=s)["p_value"] < 0.05:
            rejections += 1
    assert 0.01 <= rejections / 200 <= 0.10


def test_paired_bootstrap_length_mismatch_and_edges():
    with pytest.raises(ValueError):
        paired_bootstrap([1, 2], [1])
    assert paired_bootstrap([], [])["diff"] is None
    r = paired_bootstrap([0.0], [1.0])
    assert r["diff"] == r["low"] == r["high"] == 1.0


def _brute_force_permutation_p(a, b):
    """The exact paired permutation p-value by listing every one of the 2**n sign flips."""
    d = [y - x for x, y in zip(a, b, strict=True)]
    observed = abs(sum(d))
    flips = list(product((1, -1), repeat=len(d)))
    extreme = sum(abs(sum(s * v for s, v in zip(signs, d, strict=True))) >= observed - 1e-9 for signs in flips)
    return extreme / len(flips)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 6, 9, 12])
def test_paired_permutation_test_matches_brute_force(n):
    rng = np.random.default_rng(n)
    a = rng.uniform(0, 1, n)
    b = a + rng.normal(0.15, 0.3, n)
    r = paired_permutation_test(a, b)
    assert r["n"] == n and r["diff"] == pytest.approx(float(np.mean(b - a)))
    assert r["p_value"] == pytest.approx(_brute_force_permutation_p(a, b))
    # scores on a grid: ties among the |differences| and zero differences
    a2 = rng.integers(0, 3, n) / 2
    b2 = rng.integers(0, 3, n) / 2
    assert paired_permutation_test(a2, b2)["p_value"] == pytest.approx(_brute_force_permutation_p(a2, b2))


def test_paired_permutation_test_edges():
    assert paired_permutation_test([1.0, 0.0], [1.0, 0.0])["p_value"] == 1.0
    assert paired_permutation_test([], []) == {"n": 0, "diff": None, "p_value": None}
    # every one of 10 cases better: only the observed signs and their mirror are as extreme
    assert paired_permutation_test([0.0] * 10, np.linspace(0.1, 1, 10))["p_value"] == pytest.approx(2 / 2**10)
    with pytest.raises(ValueError):
        paired_permutation_test([1, 2], [1])
    with pytest.raises(ValueError, match="at most 40"):
        paired_permutation_test([0.0] * 41, [1.0] * 41)


def test_two_cases_are_too_few_to_tell():
    """The reported case: 2 cases, both better, printed as +0.596 [+0.211, +0.981] p <0.001, 'a difference
    these cases support'. The exact p-value over the 4 sign flips is 0.5, and no test on 2 cases can tell."""
    a, b = [0.2, 0.1], [0.411, 1.081]
    r = paired_comparison(a, b)
    assert r["n"] == 2 and r["test"] == "exact permutation" and r["min_cases"] == MIN_BOOTSTRAP_CASES
    assert r["diff"] == pytest.approx(0.596)
    assert r["p_value"] == pytest.approx(0.5) and r["sign_test"]["p_value"] == pytest.approx(0.5)
    assert r["low"] is None and r["high"] is None  # no interval that pretends precision
    assert r["verdict"] == "too few cases to tell" and r["significant"] is False
    assert paired_bootstrap(a, b)["p_value"] < 0.001  # what the bootstrap alone would have claimed


def test_below_the_minimum_the_exact_test_decides():
    assert not exact_test_can_reject(5) and exact_test_can_reject(6)  # 2/2**5 = 0.0625, 2/2**6 = 0.03125
    five = paired_comparison([0.0] * 5, [1.0] * 5)  # 5 wins out of 5: still cannot be told apart
    assert five["p_value"] == pytest.approx(2 / 2**5) and five["verdict"] == "too few cases to tell"
    eight = paired_comparison([0.0] * 8, [0.5, 1, 1, 0.5, 1, 1, 0.5, 1])
    assert eight["test"] == "exact permutation" and eight["low"] is None
    assert eight["p_value"] == pytest.approx(2 / 2**8)
    assert eight["verdict"] == "a difference these cases support" and eight["significant"] is True
    mixed = paired_comparison([0.5] * 8, [1, 0, 1, 0, 1, 0, 1, 0.5])
    assert mixed["verdict"] == "no clear difference" and mixed["significant"] is False
    assert mixed["p_value"] == pytest.approx(_brute_force_permutation_p([0.5] * 8, [1, 0, 1, 0, 1, 0, 1, 0.5]))
    assert paired_comparison([], [])["verdict"] is None


def test_the_exact_test_keeps_its_false_positive_rate():
    rejections = 0
    for s in range(200):
        rng = np.random.default_rng(2000 + s)
        a, b = rng.normal(0.6, 0.2, 10), rng.normal(0.6, 0.2, 10)
        rejections += paired_comparison(a, b)["significant"]
    assert rejections / 200 <= 0.08


def test_thirty_clearly_different_cases_are_still_a_difference():
    rng = np.random.default_rng(11)
    a = rng.uniform(0, 0.6, 30)
    b = a + 0.3 + rng.normal(0, 0.1, 30)
    r = paired_comparison(a, b, seed=0)
    assert r["n"] == 30 and r["test"] == "paired bootstrap"
    assert r == {**paired_bootstrap(a, b, seed=0), **r}  # above the minimum: the bootstrap as before
    assert 0 < r["low"] < r["diff"] < r["high"] and r["p_value"] < 0.01
    assert r["verdict"] == "a difference these cases support" and r["significant"] is True
    assert r["sign_test"]["wins_b"] >= 28


def test_sign_test_hand_computed():
    a = [0] * 12
    b = [1] * 8 + [-1] * 2 + [0] * 2  # 8 wins for b, 2 for a, 2 ties
    r = sign_test(a, b)
    expected = 2 * sum(comb(10, i) for i in range(3)) / 2**10  # 0.109375
    assert r == {"n": 12, "wins_b": 8, "wins_a": 2, "ties": 2, "p_value": pytest.approx(expected)}
    assert sign_test([1, 1], [1, 1])["p_value"] == 1.0
    with pytest.raises(ValueError):
        sign_test([1], [1, 2])


def test_pass_at_k():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(10, 3, 10) == 1.0
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 3, 2) == pytest.approx(1 - comb(7, 2) / comb(10, 2))
    assert pass_at_k(1000, 10, 50) == pytest.approx(1 - comb(990, 50) / comb(1000, 50))
    with pytest.raises(ValueError):
        pass_at_k(5, 6, 1)


def test_pass_hat_k():
    assert pass_hat_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_hat_k(10, 3, 2) == pytest.approx(comb(3, 2) / comb(10, 2))
    assert pass_hat_k(10, 3, 4) == 0.0
    assert pass_hat_k(10, 10, 10) == 1.0
    assert pass_hat_k(10, 9, 10) == 0.0


def _simulate_votes(strengths, n_votes, seed):
    rng = np.random.default_rng(seed)
    names = list(strengths)
    votes = []
    for _ in range(n_votes):
        i, j = rng.choice(len(names), 2, replace=False)
        pa, pb = strengths[names[i]], strengths[names[j]]
        votes.append((names[i], names[j], "a" if rng.random() < pa / (pa + pb) else "b"))
    return votes


def test_bradley_terry_recovers_order():
    strengths = {"w": 1.0, "x": 2.0, "y": 4.0, "z": 8.0}
    votes = _simulate_votes(strengths, 2000, seed=5)
    out = bradley_terry(votes, n_resamples=100, seed=0)
    assert [r["model"] for r in out] == ["z", "y", "x", "w"]
    assert np.mean([r["rating"] for r in out]) == pytest.approx(1000.0)
    best, worst = out[0], out[-1]
    assert worst["high"] < best["low"]
    for r in out:
        assert r["low"] <= r["rating"] <= r["high"]
    # Strength ratio 8 ≈ 361 Elo points between best and worst.
    assert best["rating"] - worst["rating"] == pytest.approx(400 * np.log10(8), abs=60)
    assert sum(r["wins"] + r["losses"] + r["ties"] for r in out) == 2 * 2000


def test_bradley_terry_all_ties_and_unbeaten():
    ties = [("a", "b", "tie"), ("b", "c", "tie"), ("c", "a", "tie")] * 5
    out = bradley_terry(ties, n_resamples=20)
    for r in out:
        assert r["rating"] == pytest.approx(1000.0)
        assert r["ties"] == 10
    unbeaten = bradley_terry([("a", "b", "a")] * 5, n_resamples=0)
    assert unbeaten[0]["model"] == "a" and np.isfinite(unbeaten[0]["rating"])
    assert unbeaten[0]["low"] is None
    assert bradley_terry([]) == []
    with pytest.raises(ValueError):
        bradley_terry([("a", "b", "both_bad")])
