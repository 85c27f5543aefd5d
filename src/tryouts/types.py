"""The types every layer shares: requests, stream events, usage, timings and results.

Stream events are slotted dataclasses (they sit on the hot path and are created per chunk);
everything that is stored or served is a pydantic model with ``extra="forbid"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import UsageError

Role = Literal["system", "user", "assistant"]


#: a request's default time limits in seconds: the suite's ``timeouts`` and every other entry point (the engine's
#: Policy) start from these
DEFAULT_FIRST_TOKEN_S = 120.0
DEFAULT_TOTAL_S = 600.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Message(_Strict):
    """One chat message."""

    role: Role
    content: str


class GenParams(_Strict):
    """Generation parameters every provider understands. ``None`` means the provider's default."""

    max_tokens: int | None = Field(default=256, ge=1, description="Upper bound on output tokens.")
    temperature: float | None = Field(default=None, ge=0, description="0 means greedy where supported.")
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None
    stop: list[str] | None = None


class ModelSpec(_Strict):
    """A model reference ``provider:model`` with its provider-specific options.

    Examples: ``openai:gpt-6-luna``, ``hf:./models/tiny``, ``llamacpp:./m.gguf``,
    ``openai-compat:http://127.0.0.1:8080/v1#tiny``.
    """

    ref: str = Field(description="The reference exactly as the user wrote it.")
    provider: str
    model: str
    options: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def parse(cls, ref: str, options: dict[str, Any] | None = None) -> ModelSpec:
        """Split ``provider:model``; raise :class:`UsageError` when there is no provider part."""
        ref = ref.strip()
        provider, sep, model = ref.partition(":")
        if not sep or not provider or not model:
            raise UsageError(
                f"Model reference {ref!r} has no provider: write it as PROVIDER:MODEL, "
                "e.g. openai:gpt-6-luna, hf:./path/to/model, llamacpp:./model.gguf "
                "(run 'tryouts providers' to list providers)."
            )
        return cls(ref=ref, provider=provider.lower(), model=model, options=dict(options or {}))


class Request(_Strict):
    """What a provider is asked to do: messages and generation parameters."""

    messages: list[Message]
    params: GenParams = Field(default_factory=GenParams)


# ---- stream events (hot path) ------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One request of a run: a model, a case and a repeat, identified by ``(model_index, case_index,
    repeat_index)``; ``spec`` is shared by a model's cells. The engine runs cells (engine/run.py)."""

    model_index: int
    case_index: int
    repeat_index: int
    spec: ModelSpec
    request: Request
    #: a stable key: a hash of the suite's model (label, reference, options), case, request and repeat, the same
    #: however the cells are ordered or sliced (``--shard``); one row per key in a run
    key: str | None = None


class LazyCell:
    """A suite's cell: a :class:`Cell` whose request is built each time it is read, from its case's messages and
    its model's parameters (shared by many cells). A 1,000,000-cell suite keeps about 250 bytes per cell in
    memory, not a request each; and no reader can change another's request."""

    __slots__ = ("_messages", "_params", "case_index", "key", "model_index", "repeat_index", "spec")

    def __init__(self, model_index: int, case_index: int, repeat_index: int, spec: ModelSpec,
                 messages: list[Message], params: GenParams, key: str | None = None) -> None:
        self.model_index, self.case_index, self.repeat_index = model_index, case_index, repeat_index
        self.spec, self.key, self._messages, self._params = spec, key, messages, params

    @property
    def request(self) -> Request:
        return Request(messages=list(self._messages), params=self._params.model_copy(deep=True))

    def __repr__(self) -> str:
        return f"LazyCell({self.model_index}, {self.case_index}, {self.repeat_index}, {self.spec.ref!r})"


@dataclass(slots=True)
class Sent:
    """The request was handed to the network (or, for in-process models, to the generator): t0."""

    t_ns: int


@dataclass(slots=True)
class Delta:
    """A chunk of generated content. ``channel`` is ``text`` (visible answer), ``reasoning`` or ``tool``."""

    t_ns: int
    text: str
    channel: Literal["text", "reasoning", "tool"] = "text"


@dataclass(slots=True)
class UsageReport:
    """Token usage reported by the provider (or counted exactly by an in-process backend)."""

    usage: Usage


@dataclass(slots=True)
class ServerTimings:
    """Timings reported by the server itself (llama.cpp ``timings``, Ollama ``*_duration``)."""

    data: dict[str, Any]


@dataclass(slots=True)
class Finish:
    """The model finished normally; ``reason`` as the provider gave it (stop, length, ...)."""

    t_ns: int
    reason: str | None = None


Event = Sent | Delta | UsageReport | ServerTimings | Finish


# ---- measured and stored -----------------------------------------------------------------------


class Usage(_Strict):
    """Token counts of one request. ``estimated`` is true when Tryouts counted them itself."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    cache_write_tokens: int | None = None
    #: of ``cache_write_tokens``, those written to a 1-hour cache (Anthropic's ``ephemeral_1h_input_tokens``,
    #: Bedrock's ``cacheDetails`` ttl 1h): priced at the 1-hour write rate, the rest at the 5-minute one
    cache_write_1h_tokens: int | None = None
    reasoning_tokens: int | None = None
    #: the service tier the provider says served the request (OpenAI's ``service_tier``: default, flex,
    #: priority...); a tier other than the standard one is priced at that tier's price, or unknown
    service_tier: str | None = None
    estimated: bool = False
    method: str = Field(
        default="provider",
        description="provider | exact | tokenizer:model | tokenizer+template:REF | tokenizer:REF | chunks | "
        "chunks+chars/4 | fallback:chars/4 (docs/metrics.md)",
    )

    @field_validator("input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens",
                     "cache_write_1h_tokens", "reasoning_tokens", mode="before")
    @classmethod
    def _a_count(cls, value: Any) -> Any:
        """A count is a whole number: a server's ``true``, ``"7"`` or ``7.5`` is refused (a bad response), never
        read as 1 or 7; a whole float such as ``7.0`` (some JSON encoders) is 7."""
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError(f"a token count must be a whole number, got {type(value).__name__}")


class Timing(_Strict):
    """Client-side timings of one request, per docs/metrics.md. Milliseconds unless stated."""

    queue_ms: float | None = Field(default=None, description="Wait for Tryouts' own concurrency slot.")
    load_ms: float | None = Field(default=None, description="Model load (and warm-up) before t0; local models.")
    ttft_ms: float | None = Field(default=None, description="First content-bearing chunk minus t0.")
    ttfat_ms: float | None = Field(default=None, description="First visible answer text minus t0.")
    e2e_ms: float | None = Field(default=None, description="Last content-bearing chunk minus t0.")
    tpot_ms: float | None = Field(default=None, description="(E2E - TTFT) / (N_out - 1).")
    output_tokens_per_s: float | None = Field(default=None, description="(N_out - 1) / (E2E - TTFT).")
    itl_ms: list[float] = Field(default_factory=list, description="Gaps between consecutive content chunks.")
    n_chunks: int = 0


class Cost(_Strict):
    """Money as Decimal. ``total`` is None when the price is unknown (never 0 for unknown)."""

    total: Decimal | None = None
    input: Decimal | None = None
    output: Decimal | None = None
    currency: str = "USD"
    source: str = Field(default="unknown", description="genai-prices | override | local | unknown; a batch answer's "
                        "'genai-prices (batch)', or 'genai-prices x catalog batch rate' (pricing.BATCH_RATES); a "
                        "service tier's 'genai-prices (flex)'; the catalog's own dated price 'catalog (YYYY-MM-DD)'")


class Result(_Strict):
    """One model's answer to one request, with everything measured about it."""

    model: str = Field(description="The model reference as given.")
    provider: str
    model_name: str
    ok: bool
    error: str | None = None
    error_kind: str | None = None
    text: str = ""
    reasoning_text: str = ""
    finish_reason: str | None = None
    started_at: datetime = Field(description="Wall-clock time (UTC) at t0.")
    timing: Timing = Field(default_factory=Timing)
    usage: Usage = Field(default_factory=Usage)
    cost: Cost = Field(default_factory=Cost)
    server_timings: dict[str, Any] | None = None
    sampling: dict[str, Any] | None = Field(
        default=None,
        description="The sampling parameters the answer was generated with: each name -> value, and 'defaults': "
        "the names left to the provider's or server's own default (value None when Tryouts cannot know it).",
    )
    request: Request
    options: dict[str, Any] = Field(default_factory=dict)
    cached: bool = Field(default=False, description="Served from Tryouts' response cache: never a timing sample.")
    attempts: int = Field(default=1, description="Tries made, retries included.")
    case: dict[str, Any] | None = Field(default=None, description="Suite runs: prompt_id, case_id, vars, expected.")
    scores: dict[str, Any] | None = Field(default=None, description="Quality: assertion results and reference metrics.")
    model_index: int = 0
    case_index: int = 0
    repeat_index: int = 0
    cell_key: str | None = Field(default=None, description="The cell's stable key (suite runs).")
    timing_valid: bool | None = Field(
        default=None, description="Whether the timings may be compared for speed: False when the cell ran beside "
        "other work (a shared node at high concurrency); None when there are no timings.")
    batch: bool = Field(default=False, description="Answered through the provider's batch API (docs/batch.md): "
                        "priced at its batch rate, with no timings.")


@dataclass
class Collected:
    """Everything a provider's stream produced, before it is turned into a Result."""

    t0_ns: int | None = None
    deltas: list[Delta] = field(default_factory=list)
    usage: Usage | None = None
    server_timings: dict[str, Any] | None = None
    finish_reason: str | None = None
    finished: bool = False


#: a run's status: ``running`` while its process runs it, ``stale`` when that process is gone without
#: finishing it (computed when read), ``interrupted`` after Ctrl-C or SIGTERM, else how its requests ended
RunStatus = Literal["running", "done", "partial", "failed", "interrupted", "stale"]


def finished_status(n_results: int, n_failed: int) -> RunStatus:
    """The status of a run that ran to its end: ``done`` (nothing failed), ``failed`` (everything failed) or
    ``partial``. The one rule for compare, suite, eval-task and dashboard runs."""
    if n_failed == 0:
        return "done"
    return "failed" if n_failed >= n_results else "partial"
