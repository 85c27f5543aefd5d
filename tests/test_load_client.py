"""The load client (load/client.py) and one load point's dispatch (load/runner.py), against the scripted
replay server on 127.0.0.1: content chunks found and stamped, usage read, statuses classed, schedules kept,
worker processes on one clock with the server."""


import httpx
import pytest

from tryouts.load.arrivals import arrival_offsets
from tryouts.load.client import CONTENT, Endpoint
from tryouts.load.metrics import summarize
from tryouts.load.runner import Item, run_point


def items(endpoint, script, n, offsets=None, include_usage=True):
    offsets = offsets or [0.0] * n
    body = {"model": script, "stream": True, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 64}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    return [Item(i, offsets[i], endpoint.request_bytes({**body, "model": f"{script};id=r{i}"})) for i in range(n)]


def test_content_is_found_without_parsing_json_and_role_or_empty_chunks_are_not_content():
    content = [b'data: {"choices":[{"delta":{"content":" w1"}}]}', b'data: {"choices":[{"delta":{"content": "x"}}]}',
               b'data: {"choices":[{"delta":{"reasoning_content":" r0"}}]}',
               b'data: {"choices":[{"delta":{"tool_calls":[{"index":0}]}}]}']
    not_content = [b'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}',
                   b'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}', b"data: [DONE]",
                   b'data: {"choices":[],"usage":{"prompt_tokens":11}}']
    assert all(CONTENT.search(x) for x in content) and not any(CONTENT.search(x) for x in not_content)


def test_a_closed_loop_point_keeps_its_streams_and_measures_every_request(replay_server):
    ep = Endpoint.parse(replay_server)
    records, start = run_point(ep, items(ep, "tokens=5;ttft_ms=30;itl_ms=5", 12), max_concurrency=3)
    assert [r.status for r in records] == ["ok"] * 12
    assert all(len(r.chunk_ns) == 5 and r.output_tokens == 5 and r.input_tokens == 11 for r in records)
    assert all(r.ttft_ms() >= 30 for r in records)  # the server waits 30 ms: a stamp cannot come earlier
    s = summarize(records, start_ns=start, end_ns=max(r.done_ns for r in records))
    assert s["completed"] == 12 and s["max_concurrent_requests"] == 3
    assert s["mean_dispatch_lag_ms"] < 50  # closed loop: a request is due when its stream frees


def test_an_open_loop_point_over_two_worker_processes_keeps_the_schedule_on_the_servers_clock(replay_server):
    ep = Endpoint.parse(replay_server)
    offsets = arrival_offsets(10, 40.0, arrival="constant")  # every 25 ms
    records, start = run_point(ep, items(ep, "tokens=3;ttft_ms=10;itl_ms=2", 10, offsets), rate=40.0, workers=2)
    assert {r.worker for r in records} == {0, 1} and all(r.ok for r in records)
    assert [round((r.due_ns - start) / 1e6) for r in records] == [round(o * 1000) for o in offsets]
    for r in records:  # one monotonic clock: the server sent each first chunk before this client read it
        log = httpx.get(replay_server.removesuffix("/v1") + f"/_replay/log/r{r.index}").json()
        assert log["recv_ns"] >= r.sent_ns and r.first_ns >= log["first_content_sent_ns"]
        assert r.sent_ns >= r.due_ns


@pytest.mark.parametrize(("script", "status"), [
    ("status=429;retry_after=1", "rate_limited"), ("status=500", "error"), ("tokens=5;cut_after=2", "incomplete"),
])
def test_failures_are_classed_and_keep_what_arrived(replay_server, script, status):
    ep = Endpoint.parse(replay_server)
    records, _ = run_point(ep, items(ep, script, 3), max_concurrency=1)
    assert [r.status for r in records] == [status] * 3
    if status == "incomplete":
        assert all(len(r.chunk_ns) == 2 for r in records)


def test_a_server_that_sends_no_usage_leaves_the_counts_unknown(replay_server):
    ep = Endpoint.parse(replay_server)
    records, _ = run_point(ep, items(ep, "tokens=4", 2, include_usage=False))
    assert all(r.ok and r.output_tokens is None and len(r.chunk_ns) == 4 for r in records)


def test_an_endpoint_must_be_a_url():
    from tryouts.errors import UsageError

    with pytest.raises(UsageError, match="http"):
        Endpoint.parse("127.0.0.1:8080")
    assert Endpoint.parse("http://127.0.0.1:8080/v1").path == "/v1/chat/completions"


# ---- the command ---------------------------------------------------------------------------------------------


def tryouts(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "tryouts", "load", *args], capture_output=True, text=True, timeout=120)


def test_tryouts_load_prints_vllm_keyed_json_with_goodput_and_cost(replay_server):
    import json

    p = tryouts(f"openai-compat:{replay_server}#tokens=4;ttft_ms=20", "-p", "constant", "-r", "40", "-n", "12",
                "--slo", "ttft:10", "--price-per-hour", "3.6", "-f", "json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["completed"] == 12 and out["total_output_tokens"] == 48 and out["request_rate"] == 40
    assert out["slo_attainment"] == 0 and out["request_goodput"] == 0  # the server waits 20 ms: no TTFT <= 10
    assert out["p99_ttft_ms"] >= 20 and out["cost_usd"] is not None and out["cost_per_good_request_usd"] is None
    for key in ("request_throughput", "output_throughput", "mean_tpot_ms", "p99_itl_ms", "median_e2el_ms"):
        assert key in out


def test_tryouts_load_exits_2_when_requests_fail_and_shows_the_table(replay_server):
    p = tryouts(f"openai-compat:{replay_server}#status=429", "-p", "concurrent", "--streams", "2", "-n", "4")
    assert p.returncode == 2 and "4 rate limited" in p.stdout and "TTFT ms" in p.stdout


@pytest.mark.parametrize(("args", "words"), [
    (["-p", "poisson"], "needs --rate"),
    (["-p", "concurrent"], "needs --streams"),
    (["-p", "sometimes"], "--profile is one of"),
    (["--slo", "ttft"], "NAME:MILLISECONDS"),
    (["--slo", "speed:3"], "SLOs are ttft, tpot and e2el"),
])
def test_tryouts_load_refuses_bad_input_saying_what_to_do(replay_server, args, words):
    p = tryouts(f"openai-compat:{replay_server}#tokens=2", *args)
    assert p.returncode == 1 and words in p.stderr + p.stdout and "Traceback" not in p.stderr


def test_tryouts_load_stops_before_storing_anything_when_a_key_is_missing(tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    db = tmp_path / "t.db"
    p = subprocess.run([sys.executable, "-m", "tryouts", "load", "anthropic:claude-3-5-haiku-latest", "--db", str(db)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and "ANTHROPIC_API_KEY" in p.stderr + p.stdout and "Traceback" not in p.stderr
    from tryouts.store import Store

    assert Store(db).list_runs() == []


@pytest.mark.slow
def test_tryouts_load_on_the_real_model_behind_llamacpps_server(smollm2_server_url):
    """SmolLM2 behind llama.cpp's real server: it sends no usage while streaming, and one token per chunk."""
    import json

    p = tryouts("llamacpp-server:smollm2", "-o", f"base_url={smollm2_server_url}", "-p", "synchronous", "-n", "3",
                "--max-tokens", "8", "--prompt-words", "4", "-f", "json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["completed"] == 3 and out["max_concurrent_requests"] == 1
    assert out["output_tokens_counted_as_chunks"] and 3 <= out["total_output_tokens"] <= 24
    assert out["mean_ttft_ms"] > 0 and out["cost_usd"] == "0"  # a server on this machine: free unless priced by the hour


def test_a_sweep_runs_synchronous_saturated_and_evenly_spaced_rates_between(replay_server):
    import json

    p = tryouts(f"openai-compat:{replay_server}#tokens=3;ttft_ms=20", "-p", "sweep", "--sweep-size", "4", "-n", "8",
                "--streams", "4", "-f", "json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    profiles = [pt["profile"] for pt in out["points"]]
    assert profiles == ["synchronous", "concurrent", "constant", "constant"]
    sync, sat = out["synchronous_rate"], out["saturated_rate"]
    rates = [pt["request_rate"] for pt in out["points"][2:]]
    assert rates == pytest.approx([sync + (sat - sync) / 2, sat]) and sat > sync
    assert all(pt["completed"] == 8 for pt in out["points"])
    assert "point=constant" in p.stderr  # each point is reported as it ends


def test_goodput_search_answers_the_highest_passing_rate_it_measured(replay_server):
    import json

    ref = f"openai-compat:{replay_server}#tokens=3;ttft_ms=20"
    p = tryouts(ref, "-p", "goodput-search", "--slo", "ttft:1000", "--max-points", "3", "-n", "6", "-f", "json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    tried = [pt["request_rate"] for pt in out["points"][1:]]
    assert out["points"][0]["profile"] == "synchronous" and len(tried) == 3
    assert tried[1] == pytest.approx(2 * tried[0]) and out["goodput_rate"] == pytest.approx(max(tried))
    never = tryouts(ref, "-p", "goodput-search", "--slo", "ttft:5", "--max-points", "2", "-n", "4")
    assert never.returncode == 0 and "No rate tried met the SLOs" in never.stdout
    no_slo = tryouts(ref, "-p", "goodput-search")
    assert no_slo.returncode == 1 and "needs at least one SLO" in no_slo.stderr + no_slo.stdout


def test_warm_up_and_cool_down_requests_are_sent_but_not_counted(replay_server):
    import json

    from tryouts.usecases.load import LoadSettings, run_load

    out = run_load(f"openai-compat:{replay_server}#tokens=2;ttft_ms=10",
                   LoadSettings(profile="constant", rate=50, requests=5, warmup=3, cooldown=2))
    assert [r.index for r in out["records"]] == [3, 4, 5, 6, 7] and out["num_prompts"] == out["completed"] == 5
    assert (out["warmup_requests"], out["cooldown_requests"]) == (3, 2)
    p = tryouts(f"openai-compat:{replay_server}#tokens=2", "-n", "2", "--warmup", "-1")
    assert p.returncode == 1 and "--warmup and --cooldown" in p.stderr + p.stdout
    assert json.loads(tryouts(f"openai-compat:{replay_server}#tokens=2", "-n", "2", "--warmup", "1", "-f",
                              "json").stdout)["num_prompts"] == 2


def test_limits_stop_sending_and_say_what_was_not_sent(replay_server):
    from tryouts.usecases.load import LoadSettings, run_load

    ref = f"openai-compat:{replay_server}#tokens=2"
    timed = run_load(ref, LoadSettings(profile="constant", rate=20, requests=40, max_seconds=0.5))
    assert 8 <= timed["num_prompts"] <= 12 and timed["not_sent"] == 40 - timed["num_prompts"]  # due by 0.5 s
    errs = run_load(f"openai-compat:{replay_server}#status=500", LoadSettings(profile="synchronous", requests=30,
                                                                            max_errors=3))
    assert errs["failed"] == 3 and errs["not_sent"] == 27
    p = tryouts(ref, "-n", "2", "--max-errors", "0")
    assert p.returncode == 1 and "--max-errors must be at least 1" in p.stderr + p.stdout


def test_a_ramp_schedules_each_request_at_its_own_rate(replay_server):
    from tryouts.usecases.load import LoadSettings, run_load

    out = run_load(f"openai-compat:{replay_server}#tokens=2", LoadSettings(profile="constant", ramp="linear:10:40",
                                                                           requests=4))
    start = out["records"][0].due_ns
    assert [round((r.due_ns - start) / 1e6, 1) for r in out["records"]] == [0.0, 100.0, 150.0, 183.3]
    ref = f"openai-compat:{replay_server}#tokens=2"
    for args, words in ((["-p", "constant", "--ramp", "linear:10"], "STRATEGY:START:END"),
                        (["-p", "poisson", "--ramp", "sideways:1:2"], "linear or exponential"),
                        (["-p", "synchronous", "--ramp", "linear:1:2"], "applies to the constant and poisson")):
        p = tryouts(ref, "-n", "2", *args)
        assert p.returncode == 1 and words in p.stderr + p.stdout, (args, p.stderr + p.stdout)


def test_the_self_test_measures_the_clients_ceiling_against_its_own_scripted_server():
    import json

    p = tryouts("--self-test", "-n", "200", "--streams", "8", "-f", "json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["self_test"] and out["completed"] == 200 and out["request_throughput"] > 0
    none = tryouts()
    assert none.returncode == 1 and "--self-test" in none.stderr + none.stdout


def test_a_report_warns_when_the_client_fell_behind_its_schedule():
    from tryouts.usecases.load import client_warning

    assert "fell behind" in client_warning({"request_rate": 50.0, "p99_dispatch_lag_ms": 25.0})
    assert client_warning({"request_rate": 50.0, "p99_dispatch_lag_ms": 0.4}) is None
    assert client_warning({"request_rate": "inf", "p99_dispatch_lag_ms": 99.0}) is None  # closed loop: no schedule


def test_a_suites_prompts_can_be_the_load(replay_server):
    from tryouts.usecases.load import LoadSettings, run_load, suite_prompts

    prompts = suite_prompts("examples/support.yaml")
    assert len(prompts) > 1 and all(m["role"] in ("system", "user") for p in prompts for m in p)
    assert prompts[0][0] == {"role": "system", "content": "You are a concise, friendly support agent."}
    n = len(prompts) + 1
    out = run_load(f"openai-compat:{replay_server}#tokens=2", LoadSettings(requests=n, suite="examples/support.yaml"))
    assert out["completed"] == n
    bad = tryouts(f"openai-compat:{replay_server}#tokens=2", "--suite", "no-such.yaml")
    assert bad.returncode == 1 and "no-such.yaml" in bad.stderr + bad.stdout and "Traceback" not in bad.stderr


@pytest.mark.parametrize("value", ["-5", "1e10", "lots"])
def test_a_usage_no_model_produces_fails_the_request_instead_of_entering_the_figures(replay_server, value):
    ep = Endpoint.parse(replay_server)
    records, _ = run_point(ep, items(ep, f"tokens=3;completion_tokens={value}", 2))
    assert [r.status for r in records] == ["error", "error"] and "completion_tokens" in records[0].error
    assert all(r.output_tokens is None for r in records)


def test_the_key_is_sent_as_the_provider_sends_it_and_a_missing_one_is_named():
    import os
    import subprocess
    import sys

    from tryouts.testing.replay import start_replay_server

    with start_replay_server(require_key="sk-load-test-0123456789") as base:
        env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
        run = [sys.executable, "-m", "tryouts", "load", "openai:tokens=2", "-o", f"base_url={base}", "-n", "2"]
        missing = subprocess.run(run, capture_output=True, text=True, timeout=120, env=env)
        assert missing.returncode == 1 and "OPENAI_API_KEY is not set" in missing.stderr + missing.stdout
        ok = subprocess.run(run, capture_output=True, text=True, timeout=120,
                            env={**env, "OPENAI_API_KEY": "sk-load-test-0123456789"})
        assert ok.returncode == 0 and "2/2 completed" in ok.stdout
        assert "sk-load-test" not in ok.stdout + ok.stderr + missing.stdout + missing.stderr


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ["-p", "synchronous", "-n", "4"],
    ["-p", "concurrent", "--streams", "2", "-n", "4"],
    ["-p", "constant", "-r", "4", "-n", "4", "--max-concurrency", "1"],
    ["-p", "poisson", "-r", "4", "-n", "4", "--seed", "3"],
    ["-p", "poisson", "--ramp", "linear:2:8", "-n", "4"],
    ["-p", "sweep", "--sweep-size", "3", "--streams", "2", "-n", "3"],
    ["-p", "goodput-search", "--slo", "ttft:5000", "--max-points", "2", "-n", "3"],
])
def test_every_profile_runs_against_llamacpps_real_server(llamacpp_server_url, tmp_path, args):
    """The tiny model behind llama-cpp-python's server. That server aborts a running request when another
    arrives: such a request is counted as incomplete, never as a completed answer."""
    import json
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "tryouts", "load", "llamacpp-server:tiny", "-o",
                        f"base_url={llamacpp_server_url}", "--max-tokens", "6", "--db", str(tmp_path / "t.db"),
                        "-f", "json", *args], capture_output=True, text=True, timeout=300)
    assert p.returncode in (0, 2), p.stderr
    out = json.loads(p.stdout)
    points = out.get("points", [out])
    assert points and all(pt["client"] == "raw" and pt["num_prompts"] >= 3 for pt in points)
    for pt in points:
        assert pt["completed"] + pt["failed"] + pt["incomplete"] == pt["num_prompts"]
        assert pt["completed"] >= 1 and pt["mean_ttft_ms"] > 0 and pt["total_output_tokens"] <= 6 * pt["completed"]
    assert (p.returncode == 0) == all(pt["completed"] == pt["num_prompts"] for pt in points)


def test_a_usage_value_that_is_text_is_never_echoed_in_the_error():
    """A server can put the key it was sent in a usage field: the error says the type, never the value."""
    from tryouts.load.client import _usage
    from tryouts.load.metrics import RequestRecord

    rec = RequestRecord(index=0, due_ns=0)
    _usage(b'data: {"usage": {"prompt_tokens": "sk-test-SECRET123456789abcdef"}}', rec)
    assert rec.status == "error" and "of type str" in rec.error and "SECRET" not in rec.error
    rec = RequestRecord(index=0, due_ns=0)
    _usage(b'data: {"usage": {"completion_tokens": -5}}', rec)
    assert rec.error == "the server reported completion_tokens = -5, which no model produces"
