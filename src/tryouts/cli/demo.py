"""``tryouts demo``: the whole product on tiny offline models, in one command."""

from __future__ import annotations

import typer

from . import app
from .compare import DB_HELP, open_store

DEMO_PROMPT = "Explain pretrained models in one paragraph."

#: commercial models the demo adds when their key is set
COMMERCIAL = {"OPENAI_API_KEY": "openai:gpt-4o-mini"}


@app.command(rich_help_panel="Run")
def demo(
    max_tokens: int = typer.Option(48, "--max-tokens", min=2, help="Output tokens per model."),
    path: bool = typer.Option(False, "--path", help="Only print the folder of the demo models (built if needed)."),
    live: bool = typer.Option(True, "--live/--no-live", help="Show outputs streaming side by side (terminals only)."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> int:
    """Build tiny random-weight models (once, cached) and compare them across the local routes.

    Compares the same model three ways: Hugging Face transformers in process, llama.cpp in process,
    and llama.cpp's OpenAI-compatible server on 127.0.0.1, plus any commercial model whose API
    key is set. Nothing leaves this machine unless a key is set.
    """
    import asyncio
    import contextlib
    import os

    from rich.live import Live

    from ..demo.models import ensure_demo_models
    from ..demo.server import llamacpp_server
    from ..engine.compare import compare as run_compare
    from ..types import GenParams, ModelSpec
    from .render import LiveView, make_console, print_outputs, print_results

    if path:  # e.g. TRYOUTS_DEMO=$(tryouts demo --path) tryouts run examples/offline.yaml
        print(ensure_demo_models().hf_dir.parent)
        return 0
    console = make_console()
    with console.status("Preparing the demo models…") as status:
        models = ensure_demo_models(progress=lambda msg: status.update(msg))
    console.print(f"Demo models: [bold]{models.hf_dir}[/] and [bold]{models.gguf_path.name}[/] (random weights).")
    store = open_store(db)
    with contextlib.ExitStack() as stack:
        with console.status("Starting llama.cpp's server on 127.0.0.1…"):
            base_url = stack.enter_context(llamacpp_server(models.gguf_path, alias="tiny"))
        specs = [
            ModelSpec.parse(f"hf:{models.hf_dir}"),
            ModelSpec.parse(f"llamacpp:{models.gguf_path}"),
            # the server sends no usage while streaming: count with the same model's tokenizer
            ModelSpec.parse(f"openai-compat:{base_url}#tiny", {"tokenizer": str(models.hf_dir)}),
        ]
        specs += [ModelSpec.parse(ref) for var, ref in COMMERCIAL.items() if os.environ.get(var)]
        view = LiveView([s.ref for s in specs])
        params = GenParams(max_tokens=max_tokens, temperature=0)

        async def go():
            return await run_compare(
                DEMO_PROMPT, specs, params=params, store=store, on_event=view.on_event,
                sequential=True, meta={"demo": True},
            )

        console.print(f"Prompt: [italic]{DEMO_PROMPT}[/]")
        if live and console.is_terminal:
            with Live(view, console=console, refresh_per_second=8, transient=True):
                outcome = asyncio.run(go())
        else:
            outcome = asyncio.run(go())
    run = store.get_run(outcome.run_id)
    print_outputs(console, run["results"])
    print_results(console, run["results"], title=f"Run {outcome.run_id}")
    console.print(
        f"\nStored as run [bold]{outcome.run_id}[/] in {store.url}.\n"
        "These were [bold]random-weight demo models[/]: the text is gibberish by design, but the timings, "
        "token counts and storage are real.\n"
        "Next: [bold]tryouts runs[/] lists runs; [bold]tryouts show latest[/] prints this one again; a suite "
        "on these models: TRYOUTS_DEMO=$(tryouts demo --path) tryouts run examples/offline.yaml\n"
        "Real models: tryouts compare \"your prompt\" -m hf:Qwen/Qwen2.5-0.5B-Instruct "
        "-m llamacpp:./model.gguf -m ollama:llama3.1 -m openai:gpt-4o-mini (set OPENAI_API_KEY); "
        "tryouts providers lists them all."
    )
    ui = f"tryouts ui --run {outcome.run_id}" + ("" if db is None else f" --db {db}")
    console.print(f"\nOpen the dashboard on this run: [bold]{ui}[/] (then http://127.0.0.1:8765/runs/"
                  f"{outcome.run_id} in your browser).", highlight=False)
    return 0 if outcome.all_ok else 2
