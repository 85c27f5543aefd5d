"""What ``tryouts init`` writes: a starter suite, every section commented, and a custom scorer file.

:func:`suite_text` takes what :func:`tryouts.usecases.init.detect` found; every value that comes from this
machine (a path, a model name from a server) is written as a double-quoted YAML string, with ``${`` escaped
so the suite loader never reads it as an environment variable.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from .init import Detection, Found

SCORER_FILE = "scorers.py"
SCORER_NAME = "matches_expected"

#: shown, commented out, when the suite has no model of that kind yet
_LOCAL_SUGGESTIONS = (
    ("ollama:llama3.2", "ollama pull llama3.2, then ollama serve"),
    ("llamacpp:./models/MODEL.gguf", "a GGUF file, run in process by llama.cpp"),
    ("hf:Qwen/Qwen2.5-0.5B-Instruct", "transformers; from the Hugging Face cache when offline"),
)

_ENV_REF = re.compile(r"\$(?=\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\})")


def q(value: str) -> str:
    """``value`` as a double-quoted YAML string that the suite loader reads back unchanged."""
    return _ENV_REF.sub("$$", json.dumps(value, ensure_ascii=False))


def _entry(m: Found, indent: str = "  ") -> list[str]:
    """One model of the models list, in its shortest form."""
    if not m.label and not m.options:
        return [f"{indent}- {q(m.ref)}"]
    lines = [f"{indent}- model: {q(m.ref)}"]
    if m.label:
        lines.append(f"{indent}  label: {q(m.label)}")
    if m.options:
        inner = ", ".join(f"{k}: {q(str(v))}" for k, v in m.options.items())
        lines.append(f"{indent}  options: {{{inner}}}")
    return lines


def _commented(ref: str, options: dict) -> str:
    if not options:
        return f"  # - {q(ref)}"
    inner = ", ".join(f"{k}: {q(str(v))}" for k, v in options.items())
    return f"  # - {{model: {q(ref)}, options: {{{inner}}}}}"


def comment(text: str, indent: str = "", width: int = 110) -> list[str]:
    """``text`` as YAML comment lines of at most about ``width`` characters."""
    import textwrap

    return [f"{indent}# {line}" for line in textwrap.wrap(text, width - len(indent) - 2, break_long_words=False,
                                                           break_on_hyphens=False)] or [f"{indent}#"]


def _models(detection: Detection) -> list[str]:
    lines = []
    for m in detection.models:
        if m.kind == "given":
            lines.append("  # given on the command line")
        elif m.why:
            lines += comment(f"{'not found' if m.kind == 'placeholder' else 'found'}: {m.why}", "  ")
        lines += _entry(m)
        if m.more:
            lines.append(f"  # {len(m.more)} more from the same place (uncomment a line to add it):")
            lines += [_commented(ref, m.options) for ref in m.more]
    have = {m.ref.partition(":")[0] for m in detection.models}
    order = {name: i for i, name in enumerate(("openai", "anthropic", "gemini", "mistral", "groq"))}
    suggestions = sorted(((ref, need) for ref, need in detection.suggestions if ref.partition(":")[0] not in have),
                         key=lambda item: ("is set" not in item[1], order.get(item[0].partition(":")[0], len(order))))[:4]
    suggestions += [(ref, need) for ref, need in _LOCAL_SUGGESTIONS if ref.partition(":")[0] not in have][:2]
    if suggestions:
        width = max(len(q(ref)) for ref, _ in suggestions)
        lines.append("  # More you could add when they are ready here (uncomment the line):")
        lines += [f"  # - {q(ref):<{width}}  # {need}" for ref, need in suggestions]
    return lines


def suite_text(detection: Detection, *, suite_name: str = "tryouts.yaml", scorers: bool = True) -> str:
    """The starter suite for ``detection``'s models: YAML with a comment on every section."""
    n = len(detection.models)
    requests = n * 3
    picked = ("They were picked because they are ready on this machine now (tryouts init looked for API keys, "
              "local servers and model files)" if detection.models[0].kind != "given"
              else "They were given to tryouts init with --model")
    if detection.offline:
        picked = ("Nothing else was ready here, so these are the offline demo models: no network, no key "
                  "(tryouts providers says what else you could set up)")
    out = [
        f"# A starter suite written by `tryouts init`: {n} model{'s' * (n != 1)} x 1 prompt x 3 cases x 1 repeat "
        f"= {requests} requests.",
        f"#   tryouts run {suite_name} --dry-run   # the plan: requests, estimated tokens, cost and time; sends nothing",
        f"#   tryouts run {suite_name}             # run, score and store every answer (then: tryouts show latest)",
        "# The format, key by key: docs/suites.md; assertions and scorers: docs/scoring.md.",
        "# A ${NAME} in a value is read from the environment when the suite loads (not in comments like this one).",
        "",
        "description: Starter suite from tryouts init, three small checks on every model",
        "",
        "# The models, each a reference PROVIDER:MODEL (tryouts providers lists the providers and what each needs),",
        "# or a mapping {model, label, options, params}. Every model answers every prompt x case.",
        *comment(f"{picked}."),
        *(comment("A ./path is relative to the folder tryouts runs in (where tryouts init ran), not to this file.")
          if any(":./" in m.ref for m in detection.models) else []),
        "models:",
        *_models(detection),
        "",
        "# Generation parameters for every model; a model's own `params:` overrides them. temperature 0 asks for",
        "# the most likely answer, so models and runs are comparable; max_tokens caps each answer's length, and",
        "# what it can cost (a thinking model may need more). The system message goes before every prompt.",
        "defaults:",
        "  params: {temperature: 0, max_tokens: 256}",
        "  system: You are a concise assistant. Answer briefly and directly.",
        "",
        "# The prompts: a text is one user message; {{question}} is replaced by each case's var `question`.",
        "# A prompt can also be a chat: {id, messages: [{role: system|user|assistant, content}]}.",
        "prompts:",
        "  - id: ask",
        '    text: "{{question}}"',
        "",
        "# The cases: `vars` fill the prompt; `expected` is the expected answer (each answer gets exact_match,",
        "# token_f1 and edit_similarity against it); `assert` lists deterministic checks of each answer, and a",
        "# case passes when all of its checks pass. Types: equals, contains, icontains, regex, starts-with,",
        "# is-json, json-schema, length, latency-ms, cost-usd; not-TYPE negates one. More cases can come from a",
        "# CSV or JSONL file: `dataset: cases.csv` (one case per row, columns become vars).",
        "cases:",
        "  - id: capital",
        '    vars: {question: "What is the capital of France? Answer in one sentence."}',
        "    expected: The capital of France is Paris.",
        "    assert:",
        "      - {type: icontains, value: paris}      # names Paris, in any case",
        "      - {type: length, max: 300}             # and stays short (characters)",
        "  - id: sum",
        '    vars: {question: "What is 12 + 30? Reply with the number only."}',
        '    expected: "42"',
        "    assert:",
        "      - {type: regex, value: '\\b42\\b'}       # the number, as a word of its own",
        '      - {type: not-icontains, value: "as an ai"}',
        "  - id: json",
        '    vars: {question: \'Which city is the capital of Japan? Reply with JSON only, like {"capital": "..."}\'}',
        "    expected: '{\"capital\": \"Tokyo\"}'",
        "    assert:",
        "      - {type: is-json}                      # parses as JSON (one Markdown code fence is allowed)",
        "      - {type: icontains, value: tokyo}",
        "",
        "# How many times each model answers each case, as independent samples. Raise it (3 to 5) for timing",
        "# percentiles and quality intervals that mean something; every repeat is one more request per cell.",
        "repeats: 1",
        "",
    ]
    if scorers:
        out += [
            f"# Scores computed once every answer is in: here the custom Python scorer in {SCORER_FILE}, next to",
            "# this file. Embedding similarity and an LLM judge (rubric scores, pairwise verdicts) go here too.",
            "scoring:",
            f"  scorers: [{SCORER_FILE}:{SCORER_NAME}]",
            "  # judge: {model: openai:gpt-6-luna, rubric: \"Is the answer correct? 5 = correct, 1 = wrong.\"}",
            "",
        ]
    out += [
        "# Optional, shown with their defaults: requests in flight per provider (a server on this machine gets 1),",
        "# retries of failures that may pass on a second try, and time limits in seconds.",
        "# concurrency: {default: 4}",
        "# retries: {max: 3, backoff_s: 1.0, max_backoff_s: 30}",
        "# timeouts: {connect_s: 10, first_token_s: 120, total_s: 600}",
    ]
    return "\n".join(out) + "\n"


def scorers_text(suite_name: str = "tryouts.yaml") -> str:
    """The starter ``scorers.py``: one documented scorer that the starter suite names."""
    return f'''"""Custom scorers for {suite_name}, written by `tryouts init` (docs/scoring.md, "Custom scorers").

The suite names each scorer as ``{SCORER_FILE}:FUNCTION`` under ``scoring: scorers:`` (a path relative to the
suite file). Once every answer is in, Tryouts calls it for each answer as ``FUNCTION(output, context)``:

* ``output``: the model's answer, ``""`` when the request failed;
* ``context``: a dict with ``vars``, ``expected``, ``messages`` (the request), ``model`` (its label), ``ok``,
  ``error``, ``e2e_ms``, ``ttft_ms``, ``cost_usd``, ``case_id``, ``prompt_id`` and ``repeat_index``.

It returns a bool (passed: score 1 or 0), a number (the score), or ``{{"score": ..., "passed": ..., "reason": ...}}``,
stored in each result as ``scores.custom.FUNCTION`` and shown in the run's summary. A scorer that raises is
recorded as an error for that answer and the run goes on. Score a stored run again after editing this file:
``tryouts score latest --scorer {SCORER_FILE}:FUNCTION``.
"""

import re

_WORD = re.compile(r"[a-z0-9]+")


def _key_words(text: str) -> set[str]:
    """Numbers, and words of four letters or more: what an answer has to say, not how it says it."""
    return {{w for w in _WORD.findall(text.lower()) if w.isdigit() or len(w) >= 4}}


def {SCORER_NAME}(output: str, context: dict) -> dict:
    """The share of the expected answer's key words found in the answer; passes at one half or more.

    "The capital of France is Paris." has the key words {{capital, france, paris}}: the answer "Paris." scores
    1/3 and fails; "Paris is the capital of France." scores 1 and passes. A case without an expected answer
    scores 0, with that reason.
    """
    expected = context.get("expected")
    if not expected:
        return {{"score": 0.0, "passed": False, "reason": "the case has no expected answer"}}
    wanted = _key_words(str(expected))
    if not wanted:
        return {{"score": 0.0, "passed": False, "reason": "the expected answer has no key word"}}
    found = wanted & _key_words(output)
    score = len(found) / len(wanted)
    missing = ", ".join(sorted(wanted - found))
    return {{"score": score, "passed": score >= 0.5,
            "reason": f"{{len(found)}} of {{len(wanted)}} key words" + (f"; missing: {{missing}}" if missing else "")}}
'''


def refuse_overwrite(path: Path, *, scorers: bool = True, force: bool = False) -> list[Path]:
    """The files init would write for the suite ``path``; :class:`UsageError` when one is a folder, or exists
    and ``force`` is not given."""
    targets = [path] + ([path.parent / SCORER_FILE] if scorers else [])
    for target in targets:
        if target.is_dir():
            raise UsageError(f"{target} is a folder: give the suite file's path, e.g. {target / 'tryouts.yaml'}.")
        if target.exists() and not force:
            other = ("give another path (tryouts init other.yaml)" if target == path else
                     "--no-scorers to write the suite alone, or write the suite in another folder")
            raise UsageError(f"{target} already exists: tryouts init does not overwrite it. Use --force to "
                             f"replace it, or {other}.")
    return targets


def write_starter(path: Path, detection: Detection, *, force: bool = False, scorers: bool = True) -> list[Path]:
    """Write the suite at ``path`` and, with ``scorers``, ``scorers.py`` beside it; the paths written.

    Refuses (:class:`UsageError`) to replace a file that exists unless ``force``; checks every file before
    writing any, and checks the suite with the suite loader before it is written."""
    from ..suite import loads_suite

    if not detection.models:
        raise UsageError("No model to write a suite for: give one with --model PROVIDER:MODEL.")
    targets = refuse_overwrite(path, scorers=scorers, force=force)
    text = suite_text(detection, suite_name=path.name, scorers=scorers)
    loads_suite(text, source=path)  # what init writes always loads (a SuiteError here is a bug, not the user's)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    if scorers:
        targets[1].write_text(scorers_text(path.name), encoding="utf-8")
    return targets
