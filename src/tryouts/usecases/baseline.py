"""Baselines: the run a suite's later runs are compared with (``tryouts baseline set``, ``tryouts diff --baseline``).

A baseline is named by a key: ``--name`` when given, else the suite file the run came from. It is kept in that
run's ``meta.baseline``; setting another run for the same key moves it there.
"""

from __future__ import annotations

from typing import Any

from ..errors import UsageError


def baseline_key(meta: dict[str, Any], name: str | None = None) -> str:
    """The key a run's baseline is filed under: ``name``, else its suite file."""
    if name:
        return name
    if meta.get("suite_path"):
        return str(meta["suite_path"])
    raise UsageError("This run has no suite file to file a baseline under: give --name NAME.")


def set_baseline(store: Any, run_ref: str, name: str | None = None) -> tuple[str, str]:
    """Make run ``run_ref`` the baseline of its key; returns (run id, key)."""
    row = store.get_run_row(run_ref)
    key = baseline_key(row["meta"] or {}, name)
    for run in store.list_runs(None):
        if (run.get("meta") or {}).get("baseline") == key and run["id"] != row["id"]:
            store.update_run_meta(run["id"], {"baseline": None})
    store.update_run_meta(row["id"], {"baseline": key})
    return row["id"], key


def find_baseline(store: Any, run_ref: str, name: str | None = None) -> str:
    """The baseline run for run ``run_ref`` (of its key); UsageError says how to set one."""
    row = store.get_run_row(run_ref)
    key = baseline_key(row["meta"] or {}, name)
    for run in store.list_runs(None):
        if (run.get("meta") or {}).get("baseline") == key and run["id"] != row["id"]:
            return run["id"]
    raise UsageError(f"No baseline for {key}: set one with 'tryouts baseline set RUN'"
                     + (f" --name {name}" if name else "") + ".")
