"""CI gates: the exit code a run or a comparison ends with, from its failed cells and its assertions.

One table for every command (docs/json.md, "Exit codes"): 0 passed; 2 a cell failed (``--fail-on-error``), or
every cell failed; 4 an assertion failed (``--fail-on-assert``) or a model's pass rate is under
``--min-pass-rate``. Each reason comes back as a sentence, so a CI log says why it failed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..scoring.summary import first_failing  # the first failing check: shared with every report

#: exit codes (docs/json.md)
EXIT_FAILED_CELLS = 2
EXIT_ASSERTIONS = 4


@dataclass
class ModelFailures:
    """One model's failed cells and failed assertions, with the first reason of each."""

    label: str
    cells: int = 0
    failed: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    first_error: str | None = None
    checked: int = 0  # cells with assertions
    passed: int = 0
    first_check: str | None = None  # the first failing check: its type and reason, and the case

    @property
    def pass_rate(self) -> float | None:
        """The share of checked cells whose assertions all passed (None: nothing checked)."""
        return self.passed / self.checked if self.checked else None


class FailureTally:
    """:func:`failures` one row at a time (``add``), keeping counts and first reasons, not rows."""

    def __init__(self, labels: dict[int, str] | None = None) -> None:
        self.labels = labels or {}
        self._models: dict[int, ModelFailures] = {}

    def add(self, r: dict[str, Any]) -> None:
        m = int(r.get("model_index") or 0)
        f = self._models.get(m)
        if f is None:
            f = self._models[m] = ModelFailures(label=self.labels.get(m) or str(r.get("model")))
        f.cells += 1
        if not r.get("ok"):
            f.failed += 1
            kind = str(r.get("error_kind") or "error")
            f.kinds[kind] = f.kinds.get(kind, 0) + 1
            if f.first_error is None:
                f.first_error = _case(r) + str(r.get("error") or "no message")
        check = (r.get("scores") or {}).get("assert") if isinstance(r.get("scores"), dict) else None
        if check:
            f.checked += 1
            if check.get("passed"):
                f.passed += 1
            elif f.first_check is None:
                f.first_check = _case(r) + first_failing(check)

    def models(self) -> list[ModelFailures]:
        """Per model, in model order."""
        return [self._models[m] for m in sorted(self._models)]


def failures(results: Iterable[dict[str, Any]], labels: dict[int, str] | None = None) -> list[ModelFailures]:
    """Per model (in model order): its failed cells by kind with the first error message, and its assertion
    results with the first failing check. ``results``: the store's flat rows (read once)."""
    tally = FailureTally(labels)
    for r in results:
        tally.add(r)
    return tally.models()


def _case(r: dict[str, Any]) -> str:
    case = r.get("case") or {}
    cid = case.get("case_id") or case.get("prompt_id")
    where = f"case {cid}" if cid not in (None, "") else f"case {r.get('case_index', 0)}"
    if (r.get("repeat_index") or 0) > 0:
        where += f", repeat {r['repeat_index']}"
    return where + ": "


def gate(per_model: list[ModelFailures], *, fail_on_error: bool = False, fail_on_assert: bool = False,
         min_pass_rate: float | None = None) -> tuple[int, list[str]]:
    """The exit code and the reasons for it (empty when the gates pass). Every cell failing is always a failure
    (exit 2): there is nothing to compare."""
    reasons: list[str] = []
    code = 0
    cells = sum(f.cells for f in per_model)
    if cells and all(f.failed == f.cells for f in per_model):
        reasons.append(f"every cell failed ({cells}); the first reason: {per_model[0].first_error}")
        code = EXIT_FAILED_CELLS
    elif fail_on_error:
        for f in per_model:
            if f.failed:
                reasons.append(f"{f.label}: {f.failed} of {f.cells} cells failed (--fail-on-error)")
                code = code or EXIT_FAILED_CELLS
    if fail_on_assert or min_pass_rate is not None:
        for f in per_model:
            rate = f.pass_rate
            if rate is None:
                continue
            if fail_on_assert and f.passed < f.checked:
                reasons.append(f"{f.label}: {f.checked - f.passed} of {f.checked} cells failed their assertions "
                               f"(--fail-on-assert); first: {f.first_check}")
                code = code or EXIT_ASSERTIONS
            elif min_pass_rate is not None and rate < min_pass_rate:
                reasons.append(f"{f.label}: pass rate {rate:.1%} is under --min-pass-rate {min_pass_rate:.1%}")
                code = code or EXIT_ASSERTIONS
        if not any(f.checked for f in per_model):
            reasons.append("no cell has assertions: --fail-on-assert/--min-pass-rate have nothing to check")
            code = code or EXIT_ASSERTIONS
    return code, reasons


def parse_rate(value: str | None) -> float | None:
    """``--min-pass-rate``: a share (0.9) or a percentage (90%); ValueError says what is wrong."""
    if value is None:
        return None
    text = value.strip()
    try:
        rate = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise ValueError(f"--min-pass-rate {value!r}: give a share such as 0.9 or a percentage such as 90%") from None
    if not 0 <= rate <= 1:
        raise ValueError(f"--min-pass-rate {value!r} must be between 0 and 1 (or 0% and 100%)")
    return rate


def kinds_text(kinds: dict[str, int]) -> str:
    """``timeout ×2, rate_limit ×1``."""
    grouped: dict[str, int] = defaultdict(int, kinds)
    return ", ".join(f"{k} ×{n}" for k, n in sorted(grouped.items(), key=lambda kv: -kv[1]))
