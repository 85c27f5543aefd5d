"""The dashboard's load-benchmark pages in a real browser (Debian's Chromium via Playwright), over a store with
benchmarks measured against the scripted replay server: charts drawn from the stored figures, the timeline of a
chosen point, side-by-side comparison, dark mode, narrow windows, bad links and hostile stored strings."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from helpers import serve_dashboard
from tryouts.store import Store
from tryouts.usecases.load import LoadLedger, LoadSettings, run_goodput_search, run_load

TOKEN = "a-known-token-for-the-load-browser-tests"
EVIL = "openai-compat:http://127.0.0.1:9/v1#<img src=x onerror=alert(1)>"


@dataclass
class Site:
    url: str
    store: Store
    search: str
    single: str
    evil: str


@pytest.fixture(scope="module")
def site(replay_server, tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("load-browser") / "t.db")
    ref = f"openai-compat:{replay_server}#tokens=4;ttft_ms=8;itl_ms=2"
    base = LoadSettings(requests=8, slo={"ttft": 1000})
    search = LoadLedger(store, ref, "goodput-search", base)
    search.finish(run_goodput_search(ref, base, max_points=3, ledger=search))
    settings = LoadSettings(profile="concurrent", streams=3, requests=9)
    single = LoadLedger(store, ref, "concurrent", settings)
    out = run_load(ref, settings)
    single.point(out)
    single.finish(out)
    evil = LoadLedger(store, EVIL, "concurrent", settings)
    evil.point(out | {"model": EVIL, "profile": "<b>bold</b>"})
    evil.finish(out)
    with serve_dashboard(store.url, token=TOKEN) as (url, _app):
        yield Site(url, store, search.run_id, single.run_id, evil.run_id)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1300, "height": 900},
                                  extra_http_headers={"Authorization": f"Bearer {TOKEN}"})
    pg = context.new_page()
    pg.dialogs, pg.errors = [], []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("console", lambda m: pg.errors.append(m.text)  # an error status of a page asked for is not a page error
          if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
    try:
        yield pg
    finally:
        context.close()
    assert pg.errors == [] and pg.dialogs == [], (pg.errors, pg.dialogs)


def test_a_benchmark_page_draws_every_chart_from_the_stored_figures(site, page):
    points = site.store.load_points(site.search)
    page.goto(f"{site.url}/runs/{site.search}")
    assert page.locator("h1").inner_text().startswith(f"Load benchmark {site.search}")
    assert page.locator("table.points tbody tr").count() == len(points) == 4  # synchronous + 3 tries
    keys = [page.locator("figure.load-chart").nth(i).get_attribute("id") for i in range(7)]
    assert keys == ["chart-latency", "chart-ttft", "chart-itl", "chart-pareto", "chart-goodput", "chart-concurrency",
                    "chart-ttft_timeline"]
    p50 = page.locator("#chart-latency g.series").first.locator("circle.pt")
    drawn = sorted(float(p50.nth(i).get_attribute("data-x")) for i in range(p50.count()))
    assert drawn == pytest.approx(sorted(p["figures"]["request_throughput"] for p in points), rel=1e-5)
    assert page.locator("#chart-goodput line.mark").count() == 1  # the goodput rate the search found
    rate = site.store.get_run_row(site.search)["meta"]["summary"]["goodput_rate"]
    assert f"goodput {rate:.2f}" in page.locator("#chart-goodput").inner_text()
    # the timeline shows the heaviest point; the first point's link shows that one instead
    heaviest = max(points, key=lambda p: p["figures"]["request_throughput"])["point_index"]
    assert f"Point {heaviest}." in page.locator("#chart-concurrency figcaption").inner_text()
    page.locator("table.points tbody tr").first.locator("a").click()
    page.wait_for_url("**?point=0")
    assert "Point 0." in page.locator("#chart-concurrency figcaption").inner_text()
    dots = page.locator("#chart-ttft_timeline circle.pt")
    assert dots.count() == 8  # one per measured request of the synchronous point
    assert page.locator("table.points tr[aria-current]").get_attribute("data-point") == "0"


def _luminance(css: str) -> float:
    r, g, b = (int(x) for x in css[css.index("(") + 1:css.index(")")].split(",")[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_chart_text_reads_in_both_colour_schemes_and_a_narrow_window_does_not_scroll_sideways(site, browser, scheme):
    context = browser.new_context(viewport={"width": 760, "height": 900}, color_scheme=scheme,
                                  extra_http_headers={"Authorization": f"Bearer {TOKEN}"})
    pg = context.new_page()
    pg.goto(f"{site.url}/runs/{site.single}")
    text = pg.locator("#chart-latency svg text").first.evaluate("e => getComputedStyle(e).fill")
    background = pg.evaluate("getComputedStyle(document.body).backgroundColor")
    assert abs(_luminance(text) - _luminance(background)) > 0.6, (text, background)
    assert pg.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    width = pg.locator("#chart-latency svg").evaluate("e => e.getBoundingClientRect().width")
    assert 300 < width <= 760
    context.close()


def test_two_benchmarks_side_by_side_from_the_compare_form(site, page):
    page.goto(f"{site.url}/runs/{site.single}")
    page.select_option("form[action='/load/compare'] select", site.search)
    page.locator("form[action='/load/compare'] button").click()
    page.wait_for_url("**/load/compare?**")
    assert [page.locator("section.load-bench").nth(i).get_attribute("data-run") for i in range(2)] == [
        site.single, site.search]
    names = page.locator("#chart-ttft g.series").evaluate_all("gs => gs.map(g => g.dataset.name)")
    assert names == [f"{site.single} p50 (band to p99)", f"{site.search} p50 (band to p99)"]
    assert page.locator("#chart-concurrency").count() == 0  # timelines belong to one benchmark's page


def test_bad_links_get_a_page_that_says_what_to_do(site, page):
    for path, status, words in ((f"/runs/{site.single}?point=7", 404, "has load points 0 to 0, not 7"),
                                (f"/runs/{site.single}?point=x", 400, "point"),
                                (f"/load/compare?run={site.single}", 400, "two or more"),
                                (f"/load/compare?run={site.single}&run=nope", 404, "No run 'nope'")):
        response = page.goto(site.url + path)
        assert response.status == status, path
        assert words in page.locator("main").inner_text(), (path, page.locator("main").inner_text())


def test_hostile_stored_strings_show_as_text(site, page):
    page.goto(f"{site.url}/runs/{site.evil}")
    assert page.locator("main img, main b").count() == 0 and page.dialogs == []
    assert "<img src=x onerror=alert(1)>" in page.locator("dl.meta").inner_text()
    assert "<b>bold</b>" in page.locator("table.points").inner_text()
    page.goto(f"{site.url}/runs?kind=load")
    assert page.locator("table.runs tbody tr").count() == 3
    assert page.locator("table.runs a[href^='/arena/']").count() == 0  # no answers to vote on in a load run
    assert page.locator("table.runs a", has_text="Charts").count() == 3
