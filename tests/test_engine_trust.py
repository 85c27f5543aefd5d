"""Figures users can trust under hostile and busy conditions: aborted streams, lying usage, unstorable rows,
one lane per server, Retry-After within the policy, local servers one request at a time, warm-ups, and the
machine gate that keeps timed work apart. Against the scripted replay server (real HTTP on loopback)."""

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from helpers import server_log
from tryouts.engine.events import ResultStored
from tryouts.engine.gate import MachineGate
from tryouts.engine.run import Policy, run_cells, write_safely
from tryouts.store import Store
from tryouts.testing.replay import start_replay_server
from tryouts.types import Cell, GenParams, Message, ModelSpec, Request, Result, Usage
from tryouts.usecases.compare import compare


def cells_for(specs, n_cases=1):
    return [Cell(m, c, 0, s, Request(messages=[Message(role="user", content=f"q{c}")], params=GenParams(max_tokens=16)))
            for c in range(n_cases) for m, s in enumerate(specs)]


def spec(base, script, **options):
    return ModelSpec.parse(f"openai-compat:{base}#{script};id={uuid.uuid4().hex[:8]}", options)


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "trust.db")


def run(store, cells, policy=None, on_event=None):
    run_id = store.create_run("suite", sorted({c.spec.ref for c in cells}), {})
    asyncio.run(run_cells(cells, store=store, run_id=run_id, policy=policy or Policy(backoff_s=0.01),
                          on_event=on_event))
    return sorted(store.get_run(run_id)["results"], key=lambda r: (r["model_index"], r["case_index"]))


# ---- an empty, aborted answer is never a success ------------------------------------------------------------


def test_a_stream_with_no_content_and_no_finish_reason_fails_and_is_retried(replay_server, store):
    # llama.cpp's server's aborted request: a role-only chunk, then [DONE]
    (r,) = run(store, cells_for([spec(replay_server, "tokens=0;finish=none;usage=never", warmup=False)]),
               Policy(max_retries=2, backoff_s=0.01))
    assert not r["ok"] and r["error_kind"] == "aborted" and r["attempts"] == 3
    assert "no content and no finish reason" in r["error"] and "concurrency" in r["error"]


def test_an_empty_answer_the_model_finished_is_still_an_answer(replay_server, store):
    (r,) = run(store, cells_for([spec(replay_server, "tokens=0", warmup=False)]))
    assert r["ok"] and r["text"] == "" and r["finish_reason"] == "stop"


# ---- one bad value never stops a run ------------------------------------------------------------------------


@pytest.mark.parametrize("value, shown", [("1e10", "10000000000"), ("-5", "-5"), ("3000000000", "3000000000"),
                                          ("lots", "lots")])
def test_absurd_usage_fails_that_request_and_the_run_goes_on(replay_server, store, value, shown):
    liar = spec(replay_server, f"tokens=3;usage=always;completion_tokens={value}", warmup=False)
    honest = spec(replay_server, "tokens=3;usage=always", warmup=False)
    bad, _, good, _ = run(store, cells_for([liar, honest], n_cases=2), Policy(max_retries=0))
    assert not bad["ok"] and bad["error_kind"] == "bad_response"
    assert shown in bad["error"] and "output_tokens" in bad["error"] and liar.ref in bad["error"]
    # the absurd value is never stored nor priced: the count is Tryouts' own estimate from the text, marked
    assert bad["tokens_estimated"] and bad["output_tokens"] == 3
    assert good["ok"] and good["output_tokens"] == 3


def test_absurd_usage_in_compare_keeps_the_others(replay_server, store):
    liar = spec(replay_server, "tokens=3;usage=always;completion_tokens=-7", warmup=False)
    honest = spec(replay_server, "tokens=3;usage=always", warmup=False)
    out = asyncio.run(compare("hi", [liar, honest], store=store))
    run = store.get_run(out.run_id)
    assert run["run"]["status"] == "partial"
    assert [r["ok"] for r in sorted(run["results"], key=lambda r: r["model_index"])] == [False, True]


def test_a_row_the_store_refuses_becomes_a_failed_row_and_the_others_are_kept(store):
    run_id = store.create_run("suite", ["x"], {})
    req = Request(messages=[Message(role="user", content="hi")])

    def result(i, tokens):
        return Result(model="x:y", provider="x", model_name="y", ok=True, text="t", started_at=datetime.now(UTC),
                      request=req, usage=Usage(input_tokens=tokens, output_tokens=1), case_index=i)

    assert write_safely(store, run_id, result(0, 2**70)) is None  # too large for SQLite's INTEGER
    assert write_safely(store, run_id, result(1, 5)) is None
    rows = sorted(store.get_run(run_id)["results"], key=lambda r: r["case_index"])
    assert [r["ok"] for r in rows] == [False, True]
    assert rows[0]["error_kind"] == "store" and "could not be stored" in rows[0]["error"]
    assert rows[0]["input_tokens"] is None and rows[1]["input_tokens"] == 5


# ---- scheduling that is fair to every server ----------------------------------------------------------------


def test_each_server_has_its_own_lane_and_a_retry_wait_holds_no_slot(replay_server, store):
    with start_replay_server() as other:
        failing = spec(replay_server, "status=503", warmup=False)
        healthy = spec(other, "tokens=2", warmup=False)
        order = []
        results = run(store, cells_for([failing, healthy], n_cases=4),
                      Policy(concurrency={"openai-compat": 1}, max_retries=2, backoff_s=0.4, use_cache=False),
                      on_event=lambda e: isinstance(e, ResultStored) and order.append(e.model_index))
    assert [r["ok"] for r in results if r["model_index"] == 1] == [True] * 4
    # one lane of 1 for both servers would finish the failing server's first cell (3 tries) before any healthy one
    assert order[:4] == [1, 1, 1, 1]


def test_retry_after_beyond_the_policy_fails_the_cell_saying_so(replay_server, store):
    (r,) = run(store, cells_for([spec(replay_server, "status=429;retry_after=100", warmup=False)]),
               Policy(max_retries=3, max_backoff_s=5))
    assert not r["ok"] and r["attempts"] == 1
    assert "asked to wait 100 s" in r["error"] and "max_backoff_s (5 s)" in r["error"]


def test_retry_after_within_the_policy_is_honoured():
    policy = Policy(max_backoff_s=5)
    assert 2 <= policy.backoff(1, 2.0) <= 2.1
    assert policy.backoff(1, 6.0) is None
    assert policy.backoff(9, None) <= 5


def _intervals(base, specs):
    logs = [server_log(base, s.model.split("id=")[1]) for s in specs]
    return [(log["recv_ns"], log["done_sent_ns"]) for log in logs]


def _overlap(a, b):
    return a[0] < b[1] and b[0] < a[1]


def test_a_server_on_this_machine_gets_one_request_at_a_time_unless_the_suite_says(replay_server, store):
    specs = [spec(replay_server, "ttft_ms=150;tokens=1", warmup=False) for _ in range(3)]
    run(store, cells_for(specs), Policy(use_cache=False))
    spans = _intervals(replay_server, specs)
    assert not any(_overlap(a, b) for i, a in enumerate(spans) for b in spans[i + 1:])
    # the suite may say otherwise: then they do run together
    specs = [spec(replay_server, "ttft_ms=150;tokens=1", warmup=False) for _ in range(3)]
    run(store, cells_for(specs), Policy(concurrency={"openai-compat": 3}, use_cache=False))
    spans = _intervals(replay_server, specs)
    assert _overlap(spans[0], spans[1]) and _overlap(spans[1], spans[2])


def test_two_servers_on_this_machine_are_never_timed_together(replay_server, store):
    with start_replay_server() as other:
        a = [spec(replay_server, "ttft_ms=100;tokens=2", warmup=False) for _ in range(2)]
        b = [spec(other, "ttft_ms=100;tokens=2", warmup=False) for _ in range(2)]
        run(store, cells_for(a + b), Policy(concurrency={"openai-compat": 2}, use_cache=False))
        sa, sb = _intervals(replay_server, a), _intervals(other, b)
    assert _overlap(*sa) and _overlap(*sb)  # each server's own requests run together, up to its limit
    assert not any(_overlap(x, y) for x in sa for y in sb)  # the two servers take turns


def test_a_server_on_this_machine_is_warmed_up_before_any_timed_request(replay_server, store):
    # the script fails its first request: the untimed warm-up takes that failure, the timed request does not
    (r,) = run(store, cells_for([spec(replay_server, "fail_first=1;status=500;tokens=2")]))
    assert r["ok"] and r["attempts"] == 1 and r["load_ms"] is not None
    (r,) = run(store, cells_for([spec(replay_server, "fail_first=1;status=500;tokens=2", warmup=False)]))
    assert r["ok"] and r["attempts"] == 2 and r["load_ms"] is None


# ---- the machine gate ---------------------------------------------------------------------------------------


def test_gate_lets_one_owner_in_many_times_and_never_two_owners_at_once():
    async def main():
        gate, inside, log = MachineGate(), {}, []

        async def work(owner, hold):
            async with gate.held(owner):
                inside[owner] = inside.get(owner, 0) + 1
                log.append(dict(inside))
                await asyncio.sleep(hold)
                inside[owner] -= 1

        await asyncio.gather(work("a", 0.05), work("a", 0.05), work("b", 0.01), work("a", 0.01), work("b", 0.01))
        return log

    log = asyncio.run(main())
    assert all(sum(1 for v in snap.values() if v) == 1 for snap in log)  # one owner inside at a time
    assert any(snap.get("a") == 2 for snap in log)  # an owner's requests run together
    # no barging: the last "a" waited for "b", who was waiting first
    firsts = [next(k for k, v in snap.items() if v) for snap in log]
    assert firsts == ["a", "a", "b", "b", "a"]


def test_gate_survives_a_cancelled_waiter():
    async def main():
        gate = MachineGate()
        await gate.acquire("a")
        waiter = asyncio.create_task(gate.acquire("b"))
        await asyncio.sleep(0)
        waiter.cancel()
        gate.release()
        await asyncio.gather(waiter, return_exceptions=True)
        await asyncio.wait_for(gate.acquire("c"), 1)
        return gate.owner

    assert asyncio.run(main()) == "c"


# ---- nothing is imported while a request is being timed ---------------------------------------------------

_INFLIGHT_SCRIPT = r'''
import asyncio, json, sys, threading, time

imports = []
def hook(event, args):
    if event == "import" and threading.current_thread() is threading.main_thread():
        imports.append((time.perf_counter_ns(), args[0]))
sys.addaudithook(hook)

from tryouts.engine.run import Policy, run_cells
from tryouts.store import Store
from tryouts.types import Cell, GenParams, Message, ModelSpec, Request

base, fast, slow, db = sys.argv[1:5]
cells = [Cell(m, 0, 0, ModelSpec.parse(f"openai-compat:{base}#{script}", {"warmup": False}),
              Request(messages=[Message(role="user", content="q")], params=GenParams(max_tokens=8)))
         for m, script in enumerate((fast, slow))]
case = {"expected": "w0 w1", "asserts": [{"type": "icontains", "value": "w0"}]}
store = Store(db)
run_id = store.create_run("suite", ["a", "b"], {})
asyncio.run(run_cells(cells, store=store, run_id=run_id, cases={0: case},
                      policy=Policy(concurrency={"openai-compat": 2}, use_cache=False)))
print(json.dumps(imports))
'''


def test_scoring_imports_never_land_inside_a_timed_request(replay_server, tmp_path):
    """examples/scoring.yaml's stall: the first scored result imported sacrebleu and rouge_score (nltk, scipy...:
    2-3 s) on the event loop while another request waited for its first token. Run in a fresh interpreter."""
    import json
    import subprocess
    import sys

    rid = uuid.uuid4().hex[:8]
    fast, slow = f"tokens=2;id=f{rid}", f"tokens=2;ttft_ms=400;id=s{rid}"
    script = tmp_path / "inflight.py"
    script.write_text(_INFLIGHT_SCRIPT)
    done = subprocess.run([sys.executable, str(script), replay_server, fast, slow, str(tmp_path / "i.db")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    imports = json.loads(done.stdout.strip().splitlines()[-1])
    log = server_log(replay_server, f"s{rid}")
    first_seen: dict[str, int] = {}
    for t, name in imports:  # the audit event fires on every import statement: a module's first one loads it
        first_seen.setdefault(name, t)
    inside = [name for name, t in first_seen.items() if log["recv_ns"] <= t <= log["first_content_sent_ns"]]
    assert inside == []
    assert server_log(replay_server, f"f{rid}")["done_sent_ns"] < log["first_content_sent_ns"]  # the race was real


def test_a_suite_summary_says_when_its_cells_were_aborted(replay_server, tmp_path):
    import os
    import subprocess
    import sys

    suite = tmp_path / "s.yaml"
    suite.write_text(f"""models:
  - model: openai-compat:{replay_server}#tokens=0;finish=none;usage=never
    label: aborting
  - model: openai-compat:{replay_server}#tokens=2
    label: healthy
prompts: [hi]
retries: {{max: 1, backoff_s: 0.01}}
""")
    done = subprocess.run([sys.executable, "-m", "tryouts", "run", str(suite), "--db", str(tmp_path / "r.db")],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    out = " ".join(done.stdout.split())
    assert "aborting: 1 cell failed (aborted)" in out and "concurrency to 1" in out, out


# ---- sampling is explicit ----------------------------------------------------------------------------------


def test_every_result_records_the_sampling_it_ran_with(replay_server, demo_models, store):
    server = spec(replay_server, "tokens=2", warmup=False)
    local = ModelSpec.parse(f"llamacpp:{demo_models.gguf_path}")
    out = asyncio.run(compare("hi", [server, local], store=store, params=GenParams(max_tokens=4)))
    by_model = {r["model_index"]: r["sampling"] for r in store.get_run(out.run_id)["results"]}
    # a server's defaults cannot be known: what was not sent is recorded as left to it
    assert by_model[0]["temperature"] is None and set(by_model[0]["defaults"]) == {"temperature", "top_p"}
    # llama.cpp in process samples at its own hidden defaults: recorded with their values
    assert by_model[1]["temperature"] == 0.8 and by_model[1]["top_k"] == 40 and "temperature" in by_model[1]["defaults"]
    out = asyncio.run(compare("hi", [server, local], store=store, params=GenParams(max_tokens=4, temperature=0)))
    assert all(r["sampling"]["temperature"] == 0 and r["sampling"]["defaults"] == []
               for r in store.get_run(out.run_id)["results"])


def test_the_dashboard_shows_each_results_sampling(demo_models, tmp_path):
    import httpx

    from helpers import serve_dashboard

    db = tmp_path / "d.db"
    store = Store(db)
    out = asyncio.run(compare("hi", [f"llamacpp:{demo_models.gguf_path}"], store=store, params=GenParams(max_tokens=3)))
    with serve_dashboard(db) as (url, app):
        page = httpx.get(f"{url}/runs/{out.run_id}", headers={"Authorization": f"Bearer {app.state.token}"}).text
    assert 'data-k="sampling"' in page and "temperature 0.8 (default)" in page


def test_compare_prints_the_sampling_under_its_table(demo_models, tmp_path):
    import os
    import subprocess
    import sys

    def run(*extra):
        done = subprocess.run([sys.executable, "-m", "tryouts", "compare", "hi", "-m", f"llamacpp:{demo_models.gguf_path}",
                               "--max-tokens", "3", "--db", str(tmp_path / "c.db"), *extra],
                              capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "250"})
        assert done.returncode == 0, done.stdout + done.stderr
        return " ".join(done.stdout.split())

    assert "Sampling: temperature 0.8 (default), top_p 0.95 (default), top_k 40 (default)" in run()
    assert "Sampling: greedy (temperature 0) (every model)." in run("--temperature", "0")


def test_an_in_process_model_and_a_local_server_are_never_timed_together(replay_server, demo_models, store):
    import time

    offset_ns = time.time_ns() - time.perf_counter_ns()  # the replay log's clock (CLOCK_MONOTONIC) -> wall clock
    local = ModelSpec.parse(f"llamacpp:{demo_models.gguf_path}")
    servers = [spec(replay_server, "ttft_ms=40;itl_ms=5;tokens=8", warmup=False) for _ in range(4)]
    req = Request(messages=[Message(role="user", content="tell me a long story")], params=GenParams(max_tokens=64))
    cells = [Cell(0, c, 0, local, req) for c in range(4)] + [Cell(m + 1, 0, 0, s, req) for m, s in enumerate(servers)]
    results = run(store, cells, Policy(use_cache=False))
    assert all(r["ok"] for r in results)
    local_spans = []
    for r in results:
        if r["model_index"] == 0:
            t0 = datetime.fromisoformat(r["started_at"]).timestamp() * 1e9
            local_spans.append((t0, t0 + r["e2e_ms"] * 1e6))
    server_spans = [(a + offset_ns, b + offset_ns) for a, b in _intervals(replay_server, servers)]
    assert not any(_overlap(x, y) for x in local_spans for y in server_spans)
