"""One request on one provider -> one :class:`~tryouts.types.Result`. Never raises for a model's failure."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

from pydantic import ValidationError

from .. import errors
from ..catalog.prices import catalog_price
from ..measure import compute_timing
from ..pricing import PriceOverride, price
from ..providers.base import WARMUP_PROMPT, Provider
from ..redact import redact
from ..tokens import MAX_TOKENS, complete_usage
from ..types import (
    Cell,
    Collected,
    Delta,
    Event,
    Finish,
    ModelSpec,
    Request,
    Result,
    Sent,
    ServerTimings,
    Timing,
    Usage,
    UsageReport,
)

OnDelta = Callable[[Delta], None]

#: providers' own finish reasons -> one vocabulary (others are kept, lower-cased)
_FINISH = {
    "stop": "stop", "end_turn": "stop", "stop_sequence": "stop", "complete": "stop", "eos": "stop",
    "length": "length", "max_tokens": "length", "max_output_tokens": "length", "model_length": "length",
    "tool_calls": "tool_calls", "tool_call": "tool_calls", "tool_use": "tool_calls", "function_call": "tool_calls",
    "content_filter": "content_filter", "safety": "content_filter", "recitation": "content_filter",
}


#: what a finish reason or a service tier may look like: one word (up to 100 characters, no spaces); anything
#: else a server sends there (a sentence, an echoed header, a key) is not kept
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")
#: server timings kept per answer: snake_case names (as llama.cpp, Ollama, Replicate and Bedrock write them)
#: and finite numbers only, at most this many
MAX_SERVER_TIMINGS = 64
_TIMING_NAME = re.compile(r"[a-z][a-z0-9_]{0,47}")


def _is_word(value: object) -> bool:
    """Whether a server's ``value`` is one word (:data:`_WORD`) that holds no known key."""
    return isinstance(value, str) and _WORD.fullmatch(value) is not None and redact(value) == value


def normalize_finish(reason: object) -> str | None:
    """``stop``, ``length``, ``tool_calls`` or ``content_filter`` for the common spellings; another short word
    as sent (lower-cased); anything else (not a text, a sentence, a credential the server echoed) ``other``."""
    if reason is None:
        return None
    if not _is_word(reason):
        return "other"
    key = str(reason).lower()
    return _FINISH.get(key, key)


def clean_server_timings(data: object) -> dict[str, float | int]:
    """The server's own timings as names and finite numbers: other values (texts, NaN, nested objects, an echoed
    header) are dropped, so they can neither carry a secret into the store nor break a strict JSON export."""
    if not isinstance(data, dict):
        return {}
    kept: dict[str, float | int] = {}
    for name, value in data.items():
        if len(kept) >= MAX_SERVER_TIMINGS:
            break
        if (isinstance(name, str) and _TIMING_NAME.fullmatch(name) and isinstance(value, int | float)
                and not isinstance(value, bool) and math.isfinite(value) and redact(name) == name):
            kept[name] = value
    return kept


def failed_result(spec: ModelSpec, request: Request, exc: BaseException, **kw) -> Result:
    """A result for a model that failed before (or without) streaming anything."""
    if isinstance(exc, errors.ProviderError):
        exc.about(spec.provider, spec.model, None)
    message, kind = describe(exc)
    return Result(
        model=spec.ref,
        provider=spec.provider,
        model_name=spec.model,
        ok=False,
        error=message,
        error_kind=kind,
        started_at=datetime.now(UTC),
        request=request,
        options=spec.options,
        **kw,
    )


def cell_failed(cell: Cell, exc: BaseException, cases: dict[int, dict]) -> Result:
    """The failed result of a cell that could not run (its model could not be set up, its worker was lost)."""
    return failed_result(cell.spec, cell.request, exc, model_index=cell.model_index, case_index=cell.case_index,
                         repeat_index=cell.repeat_index, case=cases.get(cell.case_index))


def describe(exc: BaseException) -> tuple[str, str]:
    """(message, kind) for an exception; unexpected ones say to report them."""
    if isinstance(exc, errors.TryoutsError):
        return exc.message, exc.kind
    return redact(f"Unexpected {type(exc).__name__}: {exc}. This is a bug in Tryouts; please report it."), "internal"


def _bad_value(ref: str, what: str, value: object) -> errors.BadResponseError:
    return errors.BadResponseError(
        f"{ref}: the server sent {what} of type {type(value).__name__} where a text belongs; the request is counted "
        "as failed. Check the server or its proxy.")


#: one answer is cut, as a bad response, past this many streamed chunks or characters (text and reasoning):
#: far above any real answer, and what keeps a server that streams without end from filling the memory
MAX_ANSWER_CHUNKS = 1_000_000
MAX_ANSWER_CHARS = 32_000_000


def _too_much(ref: str, chunks: int, chars: int) -> errors.BadResponseError:
    return errors.BadResponseError(
        f"{ref}: the server streamed more than {MAX_ANSWER_CHUNKS:,} chunks or {MAX_ANSWER_CHARS:,} characters "
        f"for one answer ({chunks:,} chunks, {chars:,} characters so far), far beyond max_tokens: stopped there, "
        "and the request is counted as failed. Check the server.")


def check_usage(usage: Usage, where: str) -> errors.BadResponseError | None:
    """The error for a usage report no model can produce (a negative count, or one over :data:`MAX_TOKENS`), or None.

    Checked where the values arrive, so an absurd value fails its own request (named with the server and the
    field) instead of being priced (a negative cost) or stopping the store (a column overflow).
    """
    for name in ("input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens",
                 "cache_write_1h_tokens", "reasoning_tokens"):
        value = getattr(usage, name)
        if value is not None and not 0 <= value <= MAX_TOKENS:
            return errors.BadResponseError(
                f"{where}: the server reported {name} = {value}, which no model produces in one request "
                f"(0 to {MAX_TOKENS:,}); the request is counted as failed. Check the server or its proxy."
            )
    u = usage
    parts = (u.cached_input_tokens or 0) + (u.cache_write_tokens or 0)
    for whole, part, name in ((u.input_tokens, parts, "cache reads plus cache writes"),
                              (u.cache_write_tokens, u.cache_write_1h_tokens, "1-hour cache writes"),
                              (u.output_tokens, u.reasoning_tokens, "reasoning tokens")):
        if whole is not None and part is not None and part > whole:
            what = {"1-hour cache writes": "cache writes", "reasoning tokens": "output tokens"}.get(name, "input tokens")
            return errors.BadResponseError(
                f"{where}: the server reported {part:,} {name} within {whole:,} {what}, which cannot be (a part "
                "larger than its whole); the request is counted as failed. Check the server or its proxy.")
    if u.service_tier is not None and not _is_word(u.service_tier):
        return errors.BadResponseError(
            f"{where}: the server named a service tier that is not a tier name ({len(u.service_tier)} characters); "
            "the request is counted as failed. Check the server or its proxy.")
    return None


def _seconds(value: object) -> float | None:
    """A ``timeout`` option as seconds (a positive finite number), else None (the options check refuses it)."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


def _sampling(provider: Provider, request: Request) -> dict | None:
    try:
        return provider.sampling(request)
    except Exception:  # a third-party provider's bug must not cost the result
        return None


class StoppedMidAnswer(asyncio.CancelledError):
    """A request cancelled while it streamed (a stop, Ctrl-C): still a cancellation, carrying ``result``, the
    answer measured up to that moment (its text, and the TTFT and other timings of the chunks received)."""

    def __init__(self, result: Result) -> None:
        super().__init__("stopped")
        self.result = result

    def __reduce__(self) -> tuple:  # across processes (Ray) a plain cancellation: the result stays here
        return (asyncio.CancelledError, self.args)


async def execute(provider: Provider, request: Request, **kw) -> Result:
    """Stream ``request`` through ``provider`` and measure it (docs/metrics.md); see :func:`attempt`."""
    result, _ = await attempt(provider, request, **kw)
    return result


async def attempt(
    provider: Provider,
    request: Request,
    *,
    on_delta: OnDelta | None = None,
    queue_ms: float | None = None,
    load_ms: float | None = None,
    price_override: PriceOverride | None = None,
    tokenizer_ref: str | None = None,
    first_token_timeout: float | None = None,
    total_timeout: float | None = None,
    events: AsyncIterator[Event] | None = None,
    model_index: int = 0,
    case_index: int = 0,
    repeat_index: int = 0,
    batch: bool = False,
) -> tuple[Result, BaseException | None]:
    """One try: the measured :class:`Result`, and the exception when it failed (for retry decisions).

    ``first_token_timeout`` bounds t0 to the first content chunk; ``total_timeout`` the whole request (as does the
    model's ``timeout`` option, the smaller of the two winning: httpx's own timeout bounds each read only).
    Either expiring fails the request with a ``timeout`` error, keeping what streamed so far.
    Cancelled (stopped) while it runs, it raises :class:`StoppedMidAnswer`, a cancellation that carries the
    result measured so far (error ``stopped``): a stopped answer keeps its TTFT like any other.
    ``events`` replaces ``provider.stream(request)``: the already stamped events of a batched request.
    ``batch``: the events are a provider batch API's answer (engine/batch.py): no timings, batch prices.
    """
    spec = provider.spec
    own = _seconds(spec.options.get("timeout")) if events is None else None  # the option bounds the whole request
    if own is not None and (total_timeout is None or own < total_timeout):
        total_timeout = own
    got = Collected()
    started_at = datetime.now(UTC)
    error: BaseException | None = None
    loop = asyncio.get_running_loop()
    start = loop.time()
    first_deadline = start + first_token_timeout if first_token_timeout else None
    total_deadline = start + total_timeout if total_timeout else None
    deadlines = [d for d in (first_deadline, total_deadline) if d is not None]
    waiting_first = True
    n_chars = 0
    stopped = False
    try:
        async with asyncio.timeout_at(min(deadlines) if deadlines else None) as limit:
            async for ev in events if events is not None else provider.stream(request):
                if isinstance(ev, Delta):
                    if not isinstance(ev.text, str):  # every provider's chunks pass here: one check for all
                        raise _bad_value(spec.ref, "a chunk's content", ev.text)
                    got.deltas.append(ev)
                    n_chars += len(ev.text)
                    if len(got.deltas) > MAX_ANSWER_CHUNKS or n_chars > MAX_ANSWER_CHARS:
                        raise _too_much(spec.ref, len(got.deltas), n_chars)
                    if waiting_first and ev.text:
                        waiting_first = False
                        limit.reschedule(total_deadline)
                    if on_delta is not None:
                        on_delta(ev)
                elif isinstance(ev, Sent):
                    got.t0_ns = ev.t_ns
                    started_at = datetime.now(UTC)
                elif isinstance(ev, UsageReport):
                    got.usage = ev.usage
                elif isinstance(ev, ServerTimings):
                    new = ev.data if isinstance(ev.data, dict) else {}
                    got.server_timings = clean_server_timings({**(got.server_timings or {}), **new}) or None
                elif isinstance(ev, Finish):
                    got.finish_reason = normalize_finish(ev.reason) or got.finish_reason
                    got.finished = True
    except asyncio.CancelledError:  # stopped: measure what came, then cancel on (see StoppedMidAnswer)
        stopped = True
        error = errors.StoppedError("Stopped before the answer ended; what streamed so far is kept.")
    except TimeoutError:
        first_fired = waiting_first and first_deadline is not None and (
            total_deadline is None or first_deadline <= total_deadline)
        which = "first token" if first_fired else "whole request"
        limit_s = first_token_timeout if which == "first token" else total_timeout
        error = errors.RequestTimeoutError(
            f"No {'first token' if which == 'first token' else 'end of the answer'} within {limit_s:g} s "
            f"({which} timeout); what streamed so far is kept. Raise the suite's 'timeouts' (or the model's "
            "'timeout' option, which bounds the whole request too)."
        )
    except ValidationError as exc:  # a field of the server's answer that fits no type (a count that is not a number)
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(x) for x in first.get("loc", ())) or "a field"
        error = errors.BadResponseError(
            f"{spec.ref}: the server sent {field} of type {type(first.get('input')).__name__}, which is not a valid value "
            f"({first.get('msg', 'invalid')}); the request is counted as failed. Check the server or its proxy."
        )
    except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:  # a server's field of a wrong shape
        error = exc if isinstance(exc, errors.TryoutsError) or provider.local else errors.BadResponseError(
            f"{spec.ref}: the server's answer could not be read ({type(exc).__name__}: {redact(str(exc))[:200]}): a "
            "field has a shape the provider's API does not send; the request is counted as failed. Check the server "
            "or its proxy (if the server is the provider's own and the answer is valid, report it as a Tryouts bug).")
    except Exception as exc:  # every failure becomes a recorded result, partial text kept
        error = exc
    if error is None and not got.finished and not any(d.text for d in got.deltas):
        error = errors.AbortedStreamError(
            f"{spec.ref}: the stream ended with no content and no finish reason: the server aborted the request "
            "(llama.cpp's server does this to a running request when another one arrives). It is retried; if it "
            "keeps happening, lower this server's concurrency to 1 (the suite's 'concurrency')."
        )
    if got.usage is not None:
        bad = check_usage(got.usage, spec.ref)
        if bad is not None:
            got.usage, error = None, error or bad
    if isinstance(error, errors.ProviderError):  # which call failed, as attributes (not only in the text)
        error.about(spec.provider, spec.model, provider.server)

    try:  # what the server sent is checked above; whatever still fails here costs this result only
        text = "".join(d.text for d in got.deltas if d.channel == "text")
        reasoning = "".join(d.text for d in got.deltas if d.channel == "reasoning")
        usage = got.usage
        if error is None or got.deltas:
            counter = provider.count_tokens if provider.count_tokens("") is not None else None
            chunked = getattr(provider, "one_token_per_chunk", False)  # docs/metrics.md: counting tokens
            usage = complete_usage(
                usage, request.messages, text + reasoning, model_counter=counter,
                counter=getattr(provider, "token_counter", None), tokenizer_ref=tokenizer_ref,
                n_chunks=sum(1 for d in got.deltas if d.text) if chunked else None,
            )
        timing = Timing() if batch else compute_timing(
            got.t0_ns, got.deltas, usage.output_tokens if usage else None, queue_ms=queue_ms, load_ms=load_ms
        )
        result = Result(
            model=spec.ref,
            provider=spec.provider,
            model_name=provider.model_name,
            ok=error is None,
            text=text,
            reasoning_text=reasoning,
            finish_reason=got.finish_reason,
            started_at=started_at,
            timing=timing,
            server_timings=got.server_timings,
            sampling=_sampling(provider, request),
            request=request,
            options=spec.options,
            model_index=model_index,
            case_index=case_index,
            repeat_index=repeat_index,
            batch=batch,
        )
        if usage is not None:
            result.usage = usage
            result.cost = price(
                provider.price_provider,
                provider.model_name,
                usage,
                started_at,
                override=price_override,
                local=provider.local or provider.free,
                batch=batch,
                catalog_price=catalog_price(provider.price_provider, provider.model_name),
            )
    except Exception as exc:
        result = failed_result(spec, request, exc, model_index=model_index, case_index=case_index,
                               repeat_index=repeat_index, batch=batch)
        error = error or exc
    if error is not None:
        result.error, result.error_kind = describe(error)
    if stopped:
        raise StoppedMidAnswer(result)
    return result, error


def wants_warmup(provider: Provider) -> bool:
    """Whether ``provider`` gets a warm-up request before any timed one: the ``warmup`` option, else yes for a
    server on this machine (its first request pays its own start-up: 8.5 s measured on llama.cpp's server) and
    no for a remote API (a request costs money there). In-process models warm up inside their own ``load()``."""
    if provider.local:
        return False
    value = provider.spec.options.get("warmup")
    if value is None:
        return provider.on_this_machine
    return value is True or str(value).lower() in ("1", "true", "yes", "on")


async def warm_up(provider: Provider, timeout_s: float = 120.0) -> float | None:
    """Send one short untimed request when :func:`wants_warmup`; return its milliseconds (recorded apart, as
    load time), or None when none was sent. Its failure is not the run's: the timed requests report their own."""
    if not wants_warmup(provider):
        return None
    from time import perf_counter_ns

    from ..types import GenParams, Message

    request = Request(messages=[Message(role="system", content="Warm-up."), Message(role="user", content=WARMUP_PROMPT)],
                      params=GenParams(max_tokens=1, temperature=0))
    own = _seconds(provider.spec.options.get("timeout"))  # the model's timeout option bounds its warm-up too
    timeout_s = min(timeout_s, own) if own is not None else timeout_s
    t = perf_counter_ns()
    try:
        async with asyncio.timeout(timeout_s):
            async for _ in provider.stream(request):
                pass
    except Exception:
        pass
    return (perf_counter_ns() - t) / 1e6
