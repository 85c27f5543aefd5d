"""Reading a suite's dataset file: CSV with a header row, or JSONL with one JSON object per line.

Rows come back with the line they start on, so every problem can name the dataset's file and line.
Problems are collected (as many as can be found in one pass) rather than raised one at a time.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .limits import MAX_DATASET_BYTES, MAX_DEPTH, MAX_INT_DIGITS, depth_of, has_nul, int_too_long, nul_message

Format = Literal["csv", "jsonl"]

_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean", type(None): "null"}
_EXTENSIONS: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass
class Row:
    """One record of a dataset: its column values and the (1-based) line it is on."""

    line: int
    values: dict[str, Any]


@dataclass
class Table:
    """A dataset as read: its rows, the column names seen (in order), and problems as (line, message)."""

    rows: list[Row] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    problems: list[tuple[int | None, str]] = field(default_factory=list)


def guess_format(path: str | Path) -> Format | None:
    """``csv`` or ``jsonl`` from the file's extension; None when it cannot tell."""
    return _EXTENSIONS.get(Path(path).suffix.lower())


def read_table(path: Path, fmt: Format) -> Table:
    """Read ``path`` (which must exist) as ``fmt``; decoding problems become a problem on line None."""
    table = Table()
    size = path.stat().st_size
    if size > MAX_DATASET_BYTES:
        table.problems.append((None, f"is larger than {MAX_DATASET_BYTES // (1024 * 1024)} MB ({size:,} bytes), the "
                               "most a dataset may be: split it over several suites, or keep a sample of its rows."))
        return table
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            if fmt == "csv":
                _read_csv(f, table)
            else:
                _read_jsonl(f, table)
    except UnicodeDecodeError as e:
        table.problems.append((None, f"is not UTF-8 text ({e.reason} at byte {e.start}): save it as UTF-8."))
    return table


def _read_csv(f, table: Table) -> None:
    reader = csv.reader(f, strict=True)
    header: list[str] | None = None
    try:
        for record in reader:
            if not record or (len(record) == 1 and not record[0].strip()):
                continue  # blank line
            if header is None:
                header = [name.strip() for name in record]
                problem = _header_problem(header)
                if problem:
                    table.problems.append((reader.line_num, problem))
                    return
                table.columns = list(header)
                continue
            if len(record) != len(header):
                table.problems.append((
                    reader.line_num,
                    f"has {len(record)} fields but the header has {len(header)} ({', '.join(header)}): "
                    "quote values that contain commas, e.g. \"a, b\".",
                ))
                continue
            if any(has_nul(v) for v in record):
                table.problems.append((reader.line_num, nul_message()))
                continue
            table.rows.append(Row(reader.line_num, dict(zip(header, record, strict=True))))
    except csv.Error as e:
        table.problems.append((reader.line_num, f"is not valid CSV ({e}): check the quotes on this line."))


def _header_problem(header: list[str]) -> str | None:
    if any(not name for name in header):
        return "the header row has an empty column name: name every column (the first line is the header)."
    seen: set[str] = set()
    for name in header:
        if name in seen:
            return f"the header row names the column {name!r} twice: give every column a distinct name."
        seen.add(name)
    return None


_TOO_DEEP: Any = object()


class _TooLong(ValueError):
    def __init__(self, digits: int) -> None:
        super().__init__(digits)
        self.digits = digits


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _TooLong(digits)
    return int(text)


def _read_jsonl(f, table: Table) -> None:
    columns: dict[str, None] = {}
    for n, line in enumerate(f, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line, parse_int=_parse_int)
        except json.JSONDecodeError as e:
            table.problems.append((n, f"is not valid JSON ({e.msg}, column {e.colno}): each line must be one JSON object."))
            continue
        except _TooLong as e:
            table.problems.append((n, int_too_long(e.digits)))
            continue
        except RecursionError:  # nested far deeper than MAX_DEPTH
            obj = _TOO_DEEP
        if obj is _TOO_DEEP or depth_of(obj) > MAX_DEPTH:
            table.problems.append((n, f"nests objects and arrays more than {MAX_DEPTH} levels deep: flatten the row."))
            continue
        if has_nul(obj):
            table.problems.append((n, nul_message()))
            continue
        if not isinstance(obj, dict):
            table.problems.append((
                n, f"should be a JSON object such as {{\"question\": \"...\"}}, got {_JSON_KINDS.get(type(obj), 'a value')}.",
            ))
            continue
        columns.update(dict.fromkeys(obj))
        table.rows.append(Row(n, obj))
    table.columns = list(columns)
