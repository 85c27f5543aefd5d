"""Suites: prompts x cases x models x repeats, from a YAML file (docs/suites.md).

::

    from tryouts.suite import load_suite

    suite = load_suite("examples/support.yaml")   # SuiteError (a UsageError) names file, line and field
    for cell in suite.cells():                     # for repeat, for case item, for model
        cell.model_index, cell.case_index, cell.repeat_index, cell.spec, cell.request

The JSON Schema of the format is ``Suite.model_json_schema()``, written to docs/suite.schema.json by
docs/gen_schema.py.
"""

from __future__ import annotations

from .issues import SuiteError, SuiteIssue
from .load import load_suite, loads_suite
from .schema import (
    AssertSpec,
    CaseEntry,
    CaseItem,
    Cell,
    ChatMessage,
    DatasetSpec,
    Defaults,
    ModelEntry,
    PromptEntry,
    Retries,
    Suite,
    Timeouts,
)

__all__ = [
    "AssertSpec",
    "CaseEntry",
    "CaseItem",
    "Cell",
    "ChatMessage",
    "DatasetSpec",
    "Defaults",
    "ModelEntry",
    "PromptEntry",
    "Retries",
    "Suite",
    "SuiteError",
    "SuiteIssue",
    "Timeouts",
    "load_suite",
    "loads_suite",
]
