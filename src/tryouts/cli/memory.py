"""``tryouts memory``: the GPU memory a model needs at a precision, context and batch size, and whether it fits."""

from __future__ import annotations

from typing import Any

import typer
from rich.text import Text

from . import app
from .common import fmt_count

MODEL_HELP = ("A GGUF file (its header is read), a model's config.json (or its folder), a catalog name (see "
              "'tryouts models'), or a Hugging Face id whose config.json is in the local Hugging Face cache.")


@app.command(rich_help_panel="Know the models")
def memory(
    model: str = typer.Argument(..., help=MODEL_HELP),
    dtype: str | None = typer.Option(
        None, "--dtype", "-d",
        help="Weight format: fp32, fp16, bf16, fp8, fp8-block, mxfp4, int8, int4/nf4, nf4-dq, a GGUF type (Q4_K_M, "
             "gguf:Q8_0, MXFP4_MOE ...), 'native' (as the model's checkpoint ships: MXFP4 experts for gpt-oss, "
             "block-scaled FP8 for DeepSeek-V3), 'file' (a GGUF file's own weights, as stored: the default for a "
             ".gguf model), or 'all' for a table of the common ones (the default otherwise; with a GGUF file, its "
             "own weights first; with a low-bit checkpoint, its native row too).",
    ),
    context: str = typer.Option("4096", "--context", "-c", help="Tokens of context per sequence (prompt + output): "
                                "8192, 8k (= 8,000), 1M."),
    batch: int = typer.Option(1, "--batch", "-b", min=1, help="Sequences served at once."),
    kv_dtype: str | None = typer.Option(
        None, "--kv-dtype", help="KV-cache format: fp32, fp16, bf16, fp8, q8_0, q4_0 (default: the weights' 16-bit type)."
    ),
    gpu: str | None = typer.Option(None, "--gpu", help="A GPU to check the fit against, e.g. H100-80GB, L4-24GB."),
    gpu_memory: str | None = typer.Option(None, "--gpu-memory", help="GPU memory to check against, e.g. 24GB or 24GiB."),
    fmt: str = typer.Option("table", "--format", "-f", help="Output: table or json."),
) -> None:
    """Estimate the memory a model needs: weights per part, KV cache, overhead, total, and whether it fits.

    Works offline. Examples:

      tryouts memory examples/configs/llama-3.1-70b.json

      tryouts memory examples/configs/mixtral-8x7b.json --dtype Q4_K_M --context 32768 --gpu H100-80GB

      tryouts memory llama-3.1-8b-instruct --dtype int4 --gpu-memory 24GB --format json

      tryouts memory ./model-Q4_K_M.gguf --context 8192 --gpu L4-24GB

    Formulas and assumptions: docs/memory.md.
    """
    import json

    from ..catalog.query import parse_tokens
    from ..errors import UsageError
    from ..memory import COMMON_DTYPES, estimate, find_gpu, parse_dtype, parse_kv_dtype, parse_size, resolve

    if fmt not in ("table", "json"):
        raise UsageError(f"--format must be table or json, not {fmt!r}.")
    context = parse_tokens(context)
    if gpu and gpu_memory:
        raise UsageError("Give either --gpu or --gpu-memory, not both.")
    choice = (dtype or "").strip().lower()
    named = parse_dtype(dtype) if dtype is not None and choice != "all" else None
    kv = parse_kv_dtype(kv_dtype) if kv_dtype else None
    target: dict[str, Any] | None = None
    if gpu:
        g = find_gpu(gpu)
        target = {"name": g.name, "marketed": g.marketed, "memory_bytes": g.memory_bytes}
    elif gpu_memory:
        target = {"name": gpu_memory.strip(), "marketed": None, "memory_bytes": parse_size(gpu_memory)}

    from ..catalog import lookup

    arch = resolve(model, catalog=lookup)
    own = [parse_dtype("file")] if arch.stored else []  # a GGUF file: its own weights, as stored
    if named is not None:
        dtypes = [named]
    elif own and dtype is None:
        dtypes = own
    else:
        dtypes = own + [parse_dtype(d) for d in COMMON_DTYPES]
        if arch.native_format and not own:  # the checkpoint ships low-bit: its own row, after bf16
            dtypes.insert(COMMON_DTYPES.index("bf16") + 1, parse_dtype("native"))
    estimates = [estimate(arch, d, context=context, batch=batch, kv_dtype=kv) for d in dtypes]
    too_long = (f"--context {context:,} is beyond the longest context this model supports ({arch.max_context:,} "
                "tokens): the estimate counts a KV cache the model would never hold."
                if arch.max_context and context > arch.max_context else None)
    rows = []
    for e in estimates:
        row = e.to_dict()
        if target:
            row["fits"] = e.fits(target["memory_bytes"])
            row["headroom_bytes"] = target["memory_bytes"] - e.total_bytes
        rows.append(row)

    if fmt == "json":
        first = estimates[0]
        print(json.dumps({
            "model": first.model, "source": arch.source, "model_type": arch.model_type,
            "stored_format": arch.stored_format,
            "params_total": first.params_total, "params_active": first.params_active,
            "params_by_class": first.params_by_class, "context": context, "batch": batch, "gpu": target,
            "max_context": arch.max_context, "warnings": [too_long] if too_long else [], "estimates": rows,
        }, indent=2))
        return
    _print_tables(arch, estimates, rows, target)
    if too_long:
        from .render import make_console, styled

        make_console().print(styled("[yellow]Note:[/] {}", too_long))


def _gb(n: float) -> str:
    return f"{n / 1e9:,.2f} GB"


def _fit_text(row: dict[str, Any]) -> Text:
    spare = row["headroom_bytes"]
    return (Text.assemble(("yes", "green"), f" ({_gb(spare)} spare)") if row["fits"] else
            Text.assemble(("no", "red"), f" ({_gb(-spare)} short)"))


def _print_tables(arch: Any, estimates: list[Any], rows: list[dict[str, Any]], target: dict[str, Any] | None) -> None:
    from rich.table import Table

    from .render import make_console

    console = make_console()
    first = estimates[0]
    active = f", {fmt_count(first.params_active)} active per token" if first.params_active else ""
    stored = f"{arch.stored_format} file, " if arch.stored_format else ""
    console.print(Text.assemble((first.model, "bold"), f" ({stored}{arch.model_type}; {arch.source})"))
    console.print(f"{fmt_count(first.params_total)} parameters{active} · context {first.context:,} tokens × batch "
                  f"{first.batch}", highlight=False)
    gpu_label = None
    if target:
        gpu_label = f"{target['name']} ({_gb(target['memory_bytes'])})"

    if len(estimates) == 1:
        e, row = first, rows[0]
        t = Table(title=Text(f"Memory at {e.dtype_label}", style="table.title"), title_justify="left")
        for col, justify in (("Part", "left"), ("Parameters", "right"), ("Stored as", "left"), ("Memory", "right")):
            t.add_column(col, justify=justify)  # type: ignore[arg-type]
        for cls, n in e.params_by_class.items():
            t.add_row(Text(cls), fmt_count(n), Text(e.storage.get(cls, "")), _gb(e.weight_bytes_by_class[cls]))
        t.add_section()
        t.add_row(Text("weights", style="bold"), fmt_count(e.params_total), f"{e.bits_per_weight:.2f} bits per weight",
                  _gb(e.weights_bytes))
        t.add_row("KV cache", "", Text(f"{e.context:,} tokens × {e.batch}, {e.kv_dtype}"), _gb(e.kv_bytes))
        t.add_row("overhead", "", "1 GiB + 5% of weights and KV", _gb(e.overhead_bytes))
        t.add_section()
        t.add_row(Text("total", style="bold"), "", "", Text(_gb(e.total_bytes), style="bold"))
        console.print(t)
        if target:
            console.print(Text(f"Fits on {gpu_label}: ") + _fit_text(row))
    else:
        t = Table(title=f"Memory by weight format (KV cache for {first.context:,} tokens × {first.batch})",
                  title_justify="left")
        cols = ["dtype", "bits/weight", "weights", "KV cache", "overhead", "total"]
        for col in cols:
            t.add_column(col, justify="left" if col == "dtype" else "right")
        if target:
            t.add_column(Text(f"fits {target['name']}"), justify="left")
        for e, row in zip(estimates, rows, strict=True):
            name = f"file ({arch.stored_format.removeprefix('GGUF ')})" if e.dtype == "file" else e.dtype
            if e.dtype == "native":
                name = f"native ({arch.native_format})"
            cells = [Text(name), f"{e.bits_per_weight:.2f}", _gb(e.weights_bytes), _gb(e.kv_bytes), _gb(e.overhead_bytes),
                     _gb(e.total_bytes)]
            if target:
                cells.append(_fit_text(row))
            t.add_row(*cells)
        console.print(t)
        p = Table(title="Parameters by part", title_justify="left")
        p.add_column("Part")
        p.add_column("Parameters", justify="right")
        p.add_column("Share", justify="right")
        for cls, n in first.params_by_class.items():
            p.add_row(Text(cls), fmt_count(n), f"{100 * n / first.params_total:.1f}%")
        console.print(p)
        if target:
            console.print(Text(f"GPU: {gpu_label}"), highlight=False)
    notes = dict.fromkeys(a for e in estimates for a in e.assumptions if not a.startswith("KV cache values in "))
    kv: dict[str, list[str]] = {}
    for e in estimates:
        kv.setdefault(e.kv_dtype, []).append(e.dtype.removeprefix("gguf:"))
    if len(estimates) == 1:
        notes = {f"KV cache values in {estimates[0].kv_dtype}": None, **notes}
    elif len({e.kv_dtype for e in estimates}) == 1:
        notes = {f"KV cache values in {estimates[0].kv_dtype}": None, **notes}
    else:
        notes = {"KV cache values (--kv-dtype sets them): " + "; ".join(
            f"{k} for {', '.join(v)}" for k, v in kv.items()): None, **notes}
    console.print(Text("Assumptions:", style="dim"))
    for note in notes:
        console.print(Text(f" - {note}", style="dim"))
    console.print(Text("Formulas: docs/memory.md", style="dim"))
