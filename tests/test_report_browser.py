"""The html export in a real browser (Debian's Chromium via Playwright): readable, inert, offline."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tryouts.report import export_run
from tryouts.store import Store
from tryouts.types import Cost, GenParams, Message, Request, Result, Timing, Usage

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

PLANTED = "Careful: <script>alert(1)</script> and <img src=x onerror=alert(1)> stay text."
MODELS = ["hf:./models/tiny", "openai:gpt-4o-mini"]
OUTPUTS = {
    (0, 0): "Pretrained models learn general patterns\nfrom large corpora first.",
    (1, 0): PLANTED,
    (0, 1): "Fine-tuning adapts them:    indented   spacing kept.",
    (1, 1): "A short, plain answer.",
}


def _result(model_index: int, case_index: int, text: str) -> Result:
    ref = MODELS[model_index]
    provider, _, name = ref.partition(":")
    return Result(
        model=ref, provider=provider, model_name=name, ok=True, text=text, finish_reason="stop",
        started_at=datetime.now(UTC),
        timing=Timing(ttft_ms=12.5 + model_index, e2e_ms=140.0, tpot_ms=3.0, output_tokens_per_s=330.0, n_chunks=9),
        usage=Usage(input_tokens=11, output_tokens=9),
        cost=Cost(total=Decimal("0") if provider == "hf" else Decimal("0.0000123"),
                  source="local" if provider == "hf" else "genai-prices"),
        request=Request(messages=[Message(role="user", content=f"Case {case_index}: explain <pretraining>.")],
                        params=GenParams(max_tokens=32)),
        model_index=model_index, case_index=case_index,
    )


@pytest.fixture
def report_file(tmp_path) -> Path:
    store = Store(tmp_path / "browser.db")
    run_id = store.create_run("compare", MODELS, {"messages": [{"role": "user", "content": "Case prompts"}]})
    store.add_results(run_id, [_result(m, c, text) for (m, c), text in OUTPUTS.items()])
    store.finish_run(run_id, "done")
    page = export_run(store.get_run(run_id), "html")
    store.close()
    path = tmp_path / f"tryouts-{run_id}.html"
    path.write_text(page, encoding="utf-8")
    return path


def test_html_report_in_chromium(browser, report_file):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    dialogs, requests, errors = [], [], []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(report_file.as_uri())
        page.wait_for_load_state("load")
        assert page.title().startswith("Tryouts")

        outputs = page.locator("pre.out")
        assert outputs.count() == len(OUTPUTS)
        shown = []
        for i in range(outputs.count()):
            expect(outputs.nth(i)).to_be_visible()
            shown.append(outputs.nth(i).inner_text())
        assert sorted(shown) == sorted(OUTPUTS.values())  # whitespace kept, markup literal

        planted = page.locator("pre.out", has_text="alert(1)")
        expect(planted).to_have_text(PLANTED)
        expect(page.get_by_text("<script>alert(1)</script>", exact=False)).to_be_visible()

        assert page.locator("img").count() == 0
        assert page.evaluate("document.images.length") == 0
        assert page.evaluate("document.scripts.length") == 0
        assert page.locator("[onerror]").count() == 0
        assert dialogs == [] and errors == []
        assert requests == [report_file.as_uri()]  # nothing fetched but the file itself

        expect(page.locator("table.summary")).to_contain_text("openai:gpt-4o-mini")
        expect(page.locator("table.grid tbody tr")).to_have_count(2)  # one row per case
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        assert page.pdf()[:4] == b"%PDF"  # printable
        assert dialogs == []
    finally:
        page.close()
