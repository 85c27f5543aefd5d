"""AWS Bedrock's ConverseStream through boto3 (its SigV4 signing and credential chain).

``bedrock:MODEL_ID``, e.g. ``bedrock:anthropic.claude-haiku-4-5-20251001-v1:0`` (an inference profile id
such as ``us.anthropic...`` or an ARN works too). The region comes from the ``region`` option, else
``AWS_REGION``, ``AWS_DEFAULT_REGION`` or the profile's configuration; credentials from boto3's usual
chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, ``AWS_PROFILE`` or the
``profile`` option, SSO, instance roles...) or a Bedrock API key in ``AWS_BEARER_TOKEN_BEDROCK``. Without
any, the model fails before a request is made. ``BEDROCK_ENDPOINT_URL`` (or ``endpoint_url``) moves the
endpoint, e.g. to a VPC endpoint or a proxy. Options: ``region``, ``endpoint_url``, ``profile``,
``timeout`` (seconds between bytes, default 600), ``connect_timeout`` (default 10),
``additional_fields`` (sent as ``additionalModelRequestFields``, e.g. ``{"thinking": {"type":
"enabled", "budget_tokens": 1024}}``), ``price``.

boto3 blocks, so each request runs in a thread (``stream_from_thread``): ``Sent`` is stamped by a
``before-send`` hook, after signing, right before the HTTP request leaves; each event is stamped when
botocore yields it. botocore's own retries are off (the engine retries). Mapping (botocore's
``bedrock-runtime`` service model): ``contentBlockDelta`` ``text`` -> text, ``reasoningContent.text`` ->
reasoning, ``toolUse.input`` (and ``contentBlockStart.toolUse.name``) -> tool; ``messageStop.stopReason``
-> finish; ``metadata.usage``: Bedrock's ``inputTokens`` excludes cache reads and writes, Tryouts' input
includes them (input = inputTokens + cacheReadInputTokens + cacheWriteInputTokens, cached input = cache
reads, cache writes = cacheWriteInputTokens, of which ``cacheDetails`` ttl ``1h`` went to a 1-hour cache),
output = ``outputTokens`` (thinking included);
``metadata.metrics.latencyMs`` -> server timing ``latency_ms``. A stream that ends without
``messageStop`` is cut. Prices: genai-prices' ``aws`` provider, which knows Bedrock model ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Callable
from time import perf_counter_ns
from typing import Any

from .. import errors
from ..types import Delta, Event, Finish, ModelSpec, Request, Sent, ServerTimings, Usage, UsageReport
from .base import Provider, stream_from_thread
from .http import retry_after

CREDENTIALS = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
_POLL_S = 0.1  # how often a waiting request checks whether its consumer went away

_AUTH = {"AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException",
         "InvalidSignatureException", "IncompleteSignatureException", "MissingAuthenticationTokenException",
         "InvalidClientTokenId", "SignatureDoesNotMatch"}
_SERVER = {"InternalServerException", "ServiceUnavailableException", "ModelStreamErrorException",
           "ModelErrorException", "ModelNotReadyException"}
_RATE = {"ThrottlingException", "ServiceQuotaExceededException", "TooManyRequestsException"}


class MissingCredentialsError(errors.MissingKeyError):
    """No AWS credentials anywhere boto3 looks: raised before any request."""

    def __init__(self, detail: str = "") -> None:
        errors.ProviderError.__init__(
            self,
            f"No AWS credentials{detail}: export {CREDENTIALS}, or pass -o profile=NAME (or set "
            "AWS_BEARER_TOKEN_BEDROCK to a Bedrock API key), and run again (the other models are not affected).",
        )
        self.env_var = "AWS_ACCESS_KEY_ID"


class BedrockProvider(Provider):
    """Streams ``ConverseStream`` from AWS Bedrock (or an endpoint speaking it) with boto3."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        opts = spec.options
        self._model = spec.model.strip()
        if not self._model:
            raise errors.UsageError(
                f"{spec.ref!r}: name the model, e.g. bedrock:anthropic.claude-haiku-4-5-20251001-v1:0."
            )
        url = opts.get("endpoint_url") or os.environ.get("BEDROCK_ENDPOINT_URL") or None
        if url is not None and not str(url).startswith(("http://", "https://")):
            raise errors.UsageError(
                f"{spec.ref!r}: the endpoint URL {url!r} (endpoint_url option or BEDROCK_ENDPOINT_URL) must "
                "start with http:// or https://."
            )
        self.endpoint_url: str | None = str(url).rstrip("/") if url else None
        try:
            self._timeout = float(opts.get("timeout", 600))
            self._connect_timeout = float(opts.get("connect_timeout", 10))
        except (TypeError, ValueError) as exc:
            raise errors.UsageError(f"{spec.ref!r}: timeout and connect_timeout want seconds ({exc}).") from exc
        extra = opts.get("additional_fields")
        if extra is not None and not isinstance(extra, dict):
            raise errors.UsageError(f"{spec.ref!r}: additional_fields wants a mapping of fields, not {extra!r}.")
        self.region: str | None = None
        self._client: Any = None
        self._sent = threading.local()  # the before-send stamp, per calling thread

    @property
    def model_name(self) -> str:
        return self._model

    @property
    def where(self) -> str:
        return f"AWS Bedrock ({self.endpoint_url or self.region})"

    async def load(self) -> None:
        if self._client is None:  # importing boto3 and reading its service model take ~0.2 s: not on the loop
            self._client = await asyncio.to_thread(self._make_client)
        return None

    def _make_client(self) -> Any:
        import boto3
        from botocore import exceptions as bx
        from botocore.config import Config

        opts = self.spec.options
        try:
            session = boto3.Session(profile_name=opts.get("profile") or None)
        except bx.ProfileNotFound as exc:
            raise errors.UsageError(f"{self.spec.ref}: {exc}; check the profile option or AWS_PROFILE.") from exc
        region = (opts.get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                  or session.region_name)
        if not region:
            raise errors.UsageError(
                f"{self.spec.ref}: no AWS region: export AWS_REGION=us-east-1 (a region where the model is "
                "enabled) or pass -o region=us-east-1."
            )
        self.region = str(region)
        if not os.environ.get("AWS_BEARER_TOKEN_BEDROCK"):
            try:
                credentials = session.get_credentials()
            except bx.BotoCoreError as exc:  # a profile whose SSO login expired, a broken config file...
                raise MissingCredentialsError(f" usable ({exc})") from exc
            if credentials is None:
                raise MissingCredentialsError()
        config = Config(
            region_name=self.region,
            retries={"total_max_attempts": 1, "mode": "standard"},  # max_attempts counts retries, not tries
            connect_timeout=self._connect_timeout,
            read_timeout=self._timeout,
            max_pool_connections=64,
            user_agent_extra="tryouts",
        )
        client = session.client("bedrock-runtime", region_name=self.region, endpoint_url=self.endpoint_url,
                                config=config)
        client.meta.events.register("before-send.bedrock-runtime.ConverseStream", self._on_send)
        return client

    def _on_send(self, **_: Any) -> None:
        """t0: the request is signed and about to be written (runs in the calling thread)."""
        self._sent.t0 = perf_counter_ns()

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    def params(self, request: Request) -> dict[str, Any]:
        """The keyword arguments of ``converse_stream`` for ``request``."""
        kw: dict[str, Any] = {
            "modelId": self._model,
            "messages": [{"role": m.role, "content": [{"text": m.content}]}
                         for m in request.messages if m.role != "system"],
        }
        system = [{"text": m.content} for m in request.messages if m.role == "system"]
        if system:
            kw["system"] = system
        p = request.params  # Bedrock has no seed: it is not sent
        config: dict[str, Any] = {}
        if p.max_tokens is not None:
            config["maxTokens"] = p.max_tokens
        if p.temperature is not None:
            config["temperature"] = float(p.temperature)
        if p.top_p is not None:
            config["topP"] = float(p.top_p)
        if p.stop:
            config["stopSequences"] = list(p.stop)
        if config:
            kw["inferenceConfig"] = config
        if self.spec.options.get("additional_fields"):
            kw["additionalModelRequestFields"] = self.spec.options["additional_fields"]
        return kw

    async def stream(self, request: Request) -> AsyncIterator[Event]:
        if self._client is None:
            await self.load()
        client, kwargs = self._client, self.params(request)

        def work(emit: Callable[[Event], None], stop: threading.Event) -> None:
            # The call runs in its own thread so that this one can give up when the consumer goes away (a
            # timeout, Ctrl-C) even while boto3 blocks waiting for the response headers.
            call = _Call()
            threading.Thread(target=self._call, args=(client, kwargs, call, emit, stop),
                             name="tryouts-bedrock", daemon=True).start()
            while not call.done.wait(_POLL_S):
                if stop.is_set():
                    call.abandon()
                    return
            if call.error is not None:
                raise call.error

        async for ev in stream_from_thread(work):
            yield ev

    def _call(self, client: Any, kwargs: dict[str, Any], call: _Call, emit: Callable[[Event], None],
              stop: threading.Event) -> None:
        def put(ev: Event) -> None:
            if not stop.is_set():
                with contextlib.suppress(RuntimeError):  # the event loop is gone
                    emit(ev)

        text: list[str] = []
        finished = False
        self._sent.t0 = None
        try:
            try:
                response = client.converse_stream(**kwargs)
            finally:
                if self._sent.t0 is not None:
                    put(Sent(self._sent.t0))
            events = call.hold(response["stream"])
            for event in events:
                t = perf_counter_ns()
                if stop.is_set():
                    break
                for ev in self.parse(event, t):
                    if isinstance(ev, Delta) and ev.channel == "text":
                        text.append(ev.text)
                    elif isinstance(ev, Finish):
                        finished = True
                    put(ev)
            else:
                if not finished:
                    raise errors.StreamCutError(
                        f"The stream from {self.where} ended without a messageStop event; the partial output is "
                        "kept. Run again, or check the model's quotas and the endpoint.",
                        partial_text="".join(text),
                    )
        except errors.ProviderError as exc:
            call.error = exc
        except Exception as exc:
            call.error = self.error(exc, "".join(text)) or exc
        finally:
            call.release(clean=finished and call.error is None)
            call.done.set()

    def parse(self, event: dict[str, Any], t_ns: int) -> list[Event]:
        """The Tryouts events of one parsed ConverseStream event."""
        out: list[Event] = []
        if "contentBlockDelta" in event:
            delta = event["contentBlockDelta"].get("delta") or {}
            if delta.get("text"):
                out.append(Delta(t_ns, delta["text"]))
            reasoning = (delta.get("reasoningContent") or {}).get("text")
            if reasoning:
                out.append(Delta(t_ns, reasoning, "reasoning"))
            tool = (delta.get("toolUse") or {}).get("input")
            if tool:
                out.append(Delta(t_ns, tool, "tool"))
        elif "contentBlockStart" in event:
            name = ((event["contentBlockStart"].get("start") or {}).get("toolUse") or {}).get("name")
            if name:
                out.append(Delta(t_ns, name, "tool"))
        elif "messageStop" in event:
            out.append(Finish(t_ns, event["messageStop"].get("stopReason")))
        elif "metadata" in event:
            meta = event["metadata"]
            if meta.get("usage"):
                out.append(UsageReport(parse_usage(meta["usage"])))
            latency = (meta.get("metrics") or {}).get("latencyMs")
            if latency is not None:
                out.append(ServerTimings({"latency_ms": latency}))
        return out

    def error(self, exc: BaseException, partial: str = "") -> errors.ProviderError | None:
        """The Tryouts error for a botocore (or urllib3) failure; None for anything else."""
        from botocore import eventstream
        from botocore import exceptions as bx
        from urllib3 import exceptions as ux

        where = self.where
        if isinstance(exc, bx.ClientError):
            return self._client_error(exc, partial)
        if isinstance(exc, bx.NoCredentialsError):
            return MissingCredentialsError()
        if isinstance(exc, bx.ConnectTimeoutError | bx.EndpointConnectionError):
            return errors.ConnectError(
                f"Cannot connect to {where} ({exc}). Check the region, BEDROCK_ENDPOINT_URL and the network."
            )
        if isinstance(exc, bx.ReadTimeoutError | ux.ReadTimeoutError):
            return errors.RequestTimeoutError(
                f"{where} did not answer in time ({exc}); raise the 'timeout' option or try again.",
                partial_text=partial,
            )
        if isinstance(exc, bx.ConnectionClosedError | bx.ResponseStreamingError | ux.ProtocolError):
            return errors.StreamCutError(
                f"The stream from {where} was cut before the model finished ({exc}); the partial output is "
                "kept. Run again.",
                partial_text=partial,
            )
        if isinstance(exc, eventstream.ParserError):
            return errors.ServerError(f"{where} sent a malformed event-stream frame ({exc}).", partial_text=partial)
        if isinstance(exc, bx.ParamValidationError):
            return errors.BadRequestError(f"boto3 refused the request for {self._model!r}: {exc}")
        if isinstance(exc, bx.HTTPClientError):  # proxy, TLS...
            return errors.ConnectError(f"The request to {where} failed ({type(exc).__name__}: {exc}).")
        if isinstance(exc, bx.BotoCoreError):  # configuration: not worth a retry
            return errors.ProviderError(f"boto3 could not call {where}: {exc}")
        return None

    def _client_error(self, exc: Any, partial: str) -> errors.ProviderError:
        from botocore.exceptions import EventStreamError

        err = exc.response.get("Error") or {}
        code = str(err.get("Code") or "")
        code = code[:1].upper() + code[1:]  # mid-stream exceptions come as event names: throttlingException
        meta = exc.response.get("ResponseMetadata") or {}
        status = meta.get("HTTPStatusCode")
        detail = f"{code}: {err.get('Message') or exc}"
        kw = {"status": status, "partial_text": partial}
        where = self.where + (", mid-stream," if isinstance(exc, EventStreamError) else "")
        if code in _RATE or (status == 429 and code not in _SERVER):
            wait = retry_after((meta.get("HTTPHeaders") or {}).get("retry-after"))
            hint = f" Retry after {wait:g} s." if wait is not None else ""
            return errors.RateLimitError(
                f"{where} is throttling ({detail}).{hint} Lower the concurrency, wait, or ask AWS for a higher "
                "quota.", retry_after=wait, **kw)
        if code in _SERVER or (code not in _AUTH and status is not None and status >= 500):
            return errors.ServerError(f"{where} failed ({detail}); try again later.", **kw)
        if code == "ModelTimeoutException":
            return errors.RequestTimeoutError(f"{where}: the model took too long ({detail}); try again.", **kw)
        if code in _AUTH or status in (401, 403):
            return errors.AuthError(
                f"{where} refused the credentials ({detail}). Check {CREDENTIALS}, AWS_SESSION_TOKEN for "
                "temporary keys, the IAM permission bedrock:InvokeModelWithResponseStream, and that access to "
                f"{self._model!r} is granted in {self.region}.", **kw)
        if code == "ResourceNotFoundException" or status == 404 or "model identifier is invalid" in detail:
            return errors.ModelNotFoundError(
                f"{where} has no model {self._model!r} ({detail}). Is the model enabled in your region "
                f"({self.region})? Some models need an inference profile id such as 'us.{self._model}'.", **kw)
        return errors.BadRequestError(f"{where} refused the request ({detail}).", **kw)


class _Call:
    """One request's state shared by its threads: the open event stream, the outcome."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None
        self._stream: Any = None
        self._lock = threading.Lock()
        self._abandoned = False

    def hold(self, stream: Any) -> Any:
        with self._lock:
            self._stream = stream
            if self._abandoned:
                self._shutdown()
        return stream

    def abandon(self) -> None:
        """The consumer went away: unblock a read in progress by shutting the socket down."""
        with self._lock:
            self._abandoned = True
            self._shutdown()

    def _shutdown(self) -> None:
        raw = getattr(self._stream, "_raw_stream", None)
        with contextlib.suppress(Exception):
            if hasattr(raw, "shutdown"):  # urllib3 >= 2.3: safe from another thread
                raw.shutdown()
            elif self._stream is not None:
                self._stream.close()

    def release(self, clean: bool) -> None:
        """A stream read to its end goes back to the pool by itself; any other is closed."""
        if not clean and self._stream is not None:
            with contextlib.suppress(Exception):
                self._stream.close()


def parse_usage(usage: dict[str, Any]) -> Usage:
    """Bedrock TokenUsage -> :class:`Usage` (Tryouts' input includes cache reads and writes). ``cacheDetails``
    (the writes by cache lifetime, ``[{"ttl": "1h", "inputTokens": N}, {"ttl": "5m", ...}]``) gives the writes to
    a 1-hour cache, priced higher than 5-minute ones."""
    read = usage.get("cacheReadInputTokens")
    write = usage.get("cacheWriteInputTokens")
    fresh = usage.get("inputTokens")
    total = None if fresh is None else fresh + (read or 0) + (write or 0)
    one_hour = None
    for detail in usage.get("cacheDetails") or ():
        if isinstance(detail, dict) and detail.get("ttl") == "1h" and isinstance(detail.get("inputTokens"), int):
            one_hour = (one_hour or 0) + detail["inputTokens"]
    return Usage(input_tokens=total, output_tokens=usage.get("outputTokens"), cached_input_tokens=read,
                 cache_write_tokens=write, cache_write_1h_tokens=one_hour)
