"""The read model: a stored run and its results as typed records.

The store writes a :class:`~tryouts.types.Result` and reads it back as the flat object of
``tryouts show --format json``; these models are that object's contract. They type the library's
reads (:meth:`tryouts.store.Store.records`, :meth:`~tryouts.store.Store.run_record`), generate the
tables of docs/json.md (docs/gen_json.py) and give the dashboard's API its OpenAPI schemas. Fields may
be added; the ones here keep their names and meanings.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .types import RunStatus

#: every ``error_kind`` a stored result can carry (tests/test_errors.py checks it covers every error's kind)
ErrorKind = Literal[
    "missing_key", "auth", "model_not_found", "bad_request", "rate_limit", "server", "connect", "timeout",
    "stream_cut", "aborted", "bad_response", "store", "stopped", "missing_extra", "unknown_provider", "usage",
    "not_in_catalog",
    "provider", "error", "internal",
]
#: where a cost came from; also a batch answer's ``genai-prices (batch)`` or ``... x catalog batch rate``, a service
#: tier's ``genai-prices (flex)``, and the catalog's own dated price ``catalog (YYYY-MM-DD)`` (docs/metrics.md)
CostSource = Literal["genai-prices", "override", "local", "cache", "unknown"]
#: what kind of run: every kind ``Store.create_run`` is given (``tryouts compare``, ``run``, ``eval-task``, ``load``)
RunKind = Literal["compare", "suite", "eval-task", "load"]


def index_in(value: Any, n: int) -> bool:
    """Whether a stored index (a result's ``model_index``) is a position in a list of ``n`` (the run's models):
    a whole number ``0 <= value < n``. A shared ledger's row may hold any value, so readers skip a result that
    fails this rather than trust it, and never pad a list up to a stored number."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < n


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    def __getitem__(self, name: str) -> Any:
        """``record["ttft_ms"]`` reads like the flat JSON object it is."""
        return getattr(self, name)


class ResultRecord(_Record):
    """One stored result, as ``tryouts show --format json`` prints it."""

    id: int = Field(description="The result's id in the store (stable; the dashboard and arena use it)")
    model: str = Field(description="The model reference as given, e.g. `openai:gpt-6-luna`")
    provider: str = Field(description="The provider part of the reference")
    model_name: str = Field(description="The model part (for `openai-compat`, the part after `#`)")
    model_index: int = Field(description="Position of the model in the run")
    case_index: int = Field(0, description="Position of the case in a suite run (0 for `compare`)")
    repeat_index: int = Field(0, description="Which repeat (0 for `compare`); `(model_index, case_index, "
                              "repeat_index)` is unique within a run")
    ok: bool = Field(description="The model answered completely")
    error: str | None = Field(None, description="What went wrong and what to do (keys redacted)")
    error_kind: ErrorKind | str | None = Field(None, description="The kind of failure (see *Error kinds* below; a "
                                              "third-party provider may add its own)")
    text: str = Field("", description="The visible answer (partial when the stream was cut: nothing received is "
                      "dropped)")
    reasoning_text: str = Field("", description="Reasoning content, when the model streams it")
    finish_reason: str | None = Field(None, description="`stop`, `length`, `tool_calls`, `content_filter` (providers' "
                                      "own spellings are mapped); anything else as sent, lower-cased")
    started_at: str = Field(description="ISO 8601 UTC at t0")
    queue_ms: float | None = Field(None, description="Waiting for a slot (see metrics.md)")
    load_ms: float | None = Field(None, description="Loading a local model, or a server's untimed warm-up request "
                                  "(on the model's first result)")
    ttft_ms: float | None = Field(None, description="Time to first token: t0 to the first content chunk (metrics.md)")
    ttfat_ms: float | None = Field(None, description="Time to the first answer token, after any reasoning")
    e2e_ms: float | None = Field(None, description="t0 to the last chunk")
    tpot_ms: float | None = Field(None, description="Time per output token after the first")
    output_tokens_per_s: float | None = Field(None, description="(N_out − 1) / (E2E − TTFT)")
    itl_ms: list[float] | None = Field(None, description="Gaps between content chunks")
    n_chunks: int | None = Field(None, description="Content-bearing chunks received")
    input_tokens: int | None = Field(None, description="Usage: input, cached reads included")
    output_tokens: int | None = Field(None, description="Usage: output, reasoning included")
    cached_input_tokens: int | None = Field(None, description="Cached input tokens, when reported")
    cache_write_tokens: int | None = Field(None, description="Cache writes, when reported")
    cache_write_1h_tokens: int | None = Field(None, description="Of the cache writes, those to a 1-hour cache "
                                              "(Anthropic, Bedrock; priced above 5-minute writes), when reported")
    reasoning_tokens: int | None = Field(None, description="Reasoning tokens, when reported")
    service_tier: str | None = Field(None, description="The service tier the provider says served the request "
                                     "(OpenAI: `default`, `flex`, `priority`), when reported; priced at that tier")
    tokens_estimated: bool = Field(False, description="Tryouts counted tokens itself (the provider sent no usage)")
    token_method: str | None = Field(None, description="How the counts were made: `provider`, `exact`, "
                                     "`tokenizer:model`, `tokenizer+template:<ref>` (the model's tokenizer and chat "
                                     "template), `tokenizer:<ref>`, `chunks` / `chunks+chars/4` (one token per "
                                     "content chunk, for servers known to send that), `fallback:chars/4` (metrics.md)")
    cost_usd: float | None = Field(None, description="Cost in USD; **null means the price is unknown** (never 0)")
    cost_usd_exact: str | None = Field(None, description="The same as an exact decimal string")
    cost_input: str | None = Field(None, description="The input part of the cost (decimal string)")
    cost_output: str | None = Field(None, description="The output part of the cost (decimal string)")
    cost_currency: str | None = Field(None, description="`USD`")
    cost_source: CostSource | str | None = Field(None, description="Where the price came from: also "
                                                 "`genai-prices (batch)`, `genai-prices x catalog batch rate`, a "
                                                 "service tier's `genai-prices (flex)` or `genai-prices (priority)`, "
                                                 "the catalog's own price `catalog (YYYY-MM-DD)` (metrics.md, cost)")
    server_timings: dict[str, Any] | None = Field(None, description="The server's own timings, when it reports them")
    sampling: dict[str, Any] | None = Field(None, description="The sampling parameters the answer was generated "
                                            "with: `temperature`, `top_p`, `seed`, `max_tokens` (in-process llama.cpp "
                                            "adds `top_k`, `min_p`, `repeat_penalty`), and `defaults`, the names left "
                                            "to the provider's or server's own default (null when Tryouts cannot know "
                                            "it). Null for cached results and rows written before it existed")
    request: dict[str, Any] = Field(description="The messages and parameters sent")
    options: dict[str, Any] | None = Field(None, description="The model's options (API keys are never stored)")
    cached: bool = Field(False, description="Served from the response cache: no timings, never a timing sample")
    attempts: int | None = Field(None, description="Tries made, retries included")
    case: dict[str, Any] | None = Field(None, description="Suite runs: `prompt_id`, `case_id`, `vars`, `expected`, "
                                        "`asserts`; compare runs scored with `--expect`/`--assert`: `expected`, "
                                        "`asserts`")
    scores: dict[str, Any] | None = Field(None, description="Quality scores (scoring.md): `assert` (passed, score, "
                                          "results), `reference` (exact_match, token_f1, edit_similarity, bleu, chrf, "
                                          "rouge1/2/L, embedding), `custom` (per scorer: score, passed, reason or "
                                          "error), `judge` (judge, score, scale, normalized, rationale)")
    cell_key: str | None = Field(None, description="Suite runs: the cell's stable key, a hash of its model (label, "
                                 "reference, options), case, request and repeat; one row per key in a run")
    timing_valid: bool | None = Field(None, description="Whether the timings may be compared for speed: `false` when "
                                      "the cell ran beside other work (a shared Ray node at high concurrency; "
                                      "docs/scale.md), null without timings or before it was recorded")
    batch: bool | None = Field(None, description="Answered through the provider's batch API (docs/batch.md): "
                               "priced at the batch rate, with no timings; null before it was recorded")
    review: dict[str, Any] | None = Field(None, description="A person's review from the dashboard's run page: "
                                          "`rating` (`good`, `bad` or null), `comment`, `created_at`, `updated_at`; "
                                          "null when none. In `tryouts export` (csv, json, jsonl) and the "
                                          "dashboard's API; `tryouts show` leaves it out")


class RunRecord(_Record):
    """One stored run, without its results."""

    id: str = Field(description="Run id `YYYYMMDD-HHMMSS-xxxx` (UTC); any unique prefix, or `latest`, selects it")
    kind: RunKind = Field(description="What made it")
    status: RunStatus = Field(description="`running`, `done` (all ok), `partial`, `failed` (all failed), "
                              "`interrupted` (Ctrl-C or SIGTERM), `stale` (marked running, its process gone)")
    stale_reason: str | None = Field(None, description="Only for a `stale` run: why")
    started_at: str = Field(description="ISO 8601 UTC")
    finished_at: str | None = Field(None, description="ISO 8601 UTC, null while running")
    models: list[str] = Field(description="The model references, in the order given")
    request: dict[str, Any] = Field(description="`messages` and `params` sent to every model (compare)")
    meta: dict[str, Any] = Field(description="Suites: `suite_path`, `fingerprint` (of every cell: resuming needs the "
                                 "same), `n_cells`, `labels`, `repeats`, `quality` (per-model quality with intervals, "
                                 "paired comparisons, pass@k: scoring.md), `suite` (the suite as it ran: variables "
                                 "replaced, dataset rows inlined as cases; resume and score use it, so they need "
                                 "neither the file nor its variables) or `suite_not_stored` (why not: a credential in "
                                 "it, or over 4 MB), `batch` (the models sent as batch jobs); eval tasks: `eval_task`")
    tryouts_version: str = Field(description="The version that recorded it")
    n_results: int | None = Field(None, description="Results recorded (in run lists: `tryouts runs`)")
    n_failed: int | None = Field(None, description="How many of them failed (in run lists)")
    tags: list[str] | None = Field(None, description="The run's tags, set on the dashboard (in its run lists and "
                                   "API)")


class RunWithResults(_Record):
    """``tryouts show RUN --format json``: the run and its results."""

    run: RunRecord
    results: list[ResultRecord]


class ResultsPage(_Record):
    """A page of a run's results (the dashboard's API)."""

    total: int = Field(description="Results in the run (or in the chosen view)")
    offset: int = Field(description="Where this page starts")
    results: list[ResultRecord]
