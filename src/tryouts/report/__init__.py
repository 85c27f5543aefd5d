"""Reports over stored runs: exports (csv, json, jsonl, one self-contained html file) and run diffs.

Everything here takes the dict :meth:`tryouts.store.Store.get_run` returns
(``{"run": {...}, "results": [flat dicts]}``, docs/json.md) and imports no face.
"""

from __future__ import annotations

from .diff import diff_runs
from .export import FORMATS, export_run, with_reviews

__all__ = ["FORMATS", "diff_runs", "export_run", "with_reviews"]
