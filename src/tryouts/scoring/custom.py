"""Custom scorers: a Python function named in the suite, called on every answer.

A scorer is named ``file.py:function`` (a path relative to the suite file) or ``package.module:function``
(importable), and is called as ``function(output, context)``:

* ``output`` is the model's answer (``""`` for a failed request);
* ``context`` is a dict: ``vars``, ``expected``, ``messages`` (the request, as ``{role, content}``),
  ``model`` (the model's label), ``ok``, ``error``, ``e2e_ms``, ``ttft_ms``, ``cost_usd``, ``case_id``,
  ``prompt_id``, ``repeat_index``.

It returns a bool (passed or not; score 1 or 0), a number (the score), or a dict
``{"score": number, "passed": bool (optional), "reason": str (optional)}``. What it returns is stored in the
result's ``scores.custom[NAME]`` as ``{"score", "passed", "reason"}``, NAME being the function's name. An
exception in a scorer is recorded for that answer as ``{"error": "..."}`` and the others go on.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError


@dataclass(frozen=True)
class Scorer:
    """A loaded custom scorer: its reference, the name its scores are stored under, the function."""

    ref: str
    name: str
    fn: Callable[[str, dict[str, Any]], Any]


def load_scorer(ref: str, base_dir: Path | None = None) -> Scorer:
    """Import the function ``ref`` names (``file.py:function`` or ``package.module:function``).

    Raises UsageError when the file or module cannot be found or imported, or has no such function.
    """
    target, sep, name = ref.rpartition(":")
    if not sep or not target or not name.isidentifier():
        raise UsageError(f"Scorer {ref!r} should be 'file.py:function' or 'package.module:function'.")
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target)
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        if not path.is_file():
            where = "the suite file's folder" if base_dir is not None and base_dir != Path.cwd() else "this folder"
            raise UsageError(f"Scorer {ref!r}: no file {path} (a relative path is read from {where}).")
        module_name = f"tryouts_scorer_{abs(hash(str(path.resolve())))}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise UsageError(f"Scorer {ref!r}: {path} cannot be imported as Python.")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(module_name, None)
            raise UsageError(f"Scorer {ref!r}: importing {path} failed: {type(exc).__name__}: {exc}") from exc
    else:
        try:
            module = importlib.import_module(target)
        except Exception as exc:
            raise UsageError(
                f"Scorer {ref!r}: cannot import module {target!r} ({type(exc).__name__}: {exc}). Install it, or "
                "name a file: 'scorers.py:function'."
            ) from exc
    fn = getattr(module, name, None)
    if not callable(fn):
        raise UsageError(f"Scorer {ref!r}: {target} has no function {name!r}.")
    return Scorer(ref=ref, name=name, fn=fn)


def normalize(value: Any) -> dict[str, Any]:
    """A scorer's return value as ``{"score", "passed", "reason"}``; raises TypeError/ValueError on bad values."""
    if isinstance(value, bool):
        return {"score": 1.0 if value else 0.0, "passed": value, "reason": None}
    if isinstance(value, int | float):
        score = float(value)
        if not math.isfinite(score):
            raise ValueError(f"the score must be a finite number, not {value!r}")
        return {"score": score, "passed": None, "reason": None}
    if isinstance(value, dict) and "score" in value:
        out = normalize(value["score"])
        if "passed" in value and value["passed"] is not None:
            out["passed"] = bool(value["passed"])
        if value.get("reason") is not None:
            out["reason"] = str(value["reason"])
        return out
    raise TypeError(f"a scorer returns a bool, a number or a dict with 'score', not {type(value).__name__}")


def context_of(result: dict[str, Any], label: str) -> dict[str, Any]:
    """The ``context`` a scorer receives for a stored (flat) result."""
    case = result.get("case") or {}
    request = result.get("request") or {}
    return {
        "vars": dict(case.get("vars") or {}),
        "expected": case.get("expected"),
        "messages": list(request.get("messages") or []),
        "model": label,
        "ok": bool(result.get("ok")),
        "error": result.get("error"),
        "e2e_ms": result.get("e2e_ms"),
        "ttft_ms": result.get("ttft_ms"),
        "cost_usd": result.get("cost_usd"),
        "case_id": case.get("case_id"),
        "prompt_id": case.get("prompt_id"),
        "repeat_index": result.get("repeat_index"),
    }


def apply(scorer: Scorer, result: dict[str, Any], label: str) -> dict[str, Any]:
    """Run ``scorer`` on one stored result; an exception becomes ``{"error": ...}``."""
    try:
        output = (result.get("text") or "") if result.get("ok") else ""
        return normalize(scorer.fn(output, context_of(result, label)))
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
