"""Rich rendering shared by the commands: the live side-by-side view and the results tables."""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console, Group
from rich.padding import Padding
from rich.panel import Panel
from rich.segment import Segment
from rich.table import Table
from rich.text import Span, Text

from ..engine.events import CellDelta, CellStarted, ModelLoading, ResultStored
from ..labels import short_label
from ..report.safe_text import UNSAFE, has_controls, visible_char, visible_controls

PANEL_LINES = 10
PER_ROW = 3


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

    def on_event(self, event: Any) -> None:
        """Follow the engine's event stream (engine/events.py)."""
        if not isinstance(event, CellDelta | CellStarted | ModelLoading | ResultStored):
            return
        i = event.model_index
        if isinstance(event, CellDelta):
            self.texts[i] += event.delta.text
            self.chunks[i] += 1
            self.state[i] = "streaming"
        elif isinstance(event, ModelLoading):
            self.state[i] = "loading"
        elif isinstance(event, CellStarted):
            self.state[i] = "waiting for first token"
        else:
            r = event.result
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
            *(("n/a (batch)",) * 4 if r.get("batch") else (
                _fmt(r.get("ttft_ms")), _fmt(r.get("tpot_ms"), 2), _fmt(r.get("output_tokens_per_s")),
                _fmt(r.get("e2e_ms")))),
            fmt_tokens(r.get("input_tokens"), est),
            fmt_tokens(r.get("output_tokens"), est),
            fmt_cost(r.get("cost_usd_exact"), r.get("cost_source")),
            _fmt(r.get("load_ms"), 0),
        )
    return table


STACK_BELOW = 120
"""Below this many columns, a table that cannot show every cell whole is printed stacked: one block per row."""


def stacked(table: Table) -> Group:
    """A table as one block per row: the row's first cell as a heading, then ``column: value`` lines.

    What a narrow terminal gets instead of a table squeezed until its cells are cut."""
    columns = table.columns
    blocks: list[Any] = []
    if table.title:
        blocks.append(Text(str(table.title), style="italic"))
    for row in range(table.row_count):
        cells = [c._cells[row] if row < len(c._cells) else "" for c in columns]
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(overflow="fold")
        for column, cell in zip(columns[1:], cells[1:], strict=False):
            header = column.header.plain if isinstance(column.header, Text) else str(column.header)
            grid.add_row(" ".join(header.split()), cell)
        blocks.append(Group(Text.assemble(("▸ ", "dim"), cells[0] if isinstance(cells[0], Text)
                                          else Text(str(cells[0]), style="bold")), Padding(grid, (0, 0, 0, 2))))
    if table.caption:
        blocks.append(Text(str(table.caption), style="dim"))
    return Group(*blocks)


class SafeConsole(Console):
    """A console that prints stored and server-supplied text as text, whatever renderer prints it.

    * Control characters in the data (ESC and every CSI/OSC sequence, C1 controls, BEL, backspace, a lone
      carriage return, DEL, bidi overrides and isolates) are shown as visible escapes (``␛[2J``, ``\\u202e``;
      :func:`~tryouts.report.safe_text.visible_controls`), newline and tab kept. This acts on the data (every
      string and :class:`~rich.text.Text` before layout, and every text segment before it is written), never
      on the styling and cursor codes Rich makes itself.
    * No emoji codes: ``:x:`` in an error or an answer stays ``:x:``.
    * No terminal hyperlinks (OSC 8): a link in a style (``[link=…]`` markup, a Markdown link) is dropped when
      the output is written; the text stays. Tryouts makes no links of its own in the terminal.

    The commands' consoles (:func:`make_console`) also parse no markup: every ``str`` they print, in a table cell,
    a title or a status line, is text. The commands style their own words with :func:`styled`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("emoji", False)
        super().__init__(*args, **kwargs)

    def status(self, status: Any, **kwargs: Any) -> Any:
        # Rich's spinner parses a str as markup whatever the console's setting: give it text when markup is off
        return super().status(Text(status) if isinstance(status, str) and not self._markup else status, **kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        kwargs["emoji"] = False
        return super().render_str(visible_controls(text), **kwargs)

    def render(self, renderable: Any, options: Any = None) -> Iterable[Segment]:
        if isinstance(renderable, Text) and has_controls(renderable.plain):
            renderable = safe_text(renderable)
        return super().render(renderable, options)

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        # the last guard: a text segment that reached the output some other way; control segments (Rich's own
        # cursor and screen codes) pass as they are
        return super()._render_buffer(_inert(seg) for seg in buffer)


def _inert(seg: Segment) -> Segment:
    """A text segment with its control characters visible and its style without a link (OSC 8, which Rich
    writes itself from a ``link`` style); a control segment (Rich's own cursor codes) as it is."""
    if seg.control is not None:
        return seg
    text, style = seg.text, seg.style
    if has_controls(text):
        text = visible_controls(text)
    if style is not None and style.link:
        style = style.update_link(None)
    return seg if text is seg.text and style is seg.style else Segment(text, style)


def safe_text(text: Text) -> Text:
    """A copy of ``text`` with its control characters shown as visible escapes, its styles kept on the same
    characters."""
    plain = text.plain
    pieces, offsets = [], [0]
    for ch in plain:
        piece = visible_char(ch) if UNSAFE.match(ch) else ch
        pieces.append(piece)
        offsets.append(offsets[-1] + len(piece))
    copy = text.blank_copy("".join(pieces))
    end = len(plain)
    copy.spans = [Span(offsets[min(s.start, end)], offsets[min(s.end, end)], s.style) for s in text.spans]
    return copy


class FitConsole(SafeConsole):
    """A console that never cuts a table's cells: below :data:`STACK_BELOW` columns, a table whose narrowest
    layout (every cell's longest word whole) is wider than the terminal is printed :func:`stacked`."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if self.width < STACK_BELOW and any(isinstance(o, Table) for o in objects):
            from rich.measure import Measurement

            objects = tuple(stacked(o) if isinstance(o, Table) and o.row_count and o.columns
                            and Measurement.get(self, self.options.update_width(1 << 16), o).minimum > self.width else o
                            for o in objects)
        super().print(*objects, **kwargs)


def make_console(stderr: bool = False) -> Console:
    """A console (:class:`FitConsole`, a :class:`SafeConsole`: every command prints through one) that parses
    no markup: a ``str`` is printed as text wherever it goes (a table cell, a title, a rule, a status line), so
    a run id, a label or an error read from the store or a server can never style, link or crash the output.
    The commands' own styling goes through :func:`styled` or :class:`~rich.text.Text`.

    When output is not a terminal: ``COLUMNS`` wide when set, else wide enough for the results table (140 columns)."""
    import os

    console = FitConsole(stderr=stderr, markup=False)
    if not console.is_terminal and not os.environ.get("COLUMNS", "").strip().isdigit():
        console = FitConsole(stderr=stderr, markup=False, width=max(console.width, 140))
    return console


class _DataFormatter(string.Formatter):
    """Formats each field as usual, then stands it in for a placeholder that markup cannot touch."""

    def __init__(self) -> None:
        self.values: list[str] = []

    def format_field(self, value: Any, format_spec: str) -> str:
        self.values.append(super().format_field(value, format_spec))
        return f"\x00{len(self.values) - 1}\x00"


_FIELD = re.compile("\x00([0-9]+)\x00")


def styled(template: str, *args: Any, **kwargs: Any) -> Text:
    """The commands' own markup with data in it as text: ``styled("Run [bold]{}[/]: {:,} cells", run_id, n)``.

    ``template`` (a literal: the command's own words) is parsed as Rich markup; each ``{}`` field is formatted
    as :meth:`str.format` would (``{:,}``, ``{!r}``, names) and inserted as plain text, styled by the tags around
    it. A value is never parsed: ``[link=…]`` or ``[/]`` in it shows as written. No emoji codes either."""
    fmt = _DataFormatter()
    marked = Text.from_markup(fmt.vformat(template, args, kwargs), emoji=False)
    plain, pieces, shifts, last, delta = marked.plain, [], [], 0, 0
    for m in _FIELD.finditer(plain):
        value = fmt.values[int(m[1])]
        pieces += [plain[last:m.start()], value]
        last, delta = m.end(), delta + len(value) - (m.end() - m.start())
        shifts.append((m.end(), delta))
    if not shifts:
        return marked
    pieces.append(plain[last:])

    def moved(pos: int) -> int:  # a span never starts or ends inside a placeholder (it holds no brackets)
        return pos + next((d for end, d in reversed(shifts) if end <= pos), 0)

    text = marked.blank_copy("".join(pieces))
    text.spans = [Span(moved(s.start), moved(s.end), s.style) for s in marked.spans]
    return text


def data_text(value: Any, style: str = "") -> Text:
    """A value from the store, a file or a server as a table cell or a line: text, never markup."""
    return value if isinstance(value, Text) else Text("" if value is None else str(value), style=style)


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
        notes.append("Load ms: loading a local model, or a server's untimed warm-up request, kept apart from TTFT.")
    from ..stats import sampling_text

    texts = {short_label(r["model"]): sampling_text(r.get("sampling")) for r in results if r.get("sampling")}
    if texts and len(set(texts.values())) == 1:
        notes.append(f"Sampling: {next(iter(texts.values()))} (every model).")
    elif texts:
        notes.append("Sampling: " + "; ".join(f"{label}: {text}" for label, text in texts.items()) + ".")
    for note in notes:
        console.print(Text(note, style="dim"))


def print_outputs(console: Console, results: Sequence[dict[str, Any]]) -> None:
    """Each model's full output in a panel."""
    for r in results:
        body = r["text"] if r["ok"] else (r["text"] + "\n" if r["text"] else "") + f"✗ {r.get('error')}"
        console.print(Panel(Text(visible_controls(body or "(empty)"), overflow="fold"), title=Text(short_label(r["model"]), style="bold")))


#: reference metrics in the scores table, in this order, with their headings
_REFERENCE_COLUMNS = (("exact_match", "Exact"), ("token_f1", "Token F1"), ("chrf", "chrF"), ("bleu", "BLEU"),
                      ("rougeL", "ROUGE-L"), ("edit_similarity", "Edit sim."), ("embedding", "Embedding"))


def print_scores(console: Console, results: Sequence[dict[str, Any]]) -> None:
    """One row per scored answer: assertions (passed/total, the first failure's reason), reference metrics,
    the judge's score and each custom scorer's. Nothing when no answer has scores."""
    scored = [r for r in results if r.get("scores")]
    if not scored:
        return
    refs = [(k, h) for k, h in _REFERENCE_COLUMNS if any(k in (r["scores"].get("reference") or {}) for r in scored)]
    customs = sorted({name for r in scored for name in (r["scores"].get("custom") or {})})
    has_assert = any(r["scores"].get("assert") for r in scored)
    has_judge = any(r["scores"].get("judge") for r in scored)
    table = Table(title="Scores", title_justify="left", header_style="bold")
    table.add_column("Model", overflow="fold")
    if has_assert:
        table.add_column("Assertions")
    for _, heading in refs:
        table.add_column(heading, justify="right")
    if has_judge:
        table.add_column("Judge", justify="right")
    for name in customs:
        table.add_column(Text(f"Scorer {name}"), justify="right")
    reasons = []
    for r in scored:
        s = r["scores"]
        row = [Text(short_label(r["model"]))]
        if has_assert:
            a = s.get("assert")
            if a and not r["ok"]:
                row.append("✗ no answer")
            elif a:
                checks = a.get("results") or []
                passed = sum(1 for c in checks if c.get("passed"))
                row.append(f"{'✓' if a.get('passed') else '✗'} {passed}/{len(checks)}")
                failed = next((c for c in checks if not c.get("passed")), None)
                if failed is not None and r["ok"]:
                    reasons.append(f"{short_label(r['model'])}: {failed['type']}: {failed.get('reason') or 'failed'}")
            else:
                row.append("-")
        ref = s.get("reference") or {}
        row += [_fmt(ref.get(k), 1 if k in ("chrf", "bleu") else 3) for k, _ in refs]
        if has_judge:
            j = s.get("judge")
            row.append(f"{j['score']:g}/{j['scale'][1]}" if j else "-")
        for name in customs:
            c = (s.get("custom") or {}).get(name)
            row.append("error" if c and "error" in c else _fmt((c or {}).get("score"), 3))
        table.add_row(*row)
    console.print(table)
    for reason in reasons:
        console.print(Text("✗ " + reason), style="dim")
    judged = [r for r in scored if (r["scores"].get("judge") or {}).get("rationale")]
    for r in judged:
        console.print(Text.assemble((f"Judge on {short_label(r['model'])}: ", "bold"), r["scores"]["judge"]["rationale"]))
