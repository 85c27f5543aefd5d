"""``tryouts init``: write a starter suite and scorers for the models ready on this machine."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app


@app.command(rich_help_panel="Run")
def init(
    path: Path | None = typer.Argument(None, help="The suite file to write (default: tryouts.yaml here)."),
    output: Path | None = typer.Option(None, "--output", "-O", help="The suite file to write (same as PATH)."),
    models: list[str] | None = typer.Option(None, "--model", "--models", "-m", help="A model to put in the suite, "
                                            "PROVIDER:MODEL (repeatable): no looking for models."),
    detect: bool = typer.Option(True, "--detect/--no-detect", help="Look for models ready here: API keys, servers "
                                "on 127.0.0.1, GGUF files and model folders (--no-detect: the offline demo models)."),
    scorers: bool = typer.Option(True, "--scorers/--no-scorers", help="Also write scorers.py, a custom scorer the "
                                 "suite uses, next to the suite file."),
    force: bool = typer.Option(False, "--force", help="Replace the files when they exist."),
) -> int:
    """Write a starter suite, every section commented, for the models ready here.

    Looks (in about a second, sending no prompt) for API keys that are set (only the names of
    their variables are shown), Ollama, llama.cpp's server, vLLM and LM Studio on 127.0.0.1,
    and GGUF files and Hugging Face model folders here and in ./models. With none, the suite
    uses the offline demo models, so it runs at once. Never replaces a file without --force.

    Example: tryouts init, then tryouts run tryouts.yaml
    """
    import shlex

    from rich.text import Text

    from ..errors import UsageError
    from ..usecases.init import detect as find_models
    from ..usecases.init import given_models
    from ..usecases.init_text import refuse_overwrite, write_starter
    from .render import make_console, styled

    if path is not None and output is not None and path != output:
        raise UsageError(f"Give the suite file once: PATH ({path}) or --output ({output}), not both.")
    target = output or path or Path("tryouts.yaml")
    given = given_models(models) if models else None  # a bad reference is said first
    refuse_overwrite(target, scorers=scorers, force=force)  # before looking for anything
    console = make_console()
    if given is not None:
        detection = given
    else:
        with console.status("Looking for models ready here…") as status:
            detection = find_models(look=detect, progress=lambda msg: status.update(Text(msg)))
    console.print(styled("[bold]Models ready here[/]" if not models else "[bold]Models[/]"))
    for ok, line in detection.report:
        console.print(styled("  [green]✓[/] {}" if ok else "  [dim]-[/] {}", line))
    written = write_starter(target, detection, force=force, scorers=scorers)
    n = len(detection.models)
    console.print(styled("\nWrote [bold]{}[/] ({} model{} x 3 cases)", written[0], n, "s" * (n != 1))
                  + (styled(" and [bold]{}[/]", written[1]) if len(written) > 1 else "") + ".")
    shown = shlex.quote(str(target))
    console.print(styled("Next: [bold]tryouts run {} --dry-run[/] (the plan and its cost; sends nothing), then "
                         "[bold]tryouts run {}[/]. Edit the file to add your own prompts and cases.", shown, shown))
    return 0
