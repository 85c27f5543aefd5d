"""The review half of the dashboard in a real browser (Debian's Chromium via Playwright) against a real uvicorn
server on 127.0.0.1: rate and comment a result and find it again after a reload, tag a run and filter by the tag,
delete a run after its confirm step, find a run by a word of an output, re-run one model, stop one model of a
live comparison. Every page is checked for script errors and CSP violations, and no dialog may fire.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import serve_dashboard, text_model
from test_store import make_result
from tryouts.errors import StoreError
from tryouts.store import Store

TOKEN = "a-known-token-for-the-review-browser-tests"
XSS = "Careful: <img src=x onerror=alert(1)> and <script>alert(2)</script> stay text."
WAIT_MS = 60_000


@dataclass
class Site:
    url: str
    db: Path
    replay: str
    suite_run: str
    other_run: str

    def store(self) -> Store:
        return Store(str(self.db))


@pytest.fixture(scope="module")
def site(replay_server, tmp_path_factory):
    """A suite run (``tryouts run``: two models, two cases) and a compare run whose answer says "zebra"."""
    root = tmp_path_factory.mktemp("review-browser")
    db = root / "review.db"
    suite = root / "suite.yaml"
    suite.write_text(f"""
models:
  - {{model: "{text_model(replay_server, 'Paris is the capital')}", label: paris}}
  - {{model: "{text_model(replay_server, 'It is Lyon')}", label: lyon}}
prompts: ["What is the capital of {{{{country}}}}?"]
cases:
  - {{vars: {{country: France}}, assert: [{{type: icontains, value: paris}}]}}
  - {{vars: {{country: Italy}}}}
""")
    env = dict(os.environ)
    for name in ("data", "cache", "config"):
        (root / name).mkdir()
        env[f"TRYOUTS_{name.upper()}_DIR"] = str(root / name)
    p = subprocess.run([sys.executable, "-m", "tryouts", "run", str(suite), "--db", str(db)], capture_output=True,
                       text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr + p.stdout
    store = Store(str(db))
    suite_run = store.resolve_run_id("latest")
    other = store.create_run("compare", ["openai:gpt-4o-mini"], {"messages": [{"role": "user", "content": "An animal?"}]})
    r = make_result()
    r.text = "A zebra, striped."
    store.add_result(other, r)
    store.finish_run(other, "done")
    with serve_dashboard(db, token=TOKEN, allow_options="base_url", suite_dir=root) as (url, _app):
        yield Site(url=url, db=db, replay=replay_server, suite_run=suite_run, other_run=other)


@pytest.fixture
def page(browser):
    """A page in a fresh context that records dialogs, script errors and CSP violations."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                  extra_http_headers={"Authorization": f"Bearer {TOKEN}"})
    pg = context.new_page()
    pg.dialogs, pg.errors, pg.csp = [], [], []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("console", lambda m: pg.csp.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        yield pg
    finally:
        context.close()
    assert pg.errors == [], pg.errors
    assert pg.csp == [], pg.csp
    assert pg.dialogs == [], pg.dialogs


def wait_for(predicate, what: str, limit_s: float = 60.0):
    """Poll until ``predicate()`` is truthy (a wait, not a timed assertion: the limit only ends a hung test)."""
    deadline = time.monotonic() + limit_s
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.1)
    return value


def test_a_rating_and_a_comment_persist_after_a_reload(site, page):
    page.goto(f"{site.url}/runs/{site.suite_run}")
    first = page.locator("#grid .review").first
    result_id = int(first.get_attribute("data-result"))
    first.locator("button.rate[data-rate='good']").click()
    page.wait_for_function("id => document.querySelector(`.review[data-result='${id}']`).dataset.rating === 'good'",
                           arg=result_id)
    first.locator("details.review-comment summary").click()
    first.locator("textarea").fill(XSS)
    first.locator("button.review-save").click()
    page.wait_for_function("id => document.querySelector(`.review[data-result='${id}'] .review-state`).textContent"
                           " === 'saved'", arg=result_id)
    page.reload()
    box = page.locator(f".review[data-result='{result_id}']")
    assert box.get_attribute("data-rating") == "good"
    assert box.locator("button.rate[data-rate='good']").get_attribute("aria-pressed") == "true"
    assert box.locator("button.rate[data-rate='bad']").get_attribute("aria-pressed") == "false"
    assert box.locator("textarea").input_value() == XSS  # the markup stayed text
    assert page.locator("#grid img").count() == 0
    review = site.store().reviews(site.suite_run)[result_id]
    assert review["rating"] == "good" and review["comment"] == XSS
    # 👎 replaces it; a second click on 👎 clears the rating and keeps the comment
    box.locator("button.rate[data-rate='bad']").click()
    page.wait_for_function("id => document.querySelector(`.review[data-result='${id}']`).dataset.rating === 'bad'",
                           arg=result_id)
    box.locator("button.rate[data-rate='bad']").click()
    page.wait_for_function("id => document.querySelector(`.review[data-result='${id}']`).dataset.rating === ''",
                           arg=result_id)
    page.reload()
    assert page.locator(f".review[data-result='{result_id}']").get_attribute("data-rating") == ""
    assert site.store().reviews(site.suite_run)[result_id]["rating"] is None


def test_tag_a_run_then_filter_the_runs_by_it(site, page):
    page.goto(f"{site.url}/runs/{site.suite_run}")
    page.fill("#tag-input", "Candidate")
    page.click("#tag-form button[type='submit']")
    page.wait_for_selector("#tag-list li[data-tag='candidate']")
    page.fill("#tag-input", "<b>bad</b>")
    page.click("#tag-form button[type='submit']")
    page.wait_for_selector("#tag-error:not([hidden])")
    assert "not a tag" in page.inner_text("#tag-error")
    assert site.store().run_tags(site.suite_run) == ["candidate"]
    page.reload()
    assert page.locator("#tag-list li").all_inner_texts()[0].startswith("candidate")
    page.goto(f"{site.url}/runs")
    page.fill("form.filters input[name='tag']", "candidate")
    page.click("form.filters button[type='submit']")
    page.wait_for_url(lambda u: "tag=candidate" in u)
    rows = page.locator("table.runs tbody tr")
    assert [rows.nth(i).get_attribute("data-run") for i in range(rows.count())] == [site.suite_run]
    assert page.locator(f"tr[data-run='{site.suite_run}'] a.chip.tag").inner_text() == "candidate"
    # the tag's chip links to the same filter; removing the tag empties it
    page.goto(f"{site.url}/runs/{site.suite_run}")
    page.click("#tag-list button.tag-remove[data-tag='candidate']")
    page.wait_for_selector("#tag-list li", state="detached")
    assert site.store().run_tags(site.suite_run) == []


def test_search_finds_a_run_by_a_word_in_an_output(site, page):
    page.goto(f"{site.url}/runs")
    page.fill("form.filters input[name='q']", "ZEBRA")
    page.click("form.filters button[type='submit']")
    page.wait_for_url(lambda u: "q=ZEBRA" in u)
    rows = page.locator("table.runs tbody tr")
    assert [rows.nth(i).get_attribute("data-run") for i in range(rows.count())] == [site.other_run]
    page.fill("form.filters input[name='q']", "lyon")  # a label and an output of the suite run
    page.click("form.filters button[type='submit']")
    page.wait_for_url(lambda u: "q=lyon" in u)
    assert page.locator(f"tr[data-run='{site.suite_run}']").count() == 1
    assert page.locator(f"tr[data-run='{site.other_run}']").count() == 0
    # within a run: the grid keeps the cases with a matching output
    page.goto(f"{site.url}/runs/{site.other_run}")
    page.fill("#run-search input[name='q']", "striped")
    page.click("#run-search button[type='submit']")
    page.wait_for_selector("#search-count")
    assert page.locator("#grid .res").count() == 1
    page.fill("#run-search input[name='q']", "no such word")
    page.click("#run-search button[type='submit']")
    page.wait_for_url(lambda u: "no+such+word" in u or "no%20such%20word" in u)
    assert page.locator("#grid .res").count() == 0
    assert "No output in this view contains" in page.inner_text("main")


def test_rerun_one_model_opens_the_new_run(site, page):
    page.goto(f"{site.url}/runs/{site.suite_run}")
    page.click("td.model-actions[data-model='1'] button.rerun")
    page.wait_for_url(lambda u: "/runs/" in u and site.suite_run not in u, timeout=WAIT_MS)
    new = page.url.split("/runs/", 1)[1].split("?")[0].split("#")[0]
    store = site.store()
    wait_for(lambda: store.get_run_row(new)["status"] != "running", "the re-run ends")
    data = store.get_run(new)
    assert data["run"]["meta"]["labels"] == ["lyon"] and {r["text"] for r in data["results"]} == {"It is Lyon"}
    page.reload()  # opened while it ran: now with its results
    href = page.get_attribute("td.model-actions[data-model='0'] a[data-action='export']", "href")
    assert href == f"/api/runs/{new}/models/0/results?download=true"


def test_delete_a_run_after_its_confirm_step(site, page):
    store = site.store()
    doomed = store.create_run("compare", ["openai:gpt-4o-mini"], {"messages": [{"role": "user", "content": "x"}]})
    result_id = store.add_result(doomed, make_result())
    store.finish_run(doomed, "done")
    store.set_review(doomed, result_id, "bad", "to go")
    page.goto(f"{site.url}/runs/{doomed}")
    page.click("#delete-run")
    assert page.is_visible("#delete-confirm") and not page.is_visible("#delete-run")
    page.click("#delete-no")  # cancelled: nothing happens
    assert not page.is_visible("#delete-confirm") and store.get_run_row(doomed)["id"] == doomed
    page.click("#delete-run")
    page.click("#delete-yes")
    page.wait_for_url(lambda u: u.rstrip("/").endswith("/runs"))
    assert page.locator(f"tr[data-run='{doomed}']").count() == 0
    with pytest.raises(StoreError):
        store.get_run_row(doomed)
    assert store.reviews(doomed) == {}


def test_stop_one_model_from_its_panel_keeps_its_ttft(site, page):
    page.goto(site.url + "/")
    page.fill("#model-ref", f"openai-compat:{site.replay}#tokens=400;ttft_ms=20;itl_ms=25")
    page.click("#add-ref")
    page.fill("#model-ref", text_model(site.replay, "alpha beta"))
    page.click("#add-ref")
    page.fill("#prompt", "A long answer, please.")
    page.click("#start")
    page.wait_for_function("() => Number(document.querySelector('article.panel[data-model=\"0\"]')?.dataset.deltas"
                           " || 0) >= 5")
    page.click("article.panel[data-model='0'] button.stop-model")
    page.wait_for_selector("#panels[data-state='ended']", timeout=WAIT_MS)
    assert page.inner_text("article.panel[data-model='0'] .pstate") == "stopped"
    assert page.inner_text("article.panel[data-model='1'] .pstate") == "done"
    assert not page.is_visible("article.panel button.stop-model")  # gone once the comparison ended
    rows = {r["model_index"]: r for r in site.store().get_run(page.get_attribute("#panels", "data-run"))["results"]}
    assert rows[1]["ok"] and rows[1]["text"] == "alpha beta"
    assert rows[0]["error_kind"] == "stopped" and rows[0]["ttft_ms"] is not None and rows[0]["ttft_ms"] >= 20
    shown = page.locator("article.panel[data-model='0'] pre.out").text_content()
    assert shown == rows[0]["text"] and shown.startswith(" w0 w1 w2 w3 w4")
    assert page.inner_text("article.panel[data-model='0'] [data-stat='ttft']") != "–"
