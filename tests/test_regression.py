"""Baselines and the regression gate: flipped cases, a paired test, and exit 5 only on a supported regression."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def _tryouts(*args, env=None):
    return subprocess.run([sys.executable, "-m", "tryouts", *args], capture_output=True, text=True, timeout=120,
                          env=env or os.environ.copy())


def _suite(path, base, answer, max_tokens=64):
    path.write_text(
        f'models:\n  - model: "openai-compat:{base}#text={answer}"\n    label: bot\n'
        'prompts: ["Is {{n}} fine?"]\n'
        "cases:\n" + "".join(f"  - {{id: q{i}, vars: {{n: {i}}}, assert: [{{type: icontains, value: sure}}]}}\n"
                             for i in range(10))
        + f"defaults: {{params: {{max_tokens: {max_tokens}}}}}\n")
    return path


def test_baseline_and_regression_gate(replay_server, tmp_path):
    db = str(tmp_path / "r.db")
    suite = tmp_path / "s.yaml"
    assert _tryouts("run", str(_suite(suite, replay_server, "sure")), "--db", db).returncode == 0
    p = _tryouts("baseline", "set", "latest", "--db", db)
    assert p.returncode == 0 and f"is the baseline of {suite.resolve()}" in " ".join(p.stdout.split())
    base_id = p.stdout.split()[1]
    # the same answers again: no regression
    assert _tryouts("run", str(_suite(suite, replay_server, "sure")), "--db", db).returncode == 0
    p = _tryouts("diff", "--baseline", "--fail-on-regression", "--db", db)
    assert p.returncode == 0, p.stdout + p.stderr
    # 'bot' now says no (another model under the same label, asked with other parameters): every case flips
    assert _tryouts("run", str(_suite(suite, replay_server, "nope", max_tokens=32)), "--db", db).returncode == 0
    assert _tryouts("baseline", "show", "--db", db).stdout.strip() == base_id
    p = _tryouts("diff", "--baseline", "--fail-on-regression", "--db", db)
    out = " ".join(p.stdout.split())
    assert p.returncode == 5, out
    assert "bot: pass → fail: p1/q0, p1/q1" in out and "Exit 5: regressed: bot (--fail-on-regression)" in out
    assert "the generation parameters differ (max_tokens 64 → 32)" in out and "a different model under the same label" in out
    reg = json.loads(_tryouts("diff", "--baseline", "-f", "json", "--db", db).stdout)["regression"]
    [m] = reg["models"]
    assert (m["cases"], m["pass_rate_a"], m["pass_rate_b"], len(m["flipped_to_fail"])) == (10, 1.0, 0.0, 10)
    assert m["comparison"]["test"] == "exact permutation" and m["comparison"]["p_value"] < 0.01
    assert reg["regressed"] == ["bot"] and reg["baseline"] == base_id
    p = _tryouts("diff", "--baseline", "-f", "markdown", "--fail-on-regression", "--db", db)
    assert p.returncode == 5, p.stderr
    assert "**Regression:** bot: a lower pass rate that the paired test supports" in p.stdout
    assert "| bot | 10 | 100% | 0% | -1.00 | " in p.stdout and "pass → fail (10): `p1/q0`" in p.stdout
    html = _render(p.stdout)
    assert "the generation parameters differ (max_tokens 64 → 32)" in html and "<table>" in html
    p = _tryouts("diff", "--baseline", "--name", "nightly", "--db", db)
    assert p.returncode == 1 and "No baseline for nightly" in p.stderr


def _render(markdown: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)


def test_markdown_summary_escapes_what_suites_and_servers_wrote():
    from tryouts.report.markdown import diff_markdown, md

    assert md("a|b <img src=x onerror=alert(1)> [x](http://e) `c`\nd") == (
        "a\\|b &lt;img src=x onerror=alert\\(1\\)&gt; \\[x\\]\\(http://e\\) \\`c\\` d")
    hostile = "evil|<script>alert(1)</script>](http://x)"
    result = {"run_a": "A", "run_b": "B", "models": [], "regression": {
        "models": [{"model": hostile, "cases": 3, "pass_rate_a": 1.0, "pass_rate_b": 0.0, "regressed": True,
                    "comparison": {"diff": -1.0, "low": None, "high": None, "p_value": 0.25,
                                   "verdict": "too few cases to tell"},
                    "flipped_to_fail": [f"case|{i}" for i in range(25)], "flipped_to_pass": [],
                    "cost_usd_a": None, "cost_usd_b": "0.0012"}],
        "regressed": [hostile], "warnings": ["x\n| injected | row |"]}}
    text = diff_markdown(result)
    html = _render(text)  # rendered as GitHub would, raw HTML allowed: none gets through
    assert "<script>" not in html and "<a " not in html and "<img" not in html
    assert "<td>evil|&lt;script&gt;alert(1)&lt;/script&gt;]" in html  # shown as typed
    assert html.count("<td") == 8 and "injected" in html  # one row of 8 cells: the label and warning added none
    assert "and 5 more" in text and "unknown → $0.0012" in text


def test_a_difference_the_cases_do_not_support_does_not_fail(replay_server, tmp_path):
    db = str(tmp_path / "r.db")
    suite = tmp_path / "s.yaml"
    suite.write_text(f'models:\n  - model: "openai-compat:{replay_server}#text=sure"\n    label: bot\n'
                     'prompts: ["Is {{n}} fine?"]\ncases:\n'
                     "  - {id: a, vars: {n: 1}, assert: [{type: icontains, value: sure}]}\n"
                     "  - {id: b, vars: {n: 2}, assert: [{type: icontains, value: sure}]}\n")
    assert _tryouts("run", str(suite), "--db", db).returncode == 0
    assert _tryouts("baseline", "set", "--name", "two-cases", "--db", db).returncode == 0
    suite.write_text(suite.read_text().replace("text=sure", "text=nope").replace("id: b, vars: {n: 2}, assert: "
                     "[{type: icontains, value: sure}]", "id: b, vars: {n: 2}, assert: [{type: icontains, value: nope}]"))
    assert _tryouts("run", str(suite), "--db", db).returncode == 0
    p = _tryouts("diff", "--baseline", "--name", "two-cases", "--fail-on-regression", "--db", db)
    assert p.returncode == 0, p.stdout  # one case flipped out of two: too few cases to tell
    assert "too few cases to tell" in " ".join(p.stdout.split()) and "bot: pass → fail: p1/a" in " ".join(p.stdout.split())
