"""The html report of a scored suite: the pass rates and intervals ``show --format json`` reports, paired
comparisons and pass@k, the per-case pass/fail grid with each failing check's reason, statuses that tell a failed
request from a failed assertion, local paths shortened (unless --full-paths), markup escaped and no script."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.parse
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tryouts.labels import short_paths
from tryouts.report import export_run
from tryouts.store import Store

PLANTED = "<script>alert(1)</script> Paris <img src=x onerror=alert(1)>"
CASES = {"fr": ("France", "paris"), "it": ("Italy", "rome"), "de": ("Germany", "berlin")}


@pytest.fixture(scope="module")
def suite_run(replay_server, tmp_path_factory) -> dict:
    """A suite of three cases with assertions, two repeats, three models: one passes two cases, one answers with
    planted markup and passes one, and a local model whose file is missing fails every request (its error names
    the absolute path). Run with the CLI; returns the paths, the database and the run id."""
    tmp = tmp_path_factory.mktemp("report-quality")
    folder = tmp / "private-folder"
    folder.mkdir()
    gguf = folder / "weights" / "tiny-model.gguf"  # never created
    suite = folder / "suite.yaml"
    suite.write_text(
        "description: capitals\n"
        "models:\n"
        f'  - model: "openai-compat:{replay_server}#text=Paris%20or%20Rome"\n    label: good\n'
        f'  - model: "openai-compat:{replay_server}#text={urllib.parse.quote(PLANTED)}"\n'
        '    label: "<i>echo</i>"\n'
        f'  - model: "llamacpp:{gguf}"\n'
        'prompts:\n  - "Capital of {{country}}?"\n'
        "cases:\n" + "".join(f"  - {{id: {cid}, vars: {{country: {country}}}, assert: [{{type: icontains, "
                             f"value: {value}}}]}}\n" for cid, (country, value) in CASES.items())
        + "repeats: 2\nretries: {max: 0}\n")
    db = tmp / "runs.db"
    p = subprocess.run([sys.executable, "-m", "tryouts", "run", str(suite), "--db", str(db), "--no-cache",
                        "--no-progress"], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert p.returncode == 0, p.stdout + p.stderr
    store = Store(db)
    run_id = store.get_run_row("latest")["id"]
    store.close()
    return {"tmp": tmp, "folder": folder, "gguf": gguf, "suite": suite, "db": str(db), "run": run_id}


def cli(capsys, *args: str) -> str:
    from tryouts.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    out = capsys.readouterr()
    assert exit_.value.code == 0, out.out + out.err
    return out.out


def show_json(capsys, s: dict) -> dict:
    return json.loads(cli(capsys, "show", s["run"], "--format", "json", "--db", s["db"]))


def export_html(capsys, s: dict, tmp_path: Path, *extra: str) -> str:
    out = tmp_path / f"report{len(extra)}.html"
    cli(capsys, "export", s["run"], "--format", "html", "-o", str(out), "--db", s["db"], *extra)
    return out.read_text(encoding="utf-8")


def ci(p: dict) -> str:
    """How the report writes a figure with its interval."""
    return f"{p['mean']:.3f} [{p['low']:.3f}–{p['high']:.3f}]"


def section(page: str, css_class: str) -> str:
    """The table with this class (the first one)."""
    m = re.search(rf'<table class="{css_class}">.*?</table>', page, re.S)
    assert m, f"no table.{css_class} in the page"
    return m.group(0)


def row(table: str, attr: str) -> str:
    m = re.search(rf"<tr[^>]*{attr}[^>]*>.*?</tr>", table, re.S)
    assert m, f"no row with {attr}"
    return m.group(0)


def test_the_report_holds_the_pass_rates_and_intervals_show_json_reports(suite_run, capsys, tmp_path):
    data = show_json(capsys, suite_run)
    page = export_html(capsys, suite_run, tmp_path)
    quality = data["run"]["meta"]["quality"]
    per_model = {q["model_index"]: q for q in quality["per_model"]}
    # the run is what it should be: 2 of 3 cases pass, 1 of 3; the missing model never answered (no verdict)
    assert [round(per_model[i]["metrics"]["pass"]["mean"], 6) for i in (0, 1)] == [0.666667, 0.333333]
    assert quality["primary"] == "pass" and per_model[2]["metrics"] == {}
    table = section(page, "quality")
    for i in (0, 1):
        p = per_model[i]["metrics"]["pass"]
        assert p["low"] is not None and p["high"] is not None and p["low"] < p["high"]  # a real interval
        cells = row(table, f'data-model="{i}"')
        assert f'data-k="pass">{ci(p)} <span class="n">n={p["n"]}</span>' in cells, (ci(p), cells)
    assert 'data-k="pass">–</td>' in row(table, 'data-model="2"')
    # pass@k and pass^k from the two repeats, as stored
    passk = section(page, "passk")
    for i in (0, 1):
        at, hat = per_model[i]["pass_at_k"]["pass@k"], per_model[i]["pass_at_k"]["pass^k"]
        cells = row(passk, f'data-model="{i}"')
        assert f'data-k="pass@2">{at["2"]:.3f}<' in cells and f'data-k="pass^2">{hat["2"]:.3f}<' in cells
    # each model against the first, with the verdict the stored comparison gives
    paired = section(page, "paired")
    assert quality["paired"]
    for c in quality["paired"]:
        cells = row(paired, f'data-model="{c["model_index"]}"')
        assert f"{c['diff']:+.3f}" in cells and escape(c["verdict"]) in cells
    # the labels head the tables; the label with markup is text
    assert "<bdi>good</bdi>" in table and "&lt;i&gt;echo&lt;/i&gt;" in table and "<i>echo" not in page


def test_the_case_grid_gives_each_case_and_the_failing_checks_reason(suite_run, capsys, tmp_path):
    data = show_json(capsys, suite_run)
    page = export_html(capsys, suite_run, tmp_path)
    grid = section(page, "verdicts")
    by = {}
    for r in data["results"]:
        by.setdefault((r["case"]["case_id"], r["model_index"]), []).append(r)
    for case_index, cid in enumerate(CASES):
        cells = row(grid, f'data-case="{case_index}"')
        assert f"<strong>{cid}</strong>" in cells and CASES[cid][0] in cells
        for m in range(3):
            rs = by[(cid, m)]
            cell = re.search(rf'<td class="v [a-z]*" data-model="{m}">.*?</td>', cells, re.S).group(0)
            if not any(r["ok"] for r in rs):
                assert "✗ request failed" in cell and "2 requests failed: No GGUF file at" in cell
                continue
            if all(r["scores"]["assert"]["passed"] for r in rs):
                assert "✓ passed" in cell and "why" not in cell
                continue
            reason = rs[0]["scores"]["assert"]["results"][0]["reason"]
            assert reason and f"icontains failed ({escape(reason)})" in cell, (reason, cell)
            assert "✗ failed" in cell and " 0/2" in cell
    # the outputs side by side tell the three outcomes apart
    assert page.count('<div class="res ok">') == 6  # good: fr, it; echo: fr (two repeats each)
    assert page.count('<div class="res afail">') == 6 and "✗ assertion failed" in page
    assert page.count('<div class="res fail">') == 6 and "✗ request failed" in page
    # and the charts are inline SVG, one marker per model that answered
    assert '<h2 id="charts">' in page and page.count('<circle class="pt"') >= 2


def test_local_paths_are_shortened_unless_full_paths(suite_run, capsys, tmp_path):
    data = show_json(capsys, suite_run)
    assert str(suite_run["gguf"]) in json.dumps(data)  # the stored data has them whole
    page = export_html(capsys, suite_run, tmp_path)
    secret = str(suite_run["tmp"])
    assert secret not in page and "private-folder" not in page and "weights" not in page
    home = os.path.expanduser("~")
    assert f"{home}/" not in page
    assert "llamacpp:tiny-model.gguf" in page  # the model, by its file's name
    assert "…/suite.yaml" in page  # the suite, by its name
    assert "No GGUF file at &#x27;…/tiny-model.gguf&#x27;" in page  # the error message too

    full = export_html(capsys, suite_run, tmp_path, "--full-paths")
    assert f"llamacpp:{suite_run['gguf']}" in full and str(suite_run["suite"]) in full
    assert f"No GGUF file at &#x27;{suite_run['gguf']}&#x27;" in full
    # the figures do not depend on how paths are shown
    figures = re.compile(r'data-k="[^"]+">[^<]*')
    assert figures.findall(page) == figures.findall(full) and len(figures.findall(page)) > 10


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))


def test_planted_markup_stays_text_and_the_page_runs_nothing(suite_run, capsys, tmp_path):
    shared = export_html(capsys, suite_run, tmp_path)
    assert not re.search(r"url\(|@import|https?://(?!www\.w3\.org/2000/svg\")", shared, re.I)  # nothing to fetch
    for page in (shared, export_html(capsys, suite_run, tmp_path, "--full-paths")):
        assert "<script" not in page.lower() and "<img" not in page.lower()
        assert escape(PLANTED) in page  # the answer, as text, in the outputs
        assert '<meta http-equiv="Content-Security-Policy" content="default-src &#x27;none&#x27;; ' in page
        parser = Tags()
        parser.feed(page)
        tags = {t for t, _ in parser.tags}
        assert not tags & {"script", "img", "link", "iframe", "object", "embed", "base", "a", "form", "foreignobject"}
        assert "svg" in tags  # the charts
        attrs = [a for _, attrs in parser.tags for a, _ in attrs]
        assert not [a for a in attrs if a in {"src", "href", "srcset", "action"} or a.startswith("on")]


def test_a_run_without_assertions_has_no_quality_parts(tmp_path):
    store = Store(tmp_path / "plain.db")
    run_id = store.create_run("compare", ["openai:gpt-4o-mini"], {"messages": [{"role": "user", "content": "hi"}]})
    store.finish_run(run_id, "done")
    page = export_run(store.get_run(run_id), "html")
    store.close()
    assert '<table class="quality">' not in page and "<svg" not in page
    assert '<table class="verdicts">' not in page


def test_an_eval_task_report_is_shown_with_its_intervals_and_pass_at_k(tmp_path):
    data_file = tmp_path / "private" / "problems.jsonl"
    models = ["openai:gpt-4o-mini", f"llamacpp:{tmp_path}/private/coder.gguf"]
    interval = {"n": 4, "mean": 0.625, "low": 0.25, "high": 1.0}
    report = {
        "task": "code", "mode": None, "data": str(data_file), "n_cases": 4, "repeats": 2, "ks": [1, 2],
        "labels": [], "primary": "pass@1",
        "models": [{"index": i, "model": ref, "route": "prompt", "results": 8, "failed": i, "invalid": 0,
                    "first_error": f"cannot read {data_file}" if i else None,
                    "intervals": {"pass@1": interval if i == 0 else {**interval, "mean": 0.5}},
                    "metrics": {"pass_k": {"1": {"pass@k": 0.625, "pass^k": 0.625},
                                           "2": {"pass@k": 0.75 - i / 10, "pass^k": 0.5}},
                                "outcomes": {"passed": 5, "failed": 3}},
                    "e2e_ms_p50": 10.0, "cost_usd": None} for i, ref in enumerate(models)],
        "comparisons": [{"baseline": models[0], "model": models[1], "model_index": 1, "metric": "pass@1",
                         "n": 4, "diff": -0.125, "low": None, "high": None, "p_value": 1.0,
                         "test": "exact permutation", "verdict": "too few cases to tell", "significant": False,
                         "sign_test": {"wins_a": 1, "wins_b": 0, "ties": 3, "p_value": 1.0}}],
    }
    store = Store(tmp_path / "task.db")
    run_id = store.create_run("eval-task", models, {"task": "code"}, {"eval_task": report, "labels": models})
    store.finish_run(run_id, "done")
    data = store.get_run(run_id)
    store.close()
    page = export_run(data, "html")
    assert '<h2 id="task">Task: code</h2>' in page
    assert "0.625 [0.250–1.000]" in page and "0.500 [0.250–1.000]" in page
    assert ">pass@2<" in page and ">0.650<" in page and "-0.125" in page and "too few cases to tell" in page
    assert str(tmp_path) not in page and "…/problems.jsonl" in page and "llamacpp:coder.gguf" in page
    assert str(data_file) in export_run(data, "html", full_paths=True)


@pytest.mark.parametrize(("text", "shown"), [
    ("/home/me/models/x.gguf", "…/x.gguf"),
    ("No GGUF file at '/tmp/a/b/model.gguf'.", "No GGUF file at '…/model.gguf'."),
    ("llamacpp:/srv/llama-3/model", "llamacpp:…/llama-3/model"),
    (r"C:\Users\me\m.gguf failed", "…/m.gguf failed"),
    ("file:///home/u/data/cases.csv", "…/cases.csv"),
    ("~/models/q.gguf", "…/q.gguf"),
    ("HTTP 404 from http://127.0.0.1:8080/v1/chat/completions", "HTTP 404 from http://127.0.0.1:8080/v1/chat/completions"),
    ("see https://huggingface.co/org/name/resolve/main/x", "see https://huggingface.co/org/name/resolve/main/x"),
    ("1/2 and /v1 and 2024/01/02", "1/2 and /v1 and 2024/01/02"),
])
def test_short_paths(text, shown):
    assert short_paths(text) == shown


def test_short_paths_masks_the_home_directory(monkeypatch):
    monkeypatch.setenv("HOME", "/home/alice")
    assert short_paths("in /home/alice (no file), /home/alice/model and /home/alicexyz/a") == (
        "in ~ (no file), …/model and …/a")
    monkeypatch.setenv("HOME", "/alice")
    assert short_paths("cwd /alice; /alice/x.txt; /alicexyz") == "cwd ~; …/x.txt; /alicexyz"
