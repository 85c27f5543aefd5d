"""Replicate's predictions API through the real provider, against the replay server's Replicate dialect.

The provider is pointed at ``http://127.0.0.1:PORT/replicate`` through ``REPLICATE_BASE_URL``; the replay
answers the create call with stream/get/cancel URLs back to itself, so the whole documented flow (create,
stream, read the metrics) runs. The script is the model's name: ``replicate:replay/tokens=5;ttft_ms=50``.
Timing is checked against the server's own clock, within 5 ms, as in test_openai_wire.py.
"""

import asyncio
import time
import uuid
from decimal import Decimal

import httpx
import pytest

from helpers import (
    REQ,
    ProviderRefs,
    assert_timing_matches_log,
    cli_compare_json,
    point_at_dialect,
    server_log,
)
from tryouts import errors
from tryouts.types import GenParams, Message, ModelSpec, Request


@pytest.fixture
def root(replay_server, monkeypatch):
    """The replay server's root URL; the provider is pointed at its /replicate dialect by environment."""
    point_at_dialect(replay_server, monkeypatch, "replicate", "REPLICATE_BASE_URL", REPLICATE_API_TOKEN="r8_test")
    return replay_server.removesuffix("/v1")


replicate = ProviderRefs("replicate")  # the script is the model's name: replicate:replay/tokens=5
provider_for, run, raised = replicate.provider, replicate.run, replicate.raised



# ---- the provider ---------------------------------------------------------------------------------


@pytest.mark.timing
def test_text_timing_matches_the_server_log(root):
    rid = uuid.uuid4().hex
    r, deltas = run(f"replay/tokens=10;ttft_ms=150;itl_ms=20;id={rid}", warm=True)
    assert r.ok, r.error
    assert r.text == "".join(f" w{i}" for i in range(10))
    assert r.finish_reason is None  # Replicate sends none
    # t0 is before the create call, and the server's schedule starts when it received that call
    assert_timing_matches_log(r, deltas, server_log(root, rid), ttft_ms=150, itl_ms=20, tokens=10)


def test_usage_and_server_timings_come_from_the_prediction_metrics(root):
    rid = uuid.uuid4().hex
    r, _ = run(f"replay/tokens=12;per_chunk=4;itl_ms=10;ttft_ms=30;prompt_tokens=17;id={rid}")
    assert r.ok, r.error
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.estimated) == (17, 12, False)
    assert r.timing.n_chunks == 3  # several tokens per event: TPOT uses the exact count, not the chunks
    assert r.timing.tpot_ms == pytest.approx((r.timing.e2e_ms - r.timing.ttft_ms) / 11)
    st = r.server_timings
    assert st["input_token_count"] == 17 and st["output_token_count"] == 12
    log = server_log(root, rid)
    assert st["predict_ms"] == pytest.approx((log["last_content_sent_ns"] - log["recv_ns"]) / 1e6)
    assert st["time_to_first_token_ms"] == pytest.approx((log["first_content_sent_ns"] - log["recv_ns"]) / 1e6)
    assert "tokens_per_second" in st and "total_ms" in st


def test_without_token_counts_usage_is_estimated(root):
    r, _ = run("replay/tokens=6;usage=never")
    assert r.ok and r.usage.estimated and r.usage.method == "fallback:chars/4"
    assert "predict_ms" in r.server_timings


def test_official_model_name_is_the_default_script_and_cost_is_unknown(root):
    r, _ = run("meta/meta-llama-3-8b-instruct")
    assert r.ok, r.error
    assert r.model_name == "meta/meta-llama-3-8b-instruct" and r.provider == "replicate"
    assert r.text == "".join(f" w{i}" for i in range(8)) and r.usage.output_tokens == 8
    assert r.cost.total is None and r.cost.source == "unknown"  # genai-prices has no Replicate prices
    from tryouts.usecases.compare import compare

    spec = ModelSpec.parse("replicate:meta/meta-llama-3-8b-instruct", {"price": "0.05,0.25"})
    r = asyncio.run(compare("hi", [spec])).results[0]  # the price option, as the CLI's -o price=... gives it
    assert r.ok and r.cost.source == "override"
    assert r.cost.total == (11 * Decimal("0.05") + 8 * Decimal("0.25")) / 10**6


def test_a_version_goes_to_the_predictions_route(root):
    provider = provider_for("replay/tokens=3:5c7d5dc6dd8bf75c")
    assert provider.create_url == f"{root}/replicate/v1/predictions"
    assert provider.body(REQ)["version"] == "replay/tokens=3:5c7d5dc6dd8bf75c"
    assert provider.model_name == "replay/tokens=3"
    r, _ = run("replay/tokens=3:5c7d5dc6dd8bf75c")
    assert r.ok, r.error
    assert r.text == " w0 w1 w2"


def test_input_maps_the_request(root):
    request = Request(
        messages=[Message(role="system", content="Be brief."), Message(role="user", content="hi")],
        params=GenParams(max_tokens=5, temperature=0, top_p=0.9, seed=1, stop=["END", "###"]),
    )
    body = provider_for("meta/m", {"extra_input": {"top_k": 50}}).body(request)
    assert body["stream"] is True and "version" not in body
    assert body["input"] == {"prompt": "hi", "system_prompt": "Be brief.", "max_tokens": 5, "temperature": 0,
                             "top_p": 0.9, "seed": 1, "stop_sequences": "END,###", "top_k": 50}
    inp = provider_for("meta/m", {"max_tokens_field": "max_new_tokens"}).body(request)["input"]
    assert inp["max_new_tokens"] == 5 and "max_tokens" not in inp
    r, _ = run("replay/tokens=2", request=request)  # the replay checks the input's types
    assert r.ok, r.error


def test_a_conversation_of_several_turns_is_refused(root):
    request = Request(messages=[Message(role="user", content="a"), Message(role="assistant", content="b"),
                                Message(role="user", content="c")])
    r, _ = run("replay/tokens=2", request=request)
    assert r.error_kind == "bad_request" and "one prompt" in r.error


def test_bad_references_and_options(root, monkeypatch):
    with pytest.raises(errors.UsageError, match="OWNER/NAME"):
        provider_for("llama")
    with pytest.raises(errors.UsageError, match="extra_input"):
        provider_for("a/b", {"extra_input": "x"})
    with pytest.raises(errors.UsageError, match="the replicate provider accepts"):
        provider_for("a/b", {"tokenizer": "x"})
    assert provider_for("a/b", {"base_url": "http://proxy:1/v1/"}).create_url == "http://proxy:1/v1/models/a/b/predictions"
    monkeypatch.delenv("REPLICATE_BASE_URL")
    assert provider_for("a/b").create_url == "https://api.replicate.com/v1/models/a/b/predictions"


def test_the_token_is_sent_as_bearer_on_every_call(monkeypatch):
    from tryouts.testing.replay import start_replay_server

    with start_replay_server(require_key="r8_right") as base:
        point_at_dialect(base, monkeypatch, "replicate", "REPLICATE_BASE_URL", REPLICATE_API_TOKEN="r8_right")
        r, _ = run("replay/tokens=3")  # create, stream and get all want the key
        assert r.ok, r.error
        assert r.usage.output_tokens == 3 and not r.usage.estimated
        monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_wrong")
        r, _ = run("replay/tokens=3")
        assert r.error_kind == "auth" and "REPLICATE_API_TOKEN" in r.error
        assert "You did not pass a valid authentication token" in r.error


def test_missing_token_fails_before_any_request(root, monkeypatch):
    monkeypatch.delenv("REPLICATE_API_TOKEN")
    with pytest.raises(errors.MissingKeyError) as info:
        asyncio.run(provider_for("meta/m").load())
    assert "export REPLICATE_API_TOKEN=" in str(info.value)


def test_429_carries_retry_after(root):
    exc = raised("replay/status=429;retry_after=7")
    assert isinstance(exc, errors.RateLimitError) and exc.retryable
    assert exc.retry_after == 7 and "Retry after 7 s" in str(exc) and "throttled" in str(exc)


def test_errors_are_mapped(root):
    r, _ = run("replay/status=500")
    assert r.error_kind == "server" and "try again later" in r.error
    r, _ = run("replay/status=404")
    assert r.error_kind == "model_not_found" and "OWNER/NAME:VERSION" in r.error
    r, _ = run("replay/status=422")
    assert r.error_kind == "bad_request" and "max_tokens_field" in r.error
    r, _ = run("replay/status=402")
    assert r.error_kind == "bad_request" and "credit" in r.error


def test_cut_stream_keeps_partial_text_and_cancels_the_prediction(root):
    rid = uuid.uuid4().hex
    r, _ = run(f"replay/tokens=10;cut_after=3;itl_ms=5;id={rid}")
    assert not r.ok and r.error_kind == "stream_cut"
    assert r.text == " w0 w1 w2" and "partial output is kept" in r.error
    assert r.usage.estimated and r.timing.ttft_ms is not None
    deadline = time.monotonic() + 5
    while not server_log(root, rid).get("canceled") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server_log(root, rid)["canceled"]  # it would otherwise run on, and bill


def test_an_error_event_is_a_server_error_with_partial_text(root):
    r, _ = run("replay/status=500;cut_after=2;tokens=5")
    assert not r.ok and r.error_kind == "server" and r.text == " w0 w1"
    assert "mid-stream" in r.error and "Internal server error" in r.error
    exc = raised("replay/status=500;cut_after=2;tokens=5")
    assert exc.retryable and exc.partial_text == " w0 w1"


def test_fail_first_counts_creates(root):
    model = f"replay/fail_first=1;status=429;retry_after=0;tokens=2;id={uuid.uuid4().hex}"
    assert isinstance(raised(model), errors.RateLimitError)
    r, _ = run(model)  # the failure is used up: a retry succeeds
    assert r.ok, r.error


# ---- the dialect, through plain httpx -------------------------------------------------------------


def sse(text: str) -> list[dict[str, str]]:
    out = []
    for block in text.strip("\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            name, _, value = line.partition(": ")
            fields[name] = value
        out.append(fields)
    return out


def test_dialect_replays_the_documented_flow(root):
    create = httpx.post(f"{root}/replicate/v1/models/meta/tokens=3;per_chunk=2;ttft_ms=20/predictions",
                        json={"input": {"prompt": "hi", "max_tokens": 9}, "stream": True})
    assert create.status_code == 201
    p = create.json()
    assert p["status"] == "starting" and p["input"] == {"prompt": "hi", "max_tokens": 9}
    assert p["model"] == "meta/tokens=3;per_chunk=2;ttft_ms=20"
    assert set(p["urls"]) >= {"get", "stream", "cancel"}
    assert p["urls"]["stream"].startswith(f"{root}/replicate/")
    s = httpx.get(p["urls"]["stream"], headers={"Accept": "text/event-stream"})
    assert s.headers["content-type"].startswith("text/event-stream")
    evs = sse(s.text)
    assert [e["event"] for e in evs] == ["output", "output", "done"]
    assert [e["data"] for e in evs] == [" w0 w1", " w2", "{}"]  # the text as plain data, one leading space
    assert all(e["id"] for e in evs)
    got = httpx.get(p["urls"]["get"]).json()
    assert got["status"] == "succeeded" and got["output"] == [" w0 w1", " w2"]
    m = got["metrics"]
    assert (m["input_token_count"], m["output_token_count"]) == (11, 3)
    assert m["predict_time"] >= 0.02 and m["time_to_first_token"] >= 0.02 and "total_time" in m


def test_dialect_errors_and_checks(root):
    url = f"{root}/replicate/v1/models/meta/{{}}/predictions"
    r = httpx.post(url.format("status=401"), json={"input": {"prompt": "x"}})
    assert r.status_code == 401
    assert r.json() == {"title": "Unauthenticated", "detail": "You did not pass a valid authentication token",
                        "status": 401}
    r = httpx.post(url.format("status=429;retry_after=2"), json={"input": {"prompt": "x"}})
    assert r.status_code == 429 and r.headers["retry-after"] == "2"
    assert r.json() == {"detail": "Request was throttled. Expected available in 2 seconds."}
    r = httpx.post(url.format("m"), json={"input": {"max_tokens": 5}})
    assert r.status_code == 422 and "prompt" in r.json()["detail"]
    r = httpx.post(url.format("m"), json={"input": {"prompt": "x", "max_tokens": "5"}})
    assert r.status_code == 422 and "max_tokens" in r.json()["detail"]
    assert httpx.get(f"{root}/replicate/v1/predictions/nope").status_code == 404
    assert httpx.post(f"{root}/replicate/v1/predictions", json={"input": {"prompt": "x"}}).status_code == 422


def test_dialect_cancel_ends_an_open_stream(root):
    p = httpx.post(f"{root}/replicate/v1/models/meta/tokens=50;itl_ms=20/predictions",
                   json={"input": {"prompt": "x"}}).json()
    with httpx.stream("GET", p["urls"]["stream"]) as s:
        lines = s.iter_lines()
        assert next(lines) == "event: output"
        assert httpx.post(p["urls"]["cancel"]).json()["status"] == "canceled"
        rest = "\n".join(lines)
    assert 'event: done' in rest and '"reason":"canceled"' in rest
    assert httpx.get(p["urls"]["get"]).json()["status"] == "canceled"


# ---- the CLI end to end ---------------------------------------------------------------------------


def test_compare_cli_end_to_end(root, tmp_path):
    env = {"REPLICATE_BASE_URL": f"{root}/replicate", "REPLICATE_API_TOKEN": "r8_test"}
    r = cli_compare_json("replicate:meta/meta-llama-3-8b-instruct", tmp_path / "cli.db", env=env)[0]
    assert r["ok"] and r["text"] == "".join(f" w{i}" for i in range(8))
    assert (r["input_tokens"], r["output_tokens"], r["tokens_estimated"]) == (11, 8, False)
    assert r["cost_usd"] is None and r["ttft_ms"] is not None
