"""Load benchmarks (``tryouts load``, docs/load.md): one load point, a sweep, a goodput search, and the ledger
that stores them.

Profiles:

* ``synchronous``: one stream, each request sent when the previous ends;
* ``concurrent``: ``streams`` streams, closed loop;
* ``constant``, ``poisson``: an open-loop schedule at ``rate`` requests/s (``burstiness``, ``seed``), capped
  by ``max_concurrency`` when given (the no-catch-up rule);
* ``sweep`` (:func:`run_sweep`): synchronous, saturated, then evenly spaced rates between them;
* ``goodput-search`` (:func:`run_goodput_search`): the highest rate meeting the SLOs for a share of requests.

The model is any Tryouts reference. An OpenAI-compatible one (``openai-compat:URL#MODEL``, ``llamacpp-server:``,
``vllm-server:``, ``openai:``...) is driven by the raw client (load/client.py), with its base URL, model name
and key from the provider; any other by its provider's own stream (load/provider_client.py). Prompts are
numbered words, synthetic ones of a token-length distribution, or a suite's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from ..errors import UsageError

Profile = Literal["synchronous", "concurrent", "constant", "poisson"]
PROFILES: tuple[str, ...] = ("synchronous", "concurrent", "constant", "poisson")


@dataclass
class LoadSettings:
    """What one load point sends, and how."""

    profile: Profile = "synchronous"
    requests: int = 20
    rate: float | None = None
    streams: int | None = None
    burstiness: float = 1.0
    seed: int = 0
    max_concurrency: int | None = None
    workers: int = 1
    prompt_words: int = 32
    max_tokens: int = 64
    slo: dict[str, float] = field(default_factory=dict)
    hourly_usd: Decimal | None = None
    #: requests sent before (warm-up) and after (cool-down) the measured ones, on the same schedule, not counted
    warmup: int = 0
    cooldown: int = 0
    #: stop sending after this many seconds, or this many failed requests (None: no limit)
    max_seconds: float | None = None
    max_errors: int | None = None
    #: a rate that changes with each request's index, ``linear:START:END`` or ``exponential:START:END``
    ramp: str | None = None
    #: a suite file whose prompts (each case's rendered messages) are sent in turn instead of synthetic ones
    suite: str | None = None
    #: open loop: stop sending once requests in flight and TTFT both keep rising (load/saturation.py)
    stop_over_saturated: bool = False
    #: synthetic prompts of this many tokens, ``MEAN[:STDEV[:MIN:MAX]]`` (load/prompts.py), counted with
    #: ``tokenizer`` (else the model's ``tokenizer`` option); and each request's ``max_tokens`` so drawn
    prompt_tokens: str | None = None
    output_tokens: str | None = None
    tokenizer: str | None = None
    #: send ``ignore_eos: true`` (vLLM, llama.cpp's server) so each answer is as long as its max_tokens
    ignore_eos: bool = False

    def check(self) -> None:
        if self.profile not in PROFILES:  # sweep runs these (run_sweep)
            raise UsageError(f"--profile is one of {', '.join(PROFILES)}, not {self.profile!r}.")
        if self.requests < 1 or self.requests > 1_000_000:
            raise UsageError("--requests must be between 1 and 1,000,000.")
        if self.ramp is not None:
            if self.profile not in ("constant", "poisson"):
                raise UsageError("--ramp applies to the constant and poisson profiles.")
            self.parsed_ramp().check()
        elif self.profile in ("constant", "poisson") and not (self.rate and self.rate > 0 and math.isfinite(self.rate)):
            raise UsageError(f"The {self.profile} profile needs --rate R (requests/s, > 0), or --ramp.")
        if self.profile == "concurrent" and not (self.streams and self.streams >= 1):
            raise UsageError("The concurrent profile needs --streams N (N >= 1).")
        if self.workers < 1 or self.workers > 64:
            raise UsageError("--workers must be between 1 and 64.")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise UsageError("--max-seconds must be positive.")
        if self.max_errors is not None and self.max_errors < 1:
            raise UsageError("--max-errors must be at least 1.")
        if self.warmup < 0 or self.cooldown < 0 or self.warmup + self.cooldown > 1_000_000:
            raise UsageError("--warmup and --cooldown are numbers of requests, 0 or more.")
        if self.prompt_words < 1 or self.max_tokens < 1:
            raise UsageError("--prompt-words and --max-tokens must be at least 1.")
        if self.prompt_tokens is not None:
            from ..load.prompts import Lengths

            if self.suite:
                raise UsageError("--prompt-tokens makes synthetic prompts; --suite sends a suite's: give one.")
            Lengths.parse(self.prompt_tokens, "--prompt-tokens")
        if self.output_tokens is not None:
            from ..load.prompts import Lengths

            Lengths.parse(self.output_tokens, "--output-tokens")
        unknown = set(self.slo) - {"ttft", "tpot", "e2el"}
        if unknown:
            raise UsageError(f"SLOs are ttft, tpot and e2el (milliseconds), not {', '.join(sorted(unknown))}.")


    def parsed_ramp(self) -> Any:
        from ..load.arrivals import Ramp

        parts = (self.ramp or "").split(":")
        try:
            if len(parts) != 3:
                raise ValueError
            return Ramp(parts[0], float(parts[1]), float(parts[2]))  # type: ignore[arg-type]
        except ValueError:
            raise UsageError(f"--ramp {self.ramp!r} is not STRATEGY:START:END, e.g. --ramp linear:1:20 (requests/s)."
                             ) from None


def suite_prompts(path: str) -> list[list[dict[str, str]]]:
    """The distinct rendered messages of a suite's cases (its first model's cells), in the suite's order."""
    from ..suite import load_suite

    seen: dict[str, list[dict[str, str]]] = {}
    for cell in load_suite(path).cells():
        if cell.model_index == 0:
            messages = [m.model_dump(mode="json", exclude_none=True) for m in cell.request.messages]
            seen.setdefault(repr(messages), messages)
    if not seen:
        raise UsageError(f"The suite {path} renders no prompt to send.")
    return list(seen.values())


def parse_slo(items: list[str]) -> dict[str, float]:
    """``["ttft:200", "tpot:50"]`` -> ``{"ttft": 200.0, "tpot": 50.0}`` (milliseconds)."""
    out = {}
    for item in items:
        name, sep, value = item.partition(":")
        try:
            ms = float(value)
        except ValueError:
            ms = -1.0
        if not sep or ms < 0:
            raise UsageError(f"--slo {item!r} is not NAME:MILLISECONDS, e.g. --slo ttft:200 --slo tpot:50.")
        out[name.strip()] = ms
    return out


def endpoint_for(ref: str, options: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """The raw client's endpoint for a model reference (None when it is not an OpenAI-compatible one: its
    provider's own stream carries the load, load/provider_client.py), and the provider."""
    from ..load.client import Endpoint
    from ..providers import create_provider, get_info
    from ..types import ModelSpec

    spec = ModelSpec.parse(ref, options or {})
    provider = create_provider(spec)
    if get_info(spec.provider).module != "tryouts.providers.openai_compat":
        return None, provider
    return Endpoint.parse(provider.base_url, provider.auth_headers()), provider


def preflight(ref: str, options: dict[str, Any] | None = None) -> None:
    """Stop before anything is stored when ``ref`` cannot be driven: a bad reference, or an API without its
    key (an API provider's load() reads it; an in-process model is not loaded twice for this)."""
    import asyncio

    from ..providers.http import HTTPProvider

    endpoint, provider = endpoint_for(ref, options)
    if endpoint is None and isinstance(provider, HTTPProvider):
        async def check() -> None:
            try:
                await provider.load()
            finally:
                await provider.aclose()

        asyncio.run(check())


def run_load(ref: str, settings: LoadSettings, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one load point; its figures (load/metrics.py keys) with its settings, and the per-request records:
    ``records`` (the measured ones, which the figures come from), ``other_records`` (warm-up and cool-down) and
    ``start_ns``, the point's start (its first measured due time)."""
    from ..catalog.prices import catalog_price
    from ..load.arrivals import arrival_offsets
    from ..load.metrics import SLO, summarize
    from ..load.runner import Item, Limits, run_point
    from ..pricing import price
    from ..types import Usage

    settings.check()
    endpoint, provider = endpoint_for(ref, options)
    body = {"model": provider.model_name, "stream": True, "stream_options": {"include_usage": True},
            "max_tokens": settings.max_tokens}
    n = settings.warmup + settings.requests + settings.cooldown
    closed = settings.profile in ("synchronous", "concurrent")
    ramp = settings.parsed_ramp() if settings.ramp else None
    rate = math.inf if closed else (max(ramp.start_rps, ramp.end_rps) if ramp else float(settings.rate or 0))
    cap = 1 if settings.profile == "synchronous" else settings.streams if closed else settings.max_concurrency
    offsets = [0.0] * n if closed else arrival_offsets(n, rate, arrival=settings.profile, burstiness=settings.burstiness,
                                                        seed=settings.seed, ramp=ramp)
    messages, counted, data = _messages(settings, provider, n)
    maxes = None
    if settings.output_tokens is not None:
        from ..load.prompts import Lengths, output_lengths

        maxes = output_lengths(n, Lengths.parse(settings.output_tokens, "--output-tokens"), settings.seed)
    if settings.ignore_eos:
        if endpoint is None:
            raise UsageError(f"--ignore-eos is a field of OpenAI-compatible servers' requests; {ref} is driven by "
                             "its provider, which sends its own fields: leave --ignore-eos out.")
        body["ignore_eos"] = True
    sender = None
    if endpoint is None:  # the provider's own stream (load/provider_client.py)
        from ..load.provider_client import ProviderSender
        from ..types import GenParams, Request

        sender = ProviderSender(provider)
        items = [Item(i, offsets[i], Request(messages=messages[i], params=GenParams(
            max_tokens=maxes[i] if maxes else settings.max_tokens))) for i in range(n)]
    else:
        items = [Item(i, offsets[i], endpoint.request_bytes(
            {**body, "messages": messages[i], **({"max_tokens": maxes[i]} if maxes else {})})) for i in range(n)]
    stats: dict[str, Any] = {}
    records, start_ns = run_point(endpoint, items, max_concurrency=cap, rate=rate, workers=settings.workers, stats=stats,
                                  limits=Limits(settings.max_seconds, settings.max_errors, settings.stop_over_saturated),
                                  sender=sender)
    # the measured requests ran under the point's load from their first to their last: warm-up and cool-down
    # requests kept it up around them and are left out of every figure
    sent = len(records)
    stopped = None if sent == n else stats.get("stopped", "max_seconds")
    for r in records:
        r.phase = ("warmup" if r.index < settings.warmup else
                   "measured" if r.index < settings.warmup + settings.requests else "cooldown")
    others = [r for r in records if r.phase != "measured"]
    records = [r for r in records if r.phase == "measured"]
    start_ns = min((r.due_ns for r in records), default=start_ns)
    now = datetime.now(UTC)
    estimated = counted_in = False
    for r in records:
        if r.ok and r.input_tokens is None and counted is not None:
            r.input_tokens, counted_in = counted[r.index], True  # no usage sent: the prompt, counted with its template
        if r.ok and r.output_tokens is None and getattr(provider, "one_token_per_chunk", False):
            r.output_tokens, estimated = len(r.chunk_ns), True  # llama.cpp's server: one token per chunk, no usage
        if r.ok and (getattr(provider, "free", False) or provider.local):
            r.cost_usd = Decimal(0)  # a server on this machine: free, unless --price-per-hour prices it
        elif r.ok and r.input_tokens is not None and r.output_tokens is not None:
            cost = price(provider.price_provider, provider.model_name,
                         Usage(input_tokens=r.input_tokens, output_tokens=r.output_tokens), now,
                         local=getattr(provider, "free", False) or provider.local,
                         catalog_price=catalog_price(provider.price_provider, provider.model_name))
            r.cost_usd = cost.total
    ends = [r.done_ns for r in records if r.done_ns is not None]
    slo = SLO(ttft_ms=settings.slo.get("ttft"), tpot_ms=settings.slo.get("tpot"), e2el_ms=settings.slo.get("e2el"))
    figures = summarize(records, start_ns=start_ns, end_ns=max(ends) if ends else start_ns, slo=slo,
                        hourly_usd=settings.hourly_usd)
    return {
        "model": ref, "client": "raw" if endpoint is not None else "provider", "profile": settings.profile, "request_rate": "inf" if closed else rate, "ramp": settings.ramp,
        "burstiness": settings.burstiness, "max_concurrency": cap, "workers": settings.workers,
        "seed": settings.seed, "slo_ms": settings.slo, "output_tokens_counted_as_chunks": estimated,
        "input_tokens_counted": counted_in,
        "data": data,
        "warmup_requests": settings.warmup, "cooldown_requests": settings.cooldown,
        "not_sent": n - sent, "stopped": stopped, "client_cpu": stats.get("client_cpu"),  # --max-seconds, --max-errors or --stop-over-saturated
        **figures, "records": records, "other_records": others, "start_ns": start_ns,
    }


def _messages(settings: LoadSettings, provider: Any, n: int) -> tuple[list[Any], list[int] | None, dict[str, Any]]:
    """Each request's messages; with a tokenizer, each one's prompt tokens as the server counts them (template
    included); and what the data was (``data`` in a point's figures)."""
    if settings.suite:
        prompts = suite_prompts(settings.suite)
        return [prompts[i % len(prompts)] for i in range(n)], None, {"source": "suite", "suite": settings.suite,
                                                                    "distinct_prompts": len(prompts)}
    if settings.prompt_tokens is None:
        words = " ".join(["hello"] * settings.prompt_words)
        return [[{"role": "user", "content": f"{i} {words}"}] for i in range(n)], None, {
            "source": "words", "prompt_words": settings.prompt_words}
    from ..load.prompts import Lengths, synthetic_prompts
    from ..tokens import load_counter

    ref = settings.tokenizer or provider.spec.options.get("tokenizer")
    if not ref:
        raise UsageError("--prompt-tokens counts tokens with the model's tokenizer: give --tokenizer (a .gguf "
                         "file, a tokenizer.json, a model folder or a cached Hub id), or -o tokenizer=...")
    counter = load_counter(str(ref))
    made = synthetic_prompts(n, Lengths.parse(settings.prompt_tokens, "--prompt-tokens"), counter, settings.seed)
    messages = [[{"role": "user", "content": text}] for text, _ in made]
    counted = [counter.count_prompt(m) for m in messages] if counter.count_prompt else None
    sizes = [k for _, k in made]
    mean = sum(sizes) / len(sizes)
    return messages, counted, {
        "source": "synthetic", "tokenizer": counter.method, "prompt_tokens": settings.prompt_tokens,
        "prompt_tokens_mean": mean, "prompt_tokens_min": min(sizes), "prompt_tokens_max": max(sizes),
        "prompt_tokens_stdev": (sum((k - mean) ** 2 for k in sizes) / len(sizes)) ** 0.5,
        "output_tokens": settings.output_tokens, "ignore_eos": settings.ignore_eos}


def _point_runner(ref: str, settings: LoadSettings, options: dict[str, Any] | None, points: list[dict[str, Any]],
                  on_point: Any, ledger: LoadLedger | None) -> Any:
    """``point(**changes)``: run one load point of ``settings`` with ``changes``, store it in ``ledger``, keep
    its figures in ``points`` (without the rows), tell ``on_point``, and return them."""
    from dataclasses import replace

    def point(**kw: Any) -> dict[str, Any]:
        out = run_load(ref, replace(settings, **kw), options)
        if ledger is not None:
            ledger.point(out)
        for key in ("records", "other_records", "start_ns"):
            out.pop(key)
        points.append(out)
        if on_point is not None:
            on_point(out)
        return out

    return point


def run_sweep(ref: str, settings: LoadSettings, options: dict[str, Any] | None = None, size: int = 10,
              on_point: Any = None, ledger: LoadLedger | None = None) -> dict[str, Any]:
    """guidellm's sweep: the synchronous rate, the saturated rate (``streams`` closed-loop streams, 32 by
    default), then ``size - 2`` evenly spaced constant rates between them, the last at the saturated rate.
    Each point has ``settings.requests`` requests; ``on_point(point)`` sees each as it ends."""
    if size < 3:
        raise UsageError("--sweep-size must be at least 3 (synchronous, saturated, and one rate between).")
    points: list[dict[str, Any]] = []
    point = _point_runner(ref, settings, options, points, on_point, ledger)

    sync = point(profile="synchronous")["request_throughput"]
    saturated = point(profile="concurrent", streams=settings.streams or 32)["request_throughput"]
    if not (sync > 0 and saturated > 0):
        raise UsageError("The sweep needs completed requests in its synchronous and saturated points; none "
                         "completed: check the endpoint with --profile synchronous first.")
    n_rates = size - 2
    stopped = None
    for k in range(1, n_rates + 1):
        rate = sync + k * (saturated - sync) / n_rates
        if point(profile="constant", rate=rate, stop_over_saturated=True)["over_saturated"] and k < n_rates:
            stopped = rate  # queue and TTFT kept rising: higher rates would only lengthen the queue
            break
    return {"model": ref, "profile": "sweep", "synchronous_rate": sync, "saturated_rate": saturated,
            "stopped_over_saturated_at": stopped, "points": points}


def run_goodput_search(ref: str, settings: LoadSettings, options: dict[str, Any] | None = None, *,
                       attainment: float = 0.95, max_points: int = 8, on_point: Any = None,
                       ledger: LoadLedger | None = None) -> dict[str, Any]:
    """The highest Poisson rate whose SLO attainment is at least ``attainment`` (load/search.py): a synchronous
    point gives the starting rate, then each try is a load point of ``settings.requests`` requests."""
    from ..load.search import goodput_search

    if not settings.slo:
        raise UsageError("Goodput search needs at least one SLO, e.g. --slo ttft:500 --slo tpot:50.")
    points: list[dict[str, Any]] = []
    point = _point_runner(ref, settings, options, points, on_point, ledger)

    start = point(profile="synchronous")["request_throughput"]
    if not start > 0:
        raise UsageError("No request completed in the synchronous point: check the endpoint with --profile "
                         "synchronous first.")
    found = goodput_search(lambda rate: point(profile="poisson", rate=rate)["slo_attainment"] or 0.0,
                           target=attainment, start_rate=start, max_points=max_points)
    return {"model": ref, "profile": "goodput-search", "slo_ms": settings.slo, "target_attainment": attainment,
            "goodput_rate": found.rate, "failing_rate": found.failing_rate, "points": points}


#: a point's dispatch lag p99 above this says the client, not the server, set the pace
LAG_WARN_MS = 10.0
#: a client process busy this share of the time (of one core) may have set the pace
CPU_WARN = 0.9


def client_warning(point: dict[str, Any]) -> str | None:
    """A sentence when the client may have set the pace: it could not keep an open-loop schedule, or one of
    its processes was busy nearly all the time."""
    lag = point.get("p99_dispatch_lag_ms")
    cpu = point.get("client_cpu")
    if point.get("request_rate") != "inf" and lag is not None and lag > LAG_WARN_MS:
        return (f"The client fell behind its schedule (dispatch lag p99 {lag:.1f} ms): this machine, not the server, "
                "may have been the limit. Compare with 'tryouts load --self-test', add --workers, or lower the rate.")
    # (an open loop spins near its due times on purpose: there the dispatch lag tells, not the CPU)
    if point.get("request_rate") == "inf" and cpu is not None and cpu >= CPU_WARN:
        return (f"A client process was busy {100 * cpu:.0f} % of the time: the client, not the server, may have set "
                "the pace and added to the latencies. Add --workers, or run the client on another machine.")
    return None


def self_test(*, streams: int = 64, requests: int = 2000, workers: int = 1) -> dict[str, Any]:
    """The client's ceiling on this machine: a closed loop of ``streams`` streams against the built-in scripted
    server (one token, no delay) on 127.0.0.1. Client and server share the machine, so the ceiling is theirs
    together: the client alone is at least this fast."""
    from ..testing.replay import start_replay_server

    with start_replay_server() as base:
        out = run_load(f"openai-compat:{base}#tokens=1", LoadSettings(
            profile="concurrent", streams=streams, requests=requests, workers=workers, max_tokens=1,
            warmup=min(200, requests // 10)))
    for key in ("records", "other_records", "start_ns"):
        out.pop(key)
    return {"self_test": True, **out}


class LoadLedger:
    """A load benchmark in the store as it runs: a run of kind ``load`` whose points (settings, figures and
    every request's row) are committed as each ends, so an interrupted sweep keeps the points it measured."""

    def __init__(self, store: Any, ref: str, profile: str, settings: LoadSettings) -> None:
        from dataclasses import asdict

        from ..store.load import json_safe

        self.store, self.n = store, 0
        self.run_id = store.create_run("load", [ref], {"profile": profile, "settings": json_safe(asdict(settings))},
                                       {"profile": profile})

    def point(self, out: dict[str, Any]) -> None:
        """Commit one load point (``run_load``'s answer, its records included)."""
        base = out["start_ns"]
        rows = [r.to_row(base) for r in sorted(out["records"] + out["other_records"], key=lambda r: r.index)]
        figures = {k: v for k, v in out.items() if k not in ("records", "other_records", "start_ns")}
        self.store.add_load_point(self.run_id, self.n, out["profile"], {k: figures.get(k) for k in POINT_SETTINGS},
                                  figures, rows)
        self.n += 1

    def finish(self, summary: dict[str, Any], status: str = "done") -> None:
        """Record what the benchmark found (a sweep's rates, a search's goodput rate) and close the run."""
        from ..store.load import json_safe

        self.store.update_run_meta(self.run_id, {"summary": json_safe(
            {k: v for k, v in summary.items() if k not in ("points", "records", "other_records", "start_ns")})})
        self.store.finish_run(self.run_id, status)


#: the keys of a point's figures that describe what was sent (the rest is what was measured)
POINT_SETTINGS = ("model", "profile", "request_rate", "ramp", "burstiness", "max_concurrency", "workers", "seed",
                  "slo_ms", "warmup_requests", "cooldown_requests")
