"""Bad suite files and datasets: every one is either loaded or refused with a clear TryoutsError.

Thousands of suites and datasets, generated from the real examples/ by mutation (bytes changed, control
characters, deep nesting, aliases, huge numbers, tags, truncation), go through the loader in process;
a few go through ``tryouts run FILE --dry-run`` in a subprocess. Nothing may raise another exception,
and memory stays bounded. Then one explicit case per finding of issue 12 (each crashed or ran to GBs before).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tryouts.errors import TryoutsError
from tryouts.suite import SuiteError, load_suite, loads_suite
from tryouts.suite.limits import MAX_CELLS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SUITES = {p.name: p.read_text(encoding="utf-8") for p in sorted(EXAMPLES.glob("*.yaml"))}
DATASETS = {p.name: p.read_text(encoding="utf-8") for p in sorted(EXAMPLES.glob("*.jsonl")) + sorted(EXAMPLES.glob("*.csv"))}
BASE = "models:\n  - openai:gpt-4o-mini\nprompts:\n  - hi\n"

LAUGHS = BASE + 'x: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"x{i}: &{chr(98 + i)} [" + ",".join(["*" + chr(97 + i)] * 9) + "]\n" for i in range(9)
)
#: pieces inserted by the mutations: everything the findings named, and more
SNIPPETS = [
    "\x00", "\x01", "\x1b", "\x7f", "\x85", "\ufffe", "\t", "\r", "\n", "'", '"', ":", "- ", "{", "[", "}", "]", "&a ",
    "*a", "<<: *a\n", "!!timestamp ", "!!timestamp foo", "!!int ", "!!float ", "!!bool ", "!!binary ", "!!set ",
    "!!omap ", "!!pairs ", "!!python/object ", "!foo ", "!!str ", "!!map ", "!!seq ", "!!null ", "9" * 5000,
    "0x" + "f" * 5000, "1:" * 300 + "1", "1e400", "-.inf", ".nan", "[" * 5000 + "]" * 5000, "{a: " * 300, '"\\0"',
    '"\\ud800"', "${TRYOUTS_FUZZ_UNSET}", "${HOME}", "{{ x }}", "{{", "%YAML 1.1\n", "---\n", "...\n", "? ",
    "repeats: 10000000\n", "repeats: -1\n", "id: " + "x" * 300, "\ufeff", "é", "\U0001f600", "#",
]
JSON_SNIPPETS = [
    "9" * 5000, "-" + "9" * 5000, "[" * 5000, "{\"a\":" * 2000, "\"\\u0000\"", "\"\\ud800\"", "NaN", "1e400",
    "\x00", "\x1b", ",", "\"", "\n", "null", "[]", "{}", "\"id\": \"refund\"", "\r\n",
]


def _mutate(data, text: str, snippets: list[str]) -> str:
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        kind = data.draw(st.sampled_from(["insert", "replace", "delete", "truncate", "byte", "append"]))
        at = data.draw(st.integers(0, len(text)))
        if kind == "insert":
            text = text[:at] + data.draw(st.sampled_from(snippets)) + text[at:]
        elif kind == "replace":
            end = data.draw(st.integers(at, min(len(text), at + 40)))
            text = text[:at] + data.draw(st.sampled_from(snippets)) + text[end:]
        elif kind == "delete":
            text = text[:at] + text[data.draw(st.integers(at, min(len(text), at + 20))):]
        elif kind == "truncate":
            text = text[:at]
        elif kind == "byte":
            text = text[:at] + chr(data.draw(st.integers(0, 0x2FF))) + text[at + 1:]
        else:
            text += data.draw(st.sampled_from(snippets))
    return text


def _load_or_refuse(path: Path) -> None:
    """Load ``path``: success (with a bounded plan) or a TryoutsError with a message; nothing else."""
    try:
        suite = load_suite(path)
    except TryoutsError as e:
        assert str(e).strip()
        assert "Traceback" not in str(e)
        return
    assert 1 <= suite.n_cells() <= MAX_CELLS
    for cell in suite.cells():  # the first cell is built without error
        assert cell.request.messages
        break


@pytest.fixture(scope="module")
def peak_kb():
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start
    assert grown < 400 * 1024, f"the fuzzed loads grew the peak memory by {grown // 1024} MB"


@pytest.mark.usefixtures("peak_kb")
@settings(max_examples=1500, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])
@given(data=st.data())
def test_mutated_suites_load_or_fail_clearly(data, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TRYOUTS_DEMO", "/nonexistent-demo")
    folder = tmp_path_factory.mktemp("fuzz", numbered=True)
    for name, text in DATASETS.items():
        (folder / name).write_text(text, encoding="utf-8")
    name = data.draw(st.sampled_from(sorted(SUITES)), label="suite")
    text = _mutate(data, SUITES[name], SNIPPETS)
    path = folder / name
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    _load_or_refuse(path)


@pytest.mark.usefixtures("peak_kb")
@settings(max_examples=800, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])
@given(data=st.data())
def test_mutated_datasets_load_or_fail_clearly(data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzzdata", numbered=True)
    name = data.draw(st.sampled_from(sorted(DATASETS)), label="dataset")
    text = _mutate(data, DATASETS[name], JSON_SNIPPETS + SNIPPETS[:20])
    (folder / name).write_bytes(text.encode("utf-8", "surrogatepass"))
    (folder / "s.yaml").write_text(f"models: [openai:gpt-4o-mini]\nprompts: [hi]\ndataset: {name}\n", encoding="utf-8")
    _load_or_refuse(folder / "s.yaml")


@settings(max_examples=600, deadline=None, derandomize=True, database=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_arbitrary_text_loads_or_fails_clearly(text):
    try:
        loads_suite(BASE + "description: " + text)
        loads_suite(text)
    except TryoutsError as e:
        assert str(e).strip()


# ---- one case per finding of issue 12 --------------------------------------------------------------

FINDINGS = {
    "nul": (BASE + 'description: "a\x00b"\n', "U+0000 (NUL)", 5),
    "control": (BASE + "description: a\x01b\n", "control character U+0001", 5),
    "escape": (BASE + "description: a\x1b[0m\n", "U+001B (ESC)", 5),
    "escaped nul": (BASE + 'description: "a\\0b"\n', "NUL character", 5),
    "timestamp": (BASE + "description: !!timestamp foo\n", "!!timestamp", 5),
    "int tag": (BASE + "repeats: !!int abc\n", "!!int", 5),
    "bool tag": (BASE + "description: !!bool x\n", "!!bool", 5),
    "depth": (BASE + "description: " + "[" * 5000 + "]" * 5000 + "\n", "levels deep", 5),
    "big int": (BASE + "repeats: " + "9" * 5000 + "\n", "5000 digits", 5),
    "laughs": (LAUGHS, "aliases (*name) expand to more than", 10),
    "cycle": (BASE + "x: &a [*a]\n", "inside the value it names", 5),
    "repeats": (BASE + "repeats: 10000000\n", "10,000,000 cells", 5),
    "long text aliased": (BASE.replace("- hi", "- '{{b}}'") + "cases:\n  - vars:\n      a: &a '" + "x" * 200_000
                          + "'\n      b: [" + ",".join(["*a"] * 600) + "]\n", "expand to more than", 8),
    "var used many times": (BASE.replace("- hi", "- '" + "{{a}}" * 2000 + "'") + "cases:\n  - vars: {a: '"
                            + "y" * 100_000 + "'}\n", "more than 100,000,000 characters", 4),
}


@pytest.mark.parametrize("name", sorted(FINDINGS))
def test_each_finding_is_a_clear_suite_error(name, tmp_path):
    text, words, line = FINDINGS[name]
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start < 200 * 1024
    assert words in str(info.value)
    assert info.value.issues[0].file == str(path) and info.value.issues[0].line == line


#: the same, where the loader builds the values: a case's vars
LAUGHS_IN_VARS = BASE.replace("- hi", "- '{{j}}'") + "cases:\n  - vars:\n      a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"      {chr(98 + i)}: &{chr(98 + i)} [" + ",".join(["*" + chr(97 + i)] * 9) + "]\n" for i in range(9)
)


def test_aliases_a_few_times_load_but_a_laughs_value_in_case_vars_is_refused():
    suite = loads_suite(BASE.replace("prompts:", "defaults: &d {system: be brief}\nprompts:") +
                        "cases:\n  - {id: a, vars: &v {x: 1}}\n  - {id: b, vars: *v}\n")
    assert suite.defaults.system == "be brief" and len(suite.case_items()) == 2
    with pytest.raises(SuiteError, match="expand to more than"):
        loads_suite(LAUGHS_IN_VARS)


def test_escaped_control_characters_are_accepted_but_an_escaped_nul_is_not():
    suite = loads_suite(BASE + 'description: "tab\\there, bell \\a"\n')
    assert suite.description == "tab\there, bell \x07"
    with pytest.raises(SuiteError, match="NUL character"):
        loads_suite(BASE + 'description: "bell \\a, nul \\0"\n')


@pytest.mark.parametrize(("row", "words"), [
    ('{"q": ' + "9" * 5000 + "}", "5000 digits"),
    ('{"q": ' + "[" * 5000 + "]" * 5000 + "}", "levels deep"),
    ('{"q": "a\\u0000b"}', "NUL character"),
    ('{"q": "\\udc80"}', "lone surrogate"),
])
def test_dataset_findings(row, words, tmp_path):
    (tmp_path / "d.jsonl").write_text('{"q": "fine"}\n' + row + "\n", encoding="utf-8")
    (tmp_path / "s.yaml").write_text("models: [openai:gpt-4o-mini]\nprompts: ['{{q}}']\ndataset: d.jsonl\n")
    with pytest.raises(SuiteError) as info:
        load_suite(tmp_path / "s.yaml")
    assert words in str(info.value)
    assert info.value.issues[0].file == str(tmp_path / "d.jsonl") and info.value.issues[0].line == 2


def test_csv_with_nul_is_refused_at_its_line(tmp_path):
    (tmp_path / "d.csv").write_text("q\nfine\nbad\x00value\n", encoding="utf-8")
    (tmp_path / "s.yaml").write_text("models: [openai:gpt-4o-mini]\nprompts: ['{{q}}']\ndataset: d.csv\n")
    with pytest.raises(SuiteError) as info:
        load_suite(tmp_path / "s.yaml")
    assert "NUL character" in str(info.value) and info.value.issues[0].line == 3


def test_a_huge_suite_file_is_refused_before_parsing(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(BASE + "description: |\n" + ("  " + "x" * 1000 + "\n") * 5000, encoding="utf-8")
    with pytest.raises(SuiteError, match="larger than 4 MB"):
        load_suite(path)


CLI_CASES = {"laughs": LAUGHS_IN_VARS, "repeats": BASE + "repeats: 10000000\n", "nul": BASE + 'description: "\x00"\n',
             "timestamp": BASE + "description: !!timestamp foo\n", "depth": BASE + "x: " + "[" * 5000 + "\n"}


@pytest.mark.parametrize("name", sorted(CLI_CASES))
def test_cli_dry_run_refuses_without_traceback(name, tmp_path):
    path = tmp_path / f"{name}.yaml"
    path.write_text(CLI_CASES[name], encoding="utf-8")
    p = subprocess.run([sys.executable, "-c", (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30)); "
        "from tryouts.cli import main; sys.argv = ['tryouts', 'run', sys.argv[1], '--dry-run']; main()"), str(path)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    out = p.stdout + p.stderr
    assert p.returncode not in (0, None) and "Traceback" not in out, out
    assert f"{path}:" in out.replace("\n", ""), out
