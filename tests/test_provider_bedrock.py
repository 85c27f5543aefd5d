"""AWS Bedrock's ConverseStream through the real provider (boto3), against the replay server's ``/bedrock`` dialect.

boto3 is pointed at the replay server with ``BEDROCK_ENDPOINT_URL``, as a user points it at a VPC endpoint,
with fake credentials; the model id is the replay script. Nothing may leave 127.0.0.1: a guard records any
other host boto3 tries to resolve (a real AWS endpoint, the instance metadata service) and fails the test.
Timing is checked against the server's own clock, within 5 ms.
"""

import asyncio
import json
import socket
import time
import uuid
from decimal import Decimal
from urllib.parse import quote

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
from tryouts.engine.execute import execute
from tryouts.providers import create_provider
from tryouts.testing.dialects import bedrock as dialect
from tryouts.types import GenParams, Message, ModelSpec, Request

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
AWS_VARS = (
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_DEFAULT_REGION",
    "AWS_BEARER_TOKEN_BEDROCK", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Fail the test if anything resolves a host other than the loopback (AWS, 169.254.169.254...)."""
    real, outside = socket.getaddrinfo, []

    def guarded(host, *args, **kw):
        if host not in ("127.0.0.1", "localhost", "::1"):
            outside.append(host)
            raise OSError(f"test guard: no network beyond 127.0.0.1 ({host})")
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    yield
    assert not outside, f"boto3 tried to reach {outside}"


@pytest.fixture
def aws(monkeypatch, tmp_path):
    """Fake credentials and a region; no config files, no instance metadata."""
    for var in AWS_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTRYOUTSTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
    return monkeypatch


@pytest.fixture
def bedrock(replay_server, aws):
    """The dialect's base URL, set as BEDROCK_ENDPOINT_URL."""
    return point_at_dialect(replay_server, aws, "bedrock", "BEDROCK_ENDPOINT_URL")


refs = ProviderRefs("bedrock")
run, raises = refs.run, refs.raised



def frames(data: bytes) -> list:
    """Decode event-stream bytes with botocore's own decoder, fed in awkward pieces."""
    from botocore.eventstream import EventStreamBuffer

    buf, out = EventStreamBuffer(), []
    for i in range(0, len(data), 7):
        buf.add_data(data[i : i + 7])
        out.extend(buf)
    return out


# ------------------------------------------------------------------------------ the encoder and the dialect


def test_encoder_frames_decode_with_botocore():
    from botocore.eventstream import ChecksumMismatch

    payload = json.dumps({"delta": {"text": "héllo ✓"}, "contentBlockIndex": 0}).encode()
    data = dialect.encode_frame(dialect.event_headers("contentBlockDelta"), payload)
    data += dialect.encode_frame({":exception-type": "throttlingException", ":message-type": "exception"}, b"{}")
    first, second = frames(data)
    assert first.headers == {":event-type": "contentBlockDelta", ":content-type": "application/json",
                             ":message-type": "event"}
    assert first.payload == payload and first.prelude.total_length == len(data) - second.prelude.total_length
    assert second.headers[":exception-type"] == "throttlingException" and second.payload == b"{}"
    corrupt = bytearray(data)
    corrupt[20] ^= 1
    with pytest.raises(ChecksumMismatch):
        frames(bytes(corrupt))


def test_encoder_output_parses_into_the_service_model_events():
    """The path boto3 takes: EventStream, the event parser of rest-json services, ConverseStreamOutput."""
    import botocore.session
    from botocore.eventstream import EventStream
    from botocore.exceptions import EventStreamError
    from botocore.parsers import EventStreamJSONParser

    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    shape = model.operation_model("ConverseStream").output_shape.members["stream"]
    ev = dialect.event_headers
    raw = b"".join([
        dialect.encode_frame(ev("messageStart"), b'{"role":"assistant"}'),
        dialect.encode_frame(ev("contentBlockDelta"), b'{"delta":{"text":" w0"},"contentBlockIndex":0,"x_sent_ns":1}'),
        dialect.encode_frame(ev("metadata"), b'{"usage":{"inputTokens":3,"outputTokens":1,"totalTokens":4},'
                                             b'"metrics":{"latencyMs":12}}'),
        dialect.encode_frame(dialect.exception_headers("modelStreamErrorException"), b'{"message":"boom"}'),
    ])

    class Body:
        def stream(self):
            yield from (raw[i : i + 5] for i in range(0, len(raw), 5))

    stream = EventStream(Body(), shape, EventStreamJSONParser(), "ConverseStream")
    got = []
    with pytest.raises(EventStreamError) as info:
        for event in stream:
            got.append(event)
    assert got == [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"delta": {"text": " w0"}, "contentBlockIndex": 0}},
        {"metadata": {"usage": {"inputTokens": 3, "outputTokens": 1, "totalTokens": 4}, "metrics": {"latencyMs": 12}}},
    ]
    assert info.value.response["Error"] == {"Code": "modelStreamErrorException", "Message": "boom"}


def test_dialect_streams_the_documented_events(bedrock):
    url = f"{bedrock}/model/{quote('tokens=4;per_chunk=2;reasoning=1;cached=3', safe='')}/converse-stream"
    r = httpx.post(url, json={"messages": [{"role": "user", "content": [{"text": "hi"}]}]})
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.amazon.eventstream"
    got = [(f.headers[":event-type"], json.loads(f.payload)) for f in frames(r.content)]
    assert all(f.headers[":message-type"] == "event" for f in frames(r.content))
    assert all("x_sent_ns" in data for _, data in got)
    for _, data in got:
        data.pop("x_sent_ns")
    names = [name for name, _ in got]
    assert names == ["messageStart", "contentBlockDelta", "contentBlockDelta", "contentBlockStop",
                     "contentBlockDelta", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata"]
    assert got[0][1] == {"role": "assistant"}
    assert got[1][1] == {"delta": {"reasoningContent": {"text": " r0"}}, "contentBlockIndex": 0}
    assert "signature" in got[2][1]["delta"]["reasoningContent"]
    assert [d["delta"]["text"] for n, d in got[4:6]] == [" w0 w1", " w2 w3"]
    assert got[4][1]["contentBlockIndex"] == 1 and got[6][1] == {"contentBlockIndex": 1}
    assert got[7][1] == {"stopReason": "end_turn"}
    assert got[8][1]["usage"] == {"inputTokens": 8, "outputTokens": 5, "totalTokens": 16, "cacheReadInputTokens": 3}
    assert isinstance(got[8][1]["metrics"]["latencyMs"], int)

    r = httpx.post(url.replace("converse-stream", "converse"), json={"messages": [{"role": "user"}]})
    data = r.json()
    assert data["output"]["message"]["content"][-1] == {"text": " w0 w1 w2 w3"}
    assert data["stopReason"] == "end_turn" and data["usage"]["outputTokens"] == 5


def test_dialect_errors_look_like_bedrock(bedrock):
    body = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    for status, code in [(400, "ValidationException"), (401, "UnrecognizedClientException"),
                         (403, "AccessDeniedException"), (404, "ResourceNotFoundException"),
                         (429, "ThrottlingException"), (500, "InternalServerException"),
                         (503, "ServiceUnavailableException")]:
        r = httpx.post(f"{bedrock}/model/status%3D{status}/converse-stream", json=body)
        assert r.status_code == (403 if status == 401 else status)
        assert r.headers["x-amzn-errortype"] == code and r.json()["message"]
    assert httpx.post(f"{bedrock}/model/bogus%3D1/converse-stream", json=body).headers["x-amzn-errortype"] \
        == "ValidationException"
    assert httpx.post(f"{bedrock}/model/m/converse-stream", json={"messages": []}).status_code == 400
    assert httpx.post(f"{bedrock}/model/m/nothing", json=body).status_code == 404


# ------------------------------------------------------------------------------ through the provider


@pytest.mark.timing
def test_text_usage_and_timing_against_the_server_clock(bedrock):
    rid = uuid.uuid4().hex
    r, deltas = run(f"tokens=10;ttft_ms=150;itl_ms=20;prompt_tokens=23;id={rid}")
    assert r.ok, r.error
    assert r.text == "".join(f" w{i}" for i in range(10)) and r.finish_reason
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.estimated) == (23, 10, False)
    assert_timing_matches_log(r, deltas, server_log(bedrock, rid), ttft_ms=150, itl_ms=20, tokens=10)
    # Bedrock's own latencyMs is kept beside the client's figures, never in place of them
    assert r.server_timings is not None and set(r.server_timings) == {"latency_ms"}
    assert abs(r.server_timings["latency_ms"] - r.timing.e2e_ms) < 6
    assert r.timing.ttft_ms < r.server_timings["latency_ms"]


def test_reasoning_and_cache_reads(bedrock):
    r, _ = run("reasoning=3;tokens=4;ttft_ms=30;itl_ms=30;prompt_tokens=40;cached=16")
    assert r.ok, r.error
    assert r.reasoning_text == " r0 r1 r2" and r.text == " w0 w1 w2 w3"
    assert r.timing.ttfat_ms - r.timing.ttft_ms >= 80  # three reasoning chunks 30 ms apart come first
    u = r.usage
    assert (u.input_tokens, u.cached_input_tokens, u.output_tokens) == (40, 16, 7)  # input includes cache reads


def test_usage_mapping_adds_cache_reads_and_writes():
    from tryouts.providers.bedrock import parse_usage

    u = parse_usage({"inputTokens": 5, "outputTokens": 9, "totalTokens": 114, "cacheReadInputTokens": 60,
                     "cacheWriteInputTokens": 40})
    assert (u.input_tokens, u.cached_input_tokens, u.cache_write_tokens, u.output_tokens) == (105, 60, 40, 9)
    assert parse_usage({"inputTokens": 5, "outputTokens": 1, "totalTokens": 6}).cached_input_tokens is None


def test_cost_from_genai_prices_for_a_bedrock_model_id(bedrock):
    r, _ = run(HAIKU)
    assert r.ok, r.error
    assert r.model_name == HAIKU and r.cost.source == "genai-prices"
    assert r.cost.total == (Decimal(11) * Decimal("0.80") + Decimal(8) * Decimal("4")) / 10**6


def test_request_maps_messages_and_parameters(bedrock):
    request = Request(
        messages=[Message(role="system", content="Be brief."), Message(role="user", content="a"),
                  Message(role="assistant", content="b"), Message(role="user", content="c")],
        params=GenParams(max_tokens=5, temperature=0, top_p=0.5, seed=7, stop=["x"]),
    )
    extra = {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    provider = create_provider(ModelSpec.parse(f"bedrock:{HAIKU}", {"additional_fields": extra}))
    kw = provider.params(request)
    assert kw["system"] == [{"text": "Be brief."}] and kw["modelId"] == HAIKU
    assert [(m["role"], m["content"]) for m in kw["messages"]] == [
        ("user", [{"text": "a"}]), ("assistant", [{"text": "b"}]), ("user", [{"text": "c"}])]
    assert kw["inferenceConfig"] == {"maxTokens": 5, "temperature": 0.0, "topP": 0.5, "stopSequences": ["x"]}
    assert kw["additionalModelRequestFields"] == extra
    r, _ = run("tokens=2", request=request)  # and boto3's validation and the server take it
    assert r.ok, r.error


@pytest.mark.parametrize(("script", "kind", "words"), [
    ("status=400", errors.BadRequestError, ["ValidationException", "refused the request"]),
    ("status=401", errors.AuthError, ["UnrecognizedClientException", "AWS_ACCESS_KEY_ID", "AWS_PROFILE"]),
    ("status=403", errors.AuthError, ["AccessDeniedException", "AWS_SECRET_ACCESS_KEY", "us-east-1"]),
    ("status=404", errors.ModelNotFoundError, ["ResourceNotFoundException", "enabled in your region"]),
    ("status=408", errors.TimeoutError_, ["ModelTimeoutException"]),
    ("status=424", errors.ServerError, ["ModelErrorException", "try again later"]),
    ("status=500", errors.ServerError, ["InternalServerException", "try again later"]),
    ("status=503", errors.ServerError, ["ServiceUnavailableException", "try again later"]),
    ("status=429;quota=1", errors.RateLimitError, ["ThrottlingException", "Too many tokens per day"]),
])
def test_error_codes_are_mapped_with_clear_messages(bedrock, script, kind, words):
    err = raises(script)
    assert type(err) is kind, err
    for word in words:
        assert word in str(err)


def test_throttling_carries_retry_after(bedrock):
    err = raises("status=429;retry_after=7")
    assert isinstance(err, errors.RateLimitError) and err.retry_after == 7 and err.retryable
    assert "Retry after 7 s" in str(err) and err.status == 429


def test_mid_stream_exceptions_keep_partial_text(bedrock):
    r, _ = run("tokens=6;status=424;cut_after=2;itl_ms=5")
    assert not r.ok and r.error_kind == "server" and "ModelStreamErrorException" in r.error
    assert r.text == " w0 w1" and "mid-stream" in r.error
    r, _ = run("tokens=6;status=429;cut_after=3")
    assert r.error_kind == "rate_limit" and "ThrottlingException" in r.error and r.text == " w0 w1 w2"


def test_cut_stream_keeps_partial_text(bedrock):
    r, _ = run("tokens=10;cut_after=3;itl_ms=5")
    assert not r.ok and r.error_kind == "stream_cut"
    assert r.text == " w0 w1 w2" and "partial output is kept" in r.error
    assert r.timing.ttft_ms is not None and r.usage.estimated


def test_clean_end_without_message_stop_is_a_cut(bedrock):
    r, _ = run("tokens=3;finish=none")
    assert not r.ok and r.error_kind == "stream_cut" and "messageStop" in r.error
    assert r.text == " w0 w1 w2" and r.usage.output_tokens == 3  # the metadata still came


def test_retries_are_the_engines_not_botocores(bedrock):
    rid = uuid.uuid4().hex
    err = raises(f"status=503;fail_first=1;id={rid}")
    assert isinstance(err, errors.ServerError)  # one try only: botocore would have retried a 503
    r, _ = run(f"status=503;fail_first=1;id={rid}")
    assert r.ok, r.error


def test_no_credentials_fail_before_any_request(bedrock, aws):
    aws.delenv("AWS_ACCESS_KEY_ID")
    aws.delenv("AWS_SECRET_ACCESS_KEY")
    rid = uuid.uuid4().hex
    provider = create_provider(ModelSpec.parse(f"bedrock:id={rid}"))
    with pytest.raises(errors.MissingKeyError) as info:
        asyncio.run(provider.load())
    assert "AWS_ACCESS_KEY_ID" in str(info.value) and "AWS_PROFILE" in str(info.value)
    assert info.value.kind == "missing_key"
    assert httpx.get(f"{bedrock.removesuffix('/bedrock')}/_replay/log/{rid}").status_code == 404  # never sent
    aws.setenv("AWS_BEARER_TOKEN_BEDROCK", "a-bedrock-api-key")  # an API key stands in for credentials
    asyncio.run(provider.load())
    asyncio.run(provider.aclose())


def test_no_region_is_a_usage_error(bedrock, aws):
    aws.delenv("AWS_REGION")
    provider = create_provider(ModelSpec.parse(f"bedrock:{HAIKU}"))
    with pytest.raises(errors.UsageError, match="AWS_REGION"):
        asyncio.run(provider.load())
    r, _ = run("tokens=2", {"region": "eu-west-1"})
    assert r.ok, r.error


def test_credentials_are_checked_by_the_server(aws):
    from tryouts.testing.replay import start_replay_server

    with start_replay_server(require_key="AKIDRIGHT") as base:
        point_at_dialect(base, aws, "bedrock", "BEDROCK_ENDPOINT_URL")
        err = raises("tokens=2")  # the fixture's access key id is not the one the server wants
        assert isinstance(err, errors.AuthError) and "UnrecognizedClientException" in str(err)
        aws.setenv("AWS_ACCESS_KEY_ID", "AKIDRIGHT")  # SigV4 carries the access key id
        r, _ = run("tokens=2")
        assert r.ok, r.error


def test_nothing_listening_is_a_connect_error(aws):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    aws.setenv("BEDROCK_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    err = raises("tokens=2", {"connect_timeout": 2})
    assert isinstance(err, errors.ConnectError) and "BEDROCK_ENDPOINT_URL" in str(err)


def test_a_timeout_ends_a_stalled_request_at_once(bedrock, aws):
    t = time.monotonic()
    r, _ = run("tokens=2;ttft_ms=20000", first_token_timeout=0.3)  # headers came, no event yet
    assert r.error_kind == "timeout" and time.monotonic() - t < 10  # not boto3's 60 s read timeout
    with socket.socket() as silent:  # accepts, never answers: boto3 blocks before any response
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        aws.setenv("BEDROCK_ENDPOINT_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
        t = time.monotonic()
        r, _ = run("tokens=2", first_token_timeout=0.3)
        assert r.error_kind == "timeout" and time.monotonic() - t < 10  # not boto3's 60 s read timeout


def test_concurrent_requests_share_one_client(bedrock):
    provider = create_provider(ModelSpec.parse("bedrock:tokens=5;ttft_ms=50;itl_ms=10"))

    async def go():
        await provider.load()
        try:
            return await asyncio.gather(*(execute(provider, REQ) for _ in range(8)))
        finally:
            await provider.aclose()

    results = asyncio.run(go())
    assert all(r.ok and r.text == " w0 w1 w2 w3 w4" for r in results)
    # side by side, not one after another: in a queue the last would wait for 7 others (>= 7 x 90 ms)
    assert all(50 <= r.timing.ttft_ms < 300 for r in results)


def test_compare_end_to_end(bedrock, tmp_path):
    (res,) = cli_compare_json(f"bedrock:{HAIKU}", tmp_path / "b.db")
    assert res["ok"] and res["text"] == " w0 w1 w2 w3 w4 w5 w6 w7"
    assert (res["input_tokens"], res["output_tokens"], res["tokens_estimated"]) == (11, 8, False)
    assert res["cost_usd"] == pytest.approx((11 * 0.80 + 8 * 4) / 1e6)
    assert res["ttft_ms"] > 0
