"""The one template rule of a suite: ``{{ name }}`` is replaced by the case's ``name`` var, with ``str()``.

There is no other syntax and no escape: anything in braces that is not ``{{ NAME }}`` (a name made of
letters, digits, ``_``, ``-`` and ``.``, starting with a letter or ``_``) is left exactly as written, so
prompts may contain JSON, ``{x}`` or Jinja-looking text. Rendering is one pass: a var's value is never
rendered again, so a literal ``{{name}}`` can be produced by a var whose value is ``{{name}}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: ``{{ name }}`` with optional spaces inside the braces
VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*\}\}")


def variables(text: str) -> list[str]:
    """The var names ``text`` uses, in order of first use, each once."""
    return list(dict.fromkeys(m.group(1) for m in VAR.finditer(text)))


def render(text: str, values: Mapping[str, Any]) -> str:
    """Replace every ``{{ name }}`` with ``str(values[name])``; a missing name raises ``KeyError``."""
    return VAR.sub(lambda m: str(values[m.group(1)]), text)
