"""``tryouts card MODEL``: the catalog entry, the model card and config.json, side by side (docs/catalog.md)."""

from __future__ import annotations

import typer
from rich.text import Text

from . import app

PREVIEW_CHARS = 1200


@app.command(rich_help_panel="Know the models")
def card(
    model: str = typer.Argument(..., help="A catalog name or alias, a Hub id (org/name), a local model folder or a "
                                "GGUF file."),
    online: bool = typer.Option(False, "--online", help="Fetch README.md and config.json from the Hugging Face Hub when not cached."),
    full: bool = typer.Option(False, "--full", help=f"Show whole card sections (default: the first {PREVIEW_CHARS} characters)."),
    fmt: str = typer.Option("table", "--format", "-f", help="Output: table or json."),
) -> int:
    """Show a model's card: catalog facts, intended use, training data, limitations, metrics, config.json.

    Works offline from the catalog, a local folder, a GGUF file (its own metadata) or the Hugging Face cache;
    --online also asks the Hub. Examples: tryouts card llama-3.1-8b-instruct; tryouts card ./my-model;
    tryouts card ./model-Q4_K_M.gguf; tryouts card org/name --online.
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
        table.add_row(Text(k), Text(v))  # keys and values come from the model's own files: text, not markup
    return table


def _print_card(console, info, full: bool, titles: dict[str, str]) -> None:
    from rich.markdown import Markdown
    from rich.panel import Panel
    from rich.table import Table

    from .common import fmt_context, fmt_params
    from .render import styled

    e = info.entry
    gguf_file = info.gguf["path"] if info.gguf and not info.config else None
    title = f"{e.name} ({e.id})" if e else (info.hub_id or gguf_file or info.folder or info.model)
    console.print(Text(title, style="bold"))
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
    if info.gguf:
        console.print(Panel(_kv_table(_gguf_rows(info.gguf)), title="GGUF file", title_align="left"))
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
            console.print(Panel(Markdown(text, hyperlinks=False), title=Text(f"{label} — “{sec['heading']}”"), title_align="left"))
        if info.metrics:
            table = Table(title="Metrics (model-index)", title_justify="left", header_style="bold")
            for col in ("Task", "Dataset", "Metric", "Value"):
                table.add_column(col, justify="right" if col == "Value" else "left", overflow="fold")
            for r in info.metrics:
                table.add_row(*(Text(x) for x in (
                    str(r["task"] or "-"), str(r["dataset"] or "-") + (f" ({r['split']})" if r.get("split") else ""),
                    str(r["metric"] or "-"), str(r["value"]))))
            console.print(table)
    for line in info.mismatches:
        console.print(Text(f"Catalog and {'GGUF' if info.gguf else 'config.json'} differ — {line}", style="yellow"))
    for note in info.notes:
        console.print(styled("[yellow]Note:[/] {}", note))


def _gguf_rows(g: dict) -> list[tuple[str, str]]:
    """The GGUF panel: the file's own metadata (printed as text: a chat template is full of brackets)."""
    from .common import fmt_count

    def tok(text, tid) -> str:
        return "-" if tid is None else f"{text} ({tid})" if text is not None else str(tid)

    shape = ", ".join(part for part in (
        f"{g['block_count']} layers" if g["block_count"] else "",
        f"hidden {g['embedding_length']}" if g["embedding_length"] else "",
        f"{g['head_count']} heads / {g['head_count_kv']} KV" if g["head_count"] else "",
        f"head dim {g['head_dim']}" if g["head_dim"] else "",
        f"feed-forward {g['feed_forward_length']}" if g["feed_forward_length"] else "",
        f"vocab {g['vocab_size']:,}" if g["vocab_size"] else "",
        f"{g['expert_count']} experts ({g['expert_used_count']} per token)" if g["expert_count"] else "",
        "tied embeddings" if g["tied_embeddings"] else "",
    ) if part)
    bpw = f", {g['bits_per_weight']:.2f} bits per weight" if g["bits_per_weight"] else ""
    template = (f"yes; first line: {g['chat_template_first_line']}" if g["chat_template"] else
                "none (a base model: prompts go in as plain text)")
    rows = [
        ("Architecture", g["architecture"] or "-"), ("Name", g["name"] or "-"),
        ("Parameters", f"{fmt_count(g['params'])} ({g['params']:,})"),
        ("Quantization", f"{g['quantization']}{bpw}"),
        ("Context", f"{g['context_length']:,} tokens" if g["context_length"] else "-"),
        ("Shape", shape or "-"),
        ("Tokenizer", f"{g['tokenizer'] or '-'}; BOS {tok(g['bos_token'], g['bos_token_id'])}, "
                      f"EOS {tok(g['eos_token'], g['eos_token_id'])}"),
        ("Chat template", template),
    ]
    rows += [(k.replace("_", " ").capitalize(), ", ".join(map(str, v)) if isinstance(v, list) else str(v))
             for k, v in g["general"].items()]
    rows.append(("File", f"{g['file_size'] / 1e6:,.1f} MB ({g['file_size']:,} bytes; tensor data "
                         f"{g['tensor_bytes']:,}), GGUF v{g['gguf_version']}: {g['path']}"))
    return rows
