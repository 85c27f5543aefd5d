"""``tryouts load``: load benchmarks on any model reference, and the stored ones shown and compared (docs/load.md)."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

import typer
from rich.text import Text

from . import app
from .common import DB_HELP, open_store, parse_options


@app.command(rich_help_panel="Run")
def load(
    model: str | None = typer.Argument(None, help="Any model reference: an OpenAI-compatible one (openai-compat:"
                                       "URL#MODEL, llamacpp-server:, vllm-server:, openai:...) gets the raw client, "
                                       "any other its provider's stream; or 'show RUN', 'compare RUN RUN ...' for "
                                       "stored benchmarks."),
    runs: list[str] = typer.Argument(None, help="show, compare: stored load benchmarks (run ids, prefixes or "
                                     "'latest')."),
    self_test_: bool = typer.Option(False, "--self-test", help="Measure the client's own ceiling on this machine "
                                    "against a built-in scripted server (closed loop, --streams [64], -n [2000])."),
    profile: str = typer.Option("synchronous", "--profile", "-p",
                                help="synchronous, concurrent (with --streams), constant or poisson (with --rate), "
                                "sweep (synchronous, saturated with --streams [32], and rates between), or "
                                "goodput-search (the highest rate meeting the --slo targets for --attainment)."),
    sweep_size: int = typer.Option(10, "--sweep-size", help="sweep: load points in all (at least 3)."),
    attainment: float = typer.Option(0.95, "--attainment", help="goodput-search: the share of requests that must "
                                     "meet every SLO."),
    max_points: int = typer.Option(8, "--max-points", help="goodput-search: load points to spend at most."),
    requests: int = typer.Option(20, "--requests", "-n", help="Requests in the load point."),
    rate: float | None = typer.Option(None, "--rate", "-r", help="Requests per second (constant, poisson)."),
    streams: int | None = typer.Option(None, "--streams", help="Concurrent streams (concurrent)."),
    ramp: str | None = typer.Option(None, "--ramp", help="constant/poisson: a rate changing with each request, "
                                    "linear:START:END or exponential:START:END (requests/s), instead of --rate."),
    burstiness: float = typer.Option(1.0, "--burstiness", help="Poisson: gamma shape (1 = Poisson, < 1 burstier)."),
    seed: int = typer.Option(0, "--seed", help="Poisson: the schedule's seed."),
    max_concurrency: int | None = typer.Option(None, "--max-concurrency", help="Cap on requests in flight for "
                                               "constant and poisson (held requests never burst: docs/load.md)."),
    warmup: int = typer.Option(0, "--warmup", help="Requests sent first on the same schedule, not counted."),
    cooldown: int = typer.Option(0, "--cooldown", help="Requests sent after the measured ones (the load holds "
                                 "while they finish), not counted."),
    max_seconds: float | None = typer.Option(None, "--max-seconds", help="Stop sending after this many seconds "
                                             "(what was sent finishes; the rest is reported as not sent)."),
    max_errors: int | None = typer.Option(None, "--max-errors", help="Stop sending after this many failed requests."),
    stop_over_saturated: bool = typer.Option(False, "--stop-over-saturated", help="constant, poisson: stop sending "
                                             "once requests in flight and TTFT both keep rising (a sweep's "
                                             "points always do)."),
    workers: int = typer.Option(1, "--workers", help="Client worker processes (a slice of the schedule each)."),
    prompt_words: int = typer.Option(32, "--prompt-words", help="Words in each synthetic prompt."),
    prompt_tokens: str | None = typer.Option(None, "--prompt-tokens", help="Synthetic prompts of this many tokens "
                                             "instead: MEAN, MEAN:STDEV or MEAN:STDEV:MIN:MAX, counted with "
                                             "--tokenizer."),
    output_tokens: str | None = typer.Option(None, "--output-tokens", help="Each request's max_tokens drawn from "
                                             "MEAN[:STDEV[:MIN:MAX]] (instead of --max-tokens)."),
    tokenizer: str | None = typer.Option(None, "--tokenizer", help="The model's tokenizer for --prompt-tokens: a "
                                         ".gguf file, a tokenizer.json, a model folder or a cached Hub id."),
    ignore_eos: bool = typer.Option(False, "--ignore-eos", help="Send ignore_eos (vLLM, llama.cpp's server) so "
                                    "each answer runs to its max_tokens."),
    suite: str | None = typer.Option(None, "--suite", help="Send the prompts of this suite file (each case's "
                                     "rendered messages, in turn) instead of synthetic ones."),
    max_tokens: int = typer.Option(64, "--max-tokens", help="max_tokens of each request."),
    slo: list[str] = typer.Option([], "--slo", help="A latency target, NAME:MS with NAME ttft, tpot or e2el; "
                                  "repeat for several. Gives goodput and SLO attainment."),
    hourly: str | None = typer.Option(None, "--price-per-hour", help="A self-hosted server's price in USD per "
                                      "hour, for the cost per good request (API prices come from genai-prices)."),
    option: list[str] = typer.Option([], "--option", "-o", help="A model option, KEY=VALUE (e.g. base_url=...)."),
    fmt: str = typer.Option("table", "--format", "-f", help="Output: table or json (vllm bench serve's keys)."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> int:
    """Load-test a model: one load point, a sweep or a goodput search, with latency distributions, throughput,
    goodput and cost at each load.

    Examples:

      tryouts load llamacpp-server:default --profile concurrent --streams 4 -n 40

      tryouts load openai-compat:http://127.0.0.1:8000/v1#my-model -p poisson -r 10 -n 200 --slo ttft:500

      tryouts load vllm-server:my-model -p sweep --prompt-tokens 512:128 --tokenizer ./model --price-per-hour 2.5

      tryouts load compare RUN_A RUN_B      (stored benchmarks side by side; export one: tryouts export RUN -f html)

    Every benchmark is stored (each point as it ends, with every request's times). Exit code 0 when every request completed, 2 when some failed, 1 on bad input.
    """
    from rich.table import Table

    from ..errors import UsageError
    from ..usecases.load import (
        LoadLedger,
        LoadSettings,
        client_warning,
        parse_slo,
        preflight,
        run_goodput_search,
        run_load,
        run_sweep,
    )
    from .render import make_console

    if fmt not in ("table", "json"):
        raise UsageError(f"--format must be table or json, not {fmt!r}.")
    if model in ("show", "compare"):
        return _stored(model, runs or [], fmt, db)
    if runs:
        raise UsageError(f"tryouts load takes one model reference; {' '.join(runs)!r} is extra. To compare stored "
                         "benchmarks: tryouts load compare RUN RUN ...")
    if self_test_:
        return _self_test(streams or 64, requests if requests != 20 else 2000, workers, fmt)
    if model is None:
        raise UsageError("Name the model to load: tryouts load MODEL (any model reference), or measure the client "
                         "itself with tryouts load --self-test.")
    try:
        hourly_usd = Decimal(hourly) if hourly is not None else None
    except InvalidOperation:
        raise UsageError(f"--price-per-hour {hourly!r} is not a number of USD.") from None
    common = dict(requests=requests, streams=streams, workers=workers, prompt_words=prompt_words,
                  max_tokens=max_tokens, slo=parse_slo(slo), hourly_usd=hourly_usd, seed=seed, burstiness=burstiness,
                  warmup=warmup, cooldown=cooldown, max_seconds=max_seconds, max_errors=max_errors, suite=suite,
                  prompt_tokens=prompt_tokens, output_tokens=output_tokens, tokenizer=tokenizer,
                  ignore_eos=ignore_eos)
    searching = profile in ("sweep", "goodput-search")  # these choose each point's profile and rate themselves
    settings = LoadSettings(**common) if searching else LoadSettings(
        profile=profile, rate=rate, max_concurrency=max_concurrency, ramp=ramp,  # type: ignore[arg-type]
        stop_over_saturated=stop_over_saturated, **common)
    options = parse_options(option, 1)[0]
    settings.check()
    preflight(model, options)  # a reference that cannot be driven stops here, before anything is stored
    ledger = LoadLedger(open_store(db), model, profile, settings)
    if profile == "sweep":
        return _points(model, fmt, ledger, lambda on_point: run_sweep(model, settings, options, size=sweep_size,
                                                                      on_point=on_point, ledger=ledger))
    if profile == "goodput-search":
        return _points(model, fmt, ledger, lambda on_point: run_goodput_search(
            model, settings, options, attainment=attainment, max_points=max_points, on_point=on_point, ledger=ledger))
    try:
        out = run_load(model, settings, options)
    except Exception:  # Ctrl-C marks it interrupted (cli/__init__.py)
        ledger.finish({}, "failed")
        raise
    ledger.point(out)
    records = out.pop("records")
    for key in ("other_records", "start_ns"):
        out.pop(key)
    ledger.finish(out)
    if fmt == "json":
        print(json.dumps({"run_id": ledger.run_id, **out}, indent=2, default=str))
    else:
        console = make_console()
        table = Table(title=Text(f"{model}: {profile}", style="italic"), title_justify="left", header_style="bold")
        for name in ("", "mean", "p50", "p90", "p99"):
            table.add_column(name, justify="right" if name else "left")
        for label, key in (("TTFT ms", "ttft"), ("TPOT ms", "tpot"), ("ITL ms", "itl"), ("E2E ms", "e2el"),
                           ("TTFT from due ms", "scheduled_ttft"), ("dispatch lag ms", "dispatch_lag")):
            table.add_row(label, *(_num(out.get(f"{s}_{key}_ms")) for s in ("mean", "p50", "p90", "p99")))
        console.print(table)
        console.print(
            f"{out['completed']}/{out['num_prompts']} completed ({out['failed']} failed, {out['rate_limited']} rate "
            f"limited, {out['incomplete']} incomplete) in {out['duration']:.2f} s: {out['request_throughput']:.2f} "
            f"req/s, {out['output_throughput']:.1f} output tok/s, peak {out['max_concurrent_requests']} in flight"
            + (f"; client CPU {100 * out['client_cpu']:.0f} %." if out.get("client_cpu") is not None else ".")
            + (f" Stopped early ({STOPS.get(out['stopped'], out['stopped'])}): {out['not_sent']} requests not sent."
               if out["not_sent"] else ""),
            highlight=False)
        if out["request_goodput"] is not None:
            console.print(f"Goodput {out['request_goodput']:.2f} req/s; SLO attainment "
                          f"{100 * out['slo_attainment']:.1f} %.", highlight=False)
        warning = client_warning(out)
        if warning:
            console.print(Text(warning, style="yellow"), highlight=False)
        if out["cost_per_1m_output_tokens_usd"] is not None:
            good = out["cost_per_good_request_usd"]
            console.print(f"Cost ${out['cost_per_1m_output_tokens_usd']:.4f} per 1M output tokens"
                          + (f", ${good:.6f} per good request." if good is not None else "."), highlight=False)
    _stored_as(ledger, fmt)
    return 0 if all(r.ok for r in records) else 2


#: why a point stopped sending, in words
STOPS = {"max_seconds": "--max-seconds", "max_errors": "--max-errors",
         "over_saturation": "over-saturated: requests in flight and TTFT kept rising"}


def _stored_as(ledger, fmt: str) -> None:
    from .render import SafeConsole, styled

    SafeConsole(stderr=fmt == "json", markup=False).print(styled(
        "Stored as run [bold]{}[/]. Report: tryouts export {} -f html; compare: tryouts load compare {} OTHER_RUN.",
        ledger.run_id, ledger.run_id, ledger.run_id))


def _points(model: str, fmt: str, ledger, run: object) -> int:
    """Run a sweep or a goodput search, one line per load point as it ends; then a table (or the JSON)."""
    from rich.table import Table

    from .render import make_console
    from .views import POINT_COLUMNS as cols
    from .views import point_row as row

    console = make_console(stderr=fmt == "json")

    def on_point(p: dict) -> None:
        console.print("  " + "  ".join(f"{c}={v}" for c, v in zip(cols, row(p), strict=True)), highlight=False)

    try:
        out = run(on_point)  # type: ignore[operator]
    except Exception:  # Ctrl-C marks it interrupted (cli/__init__.py)
        ledger.finish({}, "failed")  # the points measured so far stay stored
        raise
    ledger.finish(out)
    if fmt == "json":
        print(json.dumps({"run_id": ledger.run_id, **out}, indent=2, default=str))
    else:
        table = Table(title=Text(f"{model}: {out['profile']} (ms)", style="italic"), title_justify="left", header_style="bold")
        for c in cols:
            table.add_column(c, justify="left" if c == "point" else "right")
        for p in out["points"]:
            table.add_row(*row(p))
        console.print(table)
        if out["profile"] == "goodput-search":
            found = out["goodput_rate"]
            console.print(f"Goodput: {found:.2f} req/s meet the SLOs for {100 * out['target_attainment']:g} % of "
                          f"requests" + (f" ({out['failing_rate']:.2f} req/s do not)." if out["failing_rate"] else
                                         " (no failing rate found within the points allowed).")
                          if found is not None else "No rate tried met the SLOs.", highlight=False)
    _stored_as(ledger, fmt)
    return 0 if all(p["completed"] == p["num_prompts"] for p in out["points"]) else 2


def _stored(action: str, refs: list[str], fmt: str, db: str | None) -> int:
    """``tryouts load show RUN`` and ``tryouts load compare RUN RUN ...``: stored benchmarks, nothing sent."""
    from ..errors import UsageError
    from ..usecases.load_results import compare_benchmarks, headline, load_benchmark
    from .render import make_console
    from .views import print_load_benchmarks

    store = open_store(db)
    if action == "show":
        if len(refs) != 1:
            raise UsageError("Name one stored benchmark: tryouts load show RUN (tryouts runs lists them).")
        benches = [load_benchmark(store, refs[0])]
        benches[0]["headline"] = headline(benches[0])
    else:
        benches = compare_benchmarks(store, refs)
    if fmt == "json":
        print(json.dumps(benches if action == "compare" else benches[0], indent=2, default=str))
        return 0
    print_load_benchmarks(make_console(), benches, side_by_side=action == "compare")
    return 0


def _self_test(streams: int, requests: int, workers: int, fmt: str) -> int:
    from ..usecases.load import self_test
    from .render import make_console

    console = make_console(stderr=fmt == "json")
    with console.status(f"Measuring the client: {requests} requests on {streams} streams against a built-in "
                        "scripted server on 127.0.0.1…"):
        out = self_test(streams=streams, requests=requests, workers=workers)
    if fmt == "json":
        print(json.dumps(out, indent=2, default=str))
        return 0
    console.print(f"Client ceiling on this machine: {out['request_throughput']:,.0f} requests/s on {streams} streams "
                  f"({workers} worker{'s' * (workers > 1)}; {out['completed']}/{out['num_prompts']} completed). The "
                  "scripted server shares this machine, so the client alone is at least this fast. Load an endpoint "
                  "well below this rate, or add --workers.", highlight=False)
    return 0 if out["completed"] == out["num_prompts"] else 2


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"
