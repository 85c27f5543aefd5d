from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, inspect

from tryouts.errors import StoreError
from tryouts.store import Store, schema
from tryouts.store.migrations import MIGRATIONS, migrate
from tryouts.types import Cost, Message, Request, Result, Timing, Usage


def make_result(model="openai:gpt-4o-mini", ok=True, **kw):
    return Result(
        model=model,
        provider=model.split(":")[0],
        model_name=model.split(":", 1)[1],
        ok=ok,
        error=None if ok else "boom",
        error_kind=None if ok else "server",
        text="hello" if ok else "par",
        started_at=datetime(2026, 11, 24, 12, 0, tzinfo=UTC),
        timing=Timing(ttft_ms=12.5, e2e_ms=40.0, tpot_ms=2.5, output_tokens_per_s=400.0, itl_ms=[1.0, 2.0], n_chunks=3),
        usage=Usage(input_tokens=5, output_tokens=7, estimated=True, method="fallback:chars/4"),
        cost=Cost(total=Decimal("0.000123456789"), source="genai-prices"),
        request=Request(messages=[Message(role="user", content="hi")]),
        server_timings={"prompt_ms": 1.5},
        **kw,
    )


def test_migrations_from_blank_match_the_schema(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        assert migrate(conn) == [name for name, _ in MIGRATIONS]
        assert migrate(conn) == []  # idempotent
    insp = inspect(engine)
    for table in schema.metadata.tables.values():
        cols = {c["name"] for c in insp.get_columns(table.name)}
        assert cols == {c.name for c in table.columns}, table.name


def test_round_trip_keeps_every_field_and_exact_money(tmp_path):
    store = Store(tmp_path / "sub" / "t.db")
    run_id = store.create_run("compare", ["openai:gpt-4o-mini", "hf:x"], {"messages": []})
    store.add_result(run_id, make_result())
    store.add_result(run_id, make_result("hf:x", ok=False, model_index=1))
    store.finish_run(run_id, "partial")

    data = Store(tmp_path / "sub" / "t.db").get_run(run_id[:10])  # reopen; prefix lookup
    assert data["run"]["id"] == run_id and data["run"]["status"] == "partial"
    first, second = data["results"]
    assert first["model"] == "openai:gpt-4o-mini" and first["ok"] is True
    assert first["cost_usd_exact"] == "0.000123456789"
    assert first["cost_usd"] == pytest.approx(0.000123456789)
    assert first["ttft_ms"] == 12.5 and first["itl_ms"] == [1.0, 2.0]
    assert first["tokens_estimated"] is True and first["token_method"] == "fallback:chars/4"
    assert first["server_timings"] == {"prompt_ms": 1.5}
    assert first["request"]["messages"][0]["content"] == "hi"
    assert second["ok"] is False and second["error"] == "boom" and second["text"] == "par"


def test_list_runs_newest_first_with_counts(tmp_path):
    store = Store(tmp_path / "t.db")
    a = store.create_run("compare", ["a:1"], {})
    b = store.create_run("compare", ["b:1"], {})
    store.add_result(b, make_result())
    store.add_result(b, make_result(ok=False, repeat_index=1))
    runs = store.list_runs()
    assert [r["id"] for r in runs] == [b, a]
    assert runs[0]["n_results"] == 2 and runs[0]["n_failed"] == 1
    assert runs[1]["n_results"] == 0
    assert store.resolve_run_id("latest") == runs[0]["id"]


def test_unknown_run_and_unopenable_db_say_what_to_do(tmp_path):
    store = Store(tmp_path / "t.db")
    with pytest.raises(StoreError, match="tryouts runs"):
        store.get_run("nope")
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError, match="--db"):
        Store(tmp_path / "dir.db")


def test_sqlite_uses_wal(tmp_path):
    store = Store(tmp_path / "t.db")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_credentials_in_options_are_never_stored(tmp_path):
    store = Store(tmp_path / "t.db")
    run_id = store.create_run("compare", ["x:y"], {})
    r = make_result()
    r.options = {"headers": {"Authorization": "Bearer sk-planted-secret"}, "api_key_env": "MY_KEY", "dtype": "float16"}
    store.add_result(run_id, r)
    stored = store.get_run(run_id)["results"][0]["options"]
    assert stored == {"headers": "***", "api_key_env": "MY_KEY", "dtype": "float16"}
    raw = (tmp_path / "t.db").read_bytes() + (tmp_path / "t.db-wal").read_bytes()
    assert b"sk-planted-secret" not in raw


def test_one_row_per_cell_is_enforced(tmp_path):
    from sqlalchemy.exc import IntegrityError

    store = Store(tmp_path / "t.db")
    run_id = store.create_run("suite", ["a:1"], {})
    store.add_result(run_id, make_result(case_index=3, repeat_index=1))
    with pytest.raises(IntegrityError):
        store.add_result(run_id, make_result(case_index=3, repeat_index=1))
    assert store.done_cells(run_id) == {(0, 3, 1)}


def test_response_cache_round_trip_counts_hits(tmp_path):
    store = Store(tmp_path / "t.db")
    assert store.cache_get("k") is None
    store.cache_put("k", "openai:x", {"text": "hi"})
    store.cache_put("k", "openai:x", {"text": "hello"})  # replaced
    assert store.cache_get("k") == {"text": "hello"}
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT hits FROM cache").scalar() == 1


def test_migrating_a_v1_database_keeps_its_rows(tmp_path):
    """A database created by the first release (m001 only) upgrades in place."""
    from tryouts.store.migrations import MIGRATIONS, _applied, _bookkeeping

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:
        _bookkeeping.create_all(conn)
        name, first = MIGRATIONS[0]
        first(conn)
        conn.execute(_applied.insert().values(name=name, applied_at="2026-11-01"))
        conn.exec_driver_sql(
            "INSERT INTO runs VALUES ('r1', 'compare', 'done', '2026-11-01', NULL, '[]', '{}', '{}', '0.1.0')"
        )
    store = Store(tmp_path / "old.db")
    assert store.get_run("r1")["run"]["status"] == "done"
    store.add_result("r1", make_result())
    assert store.get_run("r1")["results"][0]["case"] is None


def test_cell_keys_and_timing_validity_are_stored_and_a_key_is_stored_once(tmp_path):
    store = Store(tmp_path / "k.db")
    run_id = store.create_run("suite", ["openai:gpt-4o-mini"], {})
    store.add_results(run_id, [make_result(cell_key="a" * 64, timing_valid=False),
                               make_result(case_index=1, cell_key="b" * 64, timing_valid=True)])
    # a second delivery of cell "a", even under other indices, is left out; the first row stays
    store.add_results(run_id, [make_result(case_index=7, cell_key="a" * 64, timing_valid=True)])
    rows = store.get_run(run_id)["results"]
    assert [(r["case_index"], r["cell_key"][0], r["timing_valid"]) for r in rows] == [(0, "a", False), (1, "b", True)]
    records = store.records(run_id)
    assert records[0].timing_valid is False and records[1].cell_key == "b" * 64



#: a driver: imports the store, then opens a new ledger each round as soon as the round's go-file appears
_OPENER = """
import os, sys, time
from tryouts.store import Store
folder, me, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
open(os.path.join(folder, f"ready-{me}"), "w").close()
for r in range(rounds):
    deadline = time.monotonic() + 60
    while not os.path.exists(os.path.join(folder, f"go-{r}")):
        if time.monotonic() > deadline:
            sys.exit("no go-file")
        time.sleep(0.0005)
    try:
        Store(os.path.join(folder, f"r{r}.db")).close()
    except Exception as exc:
        sys.exit(f"round {r}: {exc}")
    open(os.path.join(folder, f"done-{r}-{me}"), "w").close()
"""


def test_processes_opening_a_new_database_at_once_all_open_it(tmp_path):
    """The drivers of a sharded run start together on one new SQLite file. Switching it to WAL used to
    answer "database is locked" at once, without the busy wait, to a few of them (about 1 opener in 30)."""
    import subprocess
    import sys
    import time

    n, rounds = 6, 25
    procs = [subprocess.Popen([sys.executable, "-c", _OPENER, str(tmp_path), str(i), str(rounds)],
                              stderr=subprocess.PIPE, text=True) for i in range(n)]
    try:
        def wait_for(names):
            deadline = time.monotonic() + 120
            while not all((tmp_path / name).exists() for name in names):
                assert all(p.poll() is None for p in procs), [p.communicate()[1] for p in procs if p.poll()]
                assert time.monotonic() < deadline, "the openers stalled"
                time.sleep(0.005)

        wait_for([f"ready-{i}" for i in range(n)])
        for r in range(rounds):
            (tmp_path / f"go-{r}").touch()  # every opener starts at once
            wait_for([f"done-{r}-{i}" for i in range(n)])
        errs = [p.communicate(timeout=60)[1] for p in procs]
        assert all(p.returncode == 0 for p in procs), errs
    finally:
        for p in procs:
            p.kill() if p.poll() is None else None
    for r in range(rounds):
        store = Store(tmp_path / f"r{r}.db")
        with store.engine.connect() as conn:  # a working ledger, in WAL
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert store.list_runs() == []
        store.close()


def _list_with_a_huge_value(target):
    from tryouts.store.readable import MAX_LISTED, readable_runs

    store = Store(target)
    ok = store.create_run("suite", ["openai:x"], {"messages": []}, {"labels": ["a"], "suite": {"models": [{"m": 1}]}})
    huge = store.create_run("compare", ["openai:x"], {"messages": []}, {"pad": "x" * (MAX_LISTED + 10)})
    rows = {r["id"]: r for r in store.list_runs()}
    assert rows[ok]["meta"] == {"labels": ["a"], "suite": "stored"} and "unreadable" not in rows[ok]
    assert rows[huge]["meta"] is None and "over 16,000,000 characters" in rows[huge]["unreadable"]
    good, bad = readable_runs(store)
    assert [r["id"] for r in good] == [ok] and [b["id"] for b in bad] == [huge]
    assert store.get_run(ok)["run"]["meta"]["suite"] == {"models": [{"m": 1}]}  # get_run still reads it whole


def test_a_run_list_never_reads_a_stored_suite_or_a_huge_value(tmp_path):
    """A 200 MB value in one run's meta made every `tryouts runs` read it (840 MB): the database leaves the
    stored suite out of a list and answers NULL for a value over the cap, so the run is listed as unreadable."""
    _list_with_a_huge_value(tmp_path / "t.db")
