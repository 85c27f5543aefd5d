"""Generate the options tables of docs/providers.md and README.md from the providers' options models
(src/tryouts/providers/options.py, named by each registry entry).

Each table sits between ``<!-- generated: options -->`` (or ``options-summary`` in the README) and
``<!-- end generated -->``. ``make test`` and the tests fail when a table is stale.

Usage: python docs/gen_options.py [--check]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _gen import replace_block, write_or_check

ROOT = Path(__file__).resolve().parents[1]
FILES = {ROOT / "docs" / "providers.md": "options", ROOT / "README.md": "options-summary"}


def groups() -> list[tuple[list[str], type]]:
    """(provider names, options model) for each built-in options model, in registry order."""
    from tryouts.providers import _BUILTIN

    out: dict[type, list[str]] = {}
    for info in _BUILTIN:
        if info.options is not None:
            out.setdefault(info.options, []).append(info.name)
    return [(names, model) for model, names in out.items()]


def _names(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def detailed() -> str:
    from tryouts.providers.options import EngineOptions, describe_expectation

    parts = []
    for names, model in [*groups(), (["every provider (the engine's own)"], EngineOptions)]:
        title = names[0] if len(names) == 1 and " " in names[0] else _names(names)
        rows = [f"**{title}**", "", "| option | value | meaning |", "|---|---|---|"]
        for name, field in model.model_fields.items():
            meaning = (field.description or "").replace("|", "\\|")
            rows.append(f"| `{name}` | {describe_expectation(field)} | {meaning} |")
        parts.append("\n".join(rows))
    return "\n\n".join(parts)


def summary() -> str:
    from tryouts.providers.options import EngineOptions

    rows = ["| provider | options |", "|---|---|"]
    for names, model in groups():
        rows.append(f"| {_names(names)} | {', '.join(f'`{n}`' for n in model.model_fields)} |")
    rows.append(f"| every provider | {', '.join(f'`{n}`' for n in EngineOptions.model_fields)} (the engine's own) |")
    return "\n".join(rows)


def main() -> int:
    outputs = {path: replace_block(path.read_text(encoding="utf-8"), marker, detailed() if marker == "options"
                                   else summary()) for path, marker in FILES.items()}
    return write_or_check(outputs, "tryouts.providers.options", "python docs/gen_options.py")


if __name__ == "__main__":
    sys.exit(main())
