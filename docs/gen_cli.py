"""Generate docs/cli.md from the commands' own --help (run by `make docs`; checked by `make test`).

Usage: python docs/gen_cli.py [--check]
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).with_name("cli.md")
COMMANDS = ["", "compare", "run", "init", "demo", "runs", "show", "export", "delete", "diff", "providers", "keys", "keys set",
            "models", "memory", "recommend"]

HEADER = """# CLI reference

Generated from `tryouts --help` by `docs/gen_cli.py`; do not edit by hand (`make docs` rewrites it,
and `make test` fails when it is stale).

Exit codes, for every command: **0** success; **1** bad usage or an error whose message says what to
do; **2** some models failed (`compare`, `demo`: the other models' results are stored); **130** interrupted.
"""


def help_text(command: str) -> str:
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb", "_TYPER_FORCE_DISABLE_TERMINAL": "1"}
    args = [sys.executable, "-m", "tryouts", *command.split(), "--help"]
    out = subprocess.run(args, capture_output=True, text=True, env=env, check=True).stdout
    return "\n".join(line.rstrip() for line in out.strip().splitlines())


def render() -> str:
    parts = [HEADER]
    for command in COMMANDS:
        title = f"tryouts {command}".strip()
        parts.append(f"## `{title}`\n\n```text\n{help_text(command)}\n```\n")
    return "\n".join(parts)


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is out of date with --help: run `make docs` and commit it.", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
