"""``tryouts models``: the model catalog, filtered (docs/catalog.md)."""

from __future__ import annotations

import typer
from rich.text import Text

from . import app
from .common import fmt_context, fmt_params

SORTS = ("catalog", "params", "context", "price")


def fmt_price(row) -> str:
    """``in / out`` USD per Mtok; where an open model's price comes from an API; ``local`` or ``unknown``."""
    p, e = row.price, row.entry
    if p is None:
        return "local" if e.is_open else "unknown"
    text = f"{p.input_per_mtok} / {p.output_per_mtok}"
    if e.is_open and p.route:
        text += f" ({p.route.partition(':')[0]})"
    return text


def fmt_price_source(row) -> str:
    """Where the price comes from: ``genai-prices``, or ``catalog YYYY-MM-DD`` (the catalog's own, dated); ``-``."""
    p = row.price
    if p is None:
        return "-"
    return f"catalog {p.as_of}" if p.source == "catalog" else p.source


def _sort_key(sort: str):
    def key(row):
        e = row.entry
        if sort == "params":
            return (e.params.total is None, e.params.total or 0)
        if sort == "context":
            return (e.context_window is None, -(e.context_window or 0))
        return (row.price is None, row.price.blended if row.price else 0)

    return key


@app.command(rich_help_panel="Know the models")
def models(
    access: bool | None = typer.Option(None, "--open/--commercial", help="Only open-weight models, or only API models."),
    task: str | None = typer.Option(
        None, "--task", help="Only models for this task: chat, code, classification, ner, translation, summarization, embeddings."
    ),
    min_context: str | None = typer.Option(None, "--min-context", help="At least this many tokens of input (32768, 128k, 1M): the context window, or the input limit where the window counts output too."),
    max_price: str | None = typer.Option(
        None, "--max-price",
        help="Blended price at most this many USD per million tokens (mean of input and output price); "
        "models without a known per-token price are left out.",
    ),
    license: list[str] = typer.Option(
        [], "--license", help="Licence id or prefix (apache-2.0, mit, llama...); repeat to allow several."
    ),
    fits: str | None = typer.Option(
        None, "--fits", help="Only open models whose weights + KV cache fit in this memory: 24, 24GB or 80GiB (bare = GB)."
    ),
    dtype: str = typer.Option("bf16", "--dtype", help="Weight type for --fits (fp32, fp16, bf16, int8, int4 ...)."),
    context: str | None = typer.Option(None, "--context", help="Tokens of context: models whose window is "
                                       "shorter are left out, and --fits counts their KV cache (default 4096)."),
    sort: str = typer.Option("catalog", "--sort", help="Order: catalog, params, context (largest first) or price (cheapest first)."),
    fmt: str = typer.Option("table", "--format", "-f", help="Output: table or json."),
) -> int:
    """List the model catalog: maker, open or API, parameters, context, price, licence and tasks.

    Examples: tryouts models --open --task code; tryouts models --min-context 1M --max-price 1;
    tryouts models --fits 24GB --dtype int4 --context 8k.
    """
    import json

    from rich.table import Table

    from ..catalog import load_catalog
    from ..catalog.query import Filters, parse_money, parse_size, parse_tokens, select
    from ..errors import UsageError
    from .render import make_console

    if fmt not in ("table", "json"):
        raise UsageError(f"--format must be table or json, not {fmt!r}.")
    if sort not in SORTS:
        raise UsageError(f"--sort must be one of {', '.join(SORTS)}, not {sort!r}.")
    filters = Filters(
        access=None if access is None else ("open" if access else "commercial"),
        task=task.lower() if task else None,
        min_context=max(parse_tokens(min_context) if min_context is not None else 0,
                        parse_tokens(context) if context is not None else 0) or None,
        max_price=parse_money(max_price) if max_price is not None else None,
        licenses=tuple(license),
        fits_bytes=parse_size(fits) if fits is not None else None,
        dtype=dtype,
        context=parse_tokens(context) if context is not None else 4096,
    )
    selection = select(load_catalog(), filters)
    rows = selection.rows
    if sort != "catalog":
        rows = sorted(rows, key=_sort_key(sort))
    if fmt == "json":
        print(json.dumps([r.to_dict() for r in rows], indent=2))
        return 0
    console = make_console()
    if not console.is_terminal:
        console.width = max(console.width, 170)  # a file or pipe gets every column unwrapped
    if not rows:
        console.print("No model in the catalog matches these filters. Loosen one, or run 'tryouts models' to see them all.")
    else:
        table = Table(header_style="bold", title=f"{len(rows)} model(s)", title_justify="left")
        table.add_column("ID", no_wrap=True)
        table.add_column("Maker", overflow="fold")
        table.add_column("Access")
        table.add_column("Params B (active)", justify="right")
        table.add_column("Context", justify="right")
        table.add_column("$/Mtok in / out", justify="right")
        table.add_column("Price from", no_wrap=True)
        if filters.fits_bytes is not None:
            table.add_column(f"Needs GB ({filters.dtype})", justify="right")
        table.add_column("License", overflow="fold", min_width=12)
        table.add_column("Tasks", min_width=13)
        for r in rows:
            e = r.entry
            status = " (retired)" if e.retired() else (" (shutdown " + e.shutdown + ")" if e.shutdown else "")
            cells = [e.id + status, e.maker, e.access, fmt_params(e.params.total, e.params.active, e.is_open), fmt_context(e.context_window) + (f" ({fmt_context(e.max_input)} in)" if e.max_input else ""),
                     fmt_price(r), fmt_price_source(r)]
            if filters.fits_bytes is not None:
                cells.append(f"{(r.memory_bytes or 0) / 1e9:.1f}")
            cells += [e.license, ", ".join(e.tasks) or "-"]
            table.add_row(*cells)
        console.print(table)
        from ..pricing import genai_prices_version

        sources = {r.price.source for r in rows if r.price}
        if "genai-prices" in sources:
            console.print(f"Price from genai-prices = its bundled price list (version {genai_prices_version()}), as a "
                          "run is priced.")
        if "catalog" in sources:
            console.print("Price from catalog DATE = the catalog's own sourced price, as of that date: genai-prices does "
                          "not list the model, or lists an older price (runs are priced with it too).")
        if any(r.price is None and r.entry.is_open for r in rows):
            console.print("local = open weights with no API price here: free to run on your own hardware.")
    for reason, ids in selection.left_out.items():
        more = f" and {len(ids) - 6} more" if len(ids) > 6 else ""
        console.print(Text(f"Left out, {reason}: {len(ids)} model(s): {', '.join(ids[:6])}{more}.", style="dim"),
                      highlight=False)
    return 0
