"""Assertions: checks on one model output (docs/scoring.md).

A suite stores each assertion as a mapping with a string ``type`` and its arguments::

    {type: icontains, value: [pretrained, transformer], mode: any}
    {type: not-regex, value: "(?i)as an ai"}
    {type: json-schema, value: {type: object, required: [answer]}, weight: 2}
    {type: length, max: 400}
    {type: latency-ms, max: 2000}

:func:`from_cli` turns the command line's short form (``contains:Paris``, ``length:10-400``) into such a mapping.
:func:`parse_assertion` validates a mapping up front (an unknown type, a missing value, a bad regex or JSON
Schema, bad bounds all raise :class:`~tryouts.errors.UsageError` naming where and which field) and returns a
:class:`Check`; :func:`evaluate` runs one check on one output and :func:`score_case` runs them all.

Types
    ``equals``        the output, stripped, equals ``value`` (stripped)
    ``contains``      the output contains ``value`` (a string, or a list with ``mode: all`` (default) or ``any``)
    ``icontains``     the same, ignoring case
    ``regex``         ``re.search(value, output)`` finds a match within :data:`REGEX_TIMEOUT_S` seconds (past
                      it the check fails, negated or not: a pattern such as ``(a+)+`` can backtrack for hours)
    ``starts-with``   the output, with leading whitespace removed, starts with ``value``
    ``is-json``       the output parses as JSON (one surrounding Markdown code fence is allowed)
    ``json-schema``   the output parses as JSON and is valid against the JSON Schema ``value`` (draft 2020-12)
    ``length``        ``min`` <= number of characters <= ``max`` (either may be left out, not both)
    ``latency-ms``    the result's end-to-end time is at most ``max`` ms (fails when it was not measured)
    ``cost-usd``      the result's cost is at most ``max`` USD (fails when the cost is unknown)

A ``not-`` prefix (``not-contains``) or ``negate: true`` inverts a check; a check whose measurement is missing
(latency, cost) fails either way. ``weight`` (default 1, >= 0) weighs the check in the case's score.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError

TYPES: tuple[str, ...] = (
    "equals", "contains", "icontains", "regex", "starts-with", "is-json", "json-schema", "length",
    "latency-ms", "cost-usd",
)
_NEEDS_VALUE = {"equals", "contains", "icontains", "regex", "starts-with", "json-schema"}
_BOUNDED = {"length", "latency-ms", "cost-usd"}
_COMMON_FIELDS = {"type", "negate", "weight", "description"}
_FIELDS: dict[str, set[str]] = {
    "equals": {"value"}, "contains": {"value", "mode"}, "icontains": {"value", "mode"}, "regex": {"value"},
    "starts-with": {"value"}, "is-json": set(), "json-schema": {"value"}, "length": {"min", "max"},
    "latency-ms": {"max", "value"}, "cost-usd": {"max", "value"},
}


@dataclass
class Check:
    """One validated assertion. ``type`` is the base type (without ``not-``); ``negate`` inverts it."""

    type: str
    value: Any = None
    negate: bool = False
    weight: float = 1.0
    mode: str = "all"
    min: float | None = None
    max: float | None = None
    description: str | None = None
    _validator: Any = field(default=None, repr=False, compare=False)

    @property
    def label(self) -> str:
        """The type as a suite would write it, e.g. ``not-contains``."""
        return f"not-{self.type}" if self.negate else self.type


def _fail(where: str, fld: str, message: str) -> UsageError:
    return UsageError(f"{where}.{fld}: {message}")


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _bound(spec: dict[str, Any], key: str, where: str) -> float | None:
    x = spec.get(key)
    if x is None:
        return None
    if not _is_number(x) or x < 0:
        raise _fail(where, key, f"must be a number >= 0, got {x!r}")
    return float(x)


def parse_assertion(spec: dict[str, Any], where: str) -> Check:
    """Validate one assertion mapping and build its :class:`Check`.

    Raises :class:`UsageError` naming ``where`` (e.g. ``cases[2].assert[0]``) and the offending field.
    """
    if not isinstance(spec, dict):
        raise UsageError(f"{where}: an assertion is a mapping with a 'type', got {type(spec).__name__}")
    raw_type = spec.get("type")
    known = ", ".join(TYPES)
    if not isinstance(raw_type, str) or not raw_type:
        raise _fail(where, "type", f"missing or not a string; known types: {known} (any may take a 'not-' prefix)")
    negated_by_prefix = raw_type.startswith("not-")
    base = raw_type[4:] if negated_by_prefix else raw_type
    if base not in TYPES:
        raise _fail(where, "type", f"unknown assertion type {raw_type!r}; known types: {known} "
                                   "(any may take a 'not-' prefix)")
    allowed = _COMMON_FIELDS | _FIELDS[base]
    for key in spec:
        if key not in allowed:
            raise _fail(where, str(key), f"{base} does not take {key!r}; its fields are: {', '.join(sorted(allowed))}")

    negate_flag = spec.get("negate", False)
    if not isinstance(negate_flag, bool):
        raise _fail(where, "negate", f"must be true or false, got {negate_flag!r}")
    if negate_flag and negated_by_prefix:
        raise _fail(where, "negate", f"{raw_type!r} is already negated by its 'not-' prefix; drop 'negate: true'")
    weight = spec.get("weight", 1.0)
    if not _is_number(weight) or weight < 0:
        raise _fail(where, "weight", f"must be a number >= 0, got {weight!r}")
    description = spec.get("description")
    if description is not None and not isinstance(description, str):
        raise _fail(where, "description", "must be a string")

    check = Check(type=base, negate=negated_by_prefix or negate_flag, weight=float(weight), description=description)
    value = spec.get("value")
    if base in _NEEDS_VALUE and value is None:
        raise _fail(where, "value", f"{base} needs a 'value'")
    if base in {"contains", "icontains", "regex", "starts-with"} and (value == "" or value == []):
        raise _fail(where, "value", f"{base} needs a non-empty 'value' (an empty one matches every output)")

    if base in {"equals", "regex", "starts-with"}:
        if not isinstance(value, str):
            raise _fail(where, "value", f"{base} needs a string, got {type(value).__name__}")
        if base == "regex":
            try:
                re.compile(value)  # checked here; searched in the worker (regex_search)
            except re.error as exc:
                raise _fail(where, "value", f"invalid regular expression {value!r}: {exc}") from None
    elif base in {"contains", "icontains"}:
        if isinstance(value, list):
            if not value or not all(isinstance(v, str) for v in value):
                raise _fail(where, "value", f"{base} needs a string or a non-empty list of strings")
        elif not isinstance(value, str):
            raise _fail(where, "value", f"{base} needs a string or a list of strings, got {type(value).__name__}")
        mode = spec.get("mode", "all")
        if mode not in ("any", "all"):
            raise _fail(where, "mode", f"must be 'any' or 'all', got {mode!r}")
        check.mode = mode
    elif base == "json-schema":
        if not isinstance(value, dict | bool):
            raise _fail(where, "value", f"json-schema needs a JSON Schema (a mapping), got {type(value).__name__}")
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(value)
        except SchemaError as exc:
            path = "/".join(str(p) for p in exc.path)
            at = f" at {path!r}" if path else ""
            raise _fail(where, "value", f"invalid JSON Schema{at}: {exc.message}") from None
        keys = {k for k, _ in _schema_items(value)}
        if {"unevaluatedProperties", "patternProperties"} <= keys:
            raise _fail(where, "value", "unevaluatedProperties together with patternProperties is not accepted (jsonschema "
                                        "would match those patterns with no time limit): use additionalProperties")
        outside = _outside_ref(value)
        if outside:
            raise _fail(where, "value", f"the schema refers outside itself ({_short(outside)}): only references within "
                                        "the schema ('#/$defs/...') are followed; copy the referenced schema under $defs")
        check._validator = schema_validator(value)
    elif base == "length":
        check.min, check.max = _bound(spec, "min", where), _bound(spec, "max", where)
        if check.min is None and check.max is None:
            raise _fail(where, "min", "length needs 'min', 'max' or both")
        if check.min is not None and check.max is not None and check.min > check.max:
            raise _fail(where, "max", f"'max' ({check.max:g}) is below 'min' ({check.min:g})")
    elif base in {"latency-ms", "cost-usd"}:
        if "max" in spec and "value" in spec:
            raise _fail(where, "max", f"{base} takes 'max' (or 'value'), not both")
        key = "max" if "max" in spec else "value"
        check.max = _bound(spec, key, where)
        if check.max is None:
            raise _fail(where, "max", f"{base} needs 'max'")
    check.value = value
    return check


#: nesting allowed in a command-line or dashboard assertion's YAML (a JSON Schema needs far less)
MAX_ASSERTION_DEPTH = 64


def _load_yaml(text: str) -> Any:
    """``text`` as YAML, without aliases (``*a`` repeated in nested lists makes a few hundred characters stand for
    billions of values, each walked when the schema is checked) and at most :data:`MAX_ASSERTION_DEPTH` deep
    (deeper, Python's recursion gives out). Either is a ``yaml.YAMLError`` that says so."""
    import yaml

    class Loader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                raise yaml.YAMLError("aliases (*name) are not accepted in an assertion: write the value out")
            self.depth += 1
            try:
                if self.depth > MAX_ASSERTION_DEPTH:
                    raise yaml.YAMLError(f"nested more than {MAX_ASSERTION_DEPTH} levels deep")
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    loader = Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def from_cli(text: str) -> dict[str, Any]:
    """The assertion mapping of a command-line ``--assert`` (validated later by :func:`parse_assertion`).

    ``TYPE:VALUE`` for the text checks (``contains:Paris``, ``not-regex:(?i)as an ai``; the value is taken
    as written), ``is-json``, ``json-schema:{...}`` (a JSON/YAML mapping), ``length:MAX``, ``length:MIN-MAX``
    or ``length:MIN-``, ``latency-ms:MAX`` and ``cost-usd:MAX``; or the suite's full form as a YAML flow
    mapping, e.g. ``{type: icontains, value: [a, b], mode: any}``.
    """
    import yaml

    text = text.strip()
    if text.startswith("{"):
        try:
            spec = _load_yaml(text)
        except yaml.YAMLError as exc:
            raise UsageError(f"--assert {_short(text)} is not a valid YAML mapping: {exc}") from None
        if not isinstance(spec, dict):
            raise UsageError(f"--assert {text!r}: the full form is a mapping such as {{type: contains, value: x}}")
        return spec
    kind, sep, arg = text.partition(":")
    base = kind.removeprefix("not-")
    if not sep:
        return {"type": kind}
    if base == "json-schema":
        try:
            return {"type": kind, "value": _load_yaml(arg)}
        except yaml.YAMLError as exc:
            raise UsageError(f"--assert {_short(text)}: the schema is not valid JSON or YAML: {exc}") from None
    if base in _BOUNDED:
        def number(v: str) -> float | str:
            try:
                return float(v)
            except ValueError:
                return v  # parse_assertion names the field and says it must be a number
        if base == "length":
            low, dash, high = arg.partition("-")
            if not dash:
                return {"type": kind, "max": number(arg)}
            return {"type": kind, **({"min": number(low)} if low else {}), **({"max": number(high)} if high else {})}
        return {"type": kind, "max": number(arg)}
    return {"type": kind, "value": arg}


def _parse_json(text: str) -> Any:
    s = text.strip()
    m = re.fullmatch(r"```[A-Za-z0-9_-]*\s*\n(.*?)\n?\s*```", s, flags=re.DOTALL)
    if m:
        s = m.group(1)
    return json.loads(s)


def schema_validator(schema: Any) -> Any:
    """A JSON Schema (2020-12) validator that never fetches: its registry is empty, so a ``$ref`` to a URL or a
    ``file:`` path is unresolvable instead of read (jsonschema's default registry would ``urlopen`` it). Its
    ``pattern``, ``patternProperties`` and ``additionalProperties`` match with :func:`regex_search`, bounded in
    time like a ``regex`` check (jsonschema's own ``re.search`` on a model's answer could run for hours)."""
    from referencing import Registry

    return _bounded_validator_class()(schema, registry=Registry())


@functools.cache
def _bounded_validator_class() -> Any:
    from jsonschema import Draft202012Validator, validators
    from jsonschema.exceptions import ValidationError

    def matches(pattern: str, text: str) -> bool:
        return regex_search(pattern, text) is not None

    def pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Any:
        if validator.is_type(instance, "string") and not matches(patrn, instance):
            yield ValidationError(f"{_short(instance)} does not match {_short(patrn)}")

    def pattern_properties(validator: Any, patterns: dict, instance: Any, schema: Any) -> Any:
        if not validator.is_type(instance, "object"):
            return
        for patrn, subschema in patterns.items():
            for key, value in instance.items():
                if matches(patrn, key):
                    yield from validator.descend(value, subschema, path=key, schema_path=patrn)

    def additional_properties(validator: Any, additional: Any, instance: Any, schema: Any) -> Any:
        if not validator.is_type(instance, "object"):
            return
        known, patterns = schema.get("properties", {}), schema.get("patternProperties", {})
        extras = [k for k in instance if k not in known and not any(matches(p, k) for p in patterns)]
        if validator.is_type(additional, "object"):
            for extra in extras:
                yield from validator.descend(instance[extra], additional, path=extra)
        elif not additional and extras:
            yield ValidationError(f"additional properties are not allowed ({', '.join(_short(e) for e in extras[:5])})")

    return validators.extend(Draft202012Validator, {
        "pattern": pattern, "patternProperties": pattern_properties, "additionalProperties": additional_properties})


def _schema_items(schema: Any, depth: int = 0) -> Any:
    """Every (key, value) of every mapping inside ``schema``, depth first (at most 200 levels)."""
    if depth > 200:
        return
    if isinstance(schema, dict):
        for key, value in schema.items():
            yield key, value
            yield from _schema_items(value, depth + 1)
    elif isinstance(schema, list):
        for value in schema:
            yield from _schema_items(value, depth + 1)


def _outside_ref(schema: Any) -> str | None:
    """The first ``$ref``/``$dynamicRef`` of ``schema`` that is not a fragment of the schema itself, or None."""
    return next((v for k, v in _schema_items(schema) if k in ("$ref", "$dynamicRef") and isinstance(v, str)
                 and not v.startswith("#")), None)


def _short(s: Any, n: int = 60) -> str:
    r = repr(s)
    return r if len(r) <= n else r[: n - 3] + "..."


def _raw(check: Check, text: str, e2e_ms: float | None, cost_usd: float | None) -> tuple[bool | None, str]:
    """(passed before negation, or None when the measurement is missing; what was found)."""
    t, v = check.type, check.value
    if t == "equals":
        ok = text.strip() == v.strip()
        return ok, "equals the value" if ok else f"differs from {_short(v)}"
    if t in ("contains", "icontains"):
        needles = v if isinstance(v, list) else [v]
        hay = text.lower() if t == "icontains" else text
        found = [n for n in needles if (n.lower() if t == "icontains" else n) in hay]
        missing = [n for n in needles if n not in found]
        if check.mode == "any" and len(needles) > 1:
            ok = bool(found)
            return ok, f"contains {_short(found[0])}" if ok else f"contains none of {_short(needles)}"
        ok = not missing
        return ok, f"contains {_short(needles if len(needles) > 1 else needles[0])}" if ok \
            else f"does not contain {_short(missing if len(missing) > 1 else missing[0])}"
    if t == "regex":
        try:
            found = regex_search(v, text)
        except RegexTimeout as exc:
            return None, str(exc)
        return found is not None, f"matches {_short(v)} at {_short(found)}" if found is not None \
            else f"does not match {_short(v)}"
    if t == "starts-with":
        ok = text.lstrip().startswith(v)
        return ok, f"starts with {_short(v)}" if ok else f"does not start with {_short(v)}"
    if t in ("is-json", "json-schema"):
        try:
            doc = _parse_json(text)
        except ValueError as exc:
            return False, f"is not JSON ({exc})"
        if t == "is-json":
            return True, "is JSON"
        if check._validator is None:
            check._validator = schema_validator(v)
        try:
            errors = sorted(check._validator.iter_errors(doc), key=lambda e: list(e.path))
        except RegexTimeout as exc:  # as a regex check: failed, negated or not
            return None, str(exc)
        except Exception:  # a reference it cannot resolve (nothing is fetched), a pattern Python cannot compile
            return False, ("the schema could not be applied (a reference outside the schema, which is never fetched, "
                           "or a pattern Python cannot read): fix the schema")
        if not errors:
            return True, "is valid against the schema"
        e = errors[0]
        path = "/".join(str(p) for p in e.path)
        return False, f"fails the schema{' at ' + repr(path) if path else ''}: {e.message}"
    if t == "length":
        n = len(text)
        ok = (check.min is None or n >= check.min) and (check.max is None or n <= check.max)
        lo = f"{check.min:g}" if check.min is not None else "0"
        hi = f"{check.max:g}" if check.max is not None else "inf"
        return ok, f"{n} characters ({'within' if ok else 'outside'} [{lo}, {hi}])"
    if t == "latency-ms":
        if e2e_ms is None:
            return None, "latency was not measured"
        ok = e2e_ms <= check.max
        return ok, f"took {e2e_ms:.0f} ms ({'<=' if ok else '>'} {check.max:g} ms)"
    if t == "cost-usd":
        if cost_usd is None:
            return None, "cost is unknown (no price for this model)"
        ok = cost_usd <= check.max
        return ok, f"cost ${cost_usd:.6g} ({'<=' if ok else '>'} ${check.max:g})"
    raise UsageError(f"unknown assertion type {t!r}")


# ---- regex with a time limit ------------------------------------------------------------------------

#: seconds one ``regex`` assertion may take on one answer; past it the check fails (negated or not)
REGEX_TIMEOUT_S = 5.0

#: the worker: reads ``[pattern, text]`` JSON lines, answers the match's text (or null) as a JSON line
_WORKER = r"""
import json, re, sys
cache = {}
print('"ready"', flush=True)
for line in sys.stdin:
    pattern, text = json.loads(line)
    if len(cache) > 256:
        cache.clear()
    if pattern not in cache:
        cache[pattern] = re.compile(pattern)
    m = cache[pattern].search(text)
    print(json.dumps(None if m is None else m.group(0)[:200]), flush=True)
"""


class RegexTimeout(Exception):
    """A pattern ran past :data:`REGEX_TIMEOUT_S` on one answer (its message is the check's reason)."""


class _RegexWorker:
    """One Python process, started on first use, that runs ``re.search`` for the checks; it is killed (and
    started again for the next search) when a search runs past its time: Python's ``re`` cannot be
    interrupted inside a thread, and a pattern like ``^(a+)+$`` on ``aaaa...!`` backtracks for hours."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._proc: Any = None
        self._lines: Any = None

    def _start(self) -> None:
        import atexit
        import queue
        import subprocess
        import sys
        import threading

        proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _WORKER], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        lines: queue.Queue = queue.Queue()

        def pump() -> None:
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)  # the worker ended

        threading.Thread(target=pump, name="tryouts-regex", daemon=True).start()
        if self._proc is None and self._lines is None:
            atexit.register(self.stop)
        self._proc, self._lines = proc, lines
        try:
            ready = self._next(60.0) == "ready"
        except Exception:  # no answer in time (TimeoutError is an OSError): never leave a worker that may answer late
            ready = False
        if not ready:
            self.stop()
            raise RuntimeError("the regex worker did not start")

    def _next(self, timeout: float) -> Any:
        import queue

        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError from None
        if line is None:
            raise RuntimeError("the regex worker ended")
        return json.loads(line)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def search(self, pattern: str, text: str, timeout: float) -> str | None:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            try:
                self._proc.stdin.write(json.dumps([pattern, text]).encode() + b"\n")
                self._proc.stdin.flush()
                return self._next(timeout)
            except TimeoutError:
                self.stop()
                raise RegexTimeout(f"the pattern took more than {timeout:g} s on this answer (a pattern with "
                                   "nested repeats such as (a+)+ can take hours): simplify the pattern") from None
            except (OSError, RuntimeError, ValueError):
                self.stop()
                raise


_worker = _RegexWorker()
#: texts up to this long are searched in process (an empty, failed answer: no pattern backtracks on it)
REGEX_IN_PROCESS = 0


def regex_search(pattern: str, text: str, timeout: float | None = None) -> str | None:
    """``re.search(pattern, text)``'s match (its first 200 characters), or None; :class:`RegexTimeout` past
    ``timeout`` seconds (default :data:`REGEX_TIMEOUT_S`). The search runs in a worker process that is killed
    at the deadline, so an answer can never stall scoring. An empty text (a failed answer) is searched here: no
    pattern backtracks on it, and it never waits for the worker, which another thread may hold for seconds."""
    if len(text) <= REGEX_IN_PROCESS:
        m = re.search(pattern, text)
        return None if m is None else m.group(0)[:200]
    try:
        return _worker.search(pattern, text, REGEX_TIMEOUT_S if timeout is None else timeout)
    except (OSError, RuntimeError, ValueError):  # no worker (no Python to start): search here, unbounded
        m = re.search(pattern, text)
        return None if m is None else m.group(0)[:200]


def evaluate(check: Check, *, text: str, e2e_ms: float | None = None, cost_usd: float | None = None) -> dict[str, Any]:
    """Run one check on one output: ``{"type", "passed", "score" (0/1), "weight", "reason"}``."""
    raw, found = _raw(check, text or "", e2e_ms, cost_usd)
    if raw is None:
        passed = False
        reason = found
    elif check.negate:
        passed = not raw
        reason = f"{found} (negated: must not)" if raw else found
    else:
        passed = raw
        reason = found
    return {"type": check.label, "passed": passed, "score": 1.0 if passed else 0.0, "weight": check.weight,
            "reason": reason}


def score_case(checks: Iterable[Check], **result_fields: Any) -> dict[str, Any]:
    """Run every check on one result (``text``, ``e2e_ms``, ``cost_usd``).

    ``passed`` is true when every check passed (zero-weight checks included); ``score`` is the weighted mean
    of the checks' scores (the plain mean when every weight is 0; 1.0 with no checks).
    """
    results = [evaluate(c, **result_fields) for c in checks]
    if not results:
        return {"passed": True, "score": 1.0, "results": []}
    total = sum(r["weight"] for r in results)
    if total > 0:
        score = sum(r["score"] * r["weight"] for r in results) / total
    else:
        score = sum(r["score"] for r in results) / len(results)
    return {"passed": all(r["passed"] for r in results), "score": score, "results": results}
