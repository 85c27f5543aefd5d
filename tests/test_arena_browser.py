"""The arena page in a real browser (Debian's Chromium via Playwright): the ranking marks models the votes do
not separate with a shared rank ("1=") and the range of ranks, the style-control box adds the style-controlled
ratings and coefficients, and a run whose remaining pairs are identical answers says so."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import serve_dashboard, text_model
from tryouts.store import Store

TOKEN = "a-known-token-for-the-arena-browser-test"
WAIT_MS = 120_000


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                  extra_http_headers={"Authorization": f"Bearer {TOKEN}"})
    pg = context.new_page()
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    try:
        yield pg
    finally:
        context.close()
    assert pg.errors == [], pg.errors


@pytest.fixture
def voted_run(replay_server, tmp_path):
    """Four models on one case (`low` and `twin` give the same answer) and votes on every other pair: `top` and
    `peer` beat `low` and `twin` every time and split evenly between them."""
    suite = tmp_path / "s.yaml"
    peer = text_model(replay_server, "# Paris\n\n- **the** capital")
    suite.write_text(f"""
models:
  - {{model: "{text_model(replay_server, 'Paris')}", label: top}}
  - {{model: "{peer}", label: peer}}
  - {{model: "{text_model(replay_server, 'Lyon')}", label: low}}
  - {{model: "{text_model(replay_server, 'Lyon')}", label: twin}}
prompts: ["Capital?"]
""")
    db = tmp_path / "b.db"
    p = subprocess.run([sys.executable, "-m", "tryouts", "run", str(suite), "--db", str(db)], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr + p.stdout
    store = Store(str(db))
    data = store.get_run("latest")
    run_id = data["run"]["id"]
    ids = {r["model_index"]: r["id"] for r in data["results"]}
    names = ["top", "peer", "low", "twin"]
    for i, j, verdict, n in ((0, 2, "a", 15), (2, 1, "b", 15), (0, 1, "a", 8), (1, 0, "a", 8), (3, 0, "b", 15),
                             (1, 3, "a", 15)):
        for _ in range(n):
            store.add_vote(run_id, case_index=0, repeat_index=0, result_a=ids[i], result_b=ids[j], model_a=names[i],
                           model_b=names[j], verdict=verdict)
    return db, run_id


def test_the_arena_page_marks_ties_and_controls_for_style(voted_run, page):
    db, run_id = voted_run
    with serve_dashboard(db, token=TOKEN) as (url, _):
        page.goto(f"{url}/arena/{run_id}")
        page.wait_for_selector("section.ranking[data-source='human'] tbody tr", timeout=WAIT_MS)
        # every pair has a vote (stored above) but low-twin, which is the same text and never shown
        page.wait_for_selector("#arena[data-done='1']", timeout=WAIT_MS)
        assert "1 pair of identical answers are never shown" in page.inner_text("#arena-status")
        rows = page.locator("section.ranking[data-source='human'] tbody tr")
        cells = {rows.nth(i).locator("td.label").inner_text(): rows.nth(i).locator("td") for i in range(4)}
        assert [cells[m].nth(0).inner_text() for m in ("top", "peer", "low", "twin")] == ["1=", "1=", "3=", "3="]
        assert cells["top"].nth(3).inner_text() == "1–2" and cells["low"].nth(3).inner_text() == "3–4"
        assert "share a rank, marked =" in page.inner_text("#ranking")
        assert page.locator("td.style").count() == 0
        page.check("#style-control")
        page.wait_for_selector("section.ranking[data-source='human'] td.style", timeout=WAIT_MS)
        assert page.locator("section.ranking[data-source='human'] td.style").count() == 4
        coefficients = page.inner_text("section.ranking[data-source='human'] .style-coefficients")
        assert coefficients.startswith("Style coefficients (76 votes)") and "length" in coefficients
        assert "Style-controlled: refitted" in page.inner_text("#ranking")
