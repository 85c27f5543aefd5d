"""``tryouts card MODEL``: the catalog entry, the model card and config.json, side by side (docs/catalog.md)."""

from __future__ import annotations

import typer

from . import app

PREVIEW_CHARS = 1200


@app.command(rich_help_panel="Know the models")
def card(
    model: str = typer.Argument(..., help="A catalog name or alias, a Hub id (org/name) or a local model folder."),
    online: bool = typer.Option(False, "--online", help="Fetch README.md and config.json from the Hugging Face Hub when not cached."),
    full: bool = typer.Option(False, "--full", help=f"Show whole card sections (default: the first {PREVIEW_CHARS} characters)."),
    fmt: str = typer.Option("table", "--format", "-f", help="Output: table or json."),
) -> int:
    """Show a model's card: catalog facts, intended use, training data, limitations, metrics, config.json.

    Works offline from the catalog, a local folder or the Hugging Face cache; --online also asks the Hub.
    Examples: tryouts card llama-3.1-8b-instruct; tryouts card ./my-model; tryouts card org/name --online.
    """
    import json

    from ..catalog.card import SECTION_TITLES, build_card
    from ..errors import UsageError
    from .render import make_console

    if fmt not in ("table", "json"):
        raise UsageError(f"--format must be table or json, not {fmt!r}.")
    info = build_card(model, online=online)
    if fmt == "json":
        print(json.dumps(info.to_dict(), indent=2, default=str))
        return 0
    console = make_console()
    _print_card(console, info, full, SECTION_TITLES)
    return 0


def _kv_table(rows: list[tuple[str, str]]):
    from rich.table import Table

    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for k, v in rows:
        table.add_row(k, v)
    return table


def _print_card(console, info, full: bool, titles: dict[str, str]) -> None:
    from rich.markdown import Markdown
    from rich.panel import Panel
    from rich.table import Table

    from .models import fmt_context, fmt_params

    e = info.entry
    title = f"{e.name} ({e.id})" if e else (info.hub_id or info.folder or info.model)
    console.print(f"[bold]{title}[/]")
    if e is not None:
        a = e.arch
        arch = "undisclosed" if a is None else (
            f"{a.type}: {a.layers} layers, hidden {a.hidden_size}, {a.attention_heads} heads / {a.kv_heads} KV, "
            f"head dim {a.head_dim}, vocab {a.vocab_size}"
            + (f", {a.experts} experts ({a.experts_per_token} per token)" if a.experts else "")
            + (f", sliding window {a.sliding_window}" if a.sliding_window else "")
        )
        p = info.price
        price = ("local (open weights: free to run on your hardware)" if e.is_open else "unknown") if p is None else (
            f"${p.input_per_mtok} in / ${p.output_per_mtok} out per Mtok ({p.source}"
            + (f", {p.route}" if p.route else "") + (f", as of {p.as_of}" if p.as_of else "") + ")"
        )
        rows = [
            ("Maker", e.maker), ("Access", e.access), ("Parameters B (active)", fmt_params(e.params.total, e.params.active, e.is_open)),
            ("Architecture", arch), ("Context", f"{fmt_context(e.context_window)} tokens" if e.context_window else "-"),
            ("Max output", str(e.max_output) if e.max_output else "-"), ("Knowledge cutoff", e.knowledge_cutoff or "-"),
            ("License", e.license), ("Modalities", f"{', '.join(e.modalities.input)} -> {', '.join(e.modalities.output)}"),
            ("Tasks", ", ".join(e.tasks) or "-"), ("Price", price), ("Run it with", ", ".join(e.routes) or "-"),
        ]
        if e.notes:
            rows.append(("Notes", e.notes))
        rows += [(f"Source: {k}", v) for k, v in e.sources.items()]
        console.print(Panel(_kv_table(rows), title="Catalog", title_align="left"))
    if info.config:
        c = info.config
        labels = {"kv_heads": "KV heads", "context": "Context (max positions)", "experts_per_token": "Experts per token"}
        rows = [(labels.get(k, k.replace("_", " ").capitalize()), str(v)) for k, v in c.items() if v is not None]
        rows.append(("From", f"{info.config_from}: {info.config_path}"))
        console.print(Panel(_kv_table(rows), title="config.json", title_align="left"))
    if info.card_path:
        m = info.metadata
        rows = [(k.replace("_", " ").capitalize(), ", ".join(map(str, v)) if isinstance(v, list) else str(v))
                for k, v in m.items()]
        rows.append(("From", f"{info.card_from}: {info.card_path}"))
        console.print(Panel(_kv_table(rows), title="Model card", title_align="left"))
        for key, label in titles.items():
            sec = info.sections.get(key)
            if not sec or not sec["text"]:
                continue
            text = sec["text"]
            if not full and len(text) > PREVIEW_CHARS:
                text = text[:PREVIEW_CHARS].rstrip() + f"\n\n… ({len(sec['text']) - PREVIEW_CHARS} more characters: --full)"
            console.print(Panel(Markdown(text), title=f"{label} — “{sec['heading']}”", title_align="left"))
        if info.metrics:
            table = Table(title="Metrics (model-index)", title_justify="left", header_style="bold")
            for col in ("Task", "Dataset", "Metric", "Value"):
                table.add_column(col, justify="right" if col == "Value" else "left", overflow="fold")
            for r in info.metrics:
                table.add_row(str(r["task"] or "-"), str(r["dataset"] or "-") + (f" ({r['split']})" if r.get("split") else ""),
                              str(r["metric"] or "-"), str(r["value"]))
            console.print(table)
    for line in info.mismatches:
        console.print(f"[yellow]Catalog and config.json differ — {line}[/]")
    for note in info.notes:
        console.print(f"[yellow]Note:[/] {note}", highlight=False)
