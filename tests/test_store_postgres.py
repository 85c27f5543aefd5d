"""The results store on a real PostgreSQL server: Debian's PostgreSQL 15, started by these tests.

A session fixture runs initdb into a temporary folder as the unprivileged ``postgres`` user (initdb refuses
root), starts ``postgres`` on 127.0.0.1 with a password-protected user, and stops it afterwards; each test
gets a fresh database. A team's URL carries a password, so every test checks it never reaches the output.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from helpers import free_port, serve_dashboard
from pg import PASSWORD, USER
from tryouts.errors import StoreError
from tryouts.store import Store, schema
from tryouts.store.migrations import MIGRATIONS
from tryouts.types import Cost, Message, Request, Result, Timing, Usage


def query(url: str, sql: str, *params):
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def tryouts(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "tryouts", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def assert_clean(p: subprocess.CompletedProcess) -> None:
    """Neither the password nor a traceback reaches the output."""
    assert PASSWORD not in p.stdout + p.stderr
    assert "Traceback" not in p.stderr


def make_result(model="openai:gpt-4o-mini", **kw) -> Result:
    fields = dict(
        model=model, provider=model.split(":")[0], model_name=model.split(":", 1)[1], ok=True, text="hello",
        started_at=datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
        timing=Timing(ttft_ms=12.5, e2e_ms=40.0, tpot_ms=2.5, itl_ms=[1.0, 2.0], n_chunks=3),
        usage=Usage(input_tokens=5, output_tokens=7), cost=Cost(total=Decimal("0.000123456789"), source="genai-prices"),
        request=Request(messages=[Message(role="user", content="hi")]),
    )
    return Result(**{**fields, **kw})


# ---- opening: the driver, the URL, the errors ----------------------------------------------------------


def test_plain_urls_use_psycopg_and_migrate_from_blank(pg_url):
    for url in (pg_url, pg_url.replace("postgresql://", "postgres://", 1)):  # postgres:// as Heroku-style hosts give it
        store = Store(url)
        assert store.engine.dialect.driver == "psycopg"
        assert PASSWORD not in store.url and "***" in store.url
        store.close()
    names = [r[0] for r in query(pg_url, "SELECT name FROM _migrations ORDER BY name")]
    assert names == sorted(name for name, _ in MIGRATIONS)
    types = dict(((t, c), d) for t, c, d in query(
        pg_url, "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema='public'"))
    for table in schema.metadata.tables.values():
        assert {c for t, c in types if t == table.name} == {c.name for c in table.columns}, table.name
    assert types[("results", "id")] == "bigint" and types[("results", "input_tokens")] == "bigint"
    assert types[("results", "finish_reason")] == "text" and types[("results", "token_method")] == "text"
    assert types[("votes", "result_a")] == "bigint" and types[("judgments", "result_id")] == "bigint"
    assert types[("results", "itl_ms")] == "json"


def test_missing_driver_says_how_to_install_it(pg_url, tmp_path):
    shadow = tmp_path / "shadow" / "psycopg"  # psycopg installed without its libpq fails to import just so
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no pq wrapper available')\n")
    path = os.pathsep.join(filter(None, [str(shadow.parent), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    code = "import sys\nfrom tryouts.store import Store\ntry:\n    Store(sys.argv[1])\nexcept Exception as e:\n    print(e)"
    p = subprocess.run([sys.executable, "-c", code, pg_url], capture_output=True, text=True, env=env, timeout=60)
    assert "needs the PostgreSQL driver psycopg" in p.stdout and "pip install 'tryouts[postgres]'" in p.stdout, p.stdout
    assert_clean(p)
    p = tryouts("runs", "--db", pg_url, env={"PYTHONPATH": path})  # the CLI: an error, not a traceback
    assert p.returncode == 1 and "psycopg" in p.stderr, p.stdout + p.stderr
    assert_clean(p)


def test_connection_errors_name_the_host_and_never_the_password(pg_server, pg_url):
    refused = f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{free_port()}/x"
    wrong_pw = pg_url.replace(PASSWORD, "not-" + PASSWORD[::-1])
    missing = pg_server + "/no_such_db"
    for url, words in ((refused, "connection was refused"), (wrong_pw, "wrong or missing password"),
                       (missing, "no database 'no_such_db'")):
        p = tryouts("runs", "--db", url)
        assert p.returncode == 1, p.stdout + p.stderr
        said = " ".join(p.stderr.split())  # the console wraps lines
        assert "127.0.0.1" in said and words in said, said
        assert PASSWORD[::-1] not in p.stderr
        assert_clean(p)
    with pytest.raises(StoreError, match="createdb"):
        Store(missing)


# ---- the store's operations ------------------------------------------------------------------------------


def test_store_operations_round_trip_realistic_values(pg_url):
    store = Store(pg_url)
    run_id = store.create_run("suite", ["openai:gpt-4o-mini", "acme-private-gateway-provider-for-eu:model"], {"m": []})
    long_ref = "acme-private-gateway-provider-for-eu-west-3-with-sso-and-audit:" + "org/" * 30 + "model-7b"
    odd = make_result(
        long_ref, model_index=1, text="bytes\x00from a tiny model", error=None,
        finish_reason="content_filter_triggered_by_custom_gateway_policy_violation_v2",
        usage=Usage(input_tokens=3, output_tokens=4, estimated=True,
                    method="tokenizer:/srv/models/" + "very-long-directory-name/" * 12 + "tokenizer.json"),
        cost=Cost(total=Decimal("0.0000001234567890123456789012345678"), source="override"),
    )
    first = store.add_result(run_id, make_result())
    store.add_results(run_id, [odd, *(make_result(case_index=i) for i in range(1, 6))])
    failed = make_result(case_index=6, ok=False, error="the server said: " + "x" * 5000, error_kind="server")
    store.add_result(run_id, failed)

    data = store.get_run(run_id[:12])
    assert len(data["results"]) == 8 and data["run"]["status"] == "running"
    got = next(r for r in data["results"] if r["model_index"] == 1)
    assert got["model"] == long_ref and got["finish_reason"] == odd.finish_reason
    assert got["text"] == "bytes\ufffdfrom a tiny model"  # PostgreSQL text holds no NUL
    assert got["token_method"] == odd.usage.method and got["cost_usd_exact"] == str(odd.cost.total)
    assert next(r for r in data["results"] if not r["ok"])["error"] == failed.error

    page, total = store.results(run_id, offset=2, limit=3)
    assert total == 8 and [r["id"] for r in page] == [r["id"] for r in data["results"][2:5]]
    light, _ = store.results(run_id, columns=["ok", "cost_total"], ids=[first])
    assert light == [{"id": first, "ok": True, "cost_usd": pytest.approx(0.000123456789), "cost_usd_exact": "0.000123456789"}]
    assert store.done_cells(run_id) >= {(0, 0, 0), (1, 0, 0), (0, 6, 0)}

    store.finish_run(run_id, "done")
    (row,) = [r for r in store.list_runs() if r["id"] == run_id]
    assert row["status"] == "done" and row["n_results"] == 8 and row["n_failed"] == 1

    assert store.cache_get("k") is None
    store.cache_put("k", long_ref, {"text": "a\x00b"})
    store.cache_put("k", long_ref, {"text": "hello"})  # replaced
    assert store.cache_get("k") == {"text": "hello"} and store.cache_get("k") == {"text": "hello"}
    assert query(pg_url, "SELECT hits FROM cache WHERE key = 'k'") == [(2,)]

    store.add_judgments(run_id, [{"kind": "rubric", "judge": long_ref, "result_id": first, "ok": True, "score": 4.0,
                                  "text": "4\x00", "cost_total": Decimal("0.001"), "cost_source": "genai-prices"}])
    assert store.judgments(run_id)[0]["text"] == "4\ufffd"
    vote = store.add_vote(run_id, case_index=0, repeat_index=0, result_a=first, result_b=first + 1,
                          model_a="openai:gpt-4o-mini", model_b=long_ref, verdict="b")
    assert store.votes(run_id, "human")[0]["id"] == vote


def test_a_load_benchmark_round_trips_on_postgresql(pg_url, replay_server):
    from tryouts.usecases.load import LoadLedger, LoadSettings, run_load
    from tryouts.usecases.load_results import load_benchmark, recompute

    store = Store(pg_url)
    ref = f"openai-compat:{replay_server}#tokens=3;ttft_ms=5"
    settings = LoadSettings(profile="concurrent", streams=2, requests=6, warmup=1, slo={"ttft": 1000})
    out = run_load(ref, settings)
    ledger = LoadLedger(store, ref, "concurrent", settings)
    ledger.point(out | {"p50_itl_ms": float("nan")})  # PostgreSQL's JSON refuses NaN: stored as null
    ledger.finish(out)
    store.add_load_point(ledger.run_id, 0, "synchronous", {}, {"completed": 99}, [])  # delivered twice
    bench = load_benchmark(store, ledger.run_id)
    assert len(bench["points"]) == 1 and bench["points"][0]["p50_itl_ms"] is None  # the first write stays
    assert bench["points"][0]["completed"] == 6
    assert len(store.load_requests(ledger.run_id, 0)) == 7
    again = recompute(store, ledger.run_id, 0)
    assert again["completed"] == 6 and again["p99_ttft_ms"] == pytest.approx(bench["points"][0]["p99_ttft_ms"])
    (row,) = [r for r in store.list_runs() if r["id"] == ledger.run_id]
    assert (row["kind"], row["n_results"], row["n_failed"]) == ("load", 6, 0)


def test_ids_and_counts_beyond_32_bits(pg_url):
    store = Store(pg_url)
    run_id = store.create_run("suite", ["m:x"], {})
    with store.engine.begin() as conn:  # a long-lived team store: ids past 2^31
        conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('results', 'id'), 3000000000)")
    big = 5_000_000_000
    rid = store.add_result(run_id, make_result(usage=Usage(input_tokens=big, output_tokens=7, cached_input_tokens=big)))
    assert rid > 2**31
    assert store.get_run(run_id)["results"][0]["input_tokens"] == big
    store.add_judgments(run_id, [{"kind": "pairwise", "judge": "m:j", "result_id": rid, "other_result_id": rid + 1,
                                  "order": "ab", "ok": True, "verdict": "a", "text": "A", "input_tokens": big,
                                  "cost_source": "unknown"}])
    assert store.judgments(run_id)[0]["other_result_id"] == rid + 1
    store.add_vote(run_id, case_index=0, repeat_index=0, result_a=rid, result_b=rid + 1, model_a="a", model_b="b",
                   verdict="tie")
    assert store.votes(run_id)[0]["result_b"] == rid + 1


WRITER = """
import sys, time
from pathlib import Path
from datetime import UTC, datetime
from sqlalchemy.dialects.postgresql import insert
from tryouts.store import Store, schema
from tryouts.types import Request, Result, Message
url, me, go, shared = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
while not go.exists():
    time.sleep(0.005)
store = Store(url)  # both open a blank database at once: the migrations must not race
with store.engine.begin() as conn:  # the shared run, under an id both know
    conn.execute(insert(schema.runs).values(id=shared, kind="suite", status="running", started_at="2026-12-01",
                                            models=["m:x"], request={}, meta={}, tryouts_version="t")
                 .on_conflict_do_nothing())
own = store.create_run("suite", ["m:x"], {})
def result(i):
    return Result(model="m:x", provider="m", model_name="x", ok=True, text=f"{me}-{i}", model_index=me, case_index=i,
                  started_at=datetime.now(UTC), request=Request(messages=[Message(role="user", content="hi")]))
for i in range(40):  # the same five cache keys from both: a shared cache written at once
    store.add_results(shared, [result(i)], [(f"key-{i % 5}", "m:x", {"text": f"{me}-{i}"})])
    store.add_result(own, result(i))
print(own)
"""


def test_a_cell_delivered_twice_is_stored_once_on_postgresql(pg_url):
    """Result sinks are idempotent per cell (engine/executor.py): the first row stays, in one batch or two."""
    store = Store(pg_url)
    run_id = store.create_run("suite", ["openai:gpt-4o-mini"], {})
    first, late = make_result(text="first"), make_result(text="late", ok=False)
    store.add_results(run_id, [first, make_result(text="same batch", case_index=1)])
    store.add_results(run_id, [late, make_result(text="new", case_index=2)])
    rows = {r["case_index"]: r["text"] for r in store.get_run(run_id)["results"]}
    assert rows == {0: "first", 1: "same batch", 2: "new"}


def test_two_processes_write_at_once(pg_url, tmp_path):
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, pg_url, str(me), str(go), "r-shared"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for me in (0, 1)]
    time.sleep(1.0)  # both are up and waiting for the go file
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    store = Store(pg_url)
    assert store.done_cells("r-shared") == {(me, i, 0) for me in (0, 1) for i in range(40)}
    for out, _ in outs:
        assert store.results(out.strip())[1] == 40
    assert query(pg_url, "SELECT count(*) FROM cache") == [(5,)]
    assert query(pg_url, "SELECT count(*), count(DISTINCT name) FROM _migrations") == [(len(MIGRATIONS),) * 2]


# ---- the CLI and the dashboard on PostgreSQL --------------------------------------------------------------

#: a gateway's own finish reason, longer than the VARCHAR(40) the first schema gave it
LONG_FINISH = "content_filter_triggered_by_custom_gateway_policy_violation_v2"


def slow_suite(tmp_path: Path, replay_server: str, n: int, concurrency: int) -> str:
    path = tmp_path / "suite.yaml"
    path.write_text(f"""
models:
  - "openai-compat:{replay_server}#tokens=5;ttft_ms=300"
  - "openai-compat:{replay_server}#tokens=5;ttft_ms=300;finish={LONG_FINISH}"
prompts: ["case {{{{i}}}}"]
cases: [{", ".join(f"{{vars: {{i: {i}}}}}" for i in range(n))}]
concurrency: {{openai-compat: {concurrency}}}
""")
    return str(path)


def cells(url: str) -> tuple[int, int]:
    """(rows, distinct cells) in the results table."""
    return query(url, "SELECT count(*), count(DISTINCT (model_index, case_index, repeat_index)) FROM results")[0]


def start_run(suite_path: str, url: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tryouts", "run", suite_path, "--db", url, "--no-cache"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_rows(proc: subprocess.Popen, url: str, at_least: int) -> None:
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if cells(url)[0] >= at_least:
                return
        except Exception:  # the run has not migrated the database yet
            pass
        time.sleep(0.05)


def test_kill_9_mid_run_then_resume_runs_exactly_the_missing_cells(replay_server, pg_url, tmp_path):
    s = slow_suite(tmp_path, replay_server, n=12, concurrency=4)
    proc = start_run(s, pg_url)
    wait_for_rows(proc, pg_url, 6)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = cells(pg_url)[0]
    assert 6 <= before < 24, proc.stderr.read()
    (run_id, status), = query(pg_url, "SELECT id, status FROM runs")
    assert status == "running"  # killed: nobody marked it
    shown = json.loads(tryouts("runs", "--db", pg_url, "-f", "json").stdout)[0]
    assert shown["status"] == "stale", shown  # but its process is gone, so it reads as stale
    p = tryouts("run", s, "--resume", run_id, "--db", pg_url, "--no-cache")
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"{24 - before} of 24 cells to run" in p.stdout
    assert_clean(p)
    assert cells(pg_url) == (24, 24)
    assert query(pg_url, "SELECT status FROM runs") == [("done",)]
    assert query(pg_url, "SELECT count(*) FROM results WHERE ok AND finish_reason = %s", LONG_FINISH) == [(12,)]


def test_dashboard_reads_a_run_while_it_is_written(replay_server, pg_url, tmp_path):
    Store(pg_url).close()  # migrated, so the dashboard starts on the same database the run writes
    s = slow_suite(tmp_path, replay_server, n=10, concurrency=2)
    web = httpx.Client(headers={"Authorization": "Bearer a-token-for-this-test"}, timeout=30)
    with serve_dashboard(pg_url, token="a-token-for-this-test") as (base, _app):
        proc = start_run(s, pg_url)
        wait_for_rows(proc, pg_url, 1)
        (run_id,) = query(pg_url, "SELECT id FROM runs")[0]
        seen_running, totals = [], []
        deadline = time.monotonic() + 120  # a guard against a run that never ends, not a timing check
        while True:
            done = proc.poll() is not None
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"the run did not end: {proc.communicate()[1][-3000:]}")
            (run,) = [r for r in web.get(f"{base}/api/runs").json() if r["id"] == run_id]
            page = web.get(f"{base}/api/runs/{run_id}/results", params={"limit": 500}).json()
            assert len(page["results"]) == page["total"]  # each answer is one consistent snapshot
            assert all(r["ok"] for r in page["results"])
            totals.append(page["total"])
            if run["status"] == "running" and 0 < page["total"] < 20:
                seen_running.append(page["total"])
            if done:
                break
            time.sleep(0.1)
        assert proc.returncode == 0, proc.stderr.read()
        assert seen_running, totals  # it was read mid-run
        assert totals == sorted(totals) and totals[-1] == 20
        detail = web.get(f"{base}/api/runs/{run_id}").json()
        assert detail["run"]["status"] == "done" and detail["n_results"] == 20 and detail["n_failed"] == 0


def test_compare_export_and_diff_on_postgresql(replay_server, pg_url):
    models = ["-m", f"openai-compat:{replay_server}#tokens=3",
              "-m", f"openai-compat:{replay_server}#tokens=4;finish={LONG_FINISH}"]
    ids = []
    for prompt in ("Say hi", "Say hello"):
        p = tryouts("compare", prompt, *models, "--db", pg_url)
        assert p.returncode == 0, p.stdout + p.stderr
        assert_clean(p)  # "Stored as run ... in URL" shows no password
        ids.append(query(pg_url, "SELECT id FROM runs ORDER BY started_at DESC LIMIT 1")[0][0])
    p = tryouts("export", ids[0], "-f", "json", "--db", pg_url)
    assert p.returncode == 0, p.stderr
    exported = json.loads(p.stdout)
    assert exported["run"]["id"] == ids[0] and [r["output_tokens"] for r in exported["results"]] == [3, 4]
    p = tryouts("export", "latest", "-f", "csv", "--db", pg_url)
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    assert [int(r["output_tokens"]) for r in rows] == [3, 4] and rows[1]["finish_reason"] == LONG_FINISH
    p = tryouts("diff", ids[0], ids[1], "-f", "json", "--db", pg_url)
    assert p.returncode == 0, p.stderr
    assert_clean(p)
    diff = json.loads(p.stdout)
    assert len(diff["pairs"]) == 2 and diff["only_in_a"]["results"] == diff["only_in_b"]["results"] == 0
    assert all(pair["ok_a"] and pair["ok_b"] and not pair["output_changed"] for pair in diff["pairs"])


def test_signatures_verify_after_a_postgresql_round_trip(pg_url, replay_server, tmp_path):
    """What Tryouts signs (trust.py) comes back from PostgreSQL's JSON as it went in: the cache answers, a run
    resumes from its stored suite, and a comparison's options verify for the dashboard's re-run."""
    import psycopg

    from helpers import text_model
    from tryouts.web.rerun import _signed

    path = tmp_path / "suite.yaml"
    path.write_text(f"""
models:
  - model: "{text_model(replay_server, 'Paris, é ✓')}"
    options: {{timeout: 30.5}}
prompts: ["Capital of {{{{ c }}}}?"]
cases: [{{vars: {{c: France}}, expected: Paris}}, {{vars: {{c: Spain}}, expected: Madrid}}]
""")
    first = tryouts("run", str(path), "--db", pg_url, "--no-progress", "-f", "json")
    assert first.returncode == 0, first.stderr
    run_id = json.loads(first.stdout)["run"]["id"]
    second = tryouts("run", str(path), "--db", pg_url, "--no-progress", "-f", "json")
    assert second.returncode == 0, second.stderr
    assert all(r["cached"] for r in json.loads(second.stdout)["results"])  # the signed entries verify
    with psycopg.connect(pg_url) as conn:
        conn.execute("DELETE FROM results WHERE run_id = %s", (run_id,))
        conn.execute("UPDATE runs SET status = 'interrupted' WHERE id = %s", (run_id,))
    path.unlink()  # only the stored suite is left
    resumed = tryouts("run", "--resume", run_id, "--db", pg_url, "--no-progress", "--no-cache")
    assert resumed.returncode == 0 and "2 of 2 cells to run" in resumed.stdout, resumed.stdout + resumed.stderr
    assert_clean(resumed)
    compared = tryouts("compare", "Say hi", "-m", text_model(replay_server, "hi"), "-o", "timeout=12.5",
                       "--db", pg_url, "-f", "json")
    assert compared.returncode == 0, compared.stderr
    store = Store(pg_url)
    run = store.get_run(json.loads(compared.stdout)["run"]["id"])
    assert run["results"][0]["options"] and _signed(run["run"], run["results"])


def test_a_run_list_never_reads_a_stored_suite_or_a_huge_value_on_postgresql(pg_url):
    from test_store import _list_with_a_huge_value

    _list_with_a_huge_value(pg_url)
