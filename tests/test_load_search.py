"""Goodput search (load/search.py) against known attainment curves: it brackets, bisects, and answers the
highest passing rate it measured."""

import pytest

from tryouts.errors import UsageError
from tryouts.load.search import goodput_search


def knee(at: float):
    """All requests good below ``at`` requests/s, none above."""
    return lambda rate: 1.0 if rate <= at else 0.0


def test_it_doubles_then_bisects_to_the_knee():
    r = goodput_search(knee(37.0), target=0.95, start_rate=4.0, rel_tol=0.05, max_points=20)
    assert [p[0] for p in r.points[:5]] == [4, 8, 16, 32, 64]  # doubling until a point fails
    assert 37.0 * 0.95 <= r.rate <= 37.0 < r.failing_rate and (r.failing_rate - r.rate) / r.rate <= 0.05


def test_it_halves_when_the_start_already_fails():
    r = goodput_search(knee(3.0), target=0.9, start_rate=20.0, rel_tol=0.1, max_points=20)
    assert [p[0] for p in r.points[:4]] == [20, 10, 5, 2.5] and 2.5 <= r.rate <= 3.0 < r.failing_rate


def test_a_gradual_curve_meets_the_attainment_target():
    curve = lambda rate: max(0.0, 1.0 - rate / 200)  # noqa: E731  attainment falls 0.5 % per req/s
    r = goodput_search(curve, target=0.9, start_rate=5.0, rel_tol=0.02, max_points=30)
    assert curve(r.rate) >= 0.9 and curve(r.failing_rate) < 0.9 and 19.0 <= r.rate <= 20.0


def test_the_budget_bounds_the_points_and_nothing_passing_is_said():
    r = goodput_search(knee(1e9), target=0.9, start_rate=1.0, max_points=5)
    assert len(r.points) == 5 and r.rate == 16.0 and r.failing_rate is None
    none = goodput_search(lambda rate: 0.0, target=0.9, start_rate=1.0, max_points=10)
    assert none.rate is None and len(none.points) == 7 and none.points[-1][0] == 1 / 64  # halved to >= 0.01


@pytest.mark.parametrize(("target", "start"), [(0.0, 1.0), (1.5, 1.0), (0.9, 0.0)])
def test_nonsense_is_refused(target, start):
    with pytest.raises(UsageError):
        goodput_search(knee(1), target=target, start_rate=start)


def test_the_running_least_squares_agree_with_the_batch_ones():
    import random

    from tryouts.load.saturation import Running, significant_rise

    rng = random.Random(3)
    for trial in range(200):
        n = rng.randint(2, 60)
        xs = [rng.uniform(0, 10) for _ in range(n)]
        trend = rng.choice([-1.0, 0.0, 0.05, 1.0])
        ys = [trend * x + rng.gauss(0, 1) for x in xs]
        run = Running()
        for x, y in zip(xs, ys, strict=True):
            run.add(x, y)
        assert run.rising(min_points=8) == significant_rise(xs, ys, min_points=8), trial


def test_an_open_loop_point_against_an_overloaded_server_stops_when_its_queue_keeps_growing(replay_server):
    from tryouts.usecases.load import LoadSettings, run_load

    # the server serves 2 requests at once, 50 ms each (40 req/s at most); 120 req/s are offered for 10 s
    ref = f"openai-compat:{replay_server}#tokens=2;ttft_ms=40;itl_ms=10;capacity=2"
    out = run_load(ref, LoadSettings(profile="constant", rate=120, requests=1200, stop_over_saturated=True))
    assert out["stopped"] == "over_saturation" and out["not_sent"] > 600 and out["over_saturated"]
    assert out["completed"] == out["num_prompts"]  # what was sent ran to its end
    calm = run_load(ref, LoadSettings(profile="constant", rate=10, requests=30, stop_over_saturated=True))
    assert calm["stopped"] is None and calm["not_sent"] == 0 and not calm["over_saturated"]


def test_a_calm_point_is_never_judged_over_saturated_by_a_noisy_tail():
    """In flight goes from 1 to 2 for the last 5 sends, and TTFT drifts by 1 %: both slopes are significant
    (2 standard errors), but neither growth is material: not a queue that keeps growing."""
    from tryouts.load.metrics import RequestRecord
    from tryouts.load.saturation import SaturationWatch, over_saturated

    ms = 1_000_000
    rows = [RequestRecord(i, i * 100 * ms, sent_ns=i * 100 * ms, first_ns=i * 100 * ms + (50 + i * 0.02) * ms,
                          chunk_ns=[i * 100 * ms + 60 * ms], done_ns=i * 100 * ms + (60 if i < 25 else 150) * ms,
                          output_tokens=1, status="ok") for i in range(30)]
    rows = [RequestRecord(r.index, r.due_ns, sent_ns=r.sent_ns, first_ns=int(r.first_ns), chunk_ns=r.chunk_ns,
                          done_ns=r.done_ns, output_tokens=1, status="ok") for r in rows]
    from tryouts.load.saturation import significant_rise

    xs = [r.sent_ns / 1e9 for r in rows]
    inflight = [2 if i > 25 else 1 for i in range(30)]
    assert significant_rise(xs, inflight, min_points=20) and significant_rise(xs, [r.ttft_ms() for r in rows],
                                                                             min_points=20)
    assert not over_saturated(rows)
    watch = SaturationWatch()
    for i, r in enumerate(rows):
        watch.sent(r.sent_ns / 1e9, inflight[i])
        watch.answered(r.sent_ns / 1e9, r.ttft_ms())
        assert not watch.saturated(r.sent_ns / 1e9)
