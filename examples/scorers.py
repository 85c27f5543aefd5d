"""A custom scorer for examples/scoring.yaml: named in the suite as ``scorers.py:names_a_capital``.

A scorer is called as ``function(output, context)`` and returns a bool, a number, or
``{"score": ..., "passed": ..., "reason": ...}`` (docs/scoring.md lists what ``context`` holds).
"""

CAPITALS = {"paris", "tokyo", "berlin", "rome", "madrid", "ottawa"}


def names_a_capital(output: str, context: dict) -> dict:
    """Passes when the answer names a capital city; the score is 1 when it is the expected one."""
    words = {w.strip(".,!?").lower() for w in output.split()}
    named = words & CAPITALS
    expected = {w.strip(".,!?").lower() for w in (context.get("expected") or "").split()} & CAPITALS
    return {"score": 1.0 if named and named <= expected else 0.0, "passed": bool(named),
            "reason": f"names {', '.join(sorted(named))}" if named else "names no capital"}
