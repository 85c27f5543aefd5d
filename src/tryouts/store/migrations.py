"""Forward-only schema migrations, one small named function each, recorded in ``_migrations``.

Each migration spells out its own DDL (it never reads ``schema.py``), so a database migrated from
any past version ends in the same state as a blank one. Add new ones at the end; never edit one
that has shipped.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    inspect,
    select,
)

Migration = Callable[[Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append((fn.__name__, fn))
    return fn


_bookkeeping = MetaData()
_applied = Table(
    "_migrations",
    _bookkeeping,
    Column("name", String(100), primary_key=True),
    Column("applied_at", String(40), nullable=False),
)


@migration
def m001_runs_and_results(conn: Connection) -> None:
    md = MetaData()
    Table(
        "runs",
        md,
        Column("id", String(40), primary_key=True),
        Column("kind", String(20), nullable=False),
        Column("status", String(20), nullable=False),
        Column("started_at", String(40), nullable=False),
        Column("finished_at", String(40)),
        Column("models", JSON, nullable=False),
        Column("request", JSON, nullable=False),
        Column("meta", JSON, nullable=False),
        Column("tryouts_version", String(40), nullable=False),
    )
    results = Table(
        "results",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("run_id", String(40), ForeignKey("runs.id"), nullable=False),
        Column("model_index", Integer, nullable=False),
        Column("case_index", Integer, nullable=False),
        Column("repeat_index", Integer, nullable=False),
        Column("model", Text, nullable=False),
        Column("provider", String(60), nullable=False),
        Column("model_name", Text, nullable=False),
        Column("options", JSON, nullable=False),
        Column("ok", Boolean, nullable=False),
        Column("error", Text),
        Column("error_kind", String(40)),
        Column("text", Text, nullable=False),
        Column("reasoning_text", Text, nullable=False),
        Column("finish_reason", String(40)),
        Column("started_at", String(40), nullable=False),
        *(Column(name, Float) for name in
          ("queue_ms", "load_ms", "ttft_ms", "ttfat_ms", "e2e_ms", "tpot_ms", "output_tokens_per_s")),
        Column("itl_ms", JSON, nullable=False),
        Column("n_chunks", Integer, nullable=False),
        *(Column(name, Integer) for name in
          ("input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens", "reasoning_tokens")),
        Column("tokens_estimated", Boolean, nullable=False),
        Column("token_method", String(200), nullable=False),
        Column("cost_total", String(40)),
        Column("cost_input", String(40)),
        Column("cost_output", String(40)),
        Column("cost_currency", String(8), nullable=False),
        Column("cost_source", String(40), nullable=False),
        Column("server_timings", JSON),
        Column("request", JSON, nullable=False),
        Column("cached", Boolean, nullable=False),
    )
    Index("ix_results_run_id", results.c.run_id)
    md.create_all(conn)


#: the advisory lock key migrations hold on PostgreSQL (any constant; "tryouts" in ASCII)
_MIGRATION_LOCK = 0x7472796F757473


def applied(conn: Connection) -> set[str]:
    """Names of the migrations already applied."""
    if not inspect(conn).has_table("_migrations"):
        return set()
    return set(conn.execute(select(_applied.c.name)).scalars())


def migrate(conn: Connection) -> list[str]:
    """Apply every migration not yet applied, in order; return their names.

    On PostgreSQL a transaction-scoped advisory lock makes processes that open the same database at once
    (a team's first runs) migrate one after the other instead of racing to create the same tables; on SQLite
    (the drivers of a sharded run starting together) ``BEGIN IMMEDIATE`` takes the write lock first.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
    elif conn.dialect.name == "sqlite" and not conn.connection.dbapi_connection.in_transaction:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    _bookkeeping.create_all(conn)
    done = applied(conn)
    ran = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        fn(conn)
        conn.execute(insert(_applied).values(name=name, applied_at=datetime.now(UTC).isoformat()))
        ran.append(name)
    return ran


def _add_column(conn: Connection, table: str, column: Column) -> None:
    kind = column.type.compile(dialect=conn.dialect)
    quote = conn.dialect.identifier_preparer.quote
    conn.exec_driver_sql(f"ALTER TABLE {quote(table)} ADD COLUMN {quote(column.name)} {kind}")


@migration
def m002_suites_cache_and_resume(conn: Connection) -> None:
    """Suite runs: the case a result belongs to, retry attempts, one row per cell, a response cache."""
    _add_column(conn, "results", Column("case", JSON))
    _add_column(conn, "results", Column("attempts", Integer))
    md = MetaData()
    results = Table("results", md, autoload_with=conn)
    Index(
        "ux_results_cell", results.c.run_id, results.c.model_index, results.c.case_index, results.c.repeat_index,
        unique=True,
    ).create(conn)
    Table(
        "cache",
        md,
        Column("key", String(64), primary_key=True),
        Column("created_at", String(40), nullable=False),
        Column("model", Text, nullable=False),
        Column("response", JSON, nullable=False),
        Column("hits", Integer, nullable=False),
    ).create(conn)


@migration
def m003_scores(conn: Connection) -> None:
    """Quality scores of a result (assertions, reference metrics), stored beside its timings."""
    _add_column(conn, "results", Column("scores", JSON))


@migration
def m004_judgments_and_votes(conn: Connection) -> None:
    """LLM-judge calls (their own cost and latency) and pairwise votes (human arena or judge)."""
    md = MetaData()
    Table("runs", md, autoload_with=conn)  # the target of the foreign keys
    judgments = Table(
        "judgments",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("run_id", String(40), ForeignKey("runs.id"), nullable=False),
        Column("kind", String(20), nullable=False),
        Column("judge", Text, nullable=False),
        Column("result_id", Integer, nullable=False),
        Column("other_result_id", Integer),
        Column("order", String(4)),
        Column("ok", Boolean, nullable=False),
        Column("error", Text),
        Column("score", Float),
        Column("verdict", String(10)),
        Column("rationale", Text),
        Column("text", Text, nullable=False),
        Column("created_at", String(40), nullable=False),
        Column("ttft_ms", Float),
        Column("e2e_ms", Float),
        Column("input_tokens", Integer),
        Column("output_tokens", Integer),
        Column("cost_total", String(40)),
        Column("cost_source", String(40), nullable=False),
    )
    Index("ix_judgments_run_id", judgments.c.run_id)
    votes = Table(
        "votes",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("run_id", String(40), ForeignKey("runs.id"), nullable=False),
        Column("case_index", Integer, nullable=False),
        Column("repeat_index", Integer, nullable=False),
        Column("result_a", Integer, nullable=False),
        Column("result_b", Integer, nullable=False),
        Column("model_a", Text, nullable=False),
        Column("model_b", Text, nullable=False),
        Column("verdict", String(10), nullable=False),
        Column("source", Text, nullable=False),
        Column("created_at", String(40), nullable=False),
    )
    Index("ix_votes_run_id", votes.c.run_id)
    md.create_all(conn)


@migration
def m005_sampling(conn: Connection) -> None:
    """The effective sampling parameters of each result (what was sent, what was left to a default)."""
    _add_column(conn, "results", Column("sampling", JSON))


@migration
def m006_postgres_widths(conn: Connection) -> None:
    """Values PostgreSQL refused that SQLite took: strings over a VARCHAR length (a server's own finish reason,
    a token method naming a long tokenizer path, a long decimal cost, a third party's provider name) become
    TEXT; result ids (and the columns that point at them) and token counts become 64-bit. SQLite enforces
    neither a VARCHAR length nor a 32-bit INTEGER, so there is nothing to change there. JSON columns stay
    ``json``: it keeps what was written, escaped NULs included, which ``jsonb`` refuses, and nothing queries
    inside them. One ALTER TABLE per table, so each table is rewritten once."""
    if conn.dialect.name != "postgresql":
        return
    tokens = ["input_tokens", "output_tokens"]
    changes = {
        "runs": {"TEXT": ["tryouts_version"]},
        "results": {
            "TEXT": ["provider", "error_kind", "finish_reason", "token_method", "cost_total", "cost_input",
                     "cost_output", "cost_currency", "cost_source"],
            "BIGINT": ["id", *tokens, "cached_input_tokens", "cache_write_tokens", "reasoning_tokens"],
        },
        "judgments": {"TEXT": ["cost_total", "cost_source"], "BIGINT": ["result_id", "other_result_id", *tokens]},
        "votes": {"BIGINT": ["result_a", "result_b"]},
    }
    for table, kinds in changes.items():
        parts = [f'ALTER COLUMN "{column}" TYPE {kind}' for kind, columns in kinds.items() for column in columns]
        conn.exec_driver_sql(f'ALTER TABLE "{table}" ' + ", ".join(parts))
    sequence = conn.exec_driver_sql("SELECT pg_get_serial_sequence('results', 'id')").scalar()
    if sequence:
        conn.exec_driver_sql(f"ALTER SEQUENCE {sequence} AS BIGINT")


@migration
def m007_run_owner(conn: Connection) -> None:
    """Who is running a run (``PID@HOST``) and its last heartbeat, so a run whose process died shows as stale
    and a run being run cannot be resumed a second time (store/liveness.py)."""
    _add_column(conn, "runs", Column("owner", Text))
    _add_column(conn, "runs", Column("heartbeat_at", String(40)))


@migration
def m008_load_benchmarks(conn: Connection) -> None:
    """Load benchmarks (``tryouts load``): each load point's settings and figures, and every request's times,
    tokens and status, so a benchmark can be shown, compared and charted again without rerunning it."""
    from sqlalchemy import BigInteger

    md = MetaData()
    Table("runs", md, autoload_with=conn)  # the target of the foreign keys
    points = Table(
        "load_points",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("run_id", String(40), ForeignKey("runs.id"), nullable=False),
        Column("point_index", Integer, nullable=False),
        Column("profile", Text, nullable=False),
        Column("settings", JSON, nullable=False),
        Column("figures", JSON, nullable=False),
        Column("created_at", String(40), nullable=False),
    )
    Index("ix_load_points_run_id", points.c.run_id)
    Index("ux_load_points", points.c.run_id, points.c.point_index, unique=True)
    requests = Table(
        "load_requests",
        md,
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
        Column("run_id", String(40), ForeignKey("runs.id"), nullable=False),
        Column("point_index", Integer, nullable=False),
        Column("request_index", Integer, nullable=False),
        Column("phase", String(10), nullable=False),
        Column("worker", Integer, nullable=False),
        Column("status", String(20), nullable=False),
        Column("error", Text),
        Column("request_id", Text),
        Column("due_ms", Float, nullable=False),
        Column("sent_ms", Float),
        Column("first_ms", Float),
        Column("done_ms", Float),
        Column("chunk_ms", JSON, nullable=False),
        Column("input_tokens", BigInteger),
        Column("output_tokens", BigInteger),
        Column("cost_usd", Text),
        Column("rate_limit", JSON),
    )
    Index("ux_load_requests", requests.c.run_id, requests.c.point_index, requests.c.request_index, unique=True)
    md.create_all(conn)


@migration
def m009_ledger(conn: Connection) -> None:
    """The ledger of sweeps run by several drivers (engine/ray_executor.py, ``--shard``): each result's stable
    cell key (one row per key in a run), whether its timing is valid for speed comparisons, and the drivers
    running a run, one row per slice of its cells, each with its heartbeat."""
    _add_column(conn, "results", Column("cell_key", String(64)))
    _add_column(conn, "results", Column("timing_valid", Boolean))
    md = MetaData()
    results = Table("results", md, autoload_with=conn)
    Index("ux_results_cell_key", results.c.run_id, results.c.cell_key, unique=True).create(conn)
    Table("runs", md, autoload_with=conn)
    Table(
        "run_drivers",
        md,
        Column("run_id", String(40), ForeignKey("runs.id"), primary_key=True),
        Column("shard", String(40), primary_key=True),  # "i/n", or "all"
        Column("owner", Text, nullable=False),  # PID@HOST
        Column("started_at", String(40), nullable=False),
        Column("heartbeat_at", String(40), nullable=False),
        Column("finished_at", String(40)),
    ).create(conn)


@migration
def m010_batches(conn: Connection) -> None:
    """Provider batch jobs (docs/batch.md): each job a run (or a judge pass over it) sent, the cells in it by
    custom id, and whether its results are collected, so a stopped run resumes by collecting them; and each
    result's ``batch`` flag (answered through a batch API: no timings, batch prices)."""
    _add_column(conn, "results", Column("batch", Boolean))
    md = MetaData()
    Table(
        "batch_jobs",
        md,
        Column("run_id", String(40), primary_key=True),
        Column("job_id", String(256), primary_key=True),  # the provider's id
        Column("purpose", String(20), nullable=False),  # cells | judge
        Column("model", Text, nullable=False),  # the model reference (redacted)
        Column("model_index", Integer, nullable=False),
        Column("provider", Text, nullable=False),
        Column("server", Text),
        Column("custom_ids", JSON, nullable=False),
        Column("round", Integer, nullable=False),  # 1 for a first send, 2 for a resend of what expired...
        Column("status", Text, nullable=False),  # the provider's word for it
        Column("collected", Boolean, nullable=False),
        Column("created_at", String(40), nullable=False),
        Column("updated_at", String(40), nullable=False),
        Column("info", JSON),  # file ids, results URL, counts
    ).create(conn)


@migration
def m011_reviews_and_tags(conn: Connection) -> None:
    """Human review from the dashboard (docs/dashboard.md): a rating (good or bad) and a comment per result,
    and short tags per run, so runs can be labelled, filtered and rated where they are read."""
    from sqlalchemy import BigInteger

    md = MetaData()
    Table("runs", md, autoload_with=conn)  # the target of the foreign keys
    Table(
        "reviews",
        md,
        Column("run_id", String(40), ForeignKey("runs.id"), primary_key=True),
        Column("result_id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
        Column("rating", String(10)),  # good | bad, or null (a comment alone)
        Column("comment", Text, nullable=False),
        Column("created_at", String(40), nullable=False),
        Column("updated_at", String(40), nullable=False),
    )
    tags = Table(
        "run_tags",
        md,
        Column("run_id", String(40), ForeignKey("runs.id"), primary_key=True),
        Column("tag", String(40), primary_key=True),
        Column("created_at", String(40), nullable=False),
    )
    Index("ix_run_tags_tag", tags.c.tag)
    md.create_all(conn)


@migration
def m012_cache_ttl_and_service_tier(conn: Connection) -> None:
    """Pricing detail of each result (docs/metrics.md, cost): the cache writes that went to a 1-hour cache (priced
    at twice the input price, against 1.25 times for 5-minute writes) and the service tier the provider says served
    the request (OpenAI's flex, priority...: priced at that tier's price)."""
    from sqlalchemy import BigInteger

    _add_column(conn, "results", Column("cache_write_1h_tokens", BigInteger))
    _add_column(conn, "results", Column("service_tier", Text))
