"""Suite errors that name the file, the line and the field.

Problems are found as a ``loc`` path (``("models", 1, "options")``, as pydantic reports them). The
suite file's YAML node tree (``yaml.compose``) turns a ``loc`` into a line: follow the path through
mapping and sequence nodes as far as it exists, and report the deepest node's line. Problems in a
dataset file carry their own file and line instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from ..errors import UsageError

Loc = tuple[str | int, ...]

#: discriminator tags pydantic puts in ``loc`` for "a string or a mapping" fields; not keys of the file
TAG_STR = "<string>"
TAG_MAP = "<mapping>"
SKIP = frozenset({TAG_STR, TAG_MAP, "[key]"})

#: at most this many problems are listed in one error message
MAX_SHOWN = 20


@dataclass(frozen=True)
class SuiteIssue:
    """One problem, located: ``file:line: path: message``."""

    file: str | None
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file or ""
        if where and self.line is not None:
            where += f":{self.line}"
        return ": ".join(part for part in (where, self.path, self.message) if part)


class SuiteError(UsageError):
    """A suite file (or its dataset) is invalid. ``issues`` lists every problem found, first one first.

    The message has one line per problem, e.g.
    ``examples/bad.yaml:12: models[1].options: should be a valid dictionary, got a list``.
    """

    kind = "suite"

    def __init__(self, issues: Sequence[SuiteIssue] | str) -> None:
        if isinstance(issues, str):
            issues = [SuiteIssue(None, None, "", issues)]
        self.issues: list[SuiteIssue] = list(issues)
        lines = [str(i) for i in self.issues[:MAX_SHOWN]]
        if len(self.issues) > MAX_SHOWN:
            lines.append(f"... and {len(self.issues) - MAX_SHOWN} more problems.")
        super().__init__("\n".join(lines))


@dataclass
class Problem:
    """A problem before it is located. ``file``/``line`` are set for problems in a dataset file.

    ``path`` is the loc shown to the user when it differs from the one used to find the line (an
    unknown key is shown at its parent mapping, but its own line is reported).
    """

    loc: Loc
    message: str
    file: str | None = None
    line: int | None = None
    path: Loc | None = None


def format_loc(loc: Loc) -> str:
    """``("models", 1, "options")`` -> ``models[1].options``."""
    out = ""
    for seg in loc:
        if seg in SKIP:
            continue
        if isinstance(seg, int):
            out += f"[{seg}]"
        else:
            out += f".{seg}" if out else str(seg)
    return out


def line_of(root: yaml.Node | None, loc: Loc) -> int | None:
    """The 1-based line of the deepest node of ``loc`` that exists under ``root`` (a mapping value is
    reported at its key's line, where the reader looks)."""
    if root is None:
        return None
    node: yaml.Node = root
    line = root.start_mark.line + 1
    for seg in loc:
        if seg in SKIP:
            continue
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(seg):
                    line, node = key.start_mark.line + 1, value
                    break
            else:
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(seg, int) and 0 <= seg < len(node.value):
            node = node.value[seg]
            line = node.start_mark.line + 1
        else:
            break
    return line


def locate(problems: Sequence[Problem], file: str | None, root: yaml.Node | None) -> list[SuiteIssue]:
    """Turn problems into issues, sorted by file order (suite file first, then by line)."""
    issues = []
    for p in problems:
        shown = format_loc(p.loc if p.path is None else p.path)
        if p.file is not None:  # a dataset file
            issues.append(SuiteIssue(p.file, p.line, shown, p.message))
        else:
            line = p.line if p.line is not None else line_of(root, p.loc)
            issues.append(SuiteIssue(file, line, shown, p.message))
    order = {f: i for i, f in enumerate(dict.fromkeys(i.file for i in issues))}
    return sorted(issues, key=lambda i: (i.file != file, order[i.file], i.line or 0))


def duplicate_keys(root: yaml.Node | None) -> list[Problem]:
    """Keys written twice in one mapping (YAML keeps the last silently): one problem per repeat."""
    problems: list[Problem] = []
    seen_nodes: set[int] = set()

    def walk(node: yaml.Node, loc: Loc) -> None:
        if id(node) in seen_nodes:
            return
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in keys:
                        problems.append(Problem(
                            (), f"the key {key.value!r} is written twice in this mapping (YAML would keep only "
                            "the last one): remove one of them.", line=key.start_mark.line + 1, path=loc,
                        ))
                    keys.add(key.value)
                    walk(value, (*loc, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*loc, i))

    if root is not None:
        walk(root, ())
    return problems


def describe(value: Any) -> str:
    """A short phrase for what the user wrote: ``a mapping``, ``a list``, ``'abc'``, ``0``, ``null``."""
    if value is None:
        return "null (nothing)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return repr(text)
    if isinstance(value, int):
        from .limits import describe_int

        return describe_int(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
