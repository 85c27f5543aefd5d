"""A suite's cases: the inline ones, then the dataset's rows; and the check of every placeholder.

Problems are collected, not raised: :meth:`Suite.case_items` and :func:`load_suite` report them all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python

from . import template
from .dataset import guess_format, read_table
from .issues import Loc, Problem, format_loc
from .limits import MAX_RENDERED_CHARS

if TYPE_CHECKING:
    from .schema import Suite


@dataclass
class Case:
    """One case before rendering: inline (``loc`` in the suite file) or a dataset row (``file``, ``line``)."""

    id: str
    vars: dict[str, Any]
    expected: str | None
    asserts: list[dict]
    loc: Loc = ()
    file: str | None = None
    line: int | None = None

    def problem(self, loc: Loc, message: str) -> Problem:
        if self.file is not None:
            return Problem((), message, file=self.file, line=self.line)
        return Problem(loc, message)


def collect_cases(suite: Suite) -> tuple[list[Case], list[Problem], list[str] | None]:
    """Inline cases, then dataset rows; the dataset's columns (None without a dataset)."""
    cases = [
        Case(c.id or f"c{i + 1}", to_jsonable_python(c.vars), c.expected,
             [a.model_dump() for a in c.asserts], loc=("cases", i))
        for i, c in enumerate(suite.cases)
    ]
    problems: list[Problem] = []
    columns: list[str] | None = None
    if suite.dataset is not None:
        rows, problems, columns = dataset_cases(suite, start=len(cases) + 1)
        cases += rows
    elif not cases:
        cases = [Case("c1", {}, None, [], loc=())]
    seen: dict[str, Case] = {}
    for case in cases:
        if case.id in seen:
            first = seen[case.id]
            where = f"line {first.line} of {first.file}" if first.file else format_loc(first.loc)
            problems.append(case.problem(
                (*case.loc, "id"), f"the case id {case.id!r} is already used by {where}: give each case a distinct id.",
            ))
        else:
            seen[case.id] = case
    return cases, problems, columns


def dataset_cases(suite: Suite, start: int) -> tuple[list[Case], list[Problem], list[str]]:
    """The dataset's rows as cases (numbered from ``start`` without an id column), and its columns."""
    spec = suite.dataset
    assert spec is not None and not isinstance(spec, str)  # normalised to a DatasetSpec
    at: Loc = ("dataset", "path")
    path = suite.base_dir / spec.path
    shown = str(path)
    fmt = spec.format or guess_format(spec.path)
    if fmt is None:
        return [], [Problem(at, f"cannot tell the format of {spec.path!r} from its extension: name the file "
                            "*.csv or *.jsonl, or add format: csv (or jsonl).")], []
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        return [], [Problem(at, f"the dataset file {path.resolve()} {what}: a dataset path is relative to the "
                            f"suite file's folder ({suite.base_dir.resolve()}).")], []
    table = read_table(path, fmt)
    problems = [Problem((), message, file=shown, line=line) for line, message in table.problems]
    if problems:
        return [], problems, table.columns
    if not table.rows:
        only = " (only a header row)" if table.columns else ""
        return [], [Problem(at, f"the dataset {shown} has no rows{only}: add at least one case to it, or "
                            "remove 'dataset'.")], table.columns
    for column, key in ((spec.expected, "expected"), (spec.id, "id")):
        if column is not None and column not in table.columns:
            problems.append(Problem(
                ("dataset", key), f"the dataset {shown} has no column {column!r}; its columns are: "
                f"{', '.join(table.columns)}.",
            ))
    if problems:
        return [], problems, table.columns
    expected_col = spec.expected or ("expected" if "expected" in table.columns else None)
    id_col = spec.id or ("id" if "id" in table.columns else None)
    special = {expected_col, id_col}
    cases: list[Case] = []
    for n, row in enumerate(table.rows):
        case_id = f"c{start + n}"
        if id_col is not None:
            raw = row.values.get(id_col)
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                problems.append(Problem((), f"has no value in the id column {id_col!r}: give every row an id.",
                                        file=shown, line=row.line))
                continue
            case_id = raw if isinstance(raw, str) else json.dumps(raw)
        expected = row.values.get(expected_col) if expected_col else None
        if expected is not None and not isinstance(expected, str):
            expected = json.dumps(expected, ensure_ascii=False)
        values = {k: v for k, v in row.values.items() if k not in special}
        cases.append(Case(case_id, values, expected or None, [], file=shown, line=row.line))
    return cases, problems, table.columns


def prompt_texts(suite: Suite, i: int) -> list[tuple[Loc, str]]:
    """Every text of prompt ``i`` that is rendered, with where it is written (system default first)."""
    prompt = suite.prompts[i]
    texts: list[tuple[Loc, str]] = []
    if suite.defaults.system is not None and not any(m.role == "system" for m in prompt.chat()):
        texts.append((("defaults", "system"), suite.defaults.system))
    if prompt.messages is None:
        texts.append((("prompts", i) if prompt._plain else ("prompts", i, "text"), prompt.text or ""))
    else:
        texts += [(("prompts", i, "messages", j, "content"), m.content) for j, m in enumerate(prompt.messages)]
    return texts


def template_problems(suite: Suite, cases: list[Case], columns: list[str] | None) -> list[Problem]:
    """A {{ name }} that some case does not provide: one problem per prompt and name."""
    problems: list[Problem] = []
    system_done: set[str] = set()
    implicit = not suite.cases and suite.dataset is None
    for i, prompt in enumerate(suite.prompts):
        first: dict[str, Loc] = {}
        for loc, text in prompt_texts(suite, i):
            for name in template.variables(text):
                first.setdefault(name, loc)
        for name, loc in first.items():
            missing = [c.id for c in cases if name not in c.vars]
            if not missing:
                continue
            if loc[0] == "defaults":
                if name in system_done:
                    continue
                system_done.add(name)
                who, source = "the default system message", "defaults.system"
            else:
                who, source = f"prompt {prompt.id!r}", "the prompt"
            if implicit:
                message = (f"{who} uses {{{{{name}}}}}, but the suite has no cases to fill it in: add cases "
                           f"with vars: {{{name}: ...}}, or a dataset with a column {name!r}.")
            else:
                shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
                which = "case" if len(missing) == 1 else "cases"
                verb = "does" if len(missing) == 1 else "do"
                where = f" (the dataset's columns are: {', '.join(columns)})" if columns is not None else ""
                message = (f"{who} uses {{{{{name}}}}}, which {which} {shown} {verb} not provide{where}: add "
                           f"{name!r} to the vars of every case, or remove it from {source}.")
            problems.append(Problem(loc, message))
    return problems


def rendered_size_problems(suite: Suite, cases: list[Case]) -> list[Problem]:
    """A problem when the prompts filled in with every case would pass MAX_RENDERED_CHARS (a large var used
    many times), found by adding lengths before anything is rendered."""
    total = 0
    for i, prompt in enumerate(suite.prompts):
        texts = [(len(text), template.VAR.findall(text)) for _, text in prompt_texts(suite, i)]
        for case in cases:
            lengths: dict[str, int] = {}
            for base, names in texts:
                total += base
                for name in names:
                    if name not in lengths:
                        lengths[name] = len(str(case.vars.get(name, "")))
                    total += lengths[name]
            if total > MAX_RENDERED_CHARS:
                return [Problem(("prompts", i), (
                    f"the prompts filled in with the cases come to more than {MAX_RENDERED_CHARS:,} characters "
                    f"(case {case.id!r} of prompt {prompt.id!r} passes it): use long vars fewer times, shorten "
                    "them, or split the cases over several suites."))]
    return []
