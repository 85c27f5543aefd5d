"""What the docs generators share: replace a generated block, and write the file or check it is current."""

from __future__ import annotations

import re
import sys
from pathlib import Path

END = "<!-- end generated -->"


def replace_block(text: str, name: str, body: str) -> str:
    """``text`` with the lines between ``<!-- generated: NAME -->`` and the end marker replaced by ``body``."""
    out, n = [], 0
    lines = iter(text.split("\n"))
    for line in lines:
        out.append(line)
        if re.fullmatch(rf"<!-- generated: {re.escape(name)} -->", line):
            for skipped in lines:  # drop the old block, up to the end marker
                if skipped == END:
                    break
            out += [body, END]
            n += 1
    if n != 1:
        raise SystemExit(f"expected one '<!-- generated: {name} -->' block, found {n}")
    return "\n".join(out)


def write_or_check(outputs: dict[Path, str], source: str, command: str) -> int:
    """Write each path's new text, or with ``--check`` in argv, say which are stale (exit status 1)."""
    stale = [path for path, text in outputs.items()
             if not path.exists() or path.read_text(encoding="utf-8") != text]
    if "--check" in sys.argv:
        if stale:
            print(f"{', '.join(str(p) for p in stale)}: out of date with {source}: run `{command}` and commit.",
                  file=sys.stderr)
            return 1
        return 0
    for path in stale:
        path.write_text(outputs[path], encoding="utf-8")
        print(f"wrote {path}")
    return 0
