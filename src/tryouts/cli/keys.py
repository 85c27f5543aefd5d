"""``tryouts keys``: store API keys in a file only you can read (the environment still wins)."""

from __future__ import annotations

import typer

from . import app

keys_app = typer.Typer(help="Store API keys in a file only you can read (mode 600); environment variables win.",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys", rich_help_panel="Setup")


def _key_var(provider: str) -> str:
    from ..errors import UsageError
    from ..providers import get_info

    info = get_info(provider)
    names = [v for v in info.env if v.endswith("_API_KEY")]
    if not names:
        raise UsageError(f"The {provider} provider uses no API key.")
    return names[0]


@keys_app.command("set")
def set_(provider: str = typer.Argument(..., help="A provider name, e.g. openai, anthropic, groq.")) -> int:
    """Store a key for PROVIDER: typed at a hidden prompt, or read from standard input."""
    import sys

    from ..errors import UsageError
    from ..keys import set_key

    var = _key_var(provider)
    if sys.stdin.isatty():
        key = typer.prompt(f"{var}", hide_input=True)
    else:
        key = sys.stdin.readline()
    key = key.strip()
    if not key:
        raise UsageError("No key given; nothing stored.")
    path = set_key(var, key)
    print(f"Stored {var} in {path} (mode 600). An exported {var} still takes precedence.")
    return 0


@keys_app.command("list")
def list_() -> int:
    """Show which keys are stored or exported (never the keys themselves)."""
    import os

    from ..keys import keys_path, stored
    from ..providers import all_providers

    saved = set(stored())
    for var in sorted({v for info in all_providers() for v in info.env if v.endswith("_API_KEY")}):
        where = "environment" if os.environ.get(var) else ("keys file" if var in saved else "-")
        print(f"{var:28} {where}")
    print(f"(keys file: {keys_path()})")
    return 0


@keys_app.command("remove")
def remove(provider: str = typer.Argument(..., help="A provider name.")) -> int:
    """Forget the stored key for PROVIDER."""
    from ..keys import remove_key

    var = _key_var(provider)
    print(f"Removed {var}." if remove_key(var) else f"No stored {var}.")
    return 0
