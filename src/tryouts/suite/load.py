"""Loading a suite file: YAML -> node tree (for line numbers) -> :class:`Suite` -> checks.

Everything is checked before anything runs: the YAML, the schema (pydantic), labels and ids, the
dataset, and every ``{{ name }}`` against every case. All problems found are reported at once, each as
``file:line: field: what is wrong: what to do``.
"""

from __future__ import annotations

import difflib
import os
import re
import types
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from .envvars import EnvLoader, misplaced_credentials
from .issues import SKIP, Loc, Problem, SuiteError, SuiteIssue, describe, duplicate_keys, locate
from .limits import MAX_SUITE_BYTES, LimitError, control_problem, nul_lines, nul_message
from .schema import Suite

__all__ = ["compose_yaml", "load_suite", "loads_suite", "read_yaml_file"]

#: our own error kinds: their messages are complete
_OWN_KINDS = {"model_reference", "prompt_no_user", "prompt_text_or_messages", "model_form", "prompt_form", "dataset_form"}

#: pydantic's words -> the words of someone editing YAML
_WORDS = [
    (re.compile(r"^Input should be"), "should be"),
    (re.compile(r"a valid dictionary( or instance of \w+)?"), "a mapping"),
    (re.compile(r"a valid list"), "a list"),
    (re.compile(r"a valid string"), "a string"),
]


def load_suite(path: str | Path) -> Suite:
    """Read, validate and expand the suite file at ``path``; :class:`SuiteError` names file, line and field."""
    return _load(read_yaml_file(path), str(path), Path(path))


def read_yaml_file(path: str | Path, what: str = "suite") -> str:
    """The text of the ``what`` file (a suite, a task file) at ``path``: a regular file of at most 4 MB of UTF-8;
    anything else is a :class:`SuiteError` that says what to do."""
    label = str(path)
    p = Path(path)
    try:
        raw = _read_regular(p, label, what)
        _check_size(len(raw), label)
        return raw.decode("utf-8")
    except FileNotFoundError:
        raise SuiteError([SuiteIssue(label, None, "", f"no such {what} file ({p.resolve()}): check the path.")]) from None
    except IsADirectoryError:
        raise SuiteError([SuiteIssue(label, None, "", f"is a folder: give the {what}'s YAML file.")]) from None
    except UnicodeDecodeError as e:
        raise SuiteError([SuiteIssue(label, None, "", f"is not UTF-8 text ({e.reason}): save it as UTF-8.")]) from None
    except OSError as e:
        raise SuiteError([SuiteIssue(label, None, "", f"cannot be read ({e.strerror}).")]) from None


def loads_suite(text: str, *, source: str | Path | None = None) -> Suite:
    """Like :func:`load_suite` for YAML text; ``source`` names it in errors and anchors a dataset path."""
    label = "<string>" if source is None else str(source)
    _check_size(len(text), label)
    return _load(text, label, None if source is None else Path(source))


def _read_regular(p: Path, label: str, what: str = "suite") -> bytes:
    """The first bytes of the regular file ``p``; a FIFO, a device, a socket or a folder is refused before it is
    read (reading a FIFO or /dev/zero would wait forever or never end). Opened without blocking, and checked
    again once open, so a file swapped for a FIFO in between is refused too."""
    kind = _not_regular(os.stat(p).st_mode)
    fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)) if kind is None else -1
    try:
        if kind is None:
            kind = _not_regular(os.fstat(fd).st_mode)
        if kind == "folder":
            raise IsADirectoryError
        if kind is not None:
            raise SuiteError([SuiteIssue(label, None, "", (
                f"is {kind}, not a regular file: give the {what}'s YAML file (a {what} is read whole before it "
                "runs, so it cannot come from a pipe or a device)."))])
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb") as f:
            fd = -1
            return f.read(MAX_SUITE_BYTES + 1)
    finally:
        if fd >= 0:
            os.close(fd)


def _not_regular(mode: int) -> str | None:
    """None for a regular file, else what it is, in words."""
    import stat

    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (a named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _check_size(size: int, label: str) -> None:
    if size > MAX_SUITE_BYTES:
        raise SuiteError([SuiteIssue(label, None, "", (
            f"is larger than {MAX_SUITE_BYTES // (1024 * 1024)} MB, the most a suite file may be: move the "
            "cases into a dataset file (dataset: cases.jsonl, see docs/suites.md)."))])


def _load(text: str, label: str, source: Path | None) -> Suite:
    text = text.removeprefix("\ufeff")
    found = control_problem(text)
    if found:
        raise SuiteError([SuiteIssue(label, found[0], "", found[1])])
    root, data, credentials = compose_yaml(text, label)
    problems = duplicate_keys(root)
    problems += misplaced_credentials(root, credentials)
    problems += [Problem((), "a value " + nul_message(), line=line) for line in nul_lines(root)]
    if not isinstance(data, dict):
        if data is None:
            message = "the file is empty: a suite needs at least 'models:' and 'prompts:' (see docs/suites.md)."
        else:
            message = (f"the top level should be a mapping with keys such as models: and prompts:, got "
                       f"{describe(data)} (see docs/suites.md).")
        problems.append(Problem((), message))
        raise SuiteError(locate(problems, label, root))
    try:
        suite = Suite.model_validate(data, context={"defer_checks": True})
    except ValidationError as e:
        problems += pydantic_problems(e)
        raise SuiteError(locate(problems, label, root)) from None
    suite._source, suite._label, suite._node = source, label, root
    problems += suite._static_problems()
    items, case_problems = suite._build()
    problems += case_problems
    if problems:
        raise SuiteError(locate(problems, label, root))
    suite._items = items
    return suite


def compose_yaml(text: str, label: str) -> tuple[yaml.Node | None, Any, dict[int, Any]]:
    """The YAML node tree (for line numbers), the data built from it, in one parse, with ``${...}`` replaced
    in each value (suite/envvars.py); and the scalars that took a credential from a variable."""
    loader = EnvLoader(text, label)
    try:
        root = loader.get_single_node()
        if loader.env_problems:
            raise SuiteError(loader.env_problems)
        data = loader.construct_document(root) if root is not None else None
    except LimitError as e:
        mark = e.problem_mark
        raise SuiteError([SuiteIssue(label, mark.line + 1 if mark else None, "", f"{e.problem}.")]) from None
    except yaml.constructor.ConstructorError as e:
        mark = e.problem_mark or e.context_mark
        what = ", ".join(s for s in (e.context, e.problem) if s)
        raise SuiteError([SuiteIssue(label, mark.line + 1 if mark else None, "", f"not valid YAML ({what}): fix the value on this line, or remove its tag (!!name or !name).")]) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        what = ", ".join(s for s in (e.context, e.problem) if s)
        raise SuiteError([SuiteIssue(
            label, mark.line + 1 if mark else None, "",
            f"not valid YAML ({what}): check the indentation and quotes on this line and the one before.",
        )]) from None
    except yaml.YAMLError as e:
        raise SuiteError([SuiteIssue(label, None, "", f"not valid YAML: {e}")]) from None
    finally:
        loader.dispose()
    return root, data, loader.credentials


# ---- pydantic errors -> problems -----------------------------------------------------------------


def pydantic_problems(error: ValidationError) -> list[Problem]:
    """One problem per pydantic error, phrased for someone editing the YAML file."""
    problems = []
    for err in error.errors(include_url=False):
        loc: Loc = tuple(err["loc"])
        kind, value = err["type"], err.get("input")
        if kind == "extra_forbidden":
            key = str(loc[-1])
            allowed = _allowed_keys(loc[:-1])
            message = f"unknown key {key!r}"
            close = difflib.get_close_matches(key, allowed, n=1)
            if close:
                message += f" (did you mean {close[0]!r}?)"
            if allowed:
                message += f": the keys allowed here are {', '.join(allowed)}."
            problems.append(Problem(loc, message, path=loc[:-1]))
        elif kind == "missing":
            problems.append(Problem(loc, f"the required key {loc[-1]!r} is missing: add it{_hint(loc)}", path=loc[:-1]))
        elif kind in _OWN_KINDS:
            message = err["msg"]
            if kind.endswith("_form"):
                message += f", got {describe(value)}."
            problems.append(Problem(loc, message))
        else:
            message = err["msg"]
            if kind == "too_short" and isinstance(value, list | dict):
                n = err.get("ctx", {}).get("min_length", 1)
                message = f"should have at least {n} {'item' if n == 1 else 'items'}, got an empty list"
            else:
                for pattern, words in _WORDS:
                    message = pattern.sub(words, message)
                if message[1:2].islower():  # "String should ..." -> "string should ..."
                    message = message[0].lower() + message[1:]
                message += f", got {describe(value)}"
            problems.append(Problem(loc, message + _hint(loc)))
    return problems


def _hint(loc: Loc) -> str:
    """`` — `` and the description of the field at ``loc`` (what is expected there), or ``.``."""
    field = _candidates(loc)[1]
    if field is None or not field.description:
        return "."
    text = field.description.strip()
    return f" — {text}" if text.endswith(".") else f" — {text}."


def _candidates(loc: Loc) -> tuple[list[Any], FieldInfo | None]:
    """The types ``loc`` may hold (following fields, list items and dict values from Suite), and the
    last field passed on the way."""
    types_: list[Any] = [Suite]
    field: FieldInfo | None = None
    for seg in loc:
        if seg in SKIP:
            continue
        following: list[Any] = []
        for tp in (t for c in types_ for t in _expand(c)):
            if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(seg, str):
                for name, info in tp.model_fields.items():
                    if (info.alias or name) == seg:
                        following.append(info.annotation)
                        field = info
            elif get_origin(tp) is list and isinstance(seg, int):
                following.append(get_args(tp)[0])
            elif get_origin(tp) is dict and isinstance(seg, str):
                following.append(get_args(tp)[1])
        types_ = following
    return types_, field


def _expand(tp: Any) -> list[Any]:
    """``tp`` with Annotated, Optional and unions taken apart."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _expand(get_args(tp)[0])
    if origin is Union or origin is types.UnionType:
        return [t for arg in get_args(tp) for t in _expand(arg)]
    return [tp]


def _allowed_keys(loc: Loc) -> list[str]:
    types_, _ = _candidates(loc)
    for tp in (t for c in types_ for t in _expand(c)):
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return [info.alias or name for name, info in tp.model_fields.items()]
    return []
