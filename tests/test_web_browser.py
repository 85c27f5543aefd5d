"""The dashboard in a real browser (Debian's Chromium via Playwright) against a real uvicorn server on 127.0.0.1.

One browser and one server per module, over a temporary store with one suite run (two scripted models, three
cases with assertions, known prices). Each test opens its own browser context (its own cookies).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import numpy as np
import pytest

from helpers import free_port, serve_dashboard, text_model
from tryouts.store import Store

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
XSS = "Careful: <img src=x onerror=alert(1)> and <script>alert(2)</script> stay text."
WAIT_MS = 120_000


@dataclass
class Site:
    url: str
    db: Path
    replay: str
    suite_run: str
    labels: list[str]

    def store(self) -> Store:
        return Store(str(self.db))


TOKEN = "a-known-token-for-the-browser-tests"


@pytest.fixture(scope="module")
def site(replay_server, tmp_path_factory):
    """A store with one suite run (made by ``tryouts run``) and the dashboard serving it."""
    import os

    root = tmp_path_factory.mktemp("web-browser")
    db = root / "web.db"
    suite = root / "suite.yaml"
    good = text_model(replay_server, "Paris is the capital of France", ";ttft_ms=15;itl_ms=4")
    bad = text_model(replay_server, "It is Lyon " + XSS, ";ttft_ms=30;itl_ms=2")
    suite.write_text(f"""
models:
  - {{model: "{good}", label: paris, options: {{price: "1,2"}}}}
  - {{model: "{bad}", label: lyon, options: {{price: "0.5,4"}}}}
prompts: ["What is the capital of {{{{country}}}}?"]
cases:
  - {{vars: {{country: France}}, assert: [{{type: icontains, value: paris}}]}}
  - {{vars: {{country: Italy}}, assert: [{{type: icontains, value: is}}]}}
  - {{vars: {{country: Spain}}, assert: [{{type: icontains, value: capital}}]}}
""")
    env = dict(os.environ)
    for name in ("data", "cache", "config"):
        (root / name).mkdir()
        env[f"TRYOUTS_{name.upper()}_DIR"] = str(root / name)
    p = subprocess.run([sys.executable, "-m", "tryouts", "run", str(suite), "--db", str(db)], capture_output=True,
                       text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr + p.stdout
    run_id = Store(str(db)).get_run("latest")["run"]["id"]
    # the live comparisons here use the replay server's URL and the demo models' folders
    with serve_dashboard(db, token=TOKEN, allow_options="base_url", allow_local_paths=True,
                         suite_dir=root) as (url, _app):
        yield Site(url=url, db=db, replay=replay_server, suite_run=run_id, labels=["paris", "lyon"])


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


def _num(text: str) -> float:
    return float(text.replace(",", "").replace("~", "").strip())


def _fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _live_compare(page, url: str, models: list[str], prompt: str, max_tokens: int = 24, expected: str | None = None,
                  asserts: tuple[str, ...] = ()) -> dict:
    """Start a comparison from the page, record each panel's text length as it changes, wait for the end."""
    page.goto(url + "/")
    page.wait_for_selector("#catalog-pick optgroup", state="attached")  # the catalog and the providers' readiness are loaded
    for ref in models:
        page.fill("#model-ref", ref)
        page.click("#add-ref")
    page.fill("#prompt", prompt)
    page.click("summary:has-text('System prompt and parameters')")
    page.fill("#max-tokens", str(max_tokens))
    page.fill("#temperature", "0")
    if expected is not None or asserts:
        page.click("summary:has-text('Scoring (optional)')")
        page.fill("#expected", expected or "")
        page.fill("#asserts", "\n".join(asserts))
    page.evaluate("""() => {
        window.__lengths = [];
        const box = document.getElementById('panels');
        new MutationObserver(() => {
            box.querySelectorAll('pre.out').forEach((pre, i) => {
                const n = pre.textContent.length;
                const last = window.__lengths.filter(x => x[0] === i).pop();
                if (!last || last[1] !== n) window.__lengths.push([i, n, box.dataset.state || '']);
            });
        }).observe(box, {subtree: true, childList: true, characterData: true});
    }""")
    page.click("#start")
    page.wait_for_selector("#panels[data-state='ended']", timeout=WAIT_MS)
    return {"run_id": page.get_attribute("#panels", "data-run"), "status": page.get_attribute("#panels", "data-status"),
            "lengths": page.evaluate("window.__lengths")}


# ---- 1. live comparison of two local models ------------------------------------------------------


def test_live_comparison_of_two_local_models_streams_and_shows_the_stored_figures(site, page, demo_models):
    models = [f"hf:{demo_models.hf_dir}", f"llamacpp:{demo_models.gguf_path}"]
    live = _live_compare(page, site.url, models, "Explain pretraining in one sentence.",
                         expected="Pretraining learns from unlabeled text.", asserts=("length:1-100000", "icontains:qqqzzz"))
    assert live["status"] == "done", page.inner_text("#panels")
    assert page.locator("#chosen li .readiness").all_inner_texts() == ["ready", "ready"]
    panels = page.locator("article.panel")
    assert panels.count() == 2
    data = site.store().get_run(live["run_id"])
    assert data["run"]["models"] == models and data["run"]["meta"]["source"] == "dashboard"
    by_model = {r["model_index"]: r for r in data["results"]}
    for i in range(2):
        panel = panels.nth(i)
        r = by_model[i]
        assert r["ok"] and r["output_tokens"] == 24
        # streamed: several deltas, and the text on the page grew step by step before the end
        assert int(panel.get_attribute("data-deltas")) >= 5
        lengths = [n for j, n, _ in live["lengths"] if j == i]
        assert len(lengths) >= 5 and lengths == sorted(lengths)
        assert lengths[-1] == len(r["text"].encode("utf-16-le")) // 2  # JavaScript counts UTF-16 units
        assert panel.locator("pre.out").text_content() == r["text"]
        # after the end: the stored figures, exactly
        for key, field in (("ttft", "ttft_ms"), ("tps", "output_tokens_per_s"), ("e2e", "e2e_ms")):
            node = panel.locator(f"[data-stat='{key}']")
            assert float(node.get_attribute("data-value")) == r[field]
            assert abs(_num(node.inner_text()) - r[field]) <= 0.05 + 1e-9
        assert panel.locator("[data-stat='tokens']").inner_text() == str(r["output_tokens"])
        assert float(panel.locator("[data-stat='cost']").get_attribute("data-value")) == r["cost_usd"] == 0
        assert panel.locator("[data-stat='cost']").inner_text() == "0 (local)"
        assert panel.get_attribute("data-state") == "done"
        # scored as tryouts compare --expect/--assert would: one check of two passes; token F1 as stored
        assert r["scores"]["assert"]["passed"] is False
        assert [c["passed"] for c in r["scores"]["assert"]["results"]] == [True, False]
        assert panel.locator("[data-stat='checks']").inner_text() == "✗ 1/2"
        assert "icontains" in panel.locator("[data-stat='checks']").get_attribute("title")
        assert float(panel.locator("[data-stat='f1']").get_attribute("data-value")) == r["scores"]["reference"]["token_f1"]
    page.click("#run-link a:has-text('" + live["run_id"] + "')")
    page.wait_for_selector("#grid")
    assert page.locator("#grid .res").count() == 2


# ---- 2. the run page shows the store's figures ---------------------------------------------------


def test_run_page_figures_equal_the_store(site, page):
    data = site.store().get_run(site.suite_run)
    results, meta = data["results"], data["run"]["meta"]
    page.goto(f"{site.url}/runs/{site.suite_run}")
    rows = page.locator("#summary tbody tr")
    assert rows.count() == 2
    for i, label in enumerate(site.labels):
        row = page.locator(f"#summary tbody tr[data-model='{i}']")
        mine = [r for r in results if r["model_index"] == i]
        fresh = [r for r in mine if r["ok"] and not r["cached"]]

        def cell(key: str, row=row) -> str:
            return row.locator(f"td[data-k='{key}']").inner_text()

        assert row.locator("td.label").inner_text() == label
        assert cell("n") == str(len(mine)) and cell("failures") == str(sum(not r["ok"] for r in mine))
        assert cell("ttft_p50") == _fmt(float(np.percentile([r["ttft_ms"] for r in fresh], 50)))
        assert cell("ttft_p90") == _fmt(float(np.percentile([r["ttft_ms"] for r in fresh], 90)))
        assert cell("e2e_p50") == _fmt(float(np.percentile([r["e2e_ms"] for r in fresh], 50)))
        assert cell("tps_p50") == _fmt(float(np.percentile([r["output_tokens_per_s"] for r in fresh], 50)))
        total = sum(Decimal(r["cost_usd_exact"]) for r in mine)
        assert total > 0 and cell("cost_total") == f"${float(total):.6f}"
        per_1k = sum(Decimal(r["cost_usd_exact"]) for r in fresh) / len(fresh) * 1000
        assert cell("cost_1k") == (f"${float(per_1k):.6f}" if per_1k < Decimal("0.01") else f"${float(per_1k):,.4f}")
        q = next(m for m in meta["quality"]["per_model"] if m["model_index"] == i)["metrics"]["pass"]
        assert cell("q_pass") == f"{q['mean']:.2f} [{q['low']:.2f}–{q['high']:.2f}]"
    # the grid: one row per case, one cell per model, each result's own figures and text
    assert page.locator("#grid tbody tr").count() == 3
    for r in results:
        res = page.locator(f"#grid .res[data-id='{r['id']}']")
        assert res.locator("[data-k='ttft_ms']").inner_text() == _fmt(r["ttft_ms"])
        assert res.locator("[data-k='e2e_ms']").inner_text() == _fmt(r["e2e_ms"])
        assert res.locator("[data-k='tps']").inner_text() == _fmt(r["output_tokens_per_s"])
        assert res.locator("[data-k='tokens']").inner_text() == str(r["output_tokens"])
        assert res.locator("[data-k='cost']").inner_text() == f"${r['cost_usd']:.6f}"
        assert res.locator("pre.out").text_content() == r["text"]
        passed = r["scores"]["assert"]["passed"]
        assert res.locator("[data-score='assert']").inner_text().startswith("assert " + ("pass" if passed else "fail"))
        assert res.locator("xpath=..").get_attribute("data-model") == str(r["model_index"])
    # views: failures only, outputs differ
    failing = [r for r in results if not r["ok"] or not r["scores"]["assert"]["passed"]]
    assert 0 < len(failing) < len(results)
    page.click("nav.views a[data-view='failures']")
    page.wait_for_url(re.compile(r"view=failures"))
    assert [int(x) for x in page.locator("#grid .res").evaluate_all("els => els.map(e => e.dataset.id)")] == \
        [r["id"] for r in failing]
    page.click("nav.views a[data-view='differ']")
    page.wait_for_url(re.compile(r"view=differ"))
    assert page.locator("#grid .res").count() == len(results)  # the two models always answer differently


# ---- 3. model output is text, never markup ------------------------------------------------------


def test_model_output_with_markup_is_shown_as_text_on_the_live_page_the_run_page_and_the_arena(site, page):
    models = [text_model(site.replay, XSS, ";itl_ms=3"), f"openai-compat:{site.replay}#tokens=5"]
    live = _live_compare(page, site.url, models, "Say something dangerous.")
    assert live["status"] == "done"
    stored = {r["model_index"]: r for r in site.store().get_run(live["run_id"])["results"]}
    assert stored[0]["text"] == XSS

    def inert():
        assert page.locator("img").count() == 0
        assert page.evaluate("document.images.length") == 0
        assert page.locator("script:not([src])").count() == 0
        assert page.evaluate("[...document.querySelectorAll('*')].filter(e => e.hasAttribute('onerror')).length") == 0
        assert page.dialogs == []

    assert page.locator("article.panel pre.out").first.inner_text() == XSS
    inert()
    page.goto(f"{site.url}/runs/{live['run_id']}")
    assert page.locator(f"#grid .res[data-id='{stored[0]['id']}'] pre.out").inner_text() == XSS
    assert page.get_by_text("<script>alert(2)</script>", exact=False).count() == 1
    inert()
    page.goto(f"{site.url}/arena/{live['run_id']}")
    page.wait_for_selector("#arena-pair:not([hidden])")
    assert XSS in (page.inner_text("#answer-a"), page.inner_text("#answer-b"))
    inert()
    # the suite run's planted output, server-rendered
    page.goto(f"{site.url}/runs/{site.suite_run}")
    assert page.locator("#grid pre.out", has_text="It is Lyon").first.inner_text() == "It is Lyon " + XSS
    inert()
    time.sleep(0.2)  # a dialog would be raised asynchronously
    assert page.dialogs == []


# ---- 4. a non-loopback bind needs the token ------------------------------------------------------


def test_a_non_loopback_bind_without_the_token_is_refused(browser, tmp_path):
    from tryouts.errors import UsageError
    from tryouts.web import create_app

    db = tmp_path / "token.db"
    with pytest.raises(UsageError, match="needs an access token"):
        create_app(str(db), host="0.0.0.0", token=None)
    token, port = "T0ken-for-the-test", free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tryouts", "ui", "--host", "0.0.0.0", "--port", str(port),
                             "--token", token, "--no-browser", "--db", str(db)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen = []
        for line in proc.stdout:  # ends if the process exits
            seen.append(line)
            if line.startswith("Tryouts dashboard: "):
                break
        assert seen and f"?token={token}" in seen[-1], "".join(seen)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                r = httpx.get(base + "/")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the dashboard did not start"
                time.sleep(0.1)
        assert r.status_code == 401 and "token" in r.json()["detail"]
        assert httpx.get(base + "/api/runs").status_code == 401
        assert httpx.get(base + "/runs", headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert httpx.get(base + "/?token=wrong").status_code == 403
        assert httpx.get(base + "/runs", headers={"Authorization": f"Bearer {token}"}).status_code == 200

        context = browser.new_context()
        try:
            page = context.new_page()
            response = page.goto(f"{base}/?token={token}")  # the address printed when serving on all addresses
            # on to this start's random name under .localhost (Chromium resolves it), the token out of the address
            assert response.status == 200 and re.fullmatch(rf"http://[0-9a-f]{{16}}\.localhost:{port}/", page.url)
            assert page.title().startswith("New comparison")
            page.wait_for_selector("#catalog-pick optgroup", state="attached")  # the page's API calls pass with the cookie
            cookies = {c["name"]: c for c in context.cookies()}
            cookie = cookies[f"tryouts-token-{port}"]
            assert cookie["domain"] == page.url.split("//")[1].split(":")[0]  # that name only, never 127.0.0.1
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
            assert page.goto(page.url + "runs").status == 200
            assert page.goto(base + "/runs").status == 401  # no cookie goes to 127.0.0.1
            assert token not in page.content()  # never on a page
        finally:
            context.close()
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_listener_on_another_loopback_port_never_receives_the_token_cookie(browser, tmp_path):
    """The audit's p9: the owner opens the dashboard, then follows links to another program on 127.0.0.1 (as
    another user of the machine could run), directly or by clicking on a cross-site page whose image is a
    same-site subrequest. Cookies ignore the port, so none may live on 127.0.0.1; it lives on the random name."""
    import http.server
    import threading

    seen: list[str] = []

    class Other(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(str(self.headers))
            body = (b"" if self.path == "/pixel.png" else
                    f'<html><body><img src="/pixel.png"><a id="go" href="http://127.0.0.1:{other}/x">go</a>'
                    "</body></html>".encode())
            self.send_response(200)
            self.send_header("content-type", "image/png" if self.path == "/pixel.png" else "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Other)
    other = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token = "token-the-other-program-wants"
    try:
        with serve_dashboard(tmp_path / "p9.db", token=token) as (url, app):
            context = browser.new_context()  # a browser that holds the token as the cookie, nothing else
            try:
                page = context.new_page()
                assert page.goto(f"{url}/?token={token}").status == 200
                page.wait_for_selector("#catalog-pick optgroup", state="attached")  # API calls pass by the cookie
                for target in (f"http://127.0.0.1:{other}/", f"http://localhost:{other}/"):
                    page.goto(target)
                    page.wait_for_load_state("load")
                page.goto(f"http://localhost:{other}/start")
                page.click("#go")
                page.wait_for_load_state("load")
                assert len(seen) >= 6, seen
                assert not [h for h in seen if token in h], seen  # the other program never gets the token
                port = url.rsplit(":", 1)[1]
                assert [c["domain"] for c in context.cookies()] == [app.state.browser_host]
                assert page.goto(f"http://{app.state.browser_host}:{port}/runs").status == 200
            finally:
                context.close()
    finally:
        server.shutdown()
        server.server_close()


# ---- 5. charts -----------------------------------------------------------------------------------


def test_charts_render_as_svg(site, page):
    page.goto(f"{site.url}/runs/{site.suite_run}")
    page.wait_for_selector("#charts[data-drawn='1']", timeout=30_000)
    for chart in ("chart-cost", "chart-speed", "chart-latency"):
        assert page.locator(f"#{chart} .main-svg").count() >= 1, chart
    assert page.locator("#charts canvas").count() == 0  # SVG traces, no WebGL
    for chart in ("chart-cost", "chart-speed"):
        assert page.locator(f"#{chart} .scatterlayer .trace").count() == 2
        assert page.locator(f"#{chart} .scatterlayer .point").count() == 2  # one point per model
    assert page.locator("#chart-latency .boxlayer .trace").count() == 2  # TTFT and end to end
    # the plotted figures are the store's
    data = site.store().get_run(site.suite_run)
    quality = {m["label"]: m["metrics"]["pass"]["mean"] for m in data["run"]["meta"]["quality"]["per_model"]}
    plotted = page.evaluate("document.getElementById('chart-cost').data.map(t => [t.name, t.x[0], t.y[0]])")
    for name, x, y in plotted:
        mine = [r for r in data["results"] if r["model_index"] == site.labels.index(name) and r["ok"]]
        assert y == quality[name]
        assert x == pytest.approx(float(sum(Decimal(r["cost_usd_exact"]) for r in mine) / len(mine) * 1000))
    boxes = page.evaluate("document.getElementById('chart-latency').data.map(t => t.y.length)")
    assert boxes == [len(data["results"]), len(data["results"])]
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#charts").screenshot(path=str(ARTIFACTS / "dashboard-charts.png"))
    assert (ARTIFACTS / "dashboard-charts.png").stat().st_size > 10_000


# ---- 6. CSP, no inline script, CSRF --------------------------------------------------------------


def test_strict_csp_no_inline_script_and_csrf(site, page):
    paths = ["/", "/runs", f"/runs/{site.suite_run}", f"/diff?a={site.suite_run}&b={site.suite_run}", "/models",
             "/models/llama-3.1-8b-instruct", "/memory?model=llama-3.1-8b-instruct&gpu=L4-24GB",
             "/advisor?task=chat&privacy=high", f"/arena/{site.suite_run}", "/docs", "/runs/no-such-run"]
    for path in paths:
        response = page.goto(site.url + path)
        assert response.status == (404 if path.endswith("no-such-run") else 200), path
        csp = response.headers["content-security-policy"]
        script_src = re.search(r"script-src ([^;]*)", csp).group(1)
        assert script_src.strip() == "'self'" and "unsafe-eval" not in csp, csp
        assert page.locator("script:not([src])").count() == 0, path
        handlers = page.evaluate(
            "[...document.querySelectorAll('*')].flatMap(e => [...e.attributes].map(a => a.name))"
            ".filter(n => n.startsWith('on'))")
        assert handlers == [], path
        if path != "/docs":
            assert page.get_attribute("meta[name='csrf-token']", "content")
    csrf = page.evaluate("fetch('/api/csrf').then(r => r.json())")["csrf"]
    assert csrf and csrf != ""
    body = {"prompt": "hi", "models": [f"openai-compat:{site.replay}#tokens=2"]}
    r = page.request.post(site.url + "/api/compare", data=json.dumps(body), headers={"Content-Type": "application/json"})
    assert r.status == 403 and "X-Tryouts-CSRF" in r.json()["detail"]
    r = page.request.post(site.url + "/api/compare/nope/stop", headers={"X-Tryouts-CSRF": "wrong"})
    assert r.status == 403
    r = page.request.post(site.url + "/api/compare/nope/stop", headers={"X-Tryouts-CSRF": csrf})
    assert r.status == 404  # past the guard: there is no such comparison


# ---- 7. arena ------------------------------------------------------------------------------------


def test_arena_votes_by_buttons_are_stored_and_ranked(site, page):
    store = site.store()
    before = len(store.votes(site.suite_run, "human"))
    page.goto(f"{site.url}/arena/{site.suite_run}")
    page.wait_for_selector("#arena-pair:not([hidden]), #arena[data-done='1']")
    clicked = []
    for verdict in ("a", "b", "tie", "both_bad"):
        if page.get_attribute("#arena", "data-done") == "1":
            break
        pair = page.get_attribute("#arena", "data-pair")
        answers = (page.inner_text("#answer-a"), page.inner_text("#answer-b"))
        assert "paris" not in answers and "lyon" not in answers  # blind
        page.click(f"button.vote[data-verdict='{verdict}']")
        page.wait_for_function("""(prev) => { const a = document.getElementById('arena');
            return a.dataset.done === '1' || (a.dataset.pair !== prev && !document.querySelector('button.vote').disabled); }""",
                               arg=pair)
        assert re.search(r"A was (paris|lyon), B was (paris|lyon)", page.inner_text("#arena-reveal"))
        clicked.append(verdict)
    assert clicked == ["a", "b", "tie"]  # three cases, two models: three pairs
    assert page.get_attribute("#arena", "data-done") == "1"
    votes = store.votes(site.suite_run, "human")[before:]
    assert [v["verdict"] for v in votes] == clicked
    assert all({v["model_a"], v["model_b"]} == {"paris", "lyon"} for v in votes)
    page.wait_for_selector("section.ranking[data-source='human'] h3:has-text('3 votes')")
    ranked = page.locator("section.ranking[data-source='human'] tbody tr")
    assert ranked.count() == 2
    assert sorted(ranked.nth(i).locator("td.label").inner_text() for i in range(2)) == ["lyon", "paris"]
    for i in range(2):
        assert re.fullmatch(r"[\d,]+ \[[\d,]+–[\d,]+\]", ranked.nth(i).locator("td").nth(2).inner_text())


# ---- 8. stop -------------------------------------------------------------------------------------


def test_stop_button_ends_a_live_comparison_and_keeps_what_streamed(site, page):
    page.goto(site.url + "/")
    page.fill("#model-ref", f"openai-compat:{site.replay}#tokens=400;itl_ms=25")
    page.click("#add-ref")
    page.fill("#prompt", "A long answer, please.")
    page.click("#start")
    page.wait_for_function("() => Number(document.querySelector('article.panel')?.dataset.deltas || 0) >= 5")
    page.click("#stop")
    page.wait_for_selector("#panels[data-state='ended']", timeout=10_000)
    assert page.get_attribute("#panels", "data-status") == "stopped"
    assert page.inner_text("article.panel .pstate") == "stopped"
    data = site.store().get_run(page.get_attribute("#panels", "data-run"))
    assert data["run"]["status"] == "interrupted"
    (r,) = data["results"]
    assert not r["ok"] and "Stopped from the dashboard" in r["error"]
    shown = page.locator("article.panel pre.out").text_content()
    assert 5 <= int(page.get_attribute("article.panel", "data-deltas")) < 400
    assert shown == r["text"] and shown.startswith(" w0 w1 w2 w3 w4")


def test_a_suite_picked_on_the_new_comparison_page_runs_and_opens_its_page(site, page):
    suite = site.db.parent / "picked.yaml"  # in the dashboard's suite folder
    suite.write_text(f"""
models:
  - {{model: "{text_model(site.replay, 'Rome is the capital')}", label: rome}}
  - {{model: "{text_model(site.replay, 'Madrid it is')}", label: madrid}}
prompts: ["Capital of {{{{c}}}}?"]
cases: [{{vars: {{c: Italy}}, assert: [{{type: icontains, value: rome}}]}}, {{vars: {{c: Spain}}}}]
""")
    page.goto(site.url + "/")
    page.fill("#suite-path", suite.name)  # relative to the suite folder
    page.click("#suite-start")
    page.wait_for_url(lambda u: "/runs/" in u, timeout=60000)
    run_id = page.url.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
    data = Store(str(site.db)).get_run(run_id)
    assert data["run"]["kind"] == "suite" and data["run"]["status"] == "done"
    assert len(data["results"]) == 4 and all(r["ok"] for r in data["results"])
    assert data["run"]["meta"]["quality"]["primary"] == "pass"
    body = page.inner_text("body")
    assert "Rome is the capital" in body and "Madrid it is" in body
    # a missing file is refused with the reason, nothing started
    page.goto(site.url + "/")
    page.fill("#suite-path", "nope.yaml")
    page.click("#suite-start")
    page.wait_for_selector("#suite-error:not([hidden])")
    assert "No suite file" in page.inner_text("#suite-error")
