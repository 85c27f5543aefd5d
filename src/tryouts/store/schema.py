"""The current schema, for queries. Migrations (``migrations.py``) create and change it.

A test checks that a database migrated from blank has exactly these tables and columns.
Times are ISO 8601 strings in UTC; money is a decimal string (exact in SQLite and PostgreSQL).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

#: a result id: 64-bit on PostgreSQL (m006); SQLite's INTEGER PRIMARY KEY is already 64-bit (and must be
#: spelled INTEGER to stay the rowid that numbers new rows)
ID = BigInteger().with_variant(Integer(), "sqlite")

runs = Table(
    "runs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("started_at", String(40), nullable=False),
    Column("finished_at", String(40)),
    Column("models", JSON, nullable=False),
    Column("request", JSON, nullable=False),
    Column("meta", JSON, nullable=False),
    Column("tryouts_version", Text, nullable=False),
    Column("owner", Text),  # PID@HOST of the process running it (m007)
    Column("heartbeat_at", String(40)),  # its last sign of life (m007)
)

results = Table(
    "results",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("run_id", String(40), ForeignKey("runs.id"), nullable=False, index=True),
    Column("model_index", Integer, nullable=False),
    Column("case_index", Integer, nullable=False),
    Column("repeat_index", Integer, nullable=False),
    Column("model", Text, nullable=False),
    Column("provider", Text, nullable=False),
    Column("model_name", Text, nullable=False),
    Column("options", JSON, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("error", Text),
    Column("error_kind", Text),
    Column("text", Text, nullable=False),
    Column("reasoning_text", Text, nullable=False),
    Column("finish_reason", Text),
    Column("started_at", String(40), nullable=False),
    Column("queue_ms", Float),
    Column("load_ms", Float),
    Column("ttft_ms", Float),
    Column("ttfat_ms", Float),
    Column("e2e_ms", Float),
    Column("tpot_ms", Float),
    Column("output_tokens_per_s", Float),
    Column("itl_ms", JSON, nullable=False),
    Column("n_chunks", Integer, nullable=False),
    Column("input_tokens", BigInteger),
    Column("output_tokens", BigInteger),
    Column("cached_input_tokens", BigInteger),
    Column("cache_write_tokens", BigInteger),
    Column("reasoning_tokens", BigInteger),
    Column("tokens_estimated", Boolean, nullable=False),
    Column("token_method", Text, nullable=False),
    Column("cost_total", Text),
    Column("cost_input", Text),
    Column("cost_output", Text),
    Column("cost_currency", Text, nullable=False),
    Column("cost_source", Text, nullable=False),
    Column("server_timings", JSON),
    Column("request", JSON, nullable=False),
    Column("cached", Boolean, nullable=False),
    Column("case", JSON),
    Column("attempts", Integer),
    Column("scores", JSON),
    Column("sampling", JSON),
    Column("cell_key", String(64)),  # the cell's stable key (m009): one row per key in a run
    Column("timing_valid", Boolean),  # valid for speed comparisons (m009); null without timings
    Column("batch", Boolean),  # answered through a provider's batch API (m010): no timings
    Column("cache_write_1h_tokens", BigInteger),  # of cache_write_tokens, those to a 1-hour cache (m012)
    Column("service_tier", Text),  # the service tier the provider says served the request (m012)
)

#: provider batch jobs (m010): what a run, or a judge pass over it, sent as batches, to collect on resume
batch_jobs = Table(
    "batch_jobs",
    metadata,
    Column("run_id", String(40), primary_key=True),
    Column("job_id", String(256), primary_key=True),
    Column("purpose", String(20), nullable=False),
    Column("model", Text, nullable=False),
    Column("model_index", Integer, nullable=False),
    Column("provider", Text, nullable=False),
    Column("server", Text),
    Column("custom_ids", JSON, nullable=False),
    Column("round", Integer, nullable=False),
    Column("status", Text, nullable=False),
    Column("collected", Boolean, nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
    Column("info", JSON),
)

#: who runs which slice of a run's cells (m009): a sweep's drivers (``--shard i/n``; ``all`` for the whole)
run_drivers = Table(
    "run_drivers",
    metadata,
    Column("run_id", String(40), ForeignKey("runs.id"), primary_key=True),
    Column("shard", String(40), primary_key=True),
    Column("owner", Text, nullable=False),
    Column("started_at", String(40), nullable=False),
    Column("heartbeat_at", String(40), nullable=False),
    Column("finished_at", String(40)),
)

cache = Table(
    "cache",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("created_at", String(40), nullable=False),
    Column("model", Text, nullable=False),
    Column("response", JSON, nullable=False),
    Column("hits", Integer, nullable=False),
)

#: one call of an LLM judge: a rubric score of one result, or one ordering of a pairwise comparison
judgments = Table(
    "judgments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(40), ForeignKey("runs.id"), nullable=False, index=True),
    Column("kind", String(20), nullable=False),  # rubric | pairwise
    Column("judge", Text, nullable=False),  # the judge's model reference
    Column("result_id", ID, nullable=False),  # the judged result (pairwise: the first of the pair)
    Column("other_result_id", ID),  # pairwise: the second of the pair
    Column("order", String(4)),  # pairwise: "ab" (result first, shown as A) or "ba" (shown swapped)
    Column("ok", Boolean, nullable=False),
    Column("error", Text),
    Column("score", Float),  # rubric: the score on the rubric's scale
    Column("verdict", String(10)),  # pairwise: a | b | tie, already mapped back to result/other_result
    Column("rationale", Text),
    Column("text", Text, nullable=False),  # the judge's raw answer
    Column("created_at", String(40), nullable=False),
    Column("ttft_ms", Float),
    Column("e2e_ms", Float),
    Column("input_tokens", BigInteger),
    Column("output_tokens", BigInteger),
    Column("cost_total", Text),
    Column("cost_source", Text, nullable=False),
)

#: a pairwise preference between two results of the same cell: a human's (arena) or a judge's consistent verdict
votes = Table(
    "votes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(40), ForeignKey("runs.id"), nullable=False, index=True),
    Column("case_index", Integer, nullable=False),
    Column("repeat_index", Integer, nullable=False),
    Column("result_a", ID, nullable=False),
    Column("result_b", ID, nullable=False),
    Column("model_a", Text, nullable=False),  # the label shown in rankings
    Column("model_b", Text, nullable=False),
    Column("verdict", String(10), nullable=False),  # a | b | tie | both_bad
    Column("source", Text, nullable=False),  # "human" or "judge:<model reference>"
    Column("created_at", String(40), nullable=False),
)

#: one load point of a load benchmark (a run of kind ``load``): what it sent and its figures (load/metrics.py)
load_points = Table(
    "load_points",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(40), ForeignKey("runs.id"), nullable=False, index=True),
    Column("point_index", Integer, nullable=False),
    Column("profile", Text, nullable=False),
    Column("settings", JSON, nullable=False),  # the profile's parameters (rate, streams, SLOs, ...)
    Column("figures", JSON, nullable=False),  # summarize()'s keys (vllm bench serve's where they mean the same)
    Column("created_at", String(40), nullable=False),
)

#: one request of a load point; times are milliseconds from the point's start (its first measured due time)
load_requests = Table(
    "load_requests",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("run_id", String(40), ForeignKey("runs.id"), nullable=False),
    Column("point_index", Integer, nullable=False),
    Column("request_index", Integer, nullable=False),
    Column("phase", String(10), nullable=False),  # warmup | measured | cooldown
    Column("worker", Integer, nullable=False),
    Column("status", String(20), nullable=False),  # ok | error | rate_limited | incomplete
    Column("error", Text),
    Column("request_id", Text),  # the server's x-request-id
    Column("due_ms", Float, nullable=False),
    Column("sent_ms", Float),
    Column("first_ms", Float),
    Column("done_ms", Float),
    Column("chunk_ms", JSON, nullable=False),  # every content chunk's read time
    Column("input_tokens", BigInteger),
    Column("output_tokens", BigInteger),
    Column("cost_usd", Text),
    Column("rate_limit", JSON),  # a 429's Retry-After and rate-limit headers
)

#: a human's review of one result (m011): good or bad, and a comment, from the dashboard's run page
reviews = Table(
    "reviews",
    metadata,
    Column("run_id", String(40), ForeignKey("runs.id"), primary_key=True),
    Column("result_id", ID, primary_key=True),
    Column("rating", String(10)),  # good | bad, or null (a comment alone)
    Column("comment", Text, nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
)

#: a run's tags (m011): short words to find runs by (``/runs?tag=``)
run_tags = Table(
    "run_tags",
    metadata,
    Column("run_id", String(40), ForeignKey("runs.id"), primary_key=True),
    Column("tag", String(40), primary_key=True, index=True),
    Column("created_at", String(40), nullable=False),
)
