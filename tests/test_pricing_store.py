"""The pricing details a result keeps (m012): 1-hour cache writes and the service tier, in SQLite and PostgreSQL."""

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import create_engine, inspect

from tryouts.store import Store
from tryouts.store.migrations import MIGRATIONS, _applied, _bookkeeping
from tryouts.types import Cost, Message, Request, Result, Usage


def result(**usage) -> Result:
    return Result(
        model="openai:gpt-5", provider="openai", model_name="gpt-5", ok=True, text="hi",
        started_at=datetime(2026, 11, 2, tzinfo=UTC),
        usage=Usage(input_tokens=1000, output_tokens=50, cache_write_tokens=300, **usage),
        cost=Cost(total=Decimal("0.00137"), input=Decimal("0.00112"), output=Decimal("0.00025"),
                  source="genai-prices (flex)"),
        request=Request(messages=[Message(role="user", content="hi")]),
    )


def round_trip(store: Store) -> None:
    run_id = store.create_run("compare", ["openai:gpt-5"], {"messages": []})
    store.add_result(run_id, result(cache_write_1h_tokens=300, service_tier="flex"))
    flat = store.get_run(run_id)["results"][0]
    assert (flat["cache_write_tokens"], flat["cache_write_1h_tokens"], flat["service_tier"]) == (300, 300, "flex")
    record = store.records(run_id)[0]  # a cost source beyond the plain ones still validates
    assert record.cost_source == "genai-prices (flex)" and record.cost_usd_exact == "0.00137"


def test_m012_is_the_newest_migration_and_round_trips(tmp_path):
    assert MIGRATIONS[-1][0] == "m012_cache_ttl_and_service_tier"
    store = Store(tmp_path / "t.db")
    cols = {c["name"]: c for c in inspect(store.engine).get_columns("results")}
    assert {"cache_write_1h_tokens", "service_tier"} <= set(cols)
    round_trip(store)


def test_a_database_at_m011_gains_the_columns_and_keeps_its_rows(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:
        _bookkeeping.create_all(conn)
        for name, fn in MIGRATIONS[:-1]:
            fn(conn)
            conn.execute(_applied.insert().values(name=name, applied_at="2026-11-01"))
        conn.exec_driver_sql(
            "INSERT INTO runs (id, kind, status, started_at, models, request, meta, tryouts_version) "
            "VALUES ('r1', 'compare', 'done', '2026-11-01', '[]', '{}', '{}', '0.9')")
    engine.dispose()
    store = Store(tmp_path / "old.db")
    store.add_result("r1", result())
    flat = store.get_run("r1")["results"][0]
    assert flat["cache_write_1h_tokens"] is None and flat["service_tier"] is None and flat["cache_write_tokens"] == 300


def test_postgres_migrates_to_m012(pg_url):
    import psycopg

    store = Store(pg_url)
    with psycopg.connect(pg_url) as conn:
        types = dict(conn.execute("SELECT column_name, data_type FROM information_schema.columns "
                                  "WHERE table_name = 'results'").fetchall())
    assert types["cache_write_1h_tokens"] == "bigint" and types["service_tier"] == "text"
    round_trip(store)
    store.close()
