"""A hostile row in a shared ledger against the dashboard (web/unreadable.py, records.index_in).

Anyone with write access to a shared results database can write any value in any column. The ledger here is
real: a run of every kind (compare, suite, eval-task, load) made by ``tryouts`` against the replay server; each
test tampers with a copy of it through plain sqlite3, as an attacker would, and asks the dashboard (a real
uvicorn server on 127.0.0.1) for its pages. What must hold:

* ``GET /api/runs`` lists a run of every kind the store holds (a load benchmark made it answer 500);
* one stored index (``results.model_index = 2000000000``) never sizes a list: the run page and the html report
  leave that result out and say so, instead of padding a list up to two billion entries;
* a malformed row never gets an unhandled 500 or a logged traceback: the answer names the run and the kind of
  problem, and never echoes the stored value;
* one unreadable run leaves the run list working: it is left out of ``/api/runs`` (counted in a header) and
  listed apart on ``/runs``, and every other run is listed as usual.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from helpers import serve_dashboard, text_model

TOKEN = "a-known-token-for-the-ledger-tests"
web = httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)

#: the mark every hostile value carries: an answer or a log line holding it echoed the stored value
MARK = "HOSTILE-7f3a"


def tryouts(*args: str) -> str:
    p = subprocess.run([sys.executable, "-m", "tryouts", *args], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


@pytest.fixture(scope="module")
def ledger(replay_server, tmp_path_factory):
    """A ledger with a run of every kind, each made by a real ``tryouts`` command; (path, {kind: run id})."""
    folder = tmp_path_factory.mktemp("ledger")
    db = str(folder / "base.db")
    suite = folder / "s.yaml"
    suite.write_text(f"""
models:
  - {{model: "{text_model(replay_server, 'Paris is the capital')}", label: paris}}
  - {{model: "{text_model(replay_server, 'It is Lyon')}", label: lyon}}
prompts: ["Capital {{{{n}}}}?"]
cases:
  - {{vars: {{n: 1}}, assert: [{{type: icontains, value: paris}}]}}
  - {{vars: {{n: 2}}, assert: [{{type: icontains, value: is}}]}}
""")
    tryouts("run", str(suite), "--db", db)
    tryouts("compare", "Say hi", "-m", text_model(replay_server, "Hello there"), "-m",
            text_model(replay_server, "Hi"), "--db", db)
    data = folder / "pn.csv"
    data.write_text("text,label\ngood thing,positive\nbad thing,negative\n")
    tryouts("eval-task", "classification", "--data", str(data), "--db", db, "-m",
            text_model(replay_server, "positive"))
    tryouts("load", f"openai-compat:{replay_server}#tokens=3;ttft_ms=2;itl_ms=1", "--db", db, "-p", "concurrent",
            "--streams", "2", "-n", "4")
    con = sqlite3.connect(db)
    ids = dict(con.execute("select kind, id from runs"))
    con.execute("PRAGMA wal_checkpoint(FULL)")
    con.close()
    assert sorted(ids) == ["compare", "eval-task", "load", "suite"]
    return db, ids


def tampered(ledger, tmp_path, *statements: str) -> Path:
    """A copy of the ledger with ``statements`` run on it by plain sqlite3 (``{suite}``, ``{compare}``,
    ``{eval-task}``, ``{load}``: the runs' ids)."""
    base, ids = ledger
    db = tmp_path / "tampered.db"
    shutil.copy(base, db)
    con = sqlite3.connect(db)
    for sql in statements:
        for kind, run_id in ids.items():
            sql = sql.replace(f"{{{kind}}}", run_id)
        con.execute(sql)
    con.commit()
    con.close()
    return db


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def dashboard(db):
    """The dashboard on ``db``; yields (base URL, the log records of the server and of the dashboard)."""
    handler = _Records()
    loggers = [logging.getLogger(n) for n in ("uvicorn.error", "uvicorn", "tryouts.web")]
    for log in loggers:
        log.addHandler(handler)
    try:
        with serve_dashboard(db, token=TOKEN) as (url, _app):
            yield url, handler.records
    finally:
        for log in loggers:
            log.removeHandler(handler)


def assert_no_traceback_and_no_echo(records: list[logging.LogRecord]) -> None:
    tracebacks = [r.getMessage() for r in records if r.exc_info]
    assert tracebacks == [], tracebacks
    assert not any(MARK in r.getMessage() for r in records)


# ---- finding 11: a load benchmark in the ledger -------------------------------------------------------


def test_the_run_list_answers_with_a_run_of_every_kind(ledger):
    db, ids = ledger
    with dashboard(db) as (url, records):
        r = web.get(f"{url}/api/runs")
        page = web.get(f"{url}/runs")
        kinds = web.get(f"{url}/api/runs", params={"kind": "load"})
    assert r.status_code == 200, r.text[:300]
    assert sorted(run["kind"] for run in r.json()) == ["compare", "eval-task", "load", "suite"]
    assert {run["id"] for run in r.json()} == set(ids.values())
    assert "X-Tryouts-Unreadable-Runs" not in r.headers
    assert kinds.status_code == 200 and [run["id"] for run in kinds.json()] == [ids["load"]]
    assert page.status_code == 200 and all(f'data-run="{i}"' in page.text for i in ids.values())
    assert 'id="unreadable-runs"' not in page.text
    assert_no_traceback_and_no_echo(records)


# ---- finding 6: one stored integer sizes nothing ------------------------------------------------------


@contextlib.contextmanager
def address_space_cap(extra: int = 3 << 30):
    """This process's address space capped at its current size plus ``extra`` while the block runs, so that a
    list padded up to a stored number fails fast with MemoryError instead of taking the machine's memory."""
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as f:
        size = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    cap = size + extra if hard == resource.RLIM_INFINITY else min(size + extra, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def test_a_huge_model_index_is_left_out_not_padded_up_to(ledger, tmp_path):
    from tryouts.report.html import render_html
    from tryouts.store import Store

    db = tampered(ledger, tmp_path, "update results set model_index = 2000000000 where id = "
                                    "(select min(id) from results where run_id = '{suite}')")
    run_id = ledger[1]["suite"]
    with address_space_cap(), dashboard(db) as (url, records):
        page = web.get(f"{url}/runs/{run_id}")
        api = web.get(f"{url}/api/runs/{run_id}")
        results = web.get(f"{url}/api/runs/{run_id}/results")
        charts = web.get(f"{url}/api/runs/{run_id}/charts")
        report = render_html(Store(str(db)).get_run(run_id))
    assert page.status_code == 200, page.text[:300]
    assert 'id="left-out">1 result whose model' in page.text
    assert page.text.count('<div class="res ') == 3  # the run's other results are shown, in two cases
    assert page.text.count('<tr data-case="') == 2
    assert api.status_code == 200 and api.json()["n_skipped"] == 1 and api.json()["n_results"] == 3
    assert [s["model_index"] for s in api.json()["summary"]] == [0, 1]
    assert results.status_code == 200 and charts.status_code == 200
    assert "2000000000" not in page.text
    # the shareable html report: the result is left out and said, the two models' columns only
    assert "<dt>Left out</dt><dd>1 result(s) whose model index is not one of the run&#x27;s 2 models" in report
    assert "2000000000" not in report
    assert_no_traceback_and_no_echo(records)


# ---- finding 7 / 9: a malformed row gets a clear answer, never an unhandled 500 ----------------------

RESULT = "update results set {col} = {value} where run_id = '{{suite}}' and id = " \
         "(select min(id) from results where run_id = '{{suite}}')"
RUN = "update runs set {col} = {value} where id = '{{suite}}'"

MALFORMED = {
    "cost_total text": RESULT.format(col="cost_total", value=f"'abc-{MARK}'"),
    "cost_total out of range": RESULT.format(col="cost_total", value="'1e999999'"),
    "ttft_ms text": RESULT.format(col="ttft_ms", value=f"'x-{MARK}'"),
    "output_tokens text": RESULT.format(col="output_tokens", value=f"'x-{MARK}'"),
    "text a blob": RESULT.format(col="text", value="X'C3FFFE41'"),
    "scores a string": RESULT.format(col="scores", value=f"'\"{MARK}\"'"),
    "case a string": RESULT.format(col='"case"', value=f"'\"{MARK}\"'"),
    "options not json": RESULT.format(col="options", value=f"'{{not json {MARK}'"),
    "request a list": RESULT.format(col="request", value=f"'[\"{MARK}\"]'"),
    "meta not json": RUN.format(col="meta", value=f"'{{oops {MARK}'"),
    "meta a list": RUN.format(col="meta", value=f"'[\"{MARK}\"]'"),
    "meta.quality a string": RUN.format(col="meta", value=f"json_set(meta, '$.quality', '{MARK}')"),
    "models a dict": RUN.format(col="models", value=f"'{{\"{MARK}\": 1}}'"),
}


def _pages(ids: dict[str, str]) -> list[str]:
    s, c = ids["suite"], ids["compare"]
    return [f"/runs/{s}", f"/runs/{s}?view=failures", f"/arena/{s}", f"/diff?a={s}&b={c}", f"/api/runs/{s}",
            f"/api/runs/{s}/results", f"/api/runs/{s}/charts", f"/api/diff?a={s}&b={c}",
            f"/api/runs/{s}/arena/next", f"/api/runs/{s}/models/0/results"]


@pytest.mark.parametrize("name", list(MALFORMED))
def test_a_malformed_row_gets_a_clear_answer_not_an_unhandled_500(ledger, tmp_path, name):
    db = tampered(ledger, tmp_path, MALFORMED[name])
    ids = ledger[1]
    with dashboard(db) as (url, records):
        answers = {p: web.get(url + p) for p in _pages(ids)}
        others = web.get(f"{url}/runs/{ids['compare']}")
    failed = {p: r for p, r in answers.items() if r.status_code >= 500}
    for path, r in answers.items():
        assert "Internal Server Error" not in r.text and "Traceback" not in r.text, (path, r.text[:300])
    for path, r in failed.items():
        assert r.status_code == 500, (path, r.status_code)
        assert MARK not in r.text, (path, r.text[:300])  # the message never quotes the stored value
        if path.startswith("/api/"):
            detail = r.json()["detail"]
        else:
            assert 'role="alert"' in r.text  # the dashboard's error page
            detail = r.text
        assert f"Run {ids['suite']}" in detail and "could not be read" in detail, (path, detail[:300])
        assert "a row in the results database is malformed" in detail and "may have been edited" in detail
    assert others.status_code == 200  # one bad row costs its run only
    assert_no_traceback_and_no_echo(records)
    if failed:  # each said in one line of the log, without a traceback
        assert any("answered 500" in r.getMessage() for r in records)


# ---- finding 7: one unreadable run leaves the run list working ---------------------------------------

UNREADABLE_RUN = {
    "meta not json": RUN.format(col="meta", value=f"'{{oops {MARK}'"),
    "models a dict": RUN.format(col="models", value=f"'{{\"{MARK}\": 1}}'"),
    "models numbers": RUN.format(col="models", value="'[1, 2]'"),
    "models a string": RUN.format(col="models", value=f"'\"{MARK}\"'"),
    "kind markup": RUN.format(col="kind", value=f"'[/x]{MARK}'"),
    "status markup": RUN.format(col="status", value=f"'[/x]{MARK}'"),
    "request a list": RUN.format(col="request", value="'[]'"),
    "meta a list": RUN.format(col="meta", value="'[]'"),
    "labels a number": RUN.format(col="meta", value="json_set(meta, '$.labels', 5)"),
    "started_at a blob": RUN.format(col="started_at", value="X'C3FF'"),
}


@pytest.mark.parametrize("name", list(UNREADABLE_RUN))
def test_one_unreadable_run_leaves_the_run_list_working(ledger, tmp_path, name):
    db = tampered(ledger, tmp_path, UNREADABLE_RUN[name],
                  "insert into run_tags (run_id, tag, created_at) select id, 'x', '2026-01-01' from runs "
                  "where kind = 'compare'")
    ids = ledger[1]
    good = {i for k, i in ids.items() if k != "suite"}
    with dashboard(db) as (url, records):
        api = web.get(f"{url}/api/runs")
        page = web.get(f"{url}/runs")
        searched = web.get(f"{url}/runs", params={"q": "o"})
        tagged = web.get(f"{url}/api/runs", params={"tag": "x"})
        diff = web.get(f"{url}/diff")
    assert api.status_code == 200, api.text[:300]
    assert {r["id"] for r in api.json()} == good
    assert api.headers["X-Tryouts-Unreadable-Runs"] == "1"
    assert tagged.status_code == 200 and [r["id"] for r in tagged.json()] == [ids["compare"]]
    for r in (page, searched):
        assert r.status_code == 200, r.text[:300]
        assert all(f'data-run="{i}"' in r.text for i in good)
        assert f'data-run="{ids["suite"]}"' not in r.text
    block = page.text[page.text.index('id="unreadable-runs"'):]
    block = block[:block.index("</div>")]
    assert "1 run could not be read" in block and f"<code>{ids['suite']}</code>" in block
    assert diff.status_code == 200
    for r in (api, page, searched, tagged, diff):
        assert MARK not in r.text
    assert_no_traceback_and_no_echo(records)


def test_a_run_with_an_id_that_cannot_be_shown_is_listed_apart_without_it(ledger, tmp_path):
    db = tampered(ledger, tmp_path, f"update runs set id = '<b>{MARK}</b>', kind = 'x' where id = '{{suite}}'",
                  f"update results set run_id = '<b>{MARK}</b>' where run_id = '{{suite}}'")
    with dashboard(db) as (url, records):
        page = web.get(f"{url}/runs")
        api = web.get(f"{url}/api/runs")
    assert page.status_code == 200 and api.status_code == 200
    assert MARK not in page.text and MARK not in json.dumps(api.json())
    assert "(an id that cannot be shown)" in page.text
    assert_no_traceback_and_no_echo(records)
