"""Compare two stored runs result by result: what changed in the outputs, timing and cost.

Results are matched on (model reference, case key, repeat_index). The case key is the suite case
(``case.prompt_id`` + ``case.case_id``) when a result carries one, else its ``case_index``. Deltas are
B − A. A cached result has no timings, so its timing deltas are None (never a timing sample).
"""

from __future__ import annotations

import difflib
import re
from decimal import Decimal
from typing import Any

from ..stats import decimal_str, describe, result_cost

#: lines of unified diff kept per pair; longer diffs end with a "... N more lines" marker
DIFF_LINES = 20
#: characters kept per diff line
DIFF_WIDTH = 200

#: word-level diffs (``diff_runs(..., words=True)``, the dashboard's diff page): two outputs longer than this in
#: all (characters) are shown side by side instead, each clipped to SIDE_CHARS
WORD_DIFF_CHARS = 60_000
#: tokens (words, spaces, punctuation) of one changed block of lines beyond which the block is shown as removed
#: and added whole rather than diffed word by word (difflib's cost grows with the product of the lengths)
WORD_DIFF_TOKENS = 1200
#: changed pairs of one diff that get a word diff, and the seconds spent on them at most; later pairs keep the
#: line diff (``diff``)
WORD_DIFF_PAIRS = 300
WORD_DIFF_SECONDS = 2.0
SIDE_CHARS = 20_000

_TOKEN = re.compile(r"\w+|\s+|[^\w\s]")

CaseKey = tuple[str, ...]


def case_key(r: dict[str, Any]) -> CaseKey:
    """The case a result answers: ``("case", prompt_id, case_id)`` for suites, else ``("index", N)``."""
    case = r.get("case")
    if case and (case.get("case_id") is not None or case.get("prompt_id") is not None):
        return ("case", str(case.get("prompt_id") or ""), str(case.get("case_id") or ""))
    return ("index", str(int(r.get("case_index") or 0)))


def case_label(key: CaseKey) -> str:
    """A readable name for a case key: ``prompt/case`` or ``#N``."""
    if key[0] == "case":
        return "/".join(part for part in key[1:] if part) or "?"
    return f"#{key[1]}"


def short_diff(a: str, b: str, limit: int = DIFF_LINES) -> str:
    """A unified diff of two texts (by line), at most ``limit`` lines; empty when they are equal."""
    if a == b:
        return ""
    lines = list(difflib.unified_diff(a.splitlines(), b.splitlines(), fromfile="A", tofile="B", lineterm="", n=1))
    if not lines:  # they differ only in line endings or a trailing newline
        lines = ["--- A", "+++ B", "@@ whitespace @@", f"-{a!r}"[:DIFF_WIDTH], f"+{b!r}"[:DIFF_WIDTH]]
    clipped = [ln if len(ln) <= DIFF_WIDTH else ln[: DIFF_WIDTH - 1] + "…" for ln in lines[:limit]]
    if len(lines) > limit:
        clipped.append(f"... {len(lines) - limit} more lines")
    return "\n".join(clipped)


def word_diff(a: str, b: str, *, max_chars: int = WORD_DIFF_CHARS,
              max_tokens: int = WORD_DIFF_TOKENS) -> list[list[str]] | None:
    """The word-level diff of two texts: ``[[op, text], ...]``, ``op`` one of ``=`` (in both), ``-`` (only in A),
    ``+`` (only in B); the ``=`` and ``-`` parts make up A, the ``=`` and ``+`` parts B. Lines are matched
    first; each changed block of lines is then diffed by words (runs of letters and digits, of whitespace, and
    single other characters), or, beyond ``max_tokens``, removed and added whole. None when the two texts
    together are longer than ``max_chars`` (bounded work: show them side by side)."""
    if len(a) + len(b) > max_chars:
        return None
    out: list[list[str]] = []

    def add(op: str, text: str) -> None:
        if not text:
            return
        if out and out[-1][0] == op:
            out[-1][1] += text
        else:
            out.append([op, text])

    la, lb = a.splitlines(keepends=True), b.splitlines(keepends=True)
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, la, lb, autojunk=False).get_opcodes():
        old, new = "".join(la[i1:i2]), "".join(lb[j1:j2])
        if tag == "equal":
            add("=", old)
            continue
        ta, tb = _TOKEN.findall(old), _TOKEN.findall(new)
        if tag != "replace" or len(ta) + len(tb) > max_tokens:
            add("-", old)
            add("+", new)
            continue
        for op, k1, k2, m1, m2 in difflib.SequenceMatcher(None, ta, tb, autojunk=False).get_opcodes():
            if op == "equal":
                add("=", "".join(ta[k1:k2]))
            else:
                add("-", "".join(ta[k1:k2]))
                add("+", "".join(tb[m1:m2]))
    return out


def _words(pair: dict[str, Any], text_a: str, text_b: str, budget: list[float]) -> None:
    """Add a changed pair's ``words`` (its word diff, or None), and ``side`` (both texts, clipped to
    SIDE_CHARS, with ``clipped``) when they are too long for one. ``budget``: [pairs left, deadline]."""
    import time

    pair["words"], pair["side"] = None, None
    if not pair["output_changed"] or budget[0] <= 0 or time.monotonic() > budget[1]:
        return
    budget[0] -= 1
    pair["words"] = word_diff(text_a, text_b)
    if pair["words"] is None:
        pair["side"] = {"a": text_a[:SIDE_CHARS], "b": text_b[:SIDE_CHARS],
                        "clipped": len(text_a) > SIDE_CHARS or len(text_b) > SIDE_CHARS}


def _delta(a: Any, b: Any) -> float | None:
    return None if a is None or b is None else float(b) - float(a)


def _index(results: list[dict[str, Any]]) -> dict[tuple[str, CaseKey, int], dict[str, Any]]:
    out: dict[tuple[str, CaseKey, int], dict[str, Any]] = {}
    for r in results:  # a later row for the same cell (a resumed run) replaces an earlier one
        out[(r["model"], case_key(r), int(r.get("repeat_index") or 0))] = r
    return out


def _timing(r: dict[str, Any], name: str) -> Any:
    return None if r.get("cached") else r.get(name)


def diff_runs(a: dict[str, Any], b: dict[str, Any], *, words: bool = False) -> dict[str, Any]:
    """Compare run ``a`` with run ``b`` (each as :meth:`Store.get_run` returns it).

    Returns ``{"run_a", "run_b", "pairs", "models", "only_in_a", "only_in_b"}``:

    * ``pairs``: one per matched result: ``model``, ``case`` (label), ``case_index_a/b``,
      ``repeat_index``, ``ok_a``, ``ok_b``, ``output_changed``, ``diff`` (short unified diff, "" when
      unchanged), ``ttft_ms_delta``, ``e2e_ms_delta`` (B − A, None when either is missing or cached),
      ``cost_usd_delta`` (decimal string, None when either cost is unknown);
    * ``models``: per model matched in both: ``n_matched``, ``n_changed``, mean and p50 of the TTFT and
      E2E deltas, ``cost_usd_delta_total`` (decimal string over the pairs with both costs known, None
      when none) and ``cost_unknown_pairs``;
    * ``only_in_a`` / ``only_in_b``: ``models`` and ``cases`` (labels) present on one side only, and
      ``results``: how many results of that side found no partner.

    ``words``: each pair also gets ``words`` (:func:`word_diff` of its outputs when they changed, for the first
    WORD_DIFF_PAIRS changed pairs made within WORD_DIFF_SECONDS; else None) and ``side`` (``{"a", "b", "clipped"}``: the two outputs, clipped,
    when they are too long for a word diff; else None).
    """
    ia, ib = _index(a["results"]), _index(b["results"])
    pairs = []
    if words:
        import time

        budget = [WORD_DIFF_PAIRS, time.monotonic() + WORD_DIFF_SECONDS]
    for key in [k for k in ia if k in ib]:
        ra, rb = ia[key], ib[key]
        text_a, text_b = ra.get("text") or "", rb.get("text") or ""
        ca, cb = result_cost(ra), result_cost(rb)
        pairs.append({
            "model": key[0],
            "case": case_label(key[1]),
            "case_index_a": ra.get("case_index"),
            "case_index_b": rb.get("case_index"),
            "repeat_index": key[2],
            "ok_a": bool(ra.get("ok")),
            "ok_b": bool(rb.get("ok")),
            "output_changed": text_a != text_b,
            "diff": short_diff(text_a, text_b),
            "ttft_ms_delta": _delta(_timing(ra, "ttft_ms"), _timing(rb, "ttft_ms")),
            "e2e_ms_delta": _delta(_timing(ra, "e2e_ms"), _timing(rb, "e2e_ms")),
            "cost_usd_delta": None if ca is None or cb is None else decimal_str(cb - ca),
        })
        if words:
            _words(pairs[-1], text_a, text_b, budget)

    models = []
    order = _model_order(a, b)
    for ref in order:
        ps = [p for p in pairs if p["model"] == ref]
        if not ps:
            continue
        ttft = describe(p["ttft_ms_delta"] for p in ps)
        e2e = describe(p["e2e_ms_delta"] for p in ps)
        known = [Decimal(p["cost_usd_delta"]) for p in ps if p["cost_usd_delta"] is not None]
        models.append({
            "model": ref,
            "n_matched": len(ps),
            "n_changed": sum(p["output_changed"] for p in ps),
            "n_status_changed": sum(p["ok_a"] != p["ok_b"] for p in ps),
            "ttft_ms_delta_mean": ttft["mean"],
            "ttft_ms_delta_p50": ttft["p50"],
            "e2e_ms_delta_mean": e2e["mean"],
            "e2e_ms_delta_p50": e2e["p50"],
            "cost_usd_delta_total": decimal_str(sum(known, Decimal(0))) if known else None,
            "cost_unknown_pairs": len(ps) - len(known),
        })

    return {
        "run_a": a["run"]["id"],
        "run_b": b["run"]["id"],
        "pairs": pairs,
        "models": models,
        "only_in_a": _only(ia, ib),
        "only_in_b": _only(ib, ia),
    }


def _model_order(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    seen: dict[str, None] = {}
    for data in (a, b):
        for ref in data["run"].get("models") or []:
            seen.setdefault(ref)
        for r in data["results"]:
            seen.setdefault(r["model"])
    return list(seen)


def _only(mine: dict, theirs: dict) -> dict[str, Any]:
    models_theirs = {k[0] for k in theirs}
    cases_theirs = {k[1] for k in theirs}
    models = list(dict.fromkeys(k[0] for k in mine if k[0] not in models_theirs))
    cases = list(dict.fromkeys(case_label(k[1]) for k in mine if k[1] not in cases_theirs))
    return {"models": models, "cases": cases, "results": sum(1 for k in mine if k not in theirs)}
