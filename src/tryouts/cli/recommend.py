"""``tryouts recommend``: constraints in, a ranked short list of catalog models with reasons out."""

from __future__ import annotations

import typer
from rich.text import Text

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
    gpu: str | None = typer.Option(None, "--gpu", help="A known GPU it must run on (memory, bandwidth): RTX-4090, "
                                   "H100, L4 ... (tryouts memory --help lists them)."),
    gpu_memory: str | None = typer.Option(None, "--gpu-memory", help="Memory of the GPU it must fit, e.g. 24GB."),
    ram: str | None = typer.Option(None, "--ram", help="A machine without a GPU, with this much RAM: 32GB (read as "
                                   "GiB, as RAM is sold); llama.cpp-family engines, GGUF formats."),
    unified_memory: str | None = typer.Option(None, "--unified-memory", help="An Apple-silicon machine with this "
                                              "much unified memory: 16GB (read as GiB)."),
    chip: str | None = typer.Option(None, "--chip", help="Its Apple chip, for the bandwidth: M1 ... M4-Max "
                                    "(default M4)."),
    bandwidth: float | None = typer.Option(None, "--bandwidth", help="Memory bandwidth in GB/s, for the speed "
                                           "estimate (overrides the table's)."),
    commercial: bool = typer.Option(False, "--commercial", help="For commercial use: leave out models whose licence "
                                    "forbids it (CC BY-NC, research licences)."),
    open_weights: bool = typer.Option(False, "--open-weights", help="Only models whose weights you can download."),
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

    Each open model is placed in the widest format that fits the hardware (the checkpoint's own, FP8, then GGUF
    Q6_K ... Q3_K_M; GGUF only on a CPU or unified memory), with a decode-speed estimate from memory bandwidth.

    Examples: tryouts recommend --task chat --privacy high --gpu RTX-4090 ·
    tryouts recommend --privacy high --unified-memory 16GB --chip M3 · tryouts recommend --ram 32GB --offline ·
    tryouts recommend --task classification --fine-tune · tryouts recommend --latency-ms 100 --budget low ·
    tryouts recommend --open-weights --commercial
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
                              context=context, top=top, gpu=gpu, ram=ram, unified_memory=unified_memory, chip=chip,
                              bandwidth=bandwidth, commercial=commercial, open_weights=open_weights)
    if fmt == "json":
        print(json.dumps(out, indent=2, default=str))
        return 0
    from rich.table import Table

    console = make_console()
    for step in out["steps"]:
        console.print(Text(f"• {step}"), highlight=False)
    if out["picks"]:
        table = Table(title="Recommended", title_justify="left", header_style="bold", show_lines=True)
        for name in ("#", "Model", "Why", "Memory, speed (est.)", "Price in/out per Mtok", "Your runs"):
            table.add_column(name, justify="right" if name == "#" else "left", overflow="fold")
        for i, p in enumerate(out["picks"], 1):
            mem = p["memory"]
            memory = f"{mem['bytes'] / 1e9:.1f} GB at {mem['dtype']}" if mem and p["runs"] == "local" else "-"
            if p["speed"]:
                memory += f"\n≈ {p['speed']['tokens_per_s']:,.0f} tok/s"
            price = p["price"]
            price_s = ("local (no API bill)" if p["runs"] == "local" else
                       f"${price['input_per_mtok']:g} / ${price['output_per_mtok']:g}" if price else "unknown")
            m = p["measured"]
            runs = "-"
            if m:
                parts = []
                if m.get("ttft_p50_ms") is not None:
                    parts.append(f"TTFT p50 {m['ttft_p50_ms']:.0f} ms")
                if m.get("quality") is not None:
                    parts.append(f"quality {m['quality']:.2f}")
                runs = ", ".join(parts) or f"{m['n']} results"
            table.add_row(str(i), Text.assemble(p["name"], "\n", (p["routes"][0] if p["routes"] else p["id"], "dim")),
                          "\n".join(p["reasons"]), memory, price_s, runs)
        console.print(table)
    if out["excluded"]:
        shown = out["excluded"][:8]
        console.print(Text(f"Excluded ({len(out['excluded'])}): " + "; ".join(f"{x['id']}: {x['reason']}" for x in shown)
                           + (" …" if len(out["excluded"]) > len(shown) else ""), style="dim"), highlight=False)
    for line in out["advice"]:
        console.print(Text(line), highlight=False)
    return 0
