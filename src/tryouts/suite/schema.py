"""The suite file format as pydantic models (which are also its JSON Schema), and its expansion.

A suite runs every prompt x every case x every model, ``repeats`` times. :meth:`Suite.case_items`
renders each prompt for each case; :meth:`Suite.cells` pairs those with the models and repeats into
the :class:`Cell` objects the engine runs. See docs/suites.md for the format, with examples.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ..errors import UsageError
from ..providers import all_providers, get_info
from ..types import Cell, GenParams, LazyCell, Message, ModelSpec
from . import template
from .cases import collect_cases, rendered_size_problems, template_problems
from .issues import TAG_MAP, TAG_STR, Loc, Problem, SuiteError, locate
from .limits import MAX_CELLS, describe_int
from .settings import RateLimit, Retries, Timeouts  # re-exported: the run settings' models

#: shown when a model entry is neither a string nor a mapping
_MODEL_FORM = "should be a model reference such as openai:gpt-6-luna, or a mapping with a 'model' key"
_PROMPT_FORM = "should be a prompt text, or a mapping with 'text' or 'messages' (and optionally 'id')"
_DATASET_FORM = "should be a file name such as questions.csv, or a mapping with a 'path' key"


def _err(kind: str, message: str) -> PydanticCustomError:
    """A validation error whose message is exactly ``message`` (braces in it are not a template)."""
    return PydanticCustomError(kind, "{message}", {"message": message})


def _form(value: Any) -> str | None:
    """Which form a "string or mapping" field was written in."""
    if isinstance(value, str):
        return TAG_STR
    if isinstance(value, dict | BaseModel):
        return TAG_MAP
    return None


def check_reference(ref: str) -> str:
    """``ref`` if it is ``PROVIDER:MODEL`` with a registered provider (no provider module is imported)."""
    try:
        get_info(ModelSpec.parse(ref).provider)
    except UsageError as e:
        raise _err("model_reference", e.message) from None
    return ref


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


# ---- models ------------------------------------------------------------------------------------


class ModelEntry(_Strict):
    """A model to run, with an optional label, provider options and generation parameters."""

    model: str = Field(
        description="The model reference PROVIDER:MODEL, e.g. openai:gpt-6-luna, hf:Qwen/Qwen2.5-0.5B-Instruct, "
        "llamacpp:./model.gguf, openai-compat:http://127.0.0.1:8080/v1#name ('tryouts providers' lists providers).",
    )
    label: str | None = Field(
        default=None, min_length=1,
        description="The name shown for this model in tables and reports; unique in the suite. Default: the reference.",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Provider options, e.g. {dtype: bfloat16} for hf or {base_url: ...} for openai "
        "(the README lists each provider's options).",
    )
    params: GenParams = Field(
        default_factory=GenParams,
        description="Generation parameters for this model only; each one given here overrides defaults.params.",
    )
    batch: bool | None = Field(
        default=None,
        description="Send this model's cells through its provider's batch API (OpenAI, Anthropic, OpenRouter): "
        "half price, "
        "answers within 24 h, no timings (docs/batch.md). Default: the suite's batch.",
    )

    @field_validator("model")
    @classmethod
    def _valid_reference(cls, ref: str) -> str:
        return check_reference(ref)


def _model_from_str(ref: str) -> ModelEntry:
    return ModelEntry(model=check_reference(ref))


ModelRef = Annotated[
    Annotated[str, AfterValidator(_model_from_str), Tag(TAG_STR)] | Annotated[ModelEntry, Tag(TAG_MAP)],
    Discriminator(_form, custom_error_type="model_form", custom_error_message=_MODEL_FORM),
]


# ---- prompts -----------------------------------------------------------------------------------


class ChatMessage(_Strict):
    """One message of a chat prompt."""

    role: Literal["system", "user", "assistant"] = Field(
        description="system (instructions), user (the question) or assistant (an earlier answer, for few-shot chats).",
    )
    content: str = Field(description="The message text; {{ name }} is replaced by the case's var 'name'.")


class PromptEntry(_Strict):
    """A prompt written as a mapping: an id and either a text (one user message) or a chat."""

    id: str | None = Field(
        default=None, min_length=1,
        description="The prompt's name in results and reports; unique in the suite. Default: p1, p2 ... by position.",
    )
    text: str | None = Field(
        default=None, min_length=1,
        description="The prompt as one user message; {{ name }} is replaced by the case's var 'name'. "
        "Give either text or messages.",
    )
    messages: list[ChatMessage] | None = Field(
        default=None, min_length=1,
        description="The prompt as a chat: a list of {role, content}, with at least one user message. "
        "Give either text or messages.",
    )
    _plain: bool = PrivateAttr(default=False)

    @field_validator("messages")
    @classmethod
    def _has_user_message(cls, messages: list[ChatMessage] | None) -> list[ChatMessage] | None:
        if messages is not None and not any(m.role == "user" for m in messages):
            raise _err("prompt_no_user", "has no user message: add one, e.g. {role: user, content: \"{{question}}\"}.")
        return messages

    @model_validator(mode="after")
    def _one_form(self) -> PromptEntry:
        if self.text is not None and self.messages is not None:
            raise _err("prompt_text_or_messages", "a prompt has either 'text' (one user message) or 'messages' (a chat), not both: "
                       "keep one of them.")
        if self.text is None and self.messages is None:
            raise _err("prompt_text_or_messages", "a prompt mapping needs 'text' (one user message) or 'messages' (a chat): add one.")
        return self

    def chat(self) -> list[ChatMessage]:
        """The prompt's messages before rendering (``text`` is one user message)."""
        if self.messages is not None:
            return list(self.messages)
        return [ChatMessage(role="user", content=self.text or "")]


def _prompt_from_str(text: str) -> PromptEntry:
    prompt = PromptEntry(text=text)
    prompt._plain = True
    return prompt


PromptRef = Annotated[
    Annotated[str, Field(min_length=1), AfterValidator(_prompt_from_str), Tag(TAG_STR)]
    | Annotated[PromptEntry, Tag(TAG_MAP)],
    Discriminator(_form, custom_error_type="prompt_form", custom_error_message=_PROMPT_FORM),
]


# ---- cases and dataset -------------------------------------------------------------------------


class AssertSpec(BaseModel):
    """A check of the answer: a 'type' and its arguments, e.g. {type: icontains, value: pretrained}."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="The kind of check, e.g. icontains; the other keys are its arguments.")


class CaseEntry(_Strict):
    """One case: the vars that fill a prompt's {{ placeholders }}, and what a good answer is."""

    id: str | None = Field(
        default=None, min_length=1,
        description="The case's name in results and reports; unique in the suite. Default: c1, c2 ... by position.",
    )
    vars: dict[str, Any] = Field(
        default_factory=dict, description="Values for the prompts' {{ name }} placeholders (converted with str()).",
    )
    expected: str | None = Field(default=None, description="The expected answer, kept with every result of this case.")
    asserts: list[AssertSpec] = Field(
        default_factory=list, alias="assert",
        description="Checks of the answer, each a mapping with a 'type'. Stored with the results.",
    )


class DatasetSpec(_Strict):
    """Cases read from a file: one case per row; every column except the id and expected ones is a var."""

    path: str = Field(
        min_length=1,
        description="The file, relative to the suite file's folder: .csv (with a header row) or .jsonl "
        "(one JSON object per line).",
    )
    format: Literal["csv", "jsonl"] | None = Field(
        default=None, description="csv or jsonl. Default: from the file's extension.",
    )
    expected: str | None = Field(
        default=None,
        description="The column holding the expected answer. Default: the column 'expected' when there is one.",
    )
    id: str | None = Field(
        default=None,
        description="The column holding each case's id. Default: the column 'id' when there is one, else "
        "c1, c2 ... by position.",
    )


def _dataset_from_str(path: str) -> DatasetSpec:
    return DatasetSpec(path=path)


DatasetRef = Annotated[
    Annotated[str, Field(min_length=1), AfterValidator(_dataset_from_str), Tag(TAG_STR)]
    | Annotated[DatasetSpec, Tag(TAG_MAP)],
    Discriminator(_form, custom_error_type="dataset_form", custom_error_message=_DATASET_FORM),
]


# ---- run settings ------------------------------------------------------------------------------


class Defaults(_Strict):
    """Settings every model and prompt starts from."""

    params: GenParams = Field(
        default_factory=GenParams,
        description="Generation parameters for every model (a model's own params override them one by one).",
    )
    system: str | None = Field(
        default=None,
        description="A system message put before every prompt that has no system message of its own; "
        "may use {{ name }} placeholders.",
    )


# ---- the expansion -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseItem:
    """One prompt x one case, rendered. ``index`` is 0-based in the order: for each prompt, for each case."""

    index: int
    prompt_id: str
    case_id: str
    vars: dict[str, Any]
    expected: str | None
    asserts: list[dict]
    messages: list[Message]


# ---- scoring -----------------------------------------------------------------------------------


class JudgeSpec(_Strict):
    """An LLM judge: any model Tryouts can run, scoring answers on a rubric and/or comparing them in pairs."""

    model: ModelRef = Field(
        description="The judge model: a reference PROVIDER:MODEL or a mapping {model, options, params}. Its own "
        "cost and latency are recorded apart from the run's results.",
    )
    rubric: str | None = Field(
        default=None, min_length=1,
        description="Score every successful answer on this rubric (the judge replies with a score and a rationale).",
    )
    scale: tuple[int, int] = Field(default=(1, 5), description="The rubric's lowest and highest score, e.g. [1, 5].")
    pairwise: bool = Field(
        default=False,
        description="Compare the models' answers to each case in pairs, asking twice with the order swapped; "
        "only verdicts that agree both ways count (stored as judge votes for 'tryouts rank').",
    )
    criteria: str = Field(
        default="Which answer responds to the user better: more correct, more helpful, clearer?",
        min_length=1, description="The question a pairwise judge answers.",
    )

    @field_validator("scale")
    @classmethod
    def _ordered(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] >= v[1]:
            raise _err("scale", f"the scale's lowest score must be below its highest, not {list(v)}")
        return v

    @model_validator(mode="after")
    def _has_a_job(self) -> JudgeSpec:
        if not self.rubric and not self.pairwise:
            raise _err("judge_job", "a judge needs something to do: a 'rubric' to score each answer on, "
                       "'pairwise: true' to compare answers in pairs, or both.")
        return self


def _scorer_ref(item: str) -> str:
    target, sep, fn = item.rpartition(":")
    if not sep or not target or not fn.isidentifier():
        raise _err("scorer", f"{item!r} should be 'file.py:function' or 'package.module:function'")
    return item


class ScoringSpec(_Strict):
    """Scores computed after the answers are in: embedding similarity, custom scorers, an LLM judge."""

    embedding: str | None = Field(
        default=None, min_length=1,
        description="A sentence-transformers model (Hub id in the cache, or a local folder): cosine similarity "
        "of each answer to its case's expected answer, stored as scores.reference.embedding.",
    )
    scorers: list[Annotated[str, AfterValidator(_scorer_ref)]] = Field(
        default_factory=list,
        description="Custom Python scorers, 'file.py:function' (relative to this file) or 'package.module:function'; "
        "each is called as function(output, context) and returns a bool, a number or {score, passed, reason}.",
    )
    judge: JudgeSpec | None = Field(default=None, description="An LLM judge: rubric scores and/or pairwise preferences.")


# ---- the suite ---------------------------------------------------------------------------------


class Suite(_Strict):
    """A Tryouts suite: every prompt x every case x every model, repeats times (see docs/suites.md)."""

    description: str | None = Field(default=None, description="What this suite is for, shown with its runs.")
    models: list[ModelRef] = Field(
        min_length=1,
        description="The models to run: a reference PROVIDER:MODEL, or a mapping {model, label, options, params}.",
    )
    defaults: Defaults = Field(default_factory=Defaults, description="Generation parameters and a system message for all.")
    prompts: list[PromptRef] = Field(
        min_length=1,
        description="The prompts: a text (one user message), or a mapping {id, text} or {id, messages}. "
        "{{ name }} is replaced by the case's var 'name'.",
    )
    cases: list[CaseEntry] = Field(
        default_factory=list,
        description="Cases written here, each {id, vars, expected, assert}. With no cases and no dataset, "
        "each prompt runs once with no vars.",
    )
    dataset: DatasetRef | None = Field(
        default=None,
        description="More cases from a .csv or .jsonl file (path relative to this file): a file name, or "
        "{path, expected, id, format}.",
    )
    repeats: int = Field(default=1, ge=1, description="How many times each model answers each case (1 or more).")
    concurrency: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict,
        description="Most requests in flight at once, per provider name (e.g. openai: 8); 'default' for the "
        "others (default 4).",
    )
    rate_limits: dict[str, RateLimit] = Field(
        default_factory=dict,
        description="Budgets per provider name, e.g. openai: {requests_per_minute: 500, tokens_per_minute: 200000}: "
        "one lane never exceeds them, however many workers run it.",
    )
    retries: Retries = Field(default_factory=Retries, description="Retrying failures that may pass on a second try.")
    timeouts: Timeouts = Field(default_factory=Timeouts, description="Time limits of one request, in seconds.")
    scoring: ScoringSpec | None = Field(
        default=None,
        description="Scores computed once the answers are in: {embedding, scorers, judge} (see docs/scoring.md).",
    )
    batch: bool = Field(
        default=False,
        description="Send every model's cells through its provider's batch API where it has one (OpenAI, "
        "Anthropic, OpenRouter); the others stream as usual. Half price, answers within 24 h, no timings (docs/batch.md).",
    )
    batch_poll_s: float = Field(
        default=30.0, gt=0, le=3600, description="Seconds between two polls of a batch job.")

    _source: Path | None = PrivateAttr(default=None)
    _label: str | None = PrivateAttr(default=None)
    _node: yaml.Node | None = PrivateAttr(default=None)
    _items: list[CaseItem] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _finish(self, info: ValidationInfo) -> Suite:
        """Give prompts and cases their default ids; check what pydantic cannot (unless deferred)."""
        context = info.context or {}
        if context.get("source") is not None:
            self._source = Path(context["source"])
            self._label = str(context["source"])
        for i, prompt in enumerate(self.prompts):
            if prompt.id is None:
                prompt.id = f"p{i + 1}"
        for i, case in enumerate(self.cases):
            if case.id is None:
                case.id = f"c{i + 1}"
        if not context.get("defer_checks"):
            problems = self._static_problems()
            if problems:
                raise self._error(problems)
        return self

    # -- what the engine uses --

    @property
    def source(self) -> Path | None:
        """The file this suite was loaded from, as given to :func:`load_suite` (None for a string)."""
        return self._source

    @property
    def base_dir(self) -> Path:
        """The folder a dataset path is relative to: the suite file's folder, else the working directory."""
        return self._source.parent if self._source is not None else Path.cwd()

    def model_specs(self) -> list[ModelSpec]:
        """Each model's reference and options, in suite order."""
        return [ModelSpec.parse(m.model, m.options) for m in self.models]

    def model_labels(self) -> list[str]:
        """Each model's label, or its reference when it has none (unique), in suite order."""
        return [m.label or m.model.strip() for m in self.models]

    def params_for(self, model_index: int) -> GenParams:
        """``defaults.params`` with the model's own ``params`` laid over them, field by field."""
        own = self.models[model_index].params.model_dump(exclude_unset=True)
        return GenParams.model_validate({**self.defaults.params.model_dump(exclude_unset=True), **own})

    def case_items(self) -> list[CaseItem]:
        """Every prompt x every case, rendered; the dataset is read once (cached). Raises SuiteError."""
        if self._items is None:
            items, problems = self._build()
            if problems:
                raise self._error(problems)
            self._items = items
        return list(self._items)

    def cells(self) -> Iterator[Cell]:
        """Every cell (a :class:`~tryouts.types.LazyCell`), in the order: for each repeat, for each case item, for
        each model.

        Repeats are the outer loop so that a run cut short has every case at least once per model, and
        samples of one case are spread over time. Each read of a cell's request builds a new Request.
        """
        items = self.case_items()
        specs = self.model_specs()
        params = [self.params_for(i) for i in range(len(specs))]
        models = [f"{label}\0{spec.model_dump_json()}" for label, spec in zip(self.model_labels(), specs, strict=True)]
        param_json = [p.model_dump_json() for p in params]
        for r in range(self.repeats):
            for item in items:
                sent = Message.model_dump_json  # the request's identity: its messages and parameters
                what = "\0".join(sent(msg) for msg in item.messages)
                for m, spec in enumerate(specs):
                    key = hashlib.sha256(f"{models[m]}\0{item.prompt_id}\0{item.case_id}\0{r}\0{what}\0"
                                         f"{param_json[m]}".encode()).hexdigest()
                    yield LazyCell(m, item.index, r, spec, item.messages, params[m], key)

    def n_cells(self) -> int:
        """How many cells :meth:`cells` yields: repeats x case items x models."""
        return self.repeats * len(self.case_items()) * len(self.models)

    def to_data(self) -> dict[str, Any]:
        """The suite as plain data that :meth:`Suite.model_validate` turns back into the same suite.

        Only what the file set is kept (``exclude_unset``): a full ``model_dump()`` would write every
        GenParams field into each model's ``params``, and those would then override ``defaults.params``.
        """
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)

    def concurrency_for(self, provider: str) -> int:
        """The concurrency limit for ``provider``: its own, else ``default``, else 4."""
        return self.concurrency.get(provider, self.concurrency.get("default", 4))

    # -- checks and expansion --

    def _error(self, problems: list[Problem]) -> SuiteError:
        label = self._label or (str(self._source) if self._source is not None else None)
        return SuiteError(locate(problems, label, self._node))

    def _static_problems(self) -> list[Problem]:
        """What pydantic cannot check on its own: unique labels and prompt ids, concurrency keys."""
        problems: list[Problem] = []
        labels: dict[str, int] = {}
        for i, label in enumerate(self.model_labels()):
            if label in labels:
                loc: Loc = ("models", i, "label") if self.models[i].label else ("models", i)
                problems.append(Problem(
                    loc, f"the label {label!r} is already used by models[{labels[label]}]: give each model a "
                    "distinct 'label' (the same model listed twice needs labels to tell its results apart).",
                ))
            else:
                labels[label] = i
        ids: dict[str, int] = {}
        for i, prompt in enumerate(self.prompts):
            assert prompt.id is not None
            if prompt.id in ids:
                problems.append(Problem(
                    ("prompts", i, "id"),
                    f"the prompt id {prompt.id!r} is already used by prompts[{ids[prompt.id]}]: give each prompt a "
                    "distinct id.",
                ))
            else:
                ids[prompt.id] = i
        from ..errors import UsageError
        from ..scoring.assertions import parse_assertion

        for i, case in enumerate(self.cases):
            for j, spec in enumerate(case.asserts):
                where = f"cases[{i}].assert[{j}]"
                try:  # a bad regex or JSON Schema is refused now, not when the first answer arrives
                    parse_assertion(spec.model_dump(), where)
                except UsageError as exc:  # the location is added by Problem: keep the field and the message
                    problems.append(Problem(("cases", i, "assert", j), str(exc).removeprefix(where).lstrip(".: ")))
        names = {p.name for p in all_providers()}
        for field_name, keys in (("concurrency", self.concurrency), ("rate_limits", self.rate_limits)):
            for key in keys:
                if (key != "default" or field_name != "concurrency") and key not in names:
                    known = ", ".join(sorted(names)) + (" or 'default'" if field_name == "concurrency" else "")
                    problems.append(Problem(
                        (field_name, key), f"{key!r} is not a provider: {field_name} keys are provider names ({known}).",
                    ))
        return problems

    def _build(self) -> tuple[list[CaseItem], list[Problem]]:
        cases, problems, columns = collect_cases(self)
        if problems:
            return [], problems
        problems = template_problems(self, cases, columns)
        if problems:
            return [], problems
        n = self.repeats * len(self.prompts) * len(cases) * len(self.models)
        if n > MAX_CELLS:
            shown = describe_int(self.repeats)
            return [], [Problem(
                ("repeats",) if "repeats" in self.model_fields_set else (),
                f"this suite plans {f'{n:,}' if n < 10**15 else 'more than 10^15'} cells (repeats {shown} x "
                f"{len(self.prompts)} prompts x {len(cases)} cases x {len(self.models)} models), more than the "
                f"{MAX_CELLS:,} one suite may plan: lower repeats, or split the cases or models over several suites.",
            )]
        problems = rendered_size_problems(self, cases)
        if problems:
            return [], problems
        items: list[CaseItem] = []
        for prompt in self.prompts:
            assert prompt.id is not None
            for case in cases:
                items.append(CaseItem(
                    index=len(items), prompt_id=prompt.id, case_id=case.id, vars=dict(case.vars),
                    expected=case.expected, asserts=[dict(a) for a in case.asserts],
                    messages=self._render(prompt, case.vars),
                ))
        return items, []

    def _render(self, prompt: PromptEntry, values: dict[str, Any]) -> list[Message]:
        chat = prompt.chat()
        messages = [Message(role=m.role, content=template.render(m.content, values)) for m in chat]
        if self.defaults.system is not None and not any(m.role == "system" for m in chat):
            messages.insert(0, Message(role="system", content=template.render(self.defaults.system, values)))
        return messages
