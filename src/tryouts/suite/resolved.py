"""A suite as it ran: its ``${...}`` variables replaced and its dataset rows inlined as cases, stored with the run
(``runs.meta.suite``) so that ``tryouts run --resume``, ``score`` and ``export`` need neither the file, nor its
dataset, nor its variables again.

Nothing secret is stored: a suite whose resolved form holds anything the redaction would mask (a key in a
header option, credentials in a URL) is not stored at all, and those commands read the file as before. A key from a
``${...}`` variable can only be in a model's options (elsewhere the suite does not load, suite/envvars.py), so
the prompts, cases and description stored with each result never hold one from a variable. Nor is a
suite whose resolved form is over :data:`MAX_STORED_BYTES` (a big dataset stays in its file).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .cases import collect_cases
from .load import loads_suite
from .schema import Suite

__all__ = ["MAX_STORED_BYTES", "load_resolved", "resolved"]

#: a resolved suite larger than this (as JSON) is not stored with its run
MAX_STORED_BYTES = 4 * 1024 * 1024


def resolved(suite: Suite) -> tuple[dict[str, Any] | None, str | None]:
    """(the suite as data, None), or (None, why it cannot be stored)."""
    from ..redact import redact

    data = suite.model_dump(mode="json", by_alias=True, exclude={"dataset"}, exclude_unset=True)
    cases, problems, _ = collect_cases(suite)
    if problems:
        return None, "its cases do not load"
    data["cases"] = [{"id": c.id, "vars": c.vars, **({"expected": c.expected} if c.expected is not None else {}),
                      "assert": c.asserts} for c in cases]
    text = json.dumps(data, ensure_ascii=False)
    if len(text) > MAX_STORED_BYTES:
        return None, f"its cases take over {MAX_STORED_BYTES // (1024 * 1024)} MB"
    if redact(text) != text:
        return None, "it holds a value that looks like a credential (a key in an option or a URL)"
    return data, None


def load_resolved(data: dict[str, Any], source: str | Path | None) -> Suite:
    """The :class:`Suite` of a stored resolved suite; ``source``: the file it came from (relative paths in it, such
    as a custom scorer's or a local model's, are taken from that file's folder, as when it ran)."""
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False).replace("${", "$${")  # already replaced
    return loads_suite(text, source=source)
