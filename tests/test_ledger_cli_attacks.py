"""A hostile row in a shared ledger against the CLI: Rich markup in stored text (audit finding 8: ``[link=…]``
became a terminal hyperlink, ``[/x]`` a MarkupError traceback) and a run id that names a path (finding 5:
``tryouts export RUN -f html`` wrote ``tryouts-{id}.html`` wherever the id pointed, making the folders on the way).

The ledgers are real: ``tryouts run`` and ``tryouts compare`` against the replay server, then tampered with plain
``sqlite3``, as anyone with write access to a shared database could."""

from __future__ import annotations

import io
import json
import os
import re
import sqlite3
import subprocess
import sys

import pytest

LINK = "[link=https://evil.example/login]"
# (labels and model references are shown through short_label: a "provider:" part keeps these whole)
LABEL = "team:" + LINK + "click me[/link] [bold green]verified by IT[/] [/x]"
MODEL = "openai:" + LINK + "model[/link] [/]"
ERROR = LINK + "reset your key here[/link] [/red] [/x]"
PROMPT = LINK + "prompt[/link] [/x]"
OSC8 = "\x1b]8;"
SGR = re.compile(r"\x1b\[[0-9;]*m")


def tryouts(*args, env=None, cwd=None, timeout=180):
    return subprocess.run([sys.executable, "-m", "tryouts", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "COLUMNS": "250", **(env or {})}, timeout=timeout)


def terminal_and_pipe(*args, cwd=None):
    """The command's output twice: as on a colour terminal (FORCE_COLOR: Rich writes styles and links) and
    piped with NO_COLOR."""
    return [tryouts(*args, cwd=cwd, env={"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"}),
            tryouts(*args, cwd=cwd, env={"NO_COLOR": "1"})]


def assert_inert(p: subprocess.CompletedProcess, *, ok: bool = True) -> str:
    """No traceback or MarkupError, no terminal hyperlink (OSC 8); the output with Rich's colours removed and
    lines joined (a long value may wrap)."""
    out = p.stdout + p.stderr
    assert "Traceback" not in out and "MarkupError" not in out, out
    assert OSC8 not in out, out
    if ok:
        assert p.returncode == 0, out
    return SGR.sub("", p.stdout).replace("\n", "")


def _suite(tmp_path, replay_server) -> str:
    path = tmp_path / "suite.yaml"
    path.write_text(
        "models:\n"
        f'  - model: "openai-compat:{replay_server}#text=Paris"\n    label: first\n'
        f'  - model: "openai-compat:{replay_server}#text=Rome"\n    label: second\n'
        'prompts: ["Capital of {{country}}?"]\n'
        "cases:\n  - {vars: {country: France}, assert: [{type: icontains, value: paris}]}\n", encoding="utf-8")
    return str(path)


@pytest.fixture
def ledger(tmp_path, replay_server):
    """A ledger with a suite run and a compare run; returns (db path, suite run id, compare run id)."""
    db = str(tmp_path / "shared.db")
    p = tryouts("run", _suite(tmp_path, replay_server), "--db", db, "--no-cache")
    assert p.returncode in (0, 2), p.stderr
    p = tryouts("compare", "hi", "-m", f"openai-compat:{replay_server}#text=hello", "--db", db)
    assert p.returncode == 0, p.stderr
    con = sqlite3.connect(db)
    (suite_id,), (compare_id,) = con.execute("SELECT id FROM runs ORDER BY kind DESC").fetchall()
    con.close()
    return db, suite_id, compare_id


def tamper(db: str, sql: str, *params) -> None:
    con = sqlite3.connect(db)
    con.execute(sql, params)
    con.commit()
    con.close()


def _hostile_text(db: str, suite_id: str, compare_id: str) -> None:
    """Markup in the free-text columns: labels, model references, errors, the prompt."""
    con = sqlite3.connect(db)
    meta = json.loads(con.execute("SELECT meta FROM runs WHERE id=?", (suite_id,)).fetchone()[0])
    meta["labels"] = [LABEL, "second"]
    con.execute("UPDATE runs SET meta=?, models=? WHERE id=?", (json.dumps(meta), json.dumps([MODEL, "other"]), suite_id))
    con.execute("UPDATE results SET ok=0, error=?, text='' WHERE run_id=? AND model_index=1", (ERROR, suite_id))
    con.execute("UPDATE runs SET models=? WHERE id=?", (json.dumps([MODEL]), compare_id))
    request = json.dumps({"messages": [{"role": "user", "content": PROMPT}]})
    con.execute("UPDATE runs SET request=? WHERE id=?", (request, compare_id))
    con.execute("UPDATE results SET model=?, ok=0, error=? WHERE run_id=?", (MODEL, ERROR, compare_id))
    con.commit()
    con.close()


def test_runs_and_show_print_stored_markup_as_text(ledger):
    db, suite_id, compare_id = ledger
    _hostile_text(db, suite_id, compare_id)
    for p in terminal_and_pipe("runs", "--db", db):
        out = assert_inert(p)
        assert MODEL in out  # the models column, as stored
    for p in terminal_and_pipe("show", suite_id, "--db", db):  # grouped by case, the summary, the failures
        out = assert_inert(p)
        assert LABEL in out and ERROR in out
    for p in terminal_and_pipe("show", compare_id, "--db", db):  # outputs, the results table, failures
        out = assert_inert(p)
        assert PROMPT in out and ERROR in out and MODEL in out
    # the JSON keeps the exact values
    data = json.loads(tryouts("show", suite_id, "--db", db, "-f", "json").stdout)
    assert data["run"]["meta"]["labels"][0] == LABEL
    rows = json.loads(tryouts("runs", "--db", db, "-f", "json").stdout)
    assert [MODEL, "other"] in [r["models"] for r in rows]


def test_markup_in_run_id_kind_and_status_never_links_or_crashes(ledger):
    """The run's own columns: ``tryouts runs`` and ``show`` either print them as text or refuse the row (with
    a message, never a traceback), and never write a hyperlink."""
    db, suite_id, _ = ledger
    evil_id = "e-[link=https://evil.example/i]x[/link][/x]"
    con = sqlite3.connect(db)
    con.execute("PRAGMA foreign_keys=OFF")
    for table in ("results", "run_drivers", "batch_jobs", "reviews", "run_tags", "judgments", "votes"):
        con.execute(f"UPDATE {table} SET run_id=? WHERE run_id=?", (evil_id, suite_id))
    con.execute("UPDATE runs SET id=?, kind=?, status=? WHERE id=?",
                (evil_id, LINK + "suite[/link]", "[bold green]done ✓ verified by IT[/] [/x]", suite_id))
    con.commit()
    con.close()
    for args in (("runs",), ("show", "e-")):
        for p in terminal_and_pipe(*args, "--db", db):
            out = assert_inert(p, ok=False)
            if p.returncode == 0 and args[0] == "runs":  # shown as written, or left out as unreadable
                assert LINK in out or "could not be read" in SGR.sub("", p.stderr), out
    p = tryouts("runs", "--db", db, "-f", "json")
    assert "Traceback" not in p.stderr and OSC8 not in p.stdout


def test_markup_in_stored_scores_and_timestamps_never_links_or_crashes(ledger):
    """Values formatted into the commands' own lines and cells (a judge's scale, a run's start time): text."""
    db, suite_id, compare_id = ledger
    scale = LINK + "5[/link] [/x]"
    scores = {"judge": {"score": 4, "scale": [1, scale], "rationale": ERROR}}
    tamper(db, "UPDATE results SET scores=? WHERE run_id=?", json.dumps(scores), compare_id)
    tamper(db, "UPDATE runs SET started_at=? WHERE id=?", "[link=https://e.x]9", compare_id)  # shown: 19 characters
    tamper(db, "UPDATE runs SET started_at=? WHERE id=?", "2026-12-04 [/x] 13:10", suite_id)
    for p in terminal_and_pipe("runs", "--db", db):
        out = assert_inert(p, ok=False)
        if p.returncode == 0:
            assert "[link=https://e.x]9" in out and "2026-12-04 [/x] 13" in out
    for p in terminal_and_pipe("show", compare_id, "--db", db):
        out = assert_inert(p, ok=False)
        if p.returncode == 0:
            assert f"4/{scale}" in out and ERROR in out


def test_export_html_default_name_stays_in_the_current_folder(ledger, tmp_path):
    db, suite_id, _ = ledger
    target = tmp_path / "planted"
    evil_id = "x/../../../" + "../" * len(tmp_path.parts) + str(target).lstrip("/")
    con = sqlite3.connect(db)
    con.execute("PRAGMA foreign_keys=OFF")
    for table in ("results", "run_drivers", "batch_jobs", "reviews", "run_tags", "judgments", "votes"):
        con.execute(f"UPDATE {table} SET run_id=? WHERE run_id=?", (evil_id, suite_id))
    con.execute("UPDATE runs SET id=?, started_at='2999-01-01T00:00:00+00:00' WHERE id=?", (evil_id, suite_id))
    con.commit()
    con.close()
    work = tmp_path / "work" / "a" / "b"
    work.mkdir(parents=True)
    p = tryouts("export", "latest", "-f", "html", "--db", db, cwd=work)
    assert "Traceback" not in p.stdout + p.stderr, p.stderr
    assert not (tmp_path / "planted.html").exists() and not list(tmp_path.rglob("planted.html"))
    made = sorted(x.name for x in work.iterdir())
    if p.returncode == 0:  # written here, under a name that is only a name
        assert len(made) == 1 and made[0].startswith("tryouts-") and made[0].endswith(".html"), made
        assert re.fullmatch(r"[A-Za-z0-9._-]+", made[0]) and (work / made[0]).is_file()
        assert p.stdout.strip() == made[0]
    else:  # or the row is refused: nothing written, no folder made
        assert made == []
    assert not (work / "tryouts-x").exists()


def test_export_html_with_an_output_path_still_makes_its_folders(ledger, tmp_path):
    db, suite_id, _ = ledger
    p = tryouts("export", suite_id, "-f", "html", "-o", str(tmp_path / "new" / "dir" / "page.html"), "--db", db)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "new" / "dir" / "page.html").is_file()
    p = tryouts("export", suite_id, "-f", "html", "--db", db, cwd=tmp_path)
    assert p.returncode == 0 and (tmp_path / f"tryouts-{suite_id}.html").is_file(), p.stderr


@pytest.mark.parametrize("run_id, name", [
    ("20261204-131033-c11e", "tryouts-20261204-131033-c11e.html"),
    ("x/../../../tmp/planted", "tryouts-x_.._.._.._tmp_planted.html"),
    ("..\\..\\win", "tryouts-.._.._win.html"),
    ("~root/.ssh/x", "tryouts-_root_.ssh_x.html"),
    ("a\x1b]8;;https://e\x07b", "tryouts-a__8__https___e_b.html"),
    ("", "tryouts-.html"),
])
def test_default_file_name_is_one_safe_name(run_id, name):
    from tryouts.paths import default_file_name

    assert default_file_name("tryouts-", run_id, ".html") == name
    long = default_file_name("tryouts-", "a" * 1000, ".html")
    assert len(long) == 100 and long.endswith(".html")
    assert default_file_name("", "../.hidden", ".html") == "_.hidden.html"
    assert default_file_name("", "..", ".html") == "run.html"  # never a leading dot


def test_styled_parses_the_template_never_the_values():
    from tryouts.cli.render import styled

    text = styled("Run [bold]{}[/] · {} · {n:,} cells {x!r}", LINK + "id[/link]\\", "[/x]", n=12345, x="[b]")
    assert text.plain == f"Run {LINK}id[/link]\\ · [/x] · 12,345 cells '[b]'"
    (span,) = text.spans
    assert text.plain[span.start:span.end] == f"{LINK}id[/link]\\" and str(span.style) == "bold"
    assert styled("[dim]no fields[/]").plain == "no fields"


def test_the_commands_consoles_parse_no_markup_and_write_no_links(monkeypatch, capsys):
    from rich.markdown import Markdown
    from rich.table import Table
    from rich.text import Text

    from tryouts.cli.render import SafeConsole, make_console, styled

    monkeypatch.setenv("FORCE_COLOR", "1")
    console = make_console()
    assert console.is_terminal
    table = Table("Run", title=LABEL)
    table.add_row(LABEL)
    console.print(LABEL, table, styled("[bold]{}[/]", LABEL))
    console.rule(LABEL)
    out = capsys.readouterr().out
    assert OSC8 not in out and SGR.sub("", out).count(LABEL) == 5, out
    assert console.status(LABEL).renderable.text.plain == LABEL  # Rich's spinner would parse a str
    # the last guard: a link made by markup or Markdown on any SafeConsole is written as its text alone
    buf = io.StringIO()
    SafeConsole(file=buf, force_terminal=True, color_system="standard", width=100).print(
        Text.from_markup(LINK + "LINK[/link]"), Markdown("[md](https://evil.example/md)"), "[link=https://e]s[/link]")
    assert OSC8 not in buf.getvalue() and "LINK" in buf.getvalue() and "md" in buf.getvalue()
    assert SGR.search(buf.getvalue())  # styles are still written


def test_load_benchmark_views_print_stored_text_as_text(capsys, monkeypatch):
    from tryouts.cli.render import make_console
    from tryouts.cli.views import print_load_benchmarks

    monkeypatch.setenv("FORCE_COLOR", "1")
    point = {"profile": LABEL, "request_rate": 1.0, "request_throughput": 1.0, "p50_ttft_ms": 1.0,
             "p99_ttft_ms": 1.0, "p50_tpot_ms": 1.0, "p99_e2el_ms": 1.0, "completed": 1, "num_prompts": 1,
             "request_goodput": None}
    headline = dict.fromkeys(("max_request_throughput", "max_output_throughput", "min_p50_ttft_ms",
                              "max_request_goodput", "goodput_rate", "min_cost_per_good_request_usd",
                              "min_cost_per_1m_output_tokens_usd"))
    bench = {"run": {"id": "r-" + LINK + "x[/link]", "status": "[/x]"}, "model": MODEL, "profile": "[/x]",
             "points": [point], "warnings": [ERROR], "headline": headline}
    print_load_benchmarks(make_console(), [bench], side_by_side=True)
    out = capsys.readouterr().out
    plain = SGR.sub("", out)
    assert OSC8 not in out and LABEL in plain and ERROR in plain and MODEL in plain


def test_every_console_the_commands_make_parses_no_markup():
    """A console made in a command module goes through make_console, or says markup=False: a new one that
    parsed markup would reopen the hole for whatever it prints."""
    from pathlib import Path

    import tryouts.cli

    made = re.compile(r"(?<!class )\b(?:SafeConsole|FitConsole|Console)\(([^()]*(?:\([^()]*\)[^()]*)*)\)")
    seen = 0
    for path in Path(tryouts.cli.__file__).parent.glob("*.py"):
        for m in made.finditer(path.read_text(encoding="utf-8")):
            assert "markup=False" in m.group(1), f"{path.name}: {m.group(0)}"
            seen += 1
    assert seen >= 3  # make_console's, and the error consoles
