"""Labeled data for the tasks: CSV (header row) or JSONL (one object per line), validated row by row.

Columns (docs/tasks.md); an optional ``id`` column names each case (else ``line N``):

==============  =====  =============================================================================
task            files  columns / fields
==============  =====  =============================================================================
classification  both   ``text``, ``label``
ner             JSONL  ``tokens`` (list of words) and ``tags`` (one IOB2 tag per word: ``O``, ``B-TYPE``,
                       ``I-TYPE``); or ``text`` and ``entities`` (list of ``{"start", "end", "label"}``
                       character spans, or ``{"text", "label"}`` that must occur in ``text``)
translation     both   ``source``, ``target``; optional ``source_lang``, ``target_lang``
summarization   both   ``text``, ``summary``
embeddings      both   STS: ``sentence1``, ``sentence2``, ``score`` (any monotone scale); or retrieval:
                       ``query``, ``document`` (the query's relevant document; the corpus is every distinct
                       document). The columns present choose the mode.
code            JSONL  ``prompt``, ``tests`` (Python run after the code, e.g. ``assert f(1) == 2``);
                       optional ``entry_point`` (the function to define), ``id`` or ``task_id``
==============  =====  =============================================================================

Every problem names the file and line; a missing column names the columns the task needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError

__all__ = ["Dataset", "Entity", "TaskCase", "bio_to_entities", "load_dataset"]

_MAX_SHOWN = 10
_TAG = re.compile(r"^(?:O|[BI]-\S+)$")


@dataclass(frozen=True)
class Entity:
    """A named entity: its text, its type (``PER``, ``ORG`` ...) and, when known, its character span."""

    text: str
    label: str
    start: int | None = None
    end: int | None = None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"text": self.text, "label": self.label}
        if self.start is not None:
            d.update(start=self.start, end=self.end)
        return d


@dataclass(frozen=True)
class TaskCase:
    """One labeled example: what the model is given (``input``), the right answer (``gold``) and extras."""

    index: int
    id: str
    line: int
    input: str
    gold: Any
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Dataset:
    """A task's labeled cases, read from ``path``.

    ``labels``: the distinct gold labels (classification) or entity types (ner), sorted.
    ``mode`` (embeddings): ``sts`` or ``retrieval``. ``corpus`` (retrieval): every distinct document;
    a case's gold is its document's index.
    """

    task: str
    path: Path
    cases: list[TaskCase]
    mode: str | None = None
    labels: list[str] = field(default_factory=list)
    corpus: list[str] = field(default_factory=list)


class _Problems:
    def __init__(self, path: Path) -> None:
        self.path, self.items = path, []

    def add(self, line: int | None, message: str) -> None:
        self.items.append((line, message))

    def raise_if_any(self, hint: str) -> None:
        if not self.items:
            return
        shown = [
            f"  {'line ' + str(line) if line else 'file'}: {msg}" for line, msg in self.items[:_MAX_SHOWN]
        ]
        more = f"\n  ... and {len(self.items) - _MAX_SHOWN} more" if len(self.items) > _MAX_SHOWN else ""
        raise UsageError(
            f"{self.path}: {len(self.items)} problem(s) in the labeled data:\n"
            + "\n".join(shown)
            + more
            + f"\n{hint}"
        )


def _text(row: dict[str, Any], name: str, line: int, problems: _Problems) -> str | None:
    value = row.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        problems.add(line, f"the {name!r} value is missing or empty.")
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        problems.add(line, f"{name!r} must be text, not {type(value).__name__}.")
        return None
    return str(value)


def bio_to_entities(tokens: list[str], tags: list[str]) -> list[Entity]:
    """Entities from IOB2 tags over ``tokens`` joined by single spaces (spans are offsets in that text).

    ``B-X`` starts an entity of type X; ``I-X`` continues one of type X, or starts one after ``O`` or after an
    entity of another type (as seqeval does outside strict mode); ``O`` is outside any entity.
    """
    entities: list[Entity] = []
    starts, pos = [], 0
    for tok in tokens:
        starts.append(pos)
        pos += len(tok) + 1
    text = " ".join(tokens)
    current: tuple[str, int, int] | None = None  # label, first token, last token

    def close() -> None:
        if current is not None:
            label, a, b = current
            s, e = starts[a], starts[b] + len(tokens[b])
            entities.append(Entity(text[s:e], label, s, e))

    for i, tag in enumerate(tags):
        kind, _, label = tag.partition("-")
        if kind == "I" and current is not None and current[0] == label:
            current = (label, current[1], i)
            continue
        close()
        current = (label, i, i) if kind in ("B", "I") else None
    close()
    return entities


def _ner_case(obj: dict[str, Any], line: int, problems: _Problems) -> tuple[str, list[Entity]] | None:
    if "tokens" in obj or "tags" in obj:
        tokens, tags = obj.get("tokens"), obj.get("tags")
        if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) and t for t in tokens):
            problems.add(line, "'tokens' must be a non-empty list of words (strings).")
            return None
        if not isinstance(tags, list) or len(tags) != len(tokens):
            problems.add(line, f"'tags' must be a list with one tag per token ({len(tokens)} tokens).")
            return None
        bad = [t for t in tags if not isinstance(t, str) or not _TAG.match(t)]
        if bad:
            problems.add(line, f"tag {bad[0]!r} is not O, B-TYPE or I-TYPE (IOB2 tags, e.g. B-PER, I-PER).")
            return None
        return " ".join(tokens), bio_to_entities(tokens, tags)
    text, spans = obj.get("text"), obj.get("entities")
    if not isinstance(text, str) or not text.strip() or not isinstance(spans, list):
        problems.add(line, "give either 'tokens' and 'tags', or 'text' and 'entities' (a list).")
        return None
    entities = []
    for j, span in enumerate(spans):
        if not isinstance(span, dict) or not isinstance(span.get("label"), str) or not span["label"]:
            problems.add(line, f"entities[{j}] must be an object with a 'label' and 'start'/'end' or 'text'.")
            return None
        if "start" in span or "end" in span:
            s, e = span.get("start"), span.get("end")
            if not (isinstance(s, int) and isinstance(e, int) and 0 <= s < e <= len(text)):
                problems.add(
                    line, f"entities[{j}]: start/end must be offsets with 0 <= start < end <= {len(text)}."
                )
                return None
            entities.append(Entity(text[s:e], span["label"], s, e))
        elif isinstance(span.get("text"), str) and span["text"] in text:
            s = text.index(span["text"])
            entities.append(Entity(span["text"], span["label"], s, s + len(span["text"])))
        else:
            problems.add(line, f"entities[{j}]: 'text' {span.get('text')!r} does not occur in the sentence.")
            return None
    return text, entities


_COLUMNS = {
    "classification": ("text", "label"),
    "translation": ("source", "target"),
    "summarization": ("text", "summary"),
    "code": ("prompt", "tests"),
}
_JSONL_ONLY = {"ner", "code"}


def load_dataset(task: str, path: str | Path, *, limit: int | None = None) -> Dataset:
    """Read and validate ``path`` for ``task``; the first ``limit`` rows only when given.

    Raises:
        UsageError: the file is missing, of an unknown format, lacks a column, or has bad rows (each named
            by its line, up to ten at a time).
    """
    from ..suite.dataset import guess_format, read_table

    path = Path(path)
    hint = f"See docs/tasks.md for the {task} data format."
    if not path.is_file():
        raise UsageError(f"No data file at {path}. Give a CSV or JSONL file of labeled examples with --data.")
    fmt = guess_format(path)
    if fmt is None:
        raise UsageError(f"{path}: unknown file type {path.suffix!r}; name the file .csv or .jsonl. {hint}")
    if fmt == "csv" and task in _JSONL_ONLY:
        raise UsageError(f"{path}: {task} data must be JSONL (one JSON object per line), not CSV. {hint}")
    table = read_table(path, fmt)
    problems = _Problems(path)
    for line, message in table.problems:
        problems.add(line, message)
    problems.raise_if_any(hint)
    rows = table.rows[:limit] if limit else table.rows
    if not rows:
        raise UsageError(f"{path} has no rows of data. {hint}")

    mode = None
    needed = _COLUMNS.get(task, ())
    if task == "embeddings":
        cols = set(table.columns)
        if {"sentence1", "sentence2", "score"} <= cols:
            mode, needed = "sts", ("sentence1", "sentence2", "score")
        elif {"query", "document"} <= cols:
            mode, needed = "retrieval", ("query", "document")
        else:
            raise UsageError(
                f"{path}: embeddings data needs the columns sentence1,sentence2,score (STS) "
                "or query,document "
                f"(retrieval); found: {', '.join(table.columns) or 'none'}. {hint}"
            )
    if fmt == "csv":
        missing = [c for c in needed if c not in table.columns]
        if missing:
            raise UsageError(
                f"{path}: missing column {missing[0]!r}: {task} data needs the columns {','.join(needed)} "
                f"(found: {', '.join(table.columns)}). {hint}"
            )

    cases: list[TaskCase] = []
    corpus: dict[str, int] = {}
    for row in rows:
        obj, line = row.values, row.line
        if fmt == "jsonl":
            absent = [c for c in needed if c not in obj]
            if absent:
                problems.add(line, f"missing field {absent[0]!r} ({task} rows need {', '.join(needed)}).")
                continue
        case_id = str(obj.get("id") or obj.get("task_id") or f"line {line}")
        extra: dict[str, Any] = {}
        if task == "ner":
            parsed = _ner_case(obj, line, problems)
            if parsed is None:
                continue
            text, gold = parsed
        elif task == "embeddings" and mode == "sts":
            text, other = _text(obj, "sentence1", line, problems), _text(obj, "sentence2", line, problems)
            try:
                gold = float(obj.get("score"))
            except (TypeError, ValueError):
                problems.add(line, f"'score' must be a number, not {obj.get('score')!r}.")
                continue
            if text is None or other is None:
                continue
            extra["sentence2"] = other
        elif task == "embeddings":
            text, doc = _text(obj, "query", line, problems), _text(obj, "document", line, problems)
            if text is None or doc is None:
                continue
            gold = corpus.setdefault(doc, len(corpus))
        else:
            first, second = needed
            text, gold = _text(obj, first, line, problems), _text(obj, second, line, problems)
            if text is None or gold is None:
                continue
            if task == "classification":
                gold = gold.strip()
            if task == "code":
                try:
                    compile(gold, "tests", "exec", dont_inherit=True)
                except (SyntaxError, ValueError) as exc:
                    problems.add(line, f"'tests' is not valid Python ({exc}).")
                    continue
            for key in ("source_lang", "target_lang", "entry_point"):
                if obj.get(key):
                    extra[key] = str(obj[key])
        cases.append(TaskCase(index=len(cases), id=case_id, line=line, input=text, gold=gold, extra=extra))
    problems.raise_if_any(hint)
    labels = sorted({c.gold for c in cases}) if task == "classification" else []
    if task == "ner":
        labels = sorted({e.label for c in cases for e in c.gold})
    if task == "classification" and len(labels) < 2:
        raise UsageError(
            f"{path}: classification needs at least two different labels; found {labels}. {hint}"
        )
    return Dataset(task=task, path=path, cases=cases, mode=mode, labels=labels, corpus=list(corpus))
