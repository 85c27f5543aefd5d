"""Export a stored run as csv, json, jsonl or a self-contained html page."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from ..errors import UsageError
from .safe_text import csv_safe

#: the formats :func:`export_run` writes
FORMATS = ("csv", "json", "jsonl", "html")

#: leading csv columns, in this order; every other flat field follows in order of first appearance
_LEAD = ("run_id", "id", "model_index", "case_index", "repeat_index", "model", "provider", "model_name", "ok")


def export_run(data: dict[str, Any], fmt: str, *, full_paths: bool = False) -> str:
    """A run (as :meth:`Store.get_run` returns it) in ``fmt``: csv, json, jsonl or html.

    * ``csv``: a header row, then one row per result with every flat field; lists and objects
      (``itl_ms``, ``request``, ``case``...) as JSON, booleans as ``true``/``false``, null as empty; a text
      cell a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
      return) starts with ``'`` (:func:`~tryouts.report.safe_text.csv_safe`), numbers are written as they are;
    * ``json``: exactly what ``tryouts show RUN --format json`` prints;
    * ``jsonl``: one result per line, each with its ``run_id``;
    * ``html``: one self-contained page to share (inline CSS and SVG charts, no script, no external resource):
      the summary, the quality figures with intervals, paired comparisons and pass@k, the per-case pass/fail
      grid with each first failing check, an eval-task's report and the outputs side by side; every prompt,
      output and label is escaped, and local paths are cut to their last part unless ``full_paths``.

    The data formats are the stored values, whole (csv but for that ``'``; json and jsonl exactly):
    ``full_paths`` changes only the page.
    """
    fmt = (fmt or "").lower()
    if fmt == "json":
        return json.dumps(data, indent=2, default=str) + "\n"
    if fmt == "jsonl":
        run_id = data["run"]["id"]
        return "".join(json.dumps({"run_id": run_id, **r}, default=str) + "\n" for r in data["results"])
    if fmt == "csv":
        return to_csv(data)
    if fmt == "html":
        from .html import render_html

        return render_html(data, full_paths=full_paths)
    raise UsageError(f"Unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}.")


def with_reviews(data: dict[str, Any], reviews: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """``data`` (a run and its results) with each result's ``review`` from the dashboard: ``{rating, comment,
    created_at, updated_at}`` by result id (:meth:`Store.reviews`), or null when it has none."""
    results = [{**r, "review": _review_of(reviews.get(r["id"]))} for r in data["results"]]
    return {**data, "results": results}


def _review_of(review: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if review is None else {k: v for k, v in review.items() if k != "result_id"}


def _cell(value: Any) -> Any:
    """A field as a csv cell: text a spreadsheet would run as a formula gets a leading ``'``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        return csv_safe(json.dumps(value, default=str, ensure_ascii=False))
    return csv_safe(value)


def columns(results: list[dict[str, Any]]) -> list[str]:
    """The csv header: the lead columns, then every other field in order of first appearance."""
    seen = dict.fromkeys(_LEAD)
    for r in results:
        for key in r:
            seen.setdefault(key)
    return list(seen)


def to_csv(data: dict[str, Any]) -> str:
    """One row per result, every flat field a column (see :func:`export_run`)."""
    run_id = data["run"]["id"]
    results = data["results"]
    cols = columns(results)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    # csv quotes a cell with a line feed but not one with a lone carriage return (not in the line terminator),
    # which readers take as a line end: such a row is written with every cell quoted
    quoted = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(cols)
    for r in results:
        row = {"run_id": run_id, **r}
        cells = [_cell(row.get(c)) for c in cols]
        cr = any(isinstance(c, str) and "\r" in c for c in cells)
        (quoted if cr else writer).writerow(cells)
    return buf.getvalue()
