"""Rich rendering shared by the commands: the live side-by-side view and the results tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

PANEL_LINES = 10
PER_ROW = 3


def short_label(ref: str) -> str:
    """A display name: local paths shortened to their last part, URLs to host and model."""
    provider, _, model = ref.partition(":")
    if "#" in model and "://" in model:
        url, _, name = model.rpartition("#")
        host = url.split("://", 1)[1].split("/", 1)[0]
        return f"{provider}:{host}#{name}"
    if model.startswith((".", "/", "~")):
        return f"{provider}:{model.rstrip('/').rsplit('/', 1)[-1]}"
    return ref


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def fmt_tokens(n: int | None, estimated: bool) -> str:
    if n is None:
        return "-"
    return f"~{n}" if estimated else str(n)


def fmt_cost(cost: Any, source: str | None = None) -> str:
    """A cost in USD, ``unknown`` when the price is unknown (never shown as 0)."""
    if cost is None:
        return "unknown"
    value = float(cost)
    if source == "local" and value == 0:
        return "0 (local)"
    return f"${value:.6f}" if value < 0.01 else f"${value:,.4f}"


class LiveView:
    """Outputs streaming in side by side, one panel per model, with live TTFT and token counts."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = [short_label(x) for x in labels]
        self.texts = [""] * len(labels)
        self.state = ["waiting"] * len(labels)
        self.chunks = [0] * len(labels)

    def on_event(self, i: int, kind: str, payload: Any) -> None:
        if kind == "delta":
            self.texts[i] += payload.text
            self.chunks[i] += 1
            self.state[i] = "streaming"
        elif kind == "loading":
            self.state[i] = "loading"
        elif kind == "started":
            self.state[i] = "waiting for first token"
        elif kind == "done":
            r = payload
            self.state[i] = (
                f"done · TTFT {_fmt(r.timing.ttft_ms, 0)} ms · {fmt_tokens(r.usage.output_tokens, r.usage.estimated)} tok"
                if r.ok
                else "failed"
            )
            if not r.ok:
                self.texts[i] = (self.texts[i] + "\n" if self.texts[i] else "") + f"✗ {r.error}"

    def _panel(self, i: int) -> Panel:
        lines = self.texts[i].splitlines() or [""]
        body = Text("\n".join(lines[-PANEL_LINES:]), overflow="fold")
        style = "red" if self.state[i] == "failed" else ("green" if self.state[i].startswith("done") else "cyan")
        return Panel(
            body,
            title=Text(self.labels[i], style="bold"),
            subtitle=Text(self.state[i], style=style),
            height=PANEL_LINES + 2,
        )

    def __rich__(self) -> Group:
        rows = []
        for start in range(0, len(self.labels), PER_ROW):
            grid = Table.grid(expand=True, padding=(0, 1))
            idx = range(start, min(start + PER_ROW, len(self.labels)))
            for _ in idx:
                grid.add_column(ratio=1)
            grid.add_row(*(self._panel(i) for i in idx))
            rows.append(grid)
        return Group(*rows)


def results_table(results: Sequence[dict[str, Any]], title: str | None = None) -> Table:
    """One row per result (flat dicts as stored, see docs/json.md)."""
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("Model", overflow="fold", max_width=40)
    for name in ("TTFT ms", "TPOT ms", "tok/s", "E2E ms", "In tok", "Out tok", "Cost USD", "Load ms"):
        table.add_column(name, justify="right")
    for r in results:
        est = bool(r.get("tokens_estimated"))
        table.add_row(
            Text("✓ ", style="green") + Text(short_label(r["model"]))
            if r["ok"]
            else Text("✗ " + short_label(r["model"]), style="bold red"),
            _fmt(r.get("ttft_ms")),
            _fmt(r.get("tpot_ms"), 2),
            _fmt(r.get("output_tokens_per_s")),
            _fmt(r.get("e2e_ms")),
            fmt_tokens(r.get("input_tokens"), est),
            fmt_tokens(r.get("output_tokens"), est),
            fmt_cost(r.get("cost_usd_exact"), r.get("cost_source")),
            _fmt(r.get("load_ms"), 0),
        )
    return table


def make_console(stderr: bool = False) -> Console:
    """A console; when output is not a terminal, wide enough for the results table."""
    console = Console(stderr=stderr)
    if not console.is_terminal:
        console = Console(stderr=stderr, width=max(console.width, 140))
    return console


def print_results(console: Console, results: Sequence[dict[str, Any]], title: str | None = None) -> None:
    """The table, then each failure's message, then the footnotes that apply."""
    console.print(results_table(results, title))
    for r in results:
        if not r["ok"]:
            console.print(Text.assemble(("✗ ", "bold red"), (short_label(r["model"]), "bold"), ": ", r.get("error") or ""))
    notes = []
    methods = sorted({r["token_method"] for r in results if r.get("tokens_estimated")})
    if methods:
        notes.append(f"~ token count estimated by Tryouts ({', '.join(methods)}): the provider sent no usage.")
    if any(r.get("cost_usd_exact") is None and r["ok"] for r in results):
        notes.append("unknown cost: no price is known for that model; set one with --price REF=IN,OUT (USD per 1M tokens).")
    if any(r.get("load_ms") for r in results):
        notes.append("Load ms: loading and warming up a local model, kept apart from TTFT.")
    for note in notes:
        console.print(Text(note, style="dim"))


def print_outputs(console: Console, results: Sequence[dict[str, Any]]) -> None:
    """Each model's full output in a panel."""
    for r in results:
        body = r["text"] if r["ok"] else (r["text"] + "\n" if r["text"] else "") + f"✗ {r.get('error')}"
        console.print(Panel(Text(body or "(empty)", overflow="fold"), title=Text(short_label(r["model"]), style="bold")))
