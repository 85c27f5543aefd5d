"""How the dashboard shows outputs, diffs and charts: folded long outputs, sanitized Markdown with the raw text a
click away, word-level diffs, pages no wider than the window, charts readable in dark mode and drawn without
Plotly, the live panels in view; and, without a browser, the run digest's figures, the word diff and the SVG
charts.

Debian's Chromium through Playwright (as tests/test_web_browser.py) against a real uvicorn server on 127.0.0.1
over a store built through the store API. No assertion here is about speed (benchmarks/dashboard.py is).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from helpers import serve_dashboard, text_model
from tryouts.store import Store
from tryouts.types import Cost, GenParams, Message, Request, Result, Timing, Usage

TOKEN = "a-known-token-for-the-render-tests"
LONG_REF = "openai:" + "a-very-long-model-reference-" * 10 + "end"  # 300 characters, no space to break at
LONG_OUTPUT = "".join(f"line {i}: " + "lorem ipsum dolor sit amet " * 3 + "\n" for i in range(2520))  # ~234 KB
PLANTED = "planted-resource"  # in every address the Markdown must never fetch


def markdown_output(origin: str) -> str:
    """An output with Markdown and every trick: markup, an onerror image, javascript: and data: links, images."""
    return (
        "# Title here\n\nSome **bold** and *italic* and `inline <code>`.\n\n- first item\n- second item\n"
        "  - nested item\n\n1. one\n2. two\n\n```python\nprint('<b>not bold</b>')\n```\n\n"
        "> quoted\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "<script>window.__pwned = 1; alert('script')</script>\n\n"
        "<img src=x onerror=\"window.__pwned = 2; alert('img')\">\n\n"
        f"<img src=\"{origin}/{PLANTED}-img-tag.png\">\n\n"
        f"![a picture]({origin}/{PLANTED}-image.png)\n\n"
        "[click me](javascript:alert('link'))  [data](data:text/html,<script>alert(1)</script>)\n\n"
        "[a safe link](https://example.invalid/page \"a title\") and <https://example.invalid/auto>\n"
    )


def result(model: str, m: int, case: int, text: str, *, ok: bool = True, passed: bool = True, rep: int = 0,
           cached: bool = False, e2e: float | None = None, cost: str | None = "0.0001") -> Result:
    ttft = 20.0 + 7 * m + case
    return Result(
        model=model, provider=model.split(":")[0], model_name=model.split(":", 1)[1][:40], ok=ok,
        error=None if ok else "HTTP 500", error_kind=None if ok else "server", text=text,
        started_at=datetime.now(UTC), timing=Timing(ttft_ms=ttft, e2e_ms=e2e if e2e is not None else ttft + 100 + case,
                                                     output_tokens_per_s=50.0 + m + case, n_chunks=5),
        usage=Usage(input_tokens=5, output_tokens=5 + case), cached=cached,
        cost=Cost(total=Decimal(cost) if cost is not None else None, source="override" if cost else "unknown"),
        request=Request(messages=[Message(role="user", content=f"Question {case}?")], params=GenParams(max_tokens=64)),
        case={"prompt_id": "p", "case_id": str(case), "vars": {"n": str(case)}},
        scores={"assert": {"passed": passed, "score": float(passed), "results": [{"type": "icontains", "passed": passed}]},
                "reference": {"token_f1": 0.5 + 0.1 * m}},
        model_index=m, case_index=case, repeat_index=rep, timing_valid=True)


def make_run(store: Store, models: list[str], outputs: dict[tuple[int, int], str], **kw) -> str:
    """A suite-like run: ``outputs[(model_index, case)]`` answers, stored through the store API."""
    from tryouts.scoring.summary import quality_report, quality_rows

    labels = [f"model-{i}" for i in range(len(models))]
    run_id = store.create_run("suite", models, {"suite": "t.yaml"}, {"labels": labels, **kw})
    store.add_results(run_id, [result(models[m], m, c, text, passed="Paris" in text or "#" in text)
                               for (m, c), text in sorted(outputs.items(), key=lambda kv: (kv[0][1], kv[0][0]))])
    rows = quality_rows(store.iter_results(run_id, ["model_index", "case_index", "scores"]))
    store.update_run_meta(run_id, {"quality": quality_report(rows, labels)})
    store.finish_run(run_id, "done")
    return run_id


@pytest.fixture(scope="module")
def site(tmp_path_factory, replay_server):
    """A store with run A (a 234 KB output, Markdown with planted tricks), run B (one word changed), and the
    dashboard serving it (URL models allowed, for the live comparison)."""
    db = tmp_path_factory.mktemp("render") / "render.db"
    store = Store(str(db))
    with serve_dashboard(db, token=TOKEN, allow_options="base_url") as (url, app):
        models = ["openai:gpt-4o-mini", LONG_REF]
        a = make_run(store, models, {(0, 0): "The capital of France is Paris, of course.", (1, 0): "Paris.",
                                     (0, 1): LONG_OUTPUT, (1, 1): "short", (0, 2): markdown_output(url),
                                     (1, 2): "plain <b>text</b>"})
        b = make_run(store, models, {(0, 0): "The capital of France is Lyon, of course.", (1, 0): "Paris.",
                                     (0, 1): LONG_OUTPUT + "one more line\n", (1, 1): "short",
                                     (0, 2): markdown_output(url), (1, 2): "plain <b>text</b> changed"})
        yield {"url": url, "app": app, "store": store, "a": a, "b": b, "replay": replay_server}


@pytest.fixture
def page(browser):
    """A page that records dialogs, script errors, CSP violations and every request it makes."""
    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  extra_http_headers={"Authorization": f"Bearer {TOKEN}"})
    pg = context.new_page()
    pg.dialogs, pg.errors, pg.csp, pg.requests = [], [], [], []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("console", lambda m: pg.csp.append(m.text) if "Content Security Policy" in m.text else None)
    pg.on("request", lambda r: pg.requests.append(r.url))
    try:
        yield pg
    finally:
        context.close()
    assert pg.errors == [], pg.errors
    assert pg.csp == [], pg.csp


def _output_box(page, case: int, model: int):
    return page.locator(f"#grid tr[data-case='{case}'] td[data-model='{model}'] .output")


# ---- folding -------------------------------------------------------------------------------------


def test_a_234_kb_output_is_folded_and_the_page_stays_short(site, page):
    page.goto(f"{site['url']}/runs/{site['a']}")
    box = _output_box(page, 1, 0)
    assert "folded" in box.get_attribute("class")
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 6000, height  # unfolded, the output alone is some 60,000 px tall
    assert box.evaluate("b => b.clientHeight") < 400
    toggle = page.locator("#grid tr[data-case='1'] td[data-model='0'] button.fold-toggle")
    assert "KB" in toggle.inner_text() and "2,520 lines" in toggle.inner_text()
    toggle.click()
    assert toggle.inner_text() == "Fold" and "open" in box.get_attribute("class")
    # open, it scrolls inside a box of at most 80% of the window: every line is reachable, the page stays short
    assert box.evaluate("b => b.scrollHeight > b.clientHeight && b.clientHeight <= innerHeight * 0.8 + 1")
    assert page.evaluate("document.documentElement.scrollHeight") < 6000
    assert box.locator("pre.out").text_content() == LONG_OUTPUT
    # short outputs are not folded and get no toggle
    assert "folded" not in _output_box(page, 0, 0).get_attribute("class")
    assert page.locator("#grid tr[data-case='0'] button.fold-toggle").count() == 0


# ---- Markdown ------------------------------------------------------------------------------------


def test_markdown_is_rendered_sanitized_and_the_raw_text_is_a_click_away(site, page):
    url = site["url"]
    page.goto(f"{url}/runs/{site['a']}")
    stored = {r["case_index"]: r for r in site["store"].get_run(site["a"])["results"] if r["model_index"] == 0}
    box = _output_box(page, 2, 0)
    assert box.locator(".md").count() == 0  # raw text by default
    page.click("#output-mode button[data-mode='markdown']")
    md = box.locator(".md")
    assert md.is_visible() and not box.locator("pre.out").is_visible()
    assert md.locator("h1").inner_text() == "Title here"
    assert md.locator("strong").first.inner_text() == "bold" and md.locator("em").first.inner_text() == "italic"
    assert md.locator("code").first.inner_text() == "inline <code>"
    assert md.locator("ul > li").count() >= 2 and md.locator("ul ul li").inner_text() == "nested item"
    assert md.locator("ol > li").count() == 2 and md.locator("blockquote").inner_text() == "quoted"
    assert md.locator("pre.md-code code").inner_text() == "print('<b>not bold</b>')"
    assert md.locator("table td").all_inner_texts() == ["1", "2"]
    # nothing from the text became an element that runs or loads: markup, images, javascript: and data: links
    assert md.locator("script, img, iframe, object, b, [onerror]").count() == 0
    assert md.locator("a[href^='javascript'], a[href^='data']").count() == 0
    assert "<script>window.__pwned = 1;" in md.inner_text() and "onerror" in md.inner_text()
    assert "[click me](javascript:alert('link'))" in md.inner_text()
    assert md.locator(".md-image").inner_text() == "[image: a picture]"
    links = md.locator("a")
    assert links.count() == 2
    safe = md.locator("a[href='https://example.invalid/page']")
    assert safe.get_attribute("rel") == "noopener noreferrer nofollow" and safe.get_attribute("title") == "a title"
    assert md.locator("a[href='https://example.invalid/auto']").count() == 1
    assert page.evaluate("window.__pwned") is None
    assert page.dialogs == []
    assert not [u for u in page.requests if PLANTED in u or u.endswith("/x")], page.requests
    # the other outputs of the page too, markup as text
    other = _output_box(page, 2, 1).locator(".md")
    assert other.inner_text() == "plain <b>text</b>" and other.locator("b").count() == 0
    # raw again: the exact stored text
    page.click("#output-mode button[data-mode='raw']")
    assert box.locator("pre.out").is_visible() and not md.is_visible()
    assert box.locator("pre.out").text_content() == stored[2]["text"]
    # the choice is kept for the next page
    page.click("#output-mode button[data-mode='markdown']")
    page.reload()
    assert _output_box(page, 0, 0).locator(".md").is_visible()
    assert page.get_attribute("#output-mode button[data-mode='markdown']", "aria-pressed") == "true"
    assert page.dialogs == [] and page.evaluate("window.__pwned") is None


def test_the_markdown_renderer_builds_safe_nodes_and_stays_bounded(site, page):
    page.goto(f"{site['url']}/runs/{site['a']}")
    render = "t => { const d = document.createElement('div'); d.append(TryoutsMarkdown.render(t)); return d.innerHTML; }"
    assert page.evaluate(render, "**a** _b_ ~~c~~") == "<p><strong>a</strong> <em>b</em> <del>c</del></p>"
    assert page.evaluate(render, "snake_case_name and 2 * 3 * 4") == "<p>snake_case_name and 2 * 3 * 4</p>"
    assert page.evaluate(render, "[x](javascript:alert(1))") == "<p>[x](javascript:alert(1))</p>"
    assert page.evaluate(render, "[x]( JAVASCRIPT:alert(1))") == "<p>[x]( JAVASCRIPT:alert(1))</p>"
    assert page.evaluate(render, "<a href='https://e.invalid'>x</a>") == \
        "<p>&lt;a href='https://e.invalid'&gt;x&lt;/a&gt;</p>"
    assert page.evaluate(render, "see https://e.invalid/x.") == \
        ('<p>see <a href="https://e.invalid/x" rel="noopener noreferrer nofollow" target="_blank" '
         'referrerpolicy="no-referrer">https://e.invalid/x</a>.</p>')
    assert page.evaluate(render, "Title\n===\n\ntext") == "<h1>Title</h1><p>text</p>"
    # pathological input: unmatched delimiters and brackets by the ten thousand still render, as text
    for text in ("*a " * 20000, "[" * 30000, "a " + "`" * 5 + " x" * 20000, "a " + "_" * 50000):
        html = page.evaluate(render, text)
        assert html.startswith("<p>") and len(html) >= len(text) // 2
    big = page.evaluate("t => TryoutsMarkdown.render(t).textContent.length", "x" * 150_000)
    assert big > 150_000  # the first 100,000 characters as Markdown, the rest as text, with a note


# ---- diffs ---------------------------------------------------------------------------------------


def test_word_diff_marks_the_changed_word_and_the_page_is_no_wider_than_the_window(site, page):
    page.set_viewport_size({"width": 1000, "height": 800})
    page.goto(f"{site['url']}/diff?a={site['a']}&b={site['b']}")
    first = page.locator(".diff-pair").filter(has_text="case p/0").locator(".diff-words")
    assert first.locator("del").all_inner_texts() == ["Paris"]
    assert first.locator("ins").all_inner_texts() == ["Lyon"]
    assert first.inner_text() == "The capital of France is ParisLyon, of course."
    changed = page.locator(".diff-pair").filter(has_text="case p/2").locator(".diff-words")
    assert changed.locator("ins").all_inner_texts() == [" changed"] and changed.locator("b").count() == 0
    # the long model reference wraps: the page never scrolls sideways
    assert LONG_REF in page.inner_text("body").replace("\n", "")
    width = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1], width
    # the 234 KB pair is too long for a word diff: both outputs side by side, folded
    side = page.locator(".diff-pair").filter(has_text="case p/1").locator(".side-by-side .output.folded")
    assert side.count() == 2 and page.evaluate("document.documentElement.scrollHeight") < 8000


def test_word_diff_unit():
    from tryouts.report.diff import word_diff

    segs = word_diff("The cat sat on the mat.\nSecond line stays.\n", "The dog sat on the mat!\nSecond line stays.\n")
    assert "".join(t for op, t in segs if op != "+") == "The cat sat on the mat.\nSecond line stays.\n"
    assert "".join(t for op, t in segs if op != "-") == "The dog sat on the mat!\nSecond line stays.\n"
    assert [t for op, t in segs if op == "-"] == ["cat", "."] and [t for op, t in segs if op == "+"] == ["dog", "!"]
    assert word_diff("a" * 40_000, "b" * 40_000) is None  # too long: side by side instead
    whole = word_diff("x " * 900, "y " * 900, max_tokens=1000)  # a block too big to diff by words: whole
    assert whole == [["-", "x " * 900], ["+", "y " * 900]]
    assert word_diff("same", "same") == [["=", "same"]]


def test_diff_api_has_words_and_side_by_side(site):
    import httpx

    d = httpx.get(f"{site['url']}/api/diff", params={"a": site["a"], "b": site["b"]},
                  headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30).json()
    pairs = {(p["model"], p["case"]): p for p in d["pairs"]}
    p0 = pairs[("openai:gpt-4o-mini", "p/0")]
    assert ["-", "Paris"] in p0["words"] and ["+", "Lyon"] in p0["words"] and p0["side"] is None
    big = pairs[("openai:gpt-4o-mini", "p/1")]
    assert big["words"] is None and big["side"]["clipped"] and len(big["side"]["a"]) == 20_000
    same = pairs[(LONG_REF, "p/1")]
    assert same["words"] is None and same["side"] is None and not same["output_changed"]


# ---- charts --------------------------------------------------------------------------------------


def _contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two CSS rgb()/rgba() colours."""
    def lum(c: str) -> float:
        r, g, bl = (float(x) / 255 for x in c[c.index("(") + 1:c.index(")")].split(",")[:3])
        f = [(v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4) for v in (r, g, bl)]
        return 0.2126 * f[0] + 0.7152 * f[1] + 0.0722 * f[2]
    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_chart_text_reads_on_the_background_in_dark_and_light(site, page, scheme):
    page.emulate_media(color_scheme=scheme)
    page.goto(f"{site['url']}/runs/{site['a']}")
    background = page.evaluate("getComputedStyle(document.querySelector('.charts figure')).backgroundColor")
    svg_text = page.evaluate("getComputedStyle(document.querySelector('#chart-cost svg text')).fill")
    assert _contrast(svg_text, background) >= 4.5, (svg_text, background)
    page.wait_for_selector("#charts[data-drawn='1']", state="attached", timeout=60_000)  # Plotly's, after
    for selector in ("#chart-cost .xtick text", "#chart-cost .ytitle", "#chart-latency .xtick text"):
        fill = page.evaluate(f"getComputedStyle(document.querySelector('{selector}')).fill")
        assert _contrast(fill, background) >= 4.5, (selector, fill, background)
    grid = page.evaluate("getComputedStyle(document.querySelector('#chart-cost .gridlayer path')).stroke")
    assert grid != "rgb(238, 238, 238)" or scheme == "light"  # Plotly's default grid, near-white on dark


def test_first_charts_are_drawn_without_plotly(site, page):
    blocked = []
    page.route("**/static/plotly.min.js", lambda route: (blocked.append(route.request.url), route.abort()))
    response = page.goto(f"{site['url']}/runs/{site['a']}")
    assert "plotly.min.js" not in response.text()  # not in the page: loaded later, on its own
    import httpx

    data = httpx.get(f"{site['url']}/api/runs/{site['a']}/charts", headers={"Authorization": f"Bearer {TOKEN}"},
                     timeout=30).json()
    points = page.evaluate("[...document.querySelectorAll('#chart-cost circle.pt')].map(c => "
                           "[c.closest('g.series').dataset.name, +c.dataset.x, +c.dataset.y])")
    assert {name: (x, y) for name, x, y in points} == {  # the figures the API serves are the ones drawn
        m["label"]: (pytest.approx(m["cost_per_1k_usd"], rel=1e-5), pytest.approx(m["quality"], rel=1e-5))
        for m in data["models"]}
    boxes = page.locator("#chart-latency g.box")
    assert boxes.count() == 4  # TTFT and end to end for each of the two models
    ns = sorted(int(n) for n in page.evaluate("[...document.querySelectorAll('#chart-latency g.box')]"
                                              ".map(b => b.dataset.n)"))
    assert ns == sorted(len(m[k]) for m in data["models"] for k in ("ttft_ms", "e2e_ms"))
    assert page.locator("#chart-cost svg").is_visible() and page.locator("#chart-latency svg").is_visible()
    # the page then tried to make them interactive, failed (blocked here) and kept the SVG, saying so
    page.wait_for_selector("#charts-error:not([hidden])")
    assert blocked and page.locator("#chart-cost circle.pt").count() == 2
    assert page.locator("#charts-interactive").is_visible()


def test_big_runs_load_plotly_only_on_a_click(site, page, monkeypatch):
    from tryouts.web import run_charts

    monkeypatch.setattr(run_charts, "PLOTLY_AUTO_MAX", 3)  # this run has 6 results: a "big" one here
    page.goto(f"{site['url']}/runs/{site['a']}")
    assert page.get_attribute("#charts", "data-interactive") == "manual"
    assert page.locator("#chart-cost svg").is_visible()
    page.click("#charts-interactive")
    page.wait_for_selector("#charts[data-drawn='1']", state="attached", timeout=60_000)
    assert any(u.endswith("/static/plotly.min.js") for u in page.requests)
    assert page.locator("#chart-cost .main-svg").count() >= 1 and page.locator("#chart-cost > svg.chart").count() == 0
    assert not page.locator("#charts-interactive").is_visible()


# ---- the compare page ----------------------------------------------------------------------------


def test_live_panels_are_scrolled_into_view(site, page):
    page.set_viewport_size({"width": 1280, "height": 700})
    page.goto(site["url"] + "/")
    page.wait_for_selector("#catalog-pick optgroup", state="attached")
    page.fill("#model-ref", text_model(site["replay"], "Paris is the capital"))
    page.click("#add-ref")
    page.fill("#prompt", "A long prompt.\n" * 40)  # a tall form
    page.click("#start")
    page.wait_for_selector("#panels[data-state='ended']", timeout=120_000)
    page.wait_for_function("""() => { const r = document.querySelector('#panels article.panel')
        .getBoundingClientRect(); return r.top >= 0 && r.top < innerHeight - 100; }""")
    top = page.evaluate("document.querySelector('#start').getBoundingClientRect().top")
    assert 0 <= top < 700


# ---- without a browser: the digest equals the figures computed the long way ------------------------


def test_digest_figures_equal_the_full_computation(tmp_path):
    from tryouts.web.api import SUMMARY_COLUMNS, run_summary, select_results
    from tryouts.web.digest import Digests, compute
    from tryouts.web.run_charts import chart_data, svg_charts

    store = Store(str(tmp_path / "d.db"))
    models = ["openai:a", "openai:<img src=x onerror=alert(1)>"]
    run_id = store.create_run("compare", models, {}, {})
    rows = []
    for c in range(7):
        for m in range(2):
            for rep in range(2):
                rows.append(result(models[m], m, c, f"answer {c} {'same' if c % 3 == 0 else m}", ok=(c + m) % 5 != 0,
                                   passed=(c + rep) % 2 == 0, rep=rep, cached=c == 4 and m == 1,
                                   cost=None if c == 2 else "0.0003"))
    store.add_results(run_id, rows)
    run = store.get_run_row(run_id)
    labels = models
    d = compute(store, run, labels)
    light, _ = store.results(run_id, columns=["case_index", "repeat_index", "ok", "scores", "text"])
    full = run_summary({"run": run, "results": store.results(run_id, columns=SUMMARY_COLUMNS)[0]})
    assert d.summary == full["summary"] and d.quality == full["quality"]  # no quality in the meta: computed
    assert (d.n_results, d.n_failed, d.n_cases) == (full["n_results"], full["n_failed"], full["n_cases"])
    for view in ("all", "failures", "differ"):
        assert d.view_ids(view) == [r["id"] for r in select_results(light, view)], view
    assert 0 < len(d.view_ids("differ")) < len(light) and 0 < len(d.view_ids("failures")) < len(light)
    summary_rows = store.results(run_id, columns=SUMMARY_COLUMNS)[0]
    for m in chart_data(d)["models"]:
        rs = [r for r in summary_rows if r["model_index"] == m["model_index"] and r["ok"] and not r["cached"]]
        assert m["e2e_ms"] == [r["e2e_ms"] for r in rs] and m["ttft_ms"] == [r["ttft_ms"] for r in rs]
    svg = "".join(str(c["svg"]) for c in svg_charts(d).values())
    assert "<img" not in svg and "&lt;img src=x onerror=alert(1)&gt;" in svg
    # kept per run state: the same object until a result is added
    kept = Digests()
    first = kept.get(store, run, labels)
    assert kept.get(store, store.get_run_row(run_id), labels) is first
    store.add_results(run_id, [result(models[0], 0, 9, "late")])
    again = kept.get(store, store.get_run_row(run_id), labels)
    assert again is not first and again.n_results == first.n_results + 1
    store.update_run_meta(run_id, {"note": "rescored"})
    assert kept.get(store, store.get_run_row(run_id), labels) is not again
