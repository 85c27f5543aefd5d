"""One scheduler, one executor interface, one typed event stream (engine/schedule.py, executor.py, local.py,
sinks.py, events.py, limits.py). Against the scripted replay server (real HTTP on loopback) and a real store."""

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from tryouts.engine import events as ev
from tryouts.engine.executor import IN_PROCESS, Cancel, LaneKey
from tryouts.engine.limits import RateBudget
from tryouts.engine.policy import Policy
from tryouts.engine.run import run_cells
from tryouts.engine.schedule import schedule
from tryouts.store import Store
from tryouts.testing.replay import start_replay_server
from tryouts.types import Cell, GenParams, Message, ModelSpec, Request, Result


def cells_for(specs, n_cases=1):
    return [Cell(m, c, 0, s, Request(messages=[Message(role="user", content=f"q{c}")], params=GenParams(max_tokens=8)))
            for c in range(n_cases) for m, s in enumerate(specs)]


def spec(base, script, **options):
    return ModelSpec.parse(f"openai-compat:{base}#{script};id={uuid.uuid4().hex[:8]}", {"warmup": False, **options})


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "x.db")


# ---- the rate budget -----------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self):
        self.now = 1000.0
        self.slept = []

    def __call__(self):
        return self.now

    async def sleep(self, s):
        self.slept.append(round(s, 6))
        self.now += s


def test_a_request_budget_lets_n_through_per_window_then_waits_for_the_oldest_to_leave():
    clock = FakeClock()
    budget = RateBudget(requests=2, window_s=60, clock=clock, sleep=clock.sleep)

    async def go():
        waits = [await budget.acquire()]
        clock.now += 10
        waits.append(await budget.acquire())
        waits.append(await budget.acquire())  # the first left the window at t=1060: 50 s from now
        return waits

    assert asyncio.run(go()) == [0.0, 0.0, 50.0]
    assert budget.waited_s == 50.0


def test_a_token_budget_waits_once_the_window_has_spent_it():
    clock = FakeClock()
    budget = RateBudget(tokens=100, window_s=60, clock=clock, sleep=clock.sleep)

    async def go():
        await budget.acquire()
        budget.spend(60)
        clock.now += 5
        first = await budget.acquire()  # 60 < 100: goes
        budget.spend(70)
        return first, await budget.acquire()  # 130 spent: wait until the first 60 leave (t=1060)

    assert asyncio.run(go()) == (0.0, 55.0)


def test_a_budget_refuses_nonsense_limits():
    with pytest.raises(ValueError):
        RateBudget(requests=0)


# ---- the scheduler -------------------------------------------------------------------------------------------


def test_cells_go_to_one_lane_per_server_and_in_process_models_share_one(replay_server):
    with start_replay_server() as other:
        specs = [spec(replay_server, "tokens=1"), spec(other, "tokens=1"), spec(replay_server, "tokens=2"),
                 ModelSpec.parse("hf:/no/such/model"), ModelSpec.parse("nosuchprovider:x")]
        plan = schedule(cells_for(specs, n_cases=2), Policy(concurrency={"openai-compat": 3}), skip={(0, 1, 0)})
    lanes = {lane.key: lane for lane in plan.lanes}
    assert set(lanes) == {IN_PROCESS, LaneKey("openai-compat", replay_server), LaneKey("openai-compat", other)}
    first = lanes[LaneKey("openai-compat", replay_server)]
    assert sorted(first.cells) == [0, 2] and len(first) == 3  # the skipped cell is not scheduled
    assert first.limits.concurrency == 3 and first.owner == ("server", "openai-compat", replay_server)
    assert list(lanes[IN_PROCESS].cells) == [3] and lanes[IN_PROCESS].owner == "in-process"
    ((failed_cells, exc),) = plan.failed  # an unknown provider: its cells fail with the reason
    assert [c.model_index for c in failed_cells] == [4, 4] and "nosuchprovider" in str(exc)


def test_a_lane_takes_the_concurrency_its_registry_entry_declares_unless_the_suite_sets_one():
    remote = [Cell(0, 0, 0, ModelSpec.parse("llamacpp-server:m", {"base_url": "http://10.1.2.3:8080/v1"}),
                   Request(messages=[Message(role="user", content="q")]))]
    (lane,) = schedule(remote, Policy()).lanes  # llama.cpp's server aborts a second request, wherever it runs
    assert lane.limits.concurrency == 1
    (lane,) = schedule(remote, Policy(concurrency={"llamacpp-server": 3})).lanes
    assert lane.limits.concurrency == 3
    groq = [Cell(0, 0, 0, ModelSpec.parse("groq:m"), Request(messages=[Message(role="user", content="q")]))]
    assert schedule(groq, Policy()).lanes[0].limits.concurrency == 4


def test_sequential_means_one_at_a_time_in_every_lane():
    assert Policy(sequential=True, default_concurrency=8).limits_for("openai").concurrency == 1
    limits = Policy(requests_per_minute={"openai": 500}, tokens_per_minute={"openai": 9e4}).limits_for("openai")
    assert (limits.requests_per_minute, limits.tokens_per_minute) == (500, 9e4)


# ---- one event stream ----------------------------------------------------------------------------------------


def test_every_cell_reports_queued_started_and_stored_in_order_and_deltas_when_asked(replay_server, store):
    cells = cells_for([spec(replay_server, "tokens=3")], n_cases=2)
    run_id = store.create_run("suite", [cells[0].spec.ref], {})
    seen = []
    asyncio.run(run_cells(cells, store=store, run_id=run_id, policy=Policy(use_cache=False),
                          on_event=seen.append, stream_deltas=True))
    for case in (0, 1):
        kinds = [type(e).__name__ for e in seen if getattr(e, "cell", None) is cells[case]]
        assert kinds[0] == "CellQueued" and kinds[-1] == "ResultStored"
        assert kinds.index("CellStarted") < kinds.index("CellDelta") and kinds.count("CellDelta") == 3
        stored = next(e for e in seen if isinstance(e, ev.ResultStored) and e.cell is cells[case])
        assert isinstance(stored.result, Result) and stored.result.ok
    assert sum(isinstance(e, ev.ModelLoading) for e in seen) == 1  # once per model


def test_a_stored_event_comes_after_the_row_is_committed(replay_server, store):
    cells = cells_for([spec(replay_server, "tokens=2")], n_cases=3)
    run_id = store.create_run("suite", [cells[0].spec.ref], {})
    found = []

    def on_event(e):
        if isinstance(e, ev.ResultStored):
            rows, _ = store.results(run_id, cell=(e.model_index, e.cell.case_index, 0))
            found.append(len(rows))

    asyncio.run(run_cells(cells, store=store, run_id=run_id, on_event=on_event))
    assert found == [1, 1, 1]


def test_compare_reports_the_run_its_models_and_its_end(replay_server, store):
    from tryouts.usecases.compare import compare

    seen = []
    outcome = asyncio.run(compare("hi", [spec(replay_server, "tokens=2"), spec(replay_server, "status=400")],
                                  store=store, on_event=seen.append))
    assert isinstance(seen[0], ev.RunRecorded) and seen[0].run_id == outcome.run_id
    assert seen[-1] == ev.RunFinished(outcome.run_id, "partial")
    assert sorted(e.model_index for e in seen if isinstance(e, ev.ResultStored)) == [0, 1]
    assert store.get_run_row(outcome.run_id)["status"] == "partial"


# ---- idempotent sinks and cancellation -----------------------------------------------------------------------


def test_a_cell_written_twice_is_stored_once_and_the_first_row_stays(replay_server, store):
    cells = cells_for([spec(replay_server, "tokens=2")])
    run_id = store.create_run("suite", [cells[0].spec.ref], {})
    asyncio.run(run_cells(cells, store=store, run_id=run_id))
    (first,) = store.get_run(run_id)["results"]
    again = Result(model=first["model"], provider="openai-compat", model_name="x", ok=False, error="late",
                   request=cells[0].request, started_at=datetime.now(UTC))
    store.add_results(run_id, [again])  # an executor delivering a result twice, or rerunning a lost cell
    asyncio.run(run_cells(cells, store=store, run_id=run_id))  # and a whole rerun of the same cell
    (row,) = store.get_run(run_id)["results"]
    assert row["ok"] and row["id"] == first["id"]


def test_stopping_one_model_leaves_its_remaining_cells_unrecorded_and_the_others_run(replay_server, store):
    slow = spec(replay_server, "tokens=2;ttft_ms=150")
    fast = spec(replay_server, "tokens=2")
    cells = cells_for([slow, fast], n_cases=4)
    run_id = store.create_run("suite", [slow.ref, fast.ref], {})
    cancel = Cancel()

    def on_event(e):
        if isinstance(e, ev.ResultStored) and e.model_index == 0:
            cancel.stop(0)

    progress = asyncio.run(run_cells(cells, store=store, run_id=run_id, on_event=on_event, cancel=cancel,
                                     policy=Policy(concurrency={"openai-compat": 1}, use_cache=False)))
    done = store.done_cells(run_id)
    assert {(m, c) for m, c, _ in done if m == 1} == {(1, c) for c in range(4)}
    assert 1 <= sum(m == 0 for m, _, _ in done) < 4  # what was done is kept; the rest is left for a resume
    assert progress.cancelled == 4 - sum(m == 0 for m, _, _ in done)


def test_stopping_everything_cancels_the_cell_in_flight(replay_server, store):
    cells = cells_for([spec(replay_server, "tokens=2;ttft_ms=5000")], n_cases=2)
    run_id = store.create_run("suite", [cells[0].spec.ref], {})
    cancel = Cancel()

    def on_event(e):
        if isinstance(e, ev.CellStarted):
            asyncio.get_running_loop().call_later(0.2, cancel.stop)

    progress = asyncio.run(asyncio.wait_for(run_cells(
        cells, store=store, run_id=run_id, on_event=on_event, cancel=cancel,
        policy=Policy(concurrency={"openai-compat": 1}, use_cache=False)), timeout=30))
    assert store.done_cells(run_id) == set() and progress.cancelled == 2
