"""What each model is sent and how its answer becomes a prediction.

A local ``hf:`` model runs as the task's transformers pipeline and is sent the case's text as is; its answer
is the pipeline's JSON. Every other model (and an ``hf:`` model with ``task=text-generation``) is a chat
model: it gets the task's prompt below and its answer text is parsed.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import UsageError
from .data import Dataset, Entity, TaskCase
from .metrics import match_label

__all__ = ["build_prompt", "parse_answer"]

_FENCE = re.compile(r"```[A-Za-z0-9_+-]*\s*\n?(.*?)```", re.DOTALL)


def build_prompt(
    task: str, case: TaskCase, data: Dataset, *, src_lang: str | None = None, tgt_lang: str | None = None
) -> str:
    """The chat prompt for ``case``.

    Raises:
        UsageError: a translation case with no target language (no ``target_lang`` column and no --tgt-lang).
    """
    if task == "classification":
        return (
            f"Classify the text into exactly one of these labels: {', '.join(data.labels)}.\n"
            f"Answer with the label only.\n\nText: {case.input}"
        )
    if task == "ner":
        types = ", ".join(data.labels) or "PER, ORG, LOC"
        return (
            "Find the named entities in the text. The entity types are: " + types + ".\n"
            'Answer with a JSON list only, one object per entity: {"text": the entity exactly as written in '
            'the text, "label": its type}. Answer [] when there is none.\n\nText: ' + case.input
        )
    if task == "translation":
        tgt = case.extra.get("target_lang") or tgt_lang
        src = case.extra.get("source_lang") or src_lang
        if not tgt:
            raise UsageError(
                f"{data.path}: case {case.id} has no target language for a chat model: "
                "add a target_lang column "
                "or pass --tgt-lang (e.g. --tgt-lang German)."
            )
        origin = f" from {src}" if src else ""
        instruction = f"Translate the following text{origin} into {tgt}. Answer with the translation only."
        return f"{instruction}\n\n{case.input}"
    if task == "summarization":
        return (
            "Summarize the following text in one or two sentences. Answer with the summary only.\n\n"
            + case.input
        )
    if task == "code":
        entry = case.extra.get("entry_point")
        defines = f"; it must define `{entry}`" if entry else ""
        return (
            f"{case.input}\n\nWrite the complete solution in Python{defines}. "
            "Answer with the code in one ```python fenced block."
        )
    raise UsageError(f"The {task} task sends no prompt.")


def _json_value(text: str) -> Any:
    """The JSON in ``text``: the whole answer, else a fenced block, else the outermost [...] span."""
    candidates = [text.strip(), *(m.strip() for m in _FENCE.findall(text))]
    if "[" in text and "]" in text:
        candidates.append(text[text.index("[") : text.rindex("]") + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except (json.JSONDecodeError, ValueError):
            continue
    return None


def _items(value: Any) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) else [value]
    if items and isinstance(items[0], list):  # a pipeline called on a batch
        items = items[0]
    return [item for item in items if isinstance(item, dict)]


def _pipeline_entities(value: Any, text: str) -> list[Entity]:
    entities = []
    for item in _items(value):
        label = str(item.get("entity_group") or item.get("entity") or "")
        label = re.sub(r"^[BIES]-", "", label)
        if not label or label == "O":
            continue
        start, end = item.get("start"), item.get("end")
        if isinstance(start, int) and isinstance(
            end, int
        ):  # the span in the input, not the tokenizer's "word"
            entities.append(Entity(text[start:end], label, start, end))
        else:
            entities.append(Entity(str(item.get("word", "")), label))
    return entities


def _chat_entities(answer: str) -> list[Entity] | None:
    value = _json_value(answer)
    if not isinstance(value, list):
        return None
    entities = []
    for item in value:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("text"), str)
            and isinstance(item.get("label"), str)
        ):
            return None
        entities.append(Entity(item["text"], item["label"]))
    return entities


def parse_answer(task: str, text: str, *, pipeline: bool, case: TaskCase, data: Dataset) -> tuple[Any, bool]:
    """``(prediction, valid)`` from a model's answer.

    Predictions: classification a label (None when the answer names none), ner a list of :class:`Entity`,
    translation and summarization the text, code the code to run. ``valid`` is False when the answer did not
    have the expected form (no label, no JSON list of entities, an empty pipeline result).
    """
    if pipeline:
        value = _json_value(text)
        if task == "classification":
            items = _items(value)
            label = match_label(str(items[0].get("label", "")), data.labels) if items else None
            return label, label is not None
        if task == "ner":
            return _pipeline_entities(value, case.input), isinstance(value, list)
        for item in _items(value):
            for key in ("translation_text", "summary_text", "generated_text"):
                if isinstance(item.get(key), str):
                    return item[key].strip(), True
        return "", False
    if task == "classification":
        label = match_label(text, data.labels)
        return label, label is not None
    if task == "ner":
        entities = _chat_entities(text)
        return (entities or []), entities is not None
    if task == "code":
        from ..scoring.sandbox import extract_code

        code = extract_code(text)
        return code, bool(code.strip())
    answer = text.strip()
    return answer, bool(answer)
