"""Exports (csv, json, jsonl, html) and run diffs, over runs written with the real Store."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tryouts.errors import UsageError
from tryouts.report import FORMATS, diff_runs, export_run
from tryouts.report.diff import short_diff
from tryouts.store import Store
from tryouts.types import Cost, GenParams, Message, Request, Result, Timing, Usage

PLANTED = "<script>alert(1)</script> and <img src=x onerror=alert(1)>"
MODELS = ["hf:./models/tiny", "openai:gpt-4o-mini"]


def request(case_index: int) -> Request:
    return Request(
        messages=[Message(role="system", content="Be brief."), Message(role="user", content=f"Question {case_index}?")],
        params=GenParams(max_tokens=32, temperature=0),
    )


def result(model_index, case_index, text, *, repeat=0, ok=True, ttft=10.0, e2e=100.0, cost="0.0001",
           case=None, cached=False, error=None, model=None) -> Result:
    ref = model or MODELS[model_index]
    provider, _, name = ref.partition(":")
    return Result(
        model=ref, provider=provider, model_name=name, ok=ok, error=error,
        error_kind=None if ok else "server", text=text, finish_reason="stop" if ok else None,
        started_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        timing=Timing(ttft_ms=ttft if ok else None, e2e_ms=e2e if ok else None, tpot_ms=2.5,
                      output_tokens_per_s=400.0, itl_ms=[1.0, 2.5], n_chunks=3),
        usage=Usage(input_tokens=7, output_tokens=3, method="provider"),
        cost=Cost(total=None if cost is None else Decimal(cost), source="genai-prices" if cost else "unknown"),
        request=request(case_index), options={"api_key": "sk-secret", "temperature": 0},
        cached=cached, case=case, model_index=model_index, case_index=case_index, repeat_index=repeat,
    )


def write_run(store: Store, results: list[Result], models=MODELS) -> str:
    run_id = store.create_run("compare", list(models), request(0).model_dump(mode="json"))
    store.add_results(run_id, results)
    store.finish_run(run_id, "partial" if any(not r.ok for r in results) else "done")
    return run_id


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "report.db")
    yield s
    s.close()


@pytest.fixture
def data(store):
    run_id = write_run(store, [
        result(0, 0, "Plain answer, with a comma and \"quotes\"\nand a second line."),
        result(1, 0, PLANTED, cost=None),
        result(0, 1, "Second case, tiny."),
        result(1, 1, "partial", ok=False, error="Server error 500: try again later."),
    ])
    return store.get_run(run_id)


def parse_tags(page: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Every start tag of a page with its attributes, as a browser's tokenizer sees them."""
    from html.parser import HTMLParser

    tags = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            tags.append((tag, attrs))

    Collect().feed(page)
    return tags


# ---- export ---------------------------------------------------------------------------------------


def test_json_is_what_show_prints(data, store, capsys):
    from tryouts.cli import main

    text = export_run(data, "json")
    assert json.loads(text) == json.loads(json.dumps(data, default=str))
    with pytest.raises(SystemExit) as exit_:
        main(["show", data["run"]["id"], "--format", "json", "--db", store.url])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == text


def test_jsonl_one_result_per_line_with_run_id(data):
    lines = export_run(data, "jsonl").splitlines()
    assert len(lines) == len(data["results"]) == 4
    for line, r in zip(lines, data["results"], strict=True):
        row = json.loads(line)
        assert row.pop("run_id") == data["run"]["id"]
        assert row == json.loads(json.dumps(r, default=str))


def test_csv_parses_back_with_every_flat_field(data):
    text = export_run(data, "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 4
    header = next(csv.reader(io.StringIO(text)))
    assert header[0] == "run_id"
    assert set(data["results"][0]) | {"run_id"} == set(header)
    for row, r in zip(rows, data["results"], strict=True):
        assert row["run_id"] == data["run"]["id"]
        assert row["text"] == r["text"]  # commas, quotes, newlines and markup survive
        assert json.loads(row["request"]) == r["request"]
        assert json.loads(row["itl_ms"]) == [1.0, 2.5]
        assert row["ok"] == ("true" if r["ok"] else "false")
        assert row["cost_usd_exact"] == (r["cost_usd_exact"] or "")
        assert json.loads(row["options"])["api_key"] == "***"


def test_html_is_self_contained_and_escapes_everything(data):
    page = export_run(data, "html")
    assert page.startswith("<!doctype html>")
    assert "<title>Tryouts · run " + data["run"]["id"] in page
    assert """<meta http-equiv="Content-Security-Policy" content="default-src &#x27;none&#x27;; style-src &#x27;unsafe-inline&#x27;">""" in page
    # nothing to fetch and nothing to run: no such element, no such attribute, no URL at all
    tags = parse_tags(page)
    assert not {t for t, _ in tags} & {"script", "img", "link", "iframe", "object", "embed", "svg", "base", "a"}
    assert not [a for _, attrs in tags for a, _ in attrs if a in {"src", "href", "srcset", "action"} or a.startswith("on")]
    assert not re.search(r"url\(|@import|https?://|//[a-z]", page, re.I)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; and &lt;img src=x onerror=alert(1)&gt;" in page
    # outputs, prompts, errors, summary
    assert "Plain answer, with a comma and &quot;quotes&quot;\nand a second line." in page
    assert "Second case, tiny." in page
    assert "Question 1?" in page
    assert "Server error 500: try again later." in page
    assert "Summary" in page and "TTFT p50 ms" in page and "Cost / 1k req" in page
    assert page.count('<td class="case">') == 2  # one row per case
    assert "unknown" in page  # the unknown cost is shown as unknown, never 0


def test_html_stacks_repeats_and_shows_suite_cases(store):
    case = {"prompt_id": "greet", "case_id": "fr", "vars": {"lang": "<b>French</b>"}, "expected": "Bonjour"}
    run_id = write_run(store, [
        result(0, 0, "first try", case=case),
        result(0, 0, "second try", case=case, repeat=1, cached=True),
    ], models=MODELS[:1])
    page = export_run(store.get_run(run_id), "html")
    assert page.index("first try") < page.index("second try")
    assert "repeat 1" in page and "cached" in page
    assert "greet / fr" in page and "&lt;b&gt;French&lt;/b&gt;" in page and "Bonjour" in page
    assert "Prompts</dt><dd>greet" in page


def test_unknown_format_names_the_formats(data):
    with pytest.raises(UsageError) as err:
        export_run(data, "xlsx")
    for fmt in FORMATS:
        assert fmt in str(err.value)


# ---- diff -----------------------------------------------------------------------------------------


def test_diff_matches_results_and_reports_deltas(store):
    a = write_run(store, [
        result(0, 0, "same text", ttft=10, e2e=100, cost="0.001"),
        result(1, 0, "line one\nline two", ttft=50, e2e=500, cost="0.002"),
        result(0, 1, "only A case", ttft=10, e2e=100),
    ])
    b = write_run(store, [
        result(0, 0, "same text", ttft=15, e2e=90, cost="0.0015"),
        result(1, 0, "line one\nline 2", ttft=40, e2e=700, cost=None),
        result(0, 2, "only B case"),
        result(2, 0, "new model", model="openai:gpt-4.1-nano"),
    ], models=[*MODELS, "openai:gpt-4.1-nano"])
    d = diff_runs(store.get_run(a), store.get_run(b))
    assert (d["run_a"], d["run_b"]) == (a, b)
    pairs = {(p["model"], p["case"]): p for p in d["pairs"]}
    assert set(pairs) == {(MODELS[0], "#0"), (MODELS[1], "#0")}

    same = pairs[(MODELS[0], "#0")]
    assert not same["output_changed"] and same["diff"] == ""
    assert same["ttft_ms_delta"] == 5 and same["e2e_ms_delta"] == -10
    assert same["cost_usd_delta"] == "0.0005"
    assert same["ok_a"] and same["ok_b"]

    changed = pairs[(MODELS[1], "#0")]
    assert changed["output_changed"]
    assert "-line two" in changed["diff"] and "+line 2" in changed["diff"]
    assert changed["e2e_ms_delta"] == 200
    assert changed["cost_usd_delta"] is None  # unknown on one side

    per_model = {m["model"]: m for m in d["models"]}
    assert per_model[MODELS[0]]["n_matched"] == 1 and per_model[MODELS[0]]["n_changed"] == 0
    assert per_model[MODELS[1]]["n_changed"] == 1
    assert per_model[MODELS[0]]["ttft_ms_delta_p50"] == 5
    assert per_model[MODELS[0]]["cost_usd_delta_total"] == "0.0005"
    assert per_model[MODELS[1]]["cost_usd_delta_total"] is None
    assert per_model[MODELS[1]]["cost_unknown_pairs"] == 1

    assert d["only_in_a"] == {"models": [], "cases": ["#1"], "results": 1}
    assert d["only_in_b"] == {"models": ["openai:gpt-4.1-nano"], "cases": ["#2"], "results": 2}
    json.dumps(d)  # serialisable as is


def test_diff_matches_suite_cases_by_id_not_position(store):
    ca = {"prompt_id": "p", "case_id": "x", "vars": {}, "expected": None}
    cb = {"prompt_id": "p", "case_id": "y", "vars": {}, "expected": None}
    a = write_run(store, [result(0, 0, "X", case=ca), result(0, 1, "Y", case=cb)], models=MODELS[:1])
    b = write_run(store, [result(0, 0, "Y", case=cb), result(0, 1, "X!", case=ca, ok=False, error="cut")],
                  models=MODELS[:1])
    d = diff_runs(store.get_run(a), store.get_run(b))
    pairs = {p["case"]: p for p in d["pairs"]}
    assert not pairs["p/y"]["output_changed"]
    assert pairs["p/y"]["case_index_a"] == 1 and pairs["p/y"]["case_index_b"] == 0
    assert pairs["p/x"]["output_changed"] and not pairs["p/x"]["ok_b"]
    assert pairs["p/x"]["ttft_ms_delta"] is None
    assert d["models"][0]["n_status_changed"] == 1


def test_cached_results_give_no_timing_deltas(store):
    a = write_run(store, [result(0, 0, "t", ttft=10)], models=MODELS[:1])
    b = write_run(store, [result(0, 0, "t", ttft=1, cached=True)], models=MODELS[:1])
    (pair,) = diff_runs(store.get_run(a), store.get_run(b))["pairs"]
    assert pair["ttft_ms_delta"] is None and pair["e2e_ms_delta"] is None


def test_short_diff_is_short():
    a = "\n".join(f"line {i}" for i in range(100))
    b = "\n".join(f"LINE {i}" for i in range(100))
    lines = short_diff(a, b).splitlines()
    assert len(lines) == 21 and lines[-1].startswith("... ")
    assert short_diff("x", "x") == ""
    assert short_diff("x", "x\n")  # differs only at the end: still shown


# ---- CLI ------------------------------------------------------------------------------------------


def run_cli(capsys, *args):
    from tryouts.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    out = capsys.readouterr()
    return exit_.value.code, out.out, out.err


def test_cli_export_formats(data, store, capsys, tmp_path, monkeypatch):
    from tryouts.report.export import with_reviews

    run_id = data["run"]["id"]
    reviewed = with_reviews(data, {})  # the data formats carry each result's dashboard review (none here)
    code, out, _ = run_cli(capsys, "export", run_id[:12], "--format", "csv", "--db", store.url)
    assert code == 0 and out == export_run(reviewed, "csv")

    target = tmp_path / "out" / "run.jsonl"
    code, out, _ = run_cli(capsys, "export", "latest", "-f", "jsonl", "-o", str(target), "--db", store.url)
    assert code == 0 and out.strip() == str(target)
    assert target.read_text() == export_run(reviewed, "jsonl")

    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(capsys, "export", "latest", "--format", "html", "--db", store.url)
    assert code == 0 and out.strip() == f"tryouts-{run_id}.html"
    assert (tmp_path / f"tryouts-{run_id}.html").read_text(encoding="utf-8") == export_run(data, "html")

    code, _, err = run_cli(capsys, "export", "latest", "--format", "pdf", "--db", store.url)
    assert code == 1 and "csv, json, jsonl, html" in err


def test_cli_diff_table_and_json(store, capsys):
    a = write_run(store, [result(0, 0, "alpha\nbeta"), result(1, 0, "same")])
    b = write_run(store, [result(0, 0, "alpha\ngamma", ttft=30), result(1, 0, "same")])
    code, out, _ = run_cli(capsys, "diff", a, b, "--db", store.url)
    assert code == 0
    assert "1/1" in out and "0/1" in out and "+20.0" in out
    assert "case #0" in out and "+gamma" not in out
    code, out, _ = run_cli(capsys, "diff", a, b, "-v", "--db", store.url)
    assert "-beta" in out and "+gamma" in out
    code, out, _ = run_cli(capsys, "diff", a, b, "--format", "json", "--db", store.url)
    assert code == 0 and json.loads(out)["models"][0]["n_changed"] == 1
