"""Suite files: loading, expansion into cells, and errors that name file, line and field."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tryouts.errors import UsageError
from tryouts.suite import Suite, SuiteError, load_suite, loads_suite
from tryouts.types import GenParams, Message

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> Suite:
    return load_suite(write(tmp_path, "suite.yaml", text))


def fails(tmp_path: Path, text: str) -> SuiteError:
    """Load ``text`` as suite.yaml and return the SuiteError it must raise."""
    with pytest.raises(SuiteError) as info:
        load(tmp_path, text)
    return info.value


def first(error: SuiteError) -> tuple[int | None, str]:
    """(line, 'path: message') of the first issue; the file is checked to be the suite file."""
    issue = error.issues[0]
    assert issue.file is not None and issue.file.endswith("suite.yaml"), issue
    return issue.line, f"{issue.path}: {issue.message}" if issue.path else issue.message


# ---- happy paths ---------------------------------------------------------------------------------


def test_expansion_order_cells_and_counts(tmp_path):
    suite = load(tmp_path, """
        models:
          - openai:gpt-4o-mini
          - model: hf:./tiny
            label: tiny
        prompts:
          - "A {{x}}"
          - id: second
            text: "B {{ x }}"
        cases:
          - vars: {x: 1}
          - id: two
            vars: {x: 2}
        repeats: 2
    """)
    items = suite.case_items()
    assert [(i.index, i.prompt_id, i.case_id) for i in items] == [
        (0, "p1", "c1"), (1, "p1", "two"), (2, "second", "c1"), (3, "second", "two"),
    ]
    assert [i.messages[0].content for i in items] == ["A 1", "A 2", "B 1", "B 2"]
    cells = list(suite.cells())
    assert suite.n_cells() == len(cells) == 2 * 4 * 2
    # for repeat, for case item, for model
    assert [(c.repeat_index, c.case_index, c.model_index) for c in cells[:5]] == [
        (0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1), (0, 2, 0),
    ]
    assert cells[8].repeat_index == 1 and cells[8].case_index == 0
    assert cells[1].spec.provider == "hf" and cells[1].spec.model == "./tiny"
    assert cells[3].request.messages == [Message(role="user", content="A 2")]
    assert suite.model_labels() == ["openai:gpt-4o-mini", "tiny"]
    assert [s.ref for s in suite.model_specs()] == ["openai:gpt-4o-mini", "hf:./tiny"]
    # every cell owns its request
    cells[0].request.params.max_tokens = 1
    assert cells[2].request.params.max_tokens == 256


def test_rendering_is_plain_substitution(tmp_path):
    suite = load(tmp_path, """
        models: [openai:gpt-4o-mini]
        prompts:
          - 'JSON {"a": {x}} {{ y }} {{y}} {{ not a var }} {{ "q" }} {{n}} {{flag}} {{lit}}'
        cases:
          - vars: {y: why, n: 3.5, flag: true, lit: "{{y}}"}
    """)
    (item,) = suite.case_items()
    assert item.messages[0].content == (
        'JSON {"a": {x}} why why {{ not a var }} {{ "q" }} 3.5 True {{y}}'
    )
    assert item.vars == {"y": "why", "n": 3.5, "flag": True, "lit": "{{y}}"}


def test_implicit_single_case(tmp_path):
    suite = load(tmp_path, """
        models: [openai:gpt-4o-mini, "llamacpp:./m.gguf"]
        prompts: [Hello, "Hi there"]
    """)
    items = suite.case_items()
    assert [(i.prompt_id, i.case_id, i.vars, i.expected) for i in items] == [
        ("p1", "c1", {}, None), ("p2", "c1", {}, None),
    ]
    assert suite.n_cells() == 4
    assert suite.repeats == 1


def test_defaults_system_and_params_merge(tmp_path):
    suite = load(tmp_path, """
        models:
          - openai:gpt-4o-mini
          - model: hf:./tiny
            options: {dtype: bfloat16}
            params: {temperature: 0.2, seed: 7}
          - model: "openai-compat:http://127.0.0.1:8080/v1#tiny"
            label: compat
            params: {max_tokens: null}
        defaults:
          params: {temperature: 0, max_tokens: 64}
          system: "You are {{style}}."
        prompts:
          - "Q: {{q}}"
          - id: own-system
            messages:
              - {role: system, content: "Mine."}
              - {role: user, content: "{{q}}"}
              - {role: assistant, content: "ok"}
              - {role: user, content: "again"}
        cases:
          - vars: {q: why, style: brief}
    """)
    a, b = suite.case_items()
    assert a.messages == [Message(role="system", content="You are brief."), Message(role="user", content="Q: why")]
    assert [m.role for m in b.messages] == ["system", "user", "assistant", "user"]
    assert b.messages[0].content == "Mine."
    assert suite.params_for(0) == GenParams(temperature=0, max_tokens=64)
    assert suite.params_for(1) == GenParams(temperature=0.2, max_tokens=64, seed=7)
    assert suite.params_for(2) == GenParams(temperature=0, max_tokens=None)
    cells = list(suite.cells())
    assert cells[1].spec.options == {"dtype": "bfloat16"}
    assert cells[1].request.params.temperature == 0.2
    assert suite.model_labels()[2] == "compat"


def test_params_default_to_genparams_defaults(tmp_path):
    suite = load(tmp_path, "models: [openai:gpt-4o-mini]\nprompts: [hi]\n")
    assert suite.params_for(0) == GenParams()
    assert suite.concurrency_for("openai") == 4
    assert suite.retries.max == 3 and suite.timeouts.total_s == 600


def test_concurrency_retries_timeouts(tmp_path):
    suite = load(tmp_path, """
        models: [openai:gpt-4o-mini]
        prompts: [hi]
        concurrency: {default: 2, openai: 8}
        retries: {max: 0, backoff_s: 0.5, max_backoff_s: 5}
        timeouts: {connect_s: 3, first_token_s: null, total_s: 60}
    """)
    assert suite.concurrency_for("openai") == 8
    assert suite.concurrency_for("hf") == 2
    assert (suite.retries.max, suite.retries.backoff_s, suite.retries.max_backoff_s) == (0, 0.5, 5)
    assert (suite.timeouts.connect_s, suite.timeouts.first_token_s, suite.timeouts.total_s) == (3, None, 60)


def test_inline_cases_expected_and_asserts(tmp_path):
    suite = load(tmp_path, """
        models: [openai:gpt-4o-mini]
        prompts: ["{{question}}"]
        cases:
          - id: q1
            vars: {question: "What is a pretrained model?"}
            expected: A model trained on large data.
            assert:
              - {type: icontains, value: pretrained}
              - {type: length, max: 200}
          - vars: {question: "2+2?"}
            expected: 4
    """)
    a, b = suite.case_items()
    assert a.case_id == "q1" and a.expected == "A model trained on large data."
    assert a.asserts == [{"type": "icontains", "value": "pretrained"}, {"type": "length", "max": 200}]
    assert b.case_id == "c2" and b.expected == "4" and b.asserts == []


def test_csv_dataset_with_id_and_expected_columns(tmp_path):
    (tmp_path / "data").mkdir()
    write(tmp_path, "data/q.csv", """
        qid,question,persona,answer
        a1,"What is a token, really?",teacher,"A piece of text."

        a2,Why?,engineer,
    """)
    suite = load(tmp_path, """
        models: [openai:gpt-4o-mini]
        prompts: ["As a {{persona}}: {{question}}"]
        cases:
          - vars: {question: inline, persona: me}
        dataset: {path: data/q.csv, id: qid, expected: answer}
    """)
    items = suite.case_items()
    assert [(i.case_id, i.expected) for i in items] == [("c1", None), ("a1", "A piece of text."), ("a2", None)]
    assert items[1].vars == {"question": "What is a token, really?", "persona": "teacher"}
    assert items[1].messages[0].content == "As a teacher: What is a token, really?"


def test_csv_dataset_default_columns_and_numbering(tmp_path):
    write(tmp_path, "q.csv", """
        question,expected
        one,1
        two,2
    """)
    suite = load(tmp_path, """
        models: [openai:gpt-4o-mini]
        prompts: ["{{question}}"]
        cases:
          - vars: {question: zero}
        dataset: q.csv
    """)
    items = suite.case_items()
    assert [(i.case_id, i.vars, i.expected) for i in items] == [
        ("c1", {"question": "zero"}, None), ("c2", {"question": "one"}, "1"), ("c3", {"question": "two"}, "2"),
    ]


def test_jsonl_dataset(tmp_path):
    write(tmp_path, "chat.jsonl", """
        {"id": "x", "customer": "Ana", "n": 2, "expected": "Refund."}

        {"id": 7, "customer": "Ben", "n": 3.5, "expected": {"k": 1}}
    """)
    suite = load(tmp_path, """
        models: [openai:gpt-4o-mini]
        prompts: ["{{customer}} has {{n}}"]
        dataset: chat.jsonl
    """)
    a, b = suite.case_items()
    assert (a.case_id, a.expected, a.vars) == ("x", "Refund.", {"customer": "Ana", "n": 2})
    assert (b.case_id, b.expected) == ("7", '{"k": 1}')
    assert b.messages[0].content == "Ben has 3.5"


def test_dataset_is_relative_to_the_suite_file(tmp_path, monkeypatch):
    (tmp_path / "s").mkdir()
    write(tmp_path, "s/rows.jsonl", '{"q": "hi"}\n')
    path = write(tmp_path, "s/suite.yaml", """
        models: [openai:gpt-4o-mini]
        prompts: ["{{q}}"]
        dataset: {path: rows.jsonl, format: jsonl}
    """)
    monkeypatch.chdir(tmp_path)
    suite = load_suite("s/suite.yaml")
    assert suite.source == Path("s/suite.yaml")
    assert suite.case_items()[0].messages[0].content == "hi"
    assert load_suite(path).source == path


def test_suite_from_data_without_a_file():
    suite = Suite.model_validate({"models": ["openai:gpt-4o-mini"], "prompts": ["hi {{a}}"], "cases": [{"vars": {"a": 1}}]})
    assert suite.source is None
    assert [c.request.messages[0].content for c in suite.cells()] == ["hi 1"]
    with pytest.raises(SuiteError, match="already used"):
        Suite.model_validate({"models": ["openai:gpt-4o-mini", "openai:gpt-4o-mini"], "prompts": ["hi"]})
    bad = Suite.model_validate({"models": ["openai:gpt-4o-mini"], "prompts": ["hi {{a}}"]})
    with pytest.raises(SuiteError, match=r"uses \{\{a\}\}"):
        bad.case_items()


def test_to_data_round_trips():
    suite = load_suite(EXAMPLES / "support.yaml")
    again = Suite.model_validate(suite.to_data(), context={"source": EXAMPLES / "support.yaml"})
    assert [c.request for c in again.cells()] == [c.request for c in suite.cells()]
    assert again.case_items() == suite.case_items()
    assert again.model_labels() == suite.model_labels()


def test_loads_suite_names_string_source():
    with pytest.raises(SuiteError) as info:
        loads_suite("models: [openai:gpt-4o-mini]\nprompts: []\n")
    assert str(info.value).startswith("<string>:2: prompts: should have at least 1 item")


# ---- errors: file, line, field -------------------------------------------------------------------


def test_error_is_a_usage_error_with_file_line_field(tmp_path):
    e = fails(tmp_path, """
        models:
          - openai:gpt-4o-mini
          - model: hf:./tiny
            options: [dtype]
        prompts: [hi]
    """)
    assert isinstance(e, UsageError)
    assert re.match(r".*suite\.yaml:4: models\[1\]\.options: should be a mapping, got a list", str(e))


def test_not_yaml(tmp_path):
    e = fails(tmp_path, """
        models: [openai:gpt-4o-mini]
        prompts:
          - "unclosed
        repeats: 1
    """)
    line, text = first(e)
    assert line in (3, 4, 5) and "not valid YAML" in text


def test_not_yaml_bad_indentation(tmp_path):
    e = fails(tmp_path, "models:\n  - openai:gpt-4o-mini\n prompts: [hi]\n")
    line, text = first(e)
    assert line == 3 and "not valid YAML" in text


def test_top_level_not_a_mapping(tmp_path):
    line, text = first(fails(tmp_path, "- openai:gpt-4o-mini\n- hi\n"))
    assert line == 1 and "top level should be a mapping" in text and "got a list" in text
    line, text = first(fails(tmp_path, "# nothing here\n"))
    assert "the file is empty" in text


def test_unknown_key_lists_allowed_keys(tmp_path):
    line, text = first(fails(tmp_path, """
        models: [openai:gpt-4o-mini]
        prompts: [hi]
        repeat: 3
    """))
    assert line == 3
    assert "unknown key 'repeat' (did you mean 'repeats'?)" in text
    assert "models, defaults, prompts, cases, dataset, repeats, concurrency, rate_limits, retries, timeouts" in text


def test_unknown_key_in_nested_mapping(tmp_path):
    line, text = first(fails(tmp_path, """
        models:
          - openai:gpt-4o-mini
          - model: hf:./tiny
            lable: tiny
        prompts: [hi]
    """))
    assert line == 4
    assert text.startswith("models[1]: unknown key 'lable'") and "model, label, options, params" in text


def test_missing_required_key(tmp_path):
    line, text = first(fails(tmp_path, """
        description: no prompts
        models: [openai:gpt-4o-mini]
    """))
    assert line == 1 and text.startswith("the required key 'prompts' is missing")
    line, text = first(fails(tmp_path, """
        models:
          - label: x
        prompts: [hi]
    """))
    assert line == 2 and text.startswith("models[0]: the required key 'model' is missing")


def test_wrong_type(tmp_path):
    line, text = first(fails(tmp_path, """
        models: openai:gpt-4o-mini
        prompts: [hi]
    """))
    assert line == 1 and text.startswith("models: should be a list, got 'openai:gpt-4o-mini'")
    line, text = first(fails(tmp_path, """
        models: [openai:gpt-4o-mini]
        prompts:
          - hi
          - 42.0
    """))
    assert line == 4 and text.startswith("prompts[1]: should be a prompt text, or a mapping")


def test_repeats_zero(tmp_path):
    line, text = first(fails(tmp_path, """
        models: [openai:gpt-4o-mini]
        prompts: [hi]

        repeats: 0
    """))
    assert line == 4 and text.startswith("repeats: should be greater than or equal to 1, got 0")


def test_unknown_provider(tmp_path):
    line, text = first(fails(tmp_path, """
        models:
          - openai:gpt-4o-mini
          - model: opneai:gpt-4o
        prompts: [hi]
    """))
    assert line == 3 and text.startswith("models[1].model: Unknown provider 'opneai'")
    assert "Known providers:" in text and all(f" {name}" in text for name in ("hf,", "llamacpp,", "openai,"))


def test_reference_without_provider(tmp_path):
    line, text = first(fails(tmp_path, """
        models:
          - openai:gpt-4o-mini
          - gpt-4o
        prompts: [hi]
    """))
    assert line == 3 and text.startswith("models[1]: Model reference 'gpt-4o' has no provider")
    assert "PROVIDER:MODEL" in text


def test_duplicate_labels(tmp_path):
    line, text = first(fails(tmp_path, """
        models:
          - model: openai:gpt-4o-mini
            label: fast
          - model: hf:./tiny
            label: fast
        prompts: [hi]
    """))
    assert line == 5 and "models[1].label: the label 'fast' is already used by models[0]" in text
    line, text = first(fails(tmp_path, """
        models:
          - openai:gpt-4o-mini
          - openai:gpt-4o-mini
        prompts: [hi]
    """))
    assert line == 3 and "give each model a distinct 'label'" in text


def test_template_variable_no_case_provides(tmp_path):
    line, text = first(fails(tmp_path, """
        models: [openai:gpt-4o-mini]
        prompts:
          - "{{question}}"
          - id: chat
            messages:
              - {role: system, content: "You are a {{persona}}."}
              - {role: user, content: "{{question}}"}
        cases:
          - vars: {question: a, persona: x}
          - id: second
            vars: {question: b}
          - id: third
            vars: {question: c}
    """))
    assert line == 6
    assert text.startswith("prompts[1].messages[0].content: prompt 'chat' uses {{persona}}")
    assert "cases second, third do not provide" in text


def test_template_variable_with_no_cases(tmp_path):
    line, text = first(fails(tmp_path, """
        models: [openai:gpt-4o-mini]
        prompts:
          - "Hello {{ name }}"
    """))
    assert line == 3 and "prompt 'p1' uses {{name}}, but the suite has no cases" in text


def test_template_variable_in_default_system(tmp_path):
    line, text = first(fails(tmp_path, """
        models: [openai:gpt-4o-mini]
        defaults:
          system: "Be {{tone}}."
        prompts: [hi, ho]
        cases: [{vars: {x: 1}}]
    """))
    assert line == 3 and "the default system message uses {{tone}}" in text


def test_missing_dataset_file(tmp_path):
    line, text = first(fails(tmp_path, """
        models: [openai:gpt-4o-mini]
        prompts: [hi]
        dataset:
          path: nope/q.csv
    """))
    assert line == 4
    assert f"the dataset file {(tmp_path / 'nope' / 'q.csv').resolve()} does not exist" in text


def test_malformed_csv_line(tmp_path):
    write(tmp_path, "q.csv", """
        question,expected
        fine,1
        too,many,fields
    """)
    e = fails(tmp_path, "models: [openai:gpt-4o-mini]\nprompts: ['{{question}}']\ndataset: q.csv\n")
    issue = e.issues[0]
    assert (Path(issue.file).name, issue.line) == ("q.csv", 3)
    assert "has 3 fields but the header has 2" in issue.message
    assert str(e).startswith(f"{tmp_path / 'q.csv'}:3: has 3 fields")


def test_malformed_csv_quotes(tmp_path):
    write(tmp_path, "q.csv", 'question\nok\n"bad"quote\n')
    e = fails(tmp_path, "models: [openai:gpt-4o-mini]\nprompts: ['{{question}}']\ndataset: q.csv\n")
    assert (Path(e.issues[0].file).name, e.issues[0].line) == ("q.csv", 3)
    assert "not valid CSV" in e.issues[0].message


def test_malformed_jsonl_line(tmp_path):
    write(tmp_path, "rows.jsonl", '{"q": 1}\n\n{"q": 2,}\n[1, 2]\n')
    e = fails(tmp_path, "models: [openai:gpt-4o-mini]\nprompts: ['{{q}}']\ndataset: rows.jsonl\n")
    assert [(Path(i.file).name, i.line) for i in e.issues] == [("rows.jsonl", 3), ("rows.jsonl", 4)]
    assert "not valid JSON" in e.issues[0].message
    assert "should be a JSON object" in e.issues[1].message and "an array" in e.issues[1].message


def test_dataset_with_zero_rows(tmp_path):
    write(tmp_path, "q.csv", "question,expected\n")
    line, text = first(fails(tmp_path, """
        models: [openai:gpt-4o-mini]
        prompts: ["{{question}}"]
        dataset: q.csv
    """))
    assert line == 3 and "has no rows (only a header row)" in text
    write(tmp_path, "e.jsonl", "\n\n")
    line, text = first(fails(tmp_path, "models: [openai:gpt-4o-mini]\nprompts: [hi]\ndataset: {path: e.jsonl}\n"))
    assert line == 3 and "has no rows" in text


def test_dataset_column_that_does_not_exist(tmp_path):
    write(tmp_path, "q.csv", "question,answer\na,b\n")
    line, text = first(fails(tmp_path, """
        models: [openai:gpt-4o-mini]
        prompts: ["{{question}}"]
        dataset:
          path: q.csv
          expected: expected_answer
    """))
    assert line == 5 and "has no column 'expected_answer'; its columns are: question, answer" in text


def test_dataset_missing_var_names_dataset_columns(tmp_path):
    write(tmp_path, "q.csv", "question\na\nb\n")
    line, text = first(fails(tmp_path, """
        models: [openai:gpt-4o-mini]
        prompts: ["{{question}} {{topic}}"]
        dataset: q.csv
    """))
    assert line == 2 and "cases c1, c2 do not provide (the dataset's columns are: question)" in text


def test_duplicate_case_ids(tmp_path):
    write(tmp_path, "q.csv", "id,question\nq1,a\n")
    e = fails(tmp_path, """
        models: [openai:gpt-4o-mini]
        prompts: ["{{question}}"]
        cases:
          - id: q1
            vars: {question: x}
        dataset: q.csv
    """)
    issue = e.issues[0]
    assert (Path(issue.file).name, issue.line) == ("q.csv", 2) and "the case id 'q1' is already used" in issue.message


def test_all_errors_are_reported_at_once(tmp_path):
    e = fails(tmp_path, """
        models:
          - openai:gpt-4o-mini
          - nope:x
        prompts: []
        repeats: 0
        colour: blue
    """)
    assert [(i.line, i.path) for i in e.issues] == [(3, "models[1]"), (4, "prompts"), (5, "repeats"), (6, "")]
    assert len(str(e).splitlines()) == 4


def test_duplicate_yaml_key(tmp_path):
    line, text = first(fails(tmp_path, """
        models: [openai:gpt-4o-mini]
        prompts: [hi]
        prompts: [ho]
    """))
    assert line == 3 and "the key 'prompts' is written twice" in text


def test_prompt_mapping_forms(tmp_path):
    line, text = first(fails(tmp_path, """
        models: [openai:gpt-4o-mini]
        prompts:
          - id: x
    """))
    assert line == 3 and "needs 'text' (one user message) or 'messages'" in text
    line, text = first(fails(tmp_path, """
        models: [openai:gpt-4o-mini]
        prompts:
          - messages:
              - {role: system, content: hi}
    """))
    assert line == 3 and text.startswith("prompts[0].messages: has no user message")


def test_assert_entries_need_a_type(tmp_path):
    line, text = first(fails(tmp_path, """
        models: [openai:gpt-4o-mini]
        prompts: [hi]
        cases:
          - assert:
              - {type: icontains, value: x}
              - {value: y}
    """))
    assert line == 6 and text.startswith("cases[0].assert[1]: the required key 'type' is missing")


def test_concurrency_keys_are_providers(tmp_path):
    line, text = first(fails(tmp_path, """
        models: [openai:gpt-4o-mini]
        prompts: [hi]
        concurrency:
          default: 2
          opneai: 8
    """))
    assert line == 5 and "'opneai' is not a provider" in text


def test_missing_suite_file(tmp_path):
    with pytest.raises(SuiteError, match="no such suite file"):
        load_suite(tmp_path / "absent.yaml")


# ---- examples, docs and schema -------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_load(path, monkeypatch):
    monkeypatch.setenv("TRYOUTS_DEMO", "/nonexistent/demo")  # examples/offline.yaml reads it (not loaded here)
    suite = load_suite(path)
    assert suite.n_cells() == len(list(suite.cells())) > 0


def test_complete_suites_in_docs_are_examples():
    docs = (ROOT / "docs" / "suites.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", docs, flags=re.S)
    examples = {p.name: yaml.safe_load(p.read_text(encoding="utf-8")) for p in EXAMPLES.glob("*.yaml")}
    complete = [b for b in blocks if isinstance(d := yaml.safe_load(b), dict) and {"models", "prompts"} <= d.keys()]
    assert len(complete) >= 5
    for block in complete:
        data = yaml.safe_load(block)
        assert data in examples.values(), f"this suite in docs/suites.md is not under examples/:\n{block}"


def test_schema_is_current():
    p = subprocess.run([sys.executable, str(ROOT / "docs" / "gen_schema.py"), "--check"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_schema_describes_every_suite_field():
    schema = Suite.model_json_schema()
    assert schema["additionalProperties"] is False and "source" not in schema["properties"]
    for name, prop in schema["properties"].items():
        assert prop.get("description"), name
    for name, definition in schema["$defs"].items():
        if name == "GenParams":
            continue  # defined in tryouts.types
        for field, prop in definition["properties"].items():
            assert prop.get("description"), f"{name}.{field}"


def test_environment_variables_are_expanded(tmp_path, monkeypatch):
    from tryouts.suite import SuiteError, loads_suite

    monkeypatch.setenv("TRYOUTS_TEST_URL", "http://127.0.0.1:9/v1")
    monkeypatch.delenv("TRYOUTS_TEST_UNSET", raising=False)
    suite = loads_suite(
        'models: ["openai-compat:${TRYOUTS_TEST_URL}#m", "openai-compat:${TRYOUTS_TEST_UNSET:-http://x/v1}#n"]\n'
        'prompts: ["costs $${price} in ${TRYOUTS_TEST_UNSET:-EUR}"]\n'
    )
    assert [s.model for s in suite.model_specs()] == ["http://127.0.0.1:9/v1#m", "http://x/v1#n"]
    assert suite.case_items()[0].messages[-1].content == "costs ${price} in EUR"
    with pytest.raises(SuiteError) as info:
        loads_suite("models: [openai:gpt-4o-mini]\nprompts:\n  - hi ${TRYOUTS_TEST_UNSET}\n", source="s.yaml")
    assert "s.yaml:3:" in str(info.value) and "TRYOUTS_TEST_UNSET is not set" in str(info.value)


def test_variables_in_yaml_comments_are_never_required(monkeypatch):
    from tryouts.suite import SuiteError, loads_suite

    monkeypatch.delenv("TRYOUTS_TEST_UNSET", raising=False)
    monkeypatch.setenv("TRYOUTS_TEST_URL", "http://127.0.0.1:9/v1")
    suite = loads_suite(
        "# the old server: ${TRYOUTS_TEST_UNSET}\n"
        "models:\n"
        "  # - openai-compat:${TRYOUTS_TEST_UNSET}#old\n"
        "  - openai-compat:${TRYOUTS_TEST_URL}#m   # was ${TRYOUTS_TEST_UNSET}\n"
        "prompts:\n"
        "  - |\n"
        "    # a heading inside a block is text: ${TRYOUTS_TEST_UNSET:-kept}\n")
    assert [s.model for s in suite.model_specs()] == ["http://127.0.0.1:9/v1#m"]
    assert suite.case_items()[0].messages[-1].content == "# a heading inside a block is text: kept\n"
    with pytest.raises(SuiteError, match="TRYOUTS_TEST_UNSET is not set"):  # outside a comment it still counts
        loads_suite("models: [openai:gpt-4o-mini]  # fine\nprompts:\n  - hi ${TRYOUTS_TEST_UNSET}\n")


def test_invalid_assertions_are_refused_at_load_with_line_and_field(tmp_path):
    line, text = first(fails(tmp_path, """
        models: [openai:gpt-4o-mini]
        prompts: [hi]
        cases:
          - vars: {}
            assert:
              - {type: regex, value: "([unclosed"}
    """))
    assert line == 6 and text.startswith("cases[0].assert[0]: value: ") and "regular expression" in text
    assert text.count("cases[0].assert[0]") == 1
