"""Hostile suite files and answers (the suite audit): credentials from ${...} outside a model's options,
variables that would add YAML structure, suite paths that never end (FIFO, devices), and regex assertions
that backtrack for hours."""

from __future__ import annotations

import os
import socket
import textwrap
import threading
from pathlib import Path

import pytest

from tryouts.suite import SuiteError, load_suite, loads_suite

KEY = "sk-test-SECRET123456789abcdef"


def write(folder: Path, text: str, name: str = "suite.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def refused(path: Path) -> SuiteError:
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    return info.value


# ---- F2: a credential from ${...} is accepted only in a model's options -----------------------------


@pytest.mark.parametrize(("line", "field", "text"), [
    (1, "description", 'description: "key ${OPENAI_API_KEY}"\nmodels: [openai:gpt-4o-mini]\nprompts: [hi]\n'),
    (3, "prompts[0]", "models: [openai:gpt-4o-mini]\nprompts:\n  - 'hi ${OPENAI_API_KEY}'\n"),
    (4, "cases[0].vars.k", "models: [openai:gpt-4o-mini]\nprompts: ['x {{k}}']\ncases:\n"
        "  - vars: {k: '${OPENAI_API_KEY}'}\n"),
    (5, "cases[0].expected", "models: [openai:gpt-4o-mini]\nprompts: [x]\ncases:\n  - vars: {}\n"
        "    expected: ${OPENAI_API_KEY}\n"),
    (2, "defaults.system", "models: [openai:gpt-4o-mini]\ndefaults: {system: 'k=${MY_SERVICE_TOKEN}'}\n"
        "prompts: [hi]\n"),
    (4, "prompts[0]", "models: [openai:gpt-4o-mini]\nprompts:\n  - |\n    line one ${MY_PASSWORD:-x}\n"),
    (2, "models[0].model", "models:\n  - model: openai-compat:http://h/v1#${HF_TOKEN}\nprompts: [hi]\n"),
])
def test_a_credential_variable_outside_options_is_refused_at_its_line(tmp_path, monkeypatch, line, field, text):
    for name in ("OPENAI_API_KEY", "MY_SERVICE_TOKEN", "MY_PASSWORD", "HF_TOKEN"):
        monkeypatch.setenv(name, KEY)
    error = refused(write(tmp_path, text))
    issue = error.issues[0]
    assert (issue.line, issue.path) == (line, field), str(error)
    assert "holds a credential" in issue.message and "stored in clear" in issue.message
    assert "api_key_env" in issue.message  # what to do instead
    assert "SECRET123456789" not in str(error)


def test_a_credential_variable_in_a_models_options_is_accepted(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("TRYOUTS_T_URL", "http://127.0.0.1:9/v1")
    suite = load_suite(write(tmp_path, """
        models:
          - model: openai-compat:${TRYOUTS_T_URL}#m
            options: {api_key: "${OPENAI_API_KEY}", headers: {Authorization: "Bearer ${OPENAI_API_KEY}"}}
          - model: openai-compat:${TRYOUTS_T_URL}#n
            options: {api_key_env: OPENAI_API_KEY}
        prompts: [hi]
        scoring:
          judge:
            model: {model: "openai-compat:${TRYOUTS_T_URL}#j", options: {api_key: "${OPENAI_API_KEY}"}}
            rubric: Right?
        """))
    assert suite.models[0].options["api_key"] == KEY
    assert suite.models[0].options["headers"]["Authorization"] == f"Bearer {KEY}"
    from tryouts.suite.resolved import resolved

    assert resolved(suite) == (None, "it holds a value that looks like a credential (a key in an option or a URL)")


def test_a_credential_aliased_out_of_options_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    error = refused(write(tmp_path, """
        models:
          - model: openai:gpt-4o-mini
            options: {api_key: &k "${OPENAI_API_KEY}"}
        prompts:
          - *k
        """))
    assert [(i.line, i.path) for i in error.issues] == [(3, "prompts[0]")]


def test_a_value_shaped_like_a_key_is_refused_whatever_the_variables_name(tmp_path, monkeypatch):
    monkeypatch.setenv("TRYOUTS_T_PLAIN", KEY)
    error = refused(write(tmp_path, "models: [openai:gpt-4o-mini]\nprompts: ['hi ${TRYOUTS_T_PLAIN}']\n"))
    assert "TRYOUTS_T_PLAIN holds a value that looks like a credential" in str(error)


def test_the_stored_description_is_redacted():
    from tryouts.usecases.suites import stored_description

    suite = loads_suite(f"description: 'written in: {KEY}'\nmodels: [openai:gpt-4o-mini]\nprompts: [hi]\n")
    assert KEY not in stored_description(suite) and stored_description(suite).startswith("written in: ")


# ---- F8: a variable's value stays one scalar; lines stay the file's --------------------------------------


def test_a_multiline_value_adds_no_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("TRYOUTS_T_DIR", "/models\n    params: {max_tokens: 1, temperature: 1.5}\n#")
    suite = load_suite(write(tmp_path, """
        models:
          - model: llamacpp:${TRYOUTS_T_DIR}/tiny.gguf
            label: tiny
        prompts: ["hi"]
        """))
    assert suite.models[0].params.temperature is None and suite.models[0].params.max_tokens != 1
    assert suite.models[0].model == "llamacpp:/models\n    params: {max_tokens: 1, temperature: 1.5}\n#/tiny.gguf"


def test_lines_stay_the_files_after_a_multiline_value(tmp_path, monkeypatch):
    monkeypatch.setenv("TRYOUTS_T_DESC", "line one\n\n\n\nline five")
    error = refused(write(tmp_path, """
        description: "${TRYOUTS_T_DESC}"
        models:
          - model: openai:gpt-4o-mini
            label: tiny
        prompts:
          - "hi"
        repeats: 0
        """))
    assert [(i.line, i.path) for i in error.issues] == [(7, "repeats")]


def test_a_value_with_quotes_and_colons_is_text(tmp_path, monkeypatch):
    monkeypatch.setenv("TRYOUTS_T_ODD", 'say "x": y, {z} # not a comment\nrepeats: 9')
    suite = load_suite(write(tmp_path, 'models: [openai:gpt-4o-mini]\nprompts:\n  - "${TRYOUTS_T_ODD}"\n  - ${TRYOUTS_T_ODD}\n'))
    contents = [item.messages[-1].content for item in suite.case_items()]
    assert contents == ['say "x": y, {z} # not a comment\nrepeats: 9'] * 2
    assert suite.repeats == 1


def test_a_plain_value_is_typed_after_replacement(tmp_path, monkeypatch):
    monkeypatch.setenv("TRYOUTS_T_N", "3")
    suite = load_suite(write(tmp_path, "models: [openai:gpt-4o-mini]\nprompts: [hi]\nrepeats: ${TRYOUTS_T_N}\n"))
    assert suite.repeats == 3


def test_an_unset_variable_in_a_block_is_reported_at_its_own_line(tmp_path, monkeypatch):
    monkeypatch.delenv("TRYOUTS_T_UNSET", raising=False)
    error = refused(write(tmp_path, "models: [openai:gpt-4o-mini]\nprompts:\n  - |\n    one\n    two ${TRYOUTS_T_UNSET}\n"))
    assert [i.line for i in error.issues] == [5] and "TRYOUTS_T_UNSET is not set" in str(error)


def test_a_control_character_from_a_variable_is_refused_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TRYOUTS_T_ESC", "a\x1b[2Jb")
    error = refused(write(tmp_path, "models: [openai:gpt-4o-mini]\nprompts: ['${TRYOUTS_T_ESC}']\n"))
    assert [i.line for i in error.issues] == [2]
    assert "TRYOUTS_T_ESC holds the control character U+001B (ESC)" in str(error)


def test_task_files_replace_variables_inside_values_too(tmp_path, monkeypatch):
    from tryouts.tasks.file import load_task_file

    monkeypatch.setenv("TRYOUTS_T_DIR", "/m\nmodels: [evil:x]\nrepeats: 99")
    task = tmp_path / "task.yaml"
    task.write_text("task: classification\ndata: ${TRYOUTS_T_DIR}/x.csv\nmodels: [openai:gpt-6-luna]\n")
    spec, _ = load_task_file(task)
    assert spec.models == ["openai:gpt-6-luna"] and spec.repeats == 1  # the value added no keys
    assert spec.data == "/m\nmodels: [evil:x]\nrepeats: 99/x.csv"

    monkeypatch.setenv("TRYOUTS_T_KEY", "sk-test-SECRET123456789abcdef")
    task.write_text("task: classification\ndata: x.csv\nmodels:\n  - model: openai:gpt-6-luna\n"
                    "    options: {api_key: '${TRYOUTS_T_KEY}'}\n")
    assert load_task_file(task)[0].specs()[0][1] == {"api_key": "sk-test-SECRET123456789abcdef"}  # options: fine
    task.write_text("task: classification\ndata: ${TRYOUTS_T_KEY}.csv\nmodels: [openai:gpt-6-luna]\n")
    with pytest.raises(SuiteError, match="TRYOUTS_T_KEY holds a credential") as error:
        load_task_file(task)
    assert "SECRET" not in str(error.value) and error.value.issues[0].line == 2


# ---- F9: only a regular file is read as a suite ----------------------------------------------------------


def test_a_fifo_is_refused_without_waiting(tmp_path):
    fifo = tmp_path / "suite.yaml"
    os.mkfifo(fifo)
    outcome: list[BaseException | object] = []

    def load() -> None:
        try:
            outcome.append(load_suite(fifo))
        except BaseException as e:  # handed to the test thread
            outcome.append(e)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(30)
    if worker.is_alive():  # it waits for a writer: give it one that writes nothing, so the thread ends
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(5)
    assert outcome and isinstance(outcome[0], SuiteError), outcome
    assert "is a FIFO (a named pipe), not a regular file" in str(outcome[0])


def test_devices_sockets_and_folders_are_refused(tmp_path):
    assert "is a device, not a regular file" in str(refused(Path("/dev/null")))
    assert "is a folder" in str(refused(tmp_path))
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        assert "is a socket, not a regular file" in str(refused(path))


# ---- F6: a regex assertion has a time limit ---------------------------------------------------------------


def test_a_catastrophic_regex_fails_the_check_instead_of_stalling(monkeypatch):
    from tryouts.scoring import assertions
    from tryouts.scoring.assertions import evaluate, parse_assertion, score_case

    monkeypatch.setattr(assertions, "REGEX_TIMEOUT_S", 0.2)
    answer = "a" * 64 + "!"  # 2**64 ways to split: never finishes
    for spec in ({"type": "regex", "value": "^(a+)+$"}, {"type": "not-regex", "value": "^(a+)+$"}):
        result = evaluate(parse_assertion(spec, "assert[0]"), text=answer)
        assert result["passed"] is False, result
        assert result["reason"].startswith("the pattern took more than 0.2 s on this answer"), result
    scored = score_case([parse_assertion({"type": "regex", "value": "^(a+)+$"}, "a"),
                         parse_assertion({"type": "contains", "value": "!"}, "b")], text=answer)
    assert scored["passed"] is False and scored["score"] == 0.5
    # the next answer is searched as before (the stuck search was stopped, not left running)
    ok = evaluate(parse_assertion({"type": "regex", "value": "^(a+)+$"}, "a"), text="aaaa")
    assert ok["passed"] is True and ok["reason"] == "matches '^(a+)+$' at 'aaaa'"


# ---- review of 2026-12-04: what honest suites still do ----------------------------------------------------


def test_variables_work_inside_flow_collections(tmp_path, monkeypatch):
    """[${P}] and {base_url: ${URL}}: a "{" after "$" would start a mapping if the text were parsed as written."""
    monkeypatch.setenv("TRYOUTS_T_P", "Say hi, please: now")
    monkeypatch.setenv("TRYOUTS_T_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("TRYOUTS_T_DIR", "/models")
    suite = load_suite(write(tmp_path, """
        models:
          - {model: "openai-compat:${TRYOUTS_T_URL}#m", options: {base_url: ${TRYOUTS_T_URL}}}
          - hf:${TRYOUTS_T_DIR}/tiny-chat
        prompts: [${TRYOUTS_T_P}, "literal $${TRYOUTS_T_P}"]
        """))
    assert [p.text for p in suite.prompts] == ["Say hi, please: now", "literal ${TRYOUTS_T_P}"]
    assert suite.models[0].options["base_url"] == "http://127.0.0.1:9/v1"
    assert suite.models[1].model == "hf:/models/tiny-chat"


def test_prose_and_a_url_with_user_info_in_a_model_reference_are_not_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv("TRYOUTS_T_URL", "http://user:pw@127.0.0.1:9/v1")
    monkeypatch.setenv("TRYOUTS_T_Q", "password: hunter2 is a bad one")
    suite = load_suite(write(tmp_path, """
        models: ["openai-compat:${TRYOUTS_T_URL}#m"]
        prompts: ["Is this a good password? ${TRYOUTS_T_Q}"]
        """))
    assert suite.prompts[0].text.endswith("hunter2 is a bad one")
    error = refused(write(tmp_path, """
        models: [openai:gpt-6-luna]
        prompts: ["${TRYOUTS_T_URL}"]
        """))  # the same URL as prompt text would be sent to every model
    assert "TRYOUTS_T_URL holds a value that looks like a credential" in str(error)


def test_a_task_file_that_is_a_fifo_is_refused_without_waiting(tmp_path):
    from tryouts.tasks.file import load_task_file

    fifo = tmp_path / "task.yaml"
    os.mkfifo(fifo)
    with pytest.raises(SuiteError, match=r"is a FIFO .*give the task's YAML file"):
        load_task_file(fifo)
