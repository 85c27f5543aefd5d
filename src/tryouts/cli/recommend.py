"""``tryouts recommend``: constraints in, a ranked short list of catalog models with reasons out."""

from __future__ import annotations

import typer

from ..usecases.recommend import advise_with_catalog
from . import app
from .common import DB_HELP, open_store


@app.command(rich_help_panel="Know the models")
def recommend(
    task: str = typer.Option("chat", "--task", help="chat, classification, ner, translation, summarization, "
                             "embeddings or code."),
    budget: str = typer.Option("medium", "--budget", help="low, medium or high."),
    privacy: str = typer.Option("normal", "--privacy", help="high: the data must not leave your machines."),
    offline: bool = typer.Option(False, "--offline", help="It must run without a network."),
    latency_ms: float | None = typer.Option(None, "--latency-ms", help="The largest acceptable time to first token."),
    gpu_memory: str | None = typer.Option(None, "--gpu-memory", help="Memory of the GPU it must fit, e.g. 24GB."),
    quality: str = typer.Option("good", "--quality", help="best or good."),
    fine_tune: bool = typer.Option(False, "--fine-tune", help="You have labelled data and can fine-tune."),
    context: str = typer.Option("4096", "--context", help="Tokens of context to budget memory for: 8192, 8k (= 8,000), 1M."),
    top: int = typer.Option(5, "--top", "-n", min=1, help="How many models to list."),
    fmt: str = typer.Option("table", "--format", "-f", help="Output: table or json."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> int:
    """Recommend models for your constraints: a ranked short list, each with its reasons, memory and price.

    Follows the model-selection framework (privacy or offline → local; latency < 100 ms → a small model or an
    API's fast tier; budget; will it fit; fine-tune vs prompt), over the catalog ('tryouts models'), with your
    own measured TTFT and quality from past runs where you have them. Deterministic: the same constraints give
    the same list.

    Examples: tryouts recommend --task chat --privacy high --gpu-memory 24GB ·
    tryouts recommend --task classification --fine-tune · tryouts recommend --latency-ms 100 --budget low
    """
    import json

    from ..catalog.query import parse_tokens
    from ..errors import UsageError
    from .render import make_console

    if fmt not in ("table", "json"):
        raise UsageError(f"--format must be table or json, not {fmt!r}.")
    context = parse_tokens(context)
    if context < 1:
        raise UsageError("--context must be at least 1 token.")
    out = advise_with_catalog(open_store(db), task=task, budget=budget, privacy=privacy, offline=offline,
                              latency_ms=latency_ms, gpu_memory=gpu_memory, quality=quality, fine_tune=fine_tune,
                              context=context, top=top)
    if fmt == "json":
        print(json.dumps(out, indent=2, default=str))
        return 0
    from rich.table import Table

    console = make_console()
    for step in out["steps"]:
        console.print(f"• {step}", highlight=False)
    if out["picks"]:
        table = Table(title="Recommended", title_justify="left", header_style="bold", show_lines=True)
        for name in ("#", "Model", "Why", "Memory", "Price in/out per Mtok", "Your runs"):
            table.add_column(name, justify="right" if name == "#" else "left", overflow="fold")
        for i, p in enumerate(out["picks"], 1):
            mem = p["memory"]
            memory = f"{mem['bytes'] / 1e9:.1f} GB at {mem['dtype']}" if mem else "-"
            price = p["price"]
            price_s = (f"${price['input_per_mtok']:g} / ${price['output_per_mtok']:g}" if price
                       else ("local (no API bill)" if p["access"] == "open" else "unknown"))
            m = p["measured"]
            runs = "-"
            if m:
                parts = []
                if m.get("ttft_p50_ms") is not None:
                    parts.append(f"TTFT p50 {m['ttft_p50_ms']:.0f} ms")
                if m.get("quality") is not None:
                    parts.append(f"quality {m['quality']:.2f}")
                runs = ", ".join(parts) or f"{m['n']} results"
            table.add_row(str(i), f"{p['name']}\n[dim]{p['routes'][0] if p['routes'] else p['id']}[/]",
                          "\n".join(p["reasons"]), memory, price_s, runs)
        console.print(table)
    if out["excluded"]:
        shown = out["excluded"][:8]
        console.print(f"[dim]Excluded ({len(out['excluded'])}): " + "; ".join(f"{x['id']}: {x['reason']}" for x in shown)
                      + (" …" if len(out["excluded"]) > len(shown) else "") + "[/]", highlight=False)
    for line in out["advice"]:
        console.print(line, highlight=False)
    return 0
