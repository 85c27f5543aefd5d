"""Generate the field tables of docs/json.md from the read model (src/tryouts/records.py).

Each table sits between ``<!-- generated: NAME -->`` and ``<!-- end generated -->``; the prose around
them is written by hand. ``make test`` and the tests fail when a table is stale.

Usage: python docs/gen_json.py [--check]
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _gen import replace_block, write_or_check

OUT = Path(__file__).with_name("json.md")

_NAMES = {str: "string", int: "int", float: "number", bool: "bool", dict: "object", list: "list", typing.Any: "any"}


def type_name(annotation: object) -> str:
    """A JSON-ish name for a field's type: ``string or null``, ``list of numbers``, ``one of ...``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        names = [type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    if origin is typing.Literal:
        return "string"
    if origin is list:
        inner = type_name(args[0]) if args else "any"
        return f"list of {inner}s" if inner in ("string", "number", "int") else "list"
    if origin is dict:
        return "object"
    if isinstance(annotation, type) and issubclass(annotation, object) and annotation in _NAMES:
        return _NAMES[annotation]
    alias = getattr(annotation, "__value__", None)  # a `type X = ...` alias
    return type_name(alias) if alias is not None else getattr(annotation, "__name__", str(annotation))


def literal_values(annotation: object) -> list[str]:
    """The values of a Literal inside ``annotation`` (empty when there is none)."""
    if typing.get_origin(annotation) is typing.Literal:
        return [str(v) for v in typing.get_args(annotation)]
    return [v for a in typing.get_args(annotation) for v in literal_values(a)]


def table(model: type) -> str:
    rows = ["| field | type | meaning |", "|---|---|---|"]
    for name, info in model.model_fields.items():
        meaning = (info.description or "").replace("|", "\\|")
        values = literal_values(info.annotation)
        if values:
            meaning += ". One of " + ", ".join(f"`{v}`" for v in values)
        rows.append(f"| `{name}` | {type_name(info.annotation)} | {meaning} |")
    return "\n".join(rows)


def render(text: str) -> str:
    from tryouts.records import ResultRecord, RunRecord

    tables = {"runs": table(RunRecord), "results": table(ResultRecord)}

    for name, body in tables.items():
        text = replace_block(text, name, body)
    return text


def main() -> int:
    return write_or_check({OUT: render(OUT.read_text(encoding="utf-8"))}, "tryouts.records", "python docs/gen_json.py")


if __name__ == "__main__":
    sys.exit(main())
