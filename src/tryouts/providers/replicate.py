"""Replicate's predictions API: create a prediction, stream its output, then read its metrics.

``replicate:OWNER/NAME`` runs an official model (``POST /v1/models/OWNER/NAME/predictions``);
``replicate:OWNER/NAME:VERSION`` a given version (``POST /v1/predictions`` with ``version``). The token
comes from ``REPLICATE_API_TOKEN`` (or the variable named by ``api_key_env``) and is sent as
``Authorization: Bearer``; ``REPLICATE_BASE_URL`` (or ``base_url``) moves the API, e.g. to a proxy.

The flow Replicate documents, and what Tryouts takes from each step:

1. ``POST`` the prediction with ``{"input": {...}, "stream": true}``. t0 is taken just before: that is
   when the user's request leaves, so TTFT includes creating the prediction (and any cold boot). The
   answer (201) carries ``urls.stream``, ``urls.get`` and ``urls.cancel``; without ``urls.stream`` the
   model cannot stream and the request fails saying so.
2. ``GET urls.stream`` (``Accept: text/event-stream``): ``event: output`` carries a piece of text as plain
   data -> a text :class:`Delta` stamped when parsed; ``logs`` is ignored; ``error`` (``{"detail"}``)
   fails the request keeping the partial text; ``done`` finishes it (``{}``, or ``{"reason": "canceled" |
   "error"}``). Replicate sends no finish reason: it stays empty. A stream that ends without ``done``
   was cut.
3. After ``done``, ``GET urls.get`` for the prediction's ``metrics`` (usage is never in the stream):
   ``input_token_count``/``output_token_count`` become exact usage when present (else the engine counts
   and marks them estimated); ``predict_time``, ``total_time`` and ``time_to_first_token`` (seconds) are
   kept as ``server_timings`` ``predict_ms``, ``total_ms``, ``time_to_first_token_ms``, beside any other
   numeric metric (``tokens_per_second``...). A prediction still finishing is asked again a few times.

A prediction left unfinished (cut stream, error, timeout) is cancelled in the background, so it does not
keep running and billing. Input: the user message -> ``prompt``, system messages -> ``system_prompt``,
``max_tokens`` (or the ``max_tokens_field`` option, e.g. ``max_new_tokens`` for older models),
``temperature``, ``top_p``, ``seed``, ``stop`` -> ``stop_sequences`` (comma-separated, as Replicate's
language models take it); ``extra_input`` adds model-specific inputs. Language models there take one
prompt, so a conversation of several turns is refused. Prices: genai-prices has no Replicate list
(``price_provider`` None), so cost is unknown unless the ``price`` option or a price override gives it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from time import perf_counter_ns
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from .. import errors
from ..types import Delta, Event, Finish, ModelSpec, Request, Sent, ServerTimings, Usage, UsageReport
from .http import ClientSlots, HTTPProvider, decoded, read_capped, same_origin, ssl_context, transport_error
from .sse import SSEDecoder

KEY_ENV = "REPLICATE_API_TOKEN"
BASE_URL_ENV = "REPLICATE_BASE_URL"
DEFAULT_BASE_URL = "https://api.replicate.com"
#: Replicate's metrics in seconds -> server_timings keys in milliseconds
SECONDS = {"predict_time": "predict_ms", "total_time": "total_ms", "time_to_first_token": "time_to_first_token_ms"}
#: waits before asking again for a prediction that is not finished yet (seconds)
METRICS_RETRIES = (0.1, 0.25, 0.5)
#: a prediction (create or get answer) is read up to this many bytes: its output is streamed, not in it
MAX_PREDICTION_BYTES = 4 * 1024 * 1024
#: the sites Replicate streams from, besides the API's own host (its stream URLs are on other hosts)
STREAM_SITES = ("replicate.com", "replicate.net")


class ReplicateProvider(HTTPProvider):
    """Creates a Replicate prediction and streams its output from ``urls.stream``."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        opts = spec.options
        ref, _, version = spec.model.strip().partition(":")
        owner, _, name = ref.partition("/")
        if not owner or not name or "/" in name:
            raise errors.UsageError(
                f"{spec.ref!r}: write Replicate models as replicate:OWNER/NAME or replicate:OWNER/NAME:VERSION, "
                "e.g. replicate:meta/meta-llama-3-8b-instruct."
            )
        self._model, self.version = ref, version or None
        self.base_url = self.configured_base_url(BASE_URL_ENV, DEFAULT_BASE_URL).removesuffix("/v1")
        if self.version:
            self.create_url = f"{self.base_url}/v1/predictions"
        else:
            self.create_url = f"{self.base_url}/v1/models/{quote(owner, safe='')}/{quote(name, safe='')}/predictions"
        extra = opts.get("extra_input")
        if extra is not None and not isinstance(extra, dict):
            raise errors.UsageError(f"{spec.ref!r}: extra_input wants a mapping of model inputs, not {extra!r}.")
        self.max_tokens_field = str(opts.get("max_tokens_field") or "max_tokens")
        self.key_env: str = opts.get("api_key_env") or KEY_ENV
        # API calls (create, get, cancel) and streams each keep their own connection alive: Replicate
        # streams from another host, and one single-connection client would reconnect for every call
        self._stream_slots: ClientSlots | None = None
        self._headers: dict[str, str] = {}
        self._cancels: set[asyncio.Task] = set()

    @property
    def model_name(self) -> str:
        return self._model

    async def load(self) -> None:
        key = self.api_key((KEY_ENV,), "Replicate")
        self._headers = {**(self.spec.options.get("headers") or {}), "Authorization": f"Bearer {key}"}
        self._slots = self.client_slots(self._headers)
        self._stream_slots = self.client_slots(
            {**self._headers, "Accept": "text/event-stream", "Cache-Control": "no-store"}
        )
        return None

    async def aclose(self) -> None:
        if self._cancels:  # let the cancellations reach Replicate first
            await asyncio.wait(self._cancels, timeout=10)
        for slots in (self._slots, self._stream_slots):
            if slots is not None:
                await slots.aclose()
        self._slots = self._stream_slots = None

    def body(self, request: Request) -> dict[str, Any]:
        """The JSON body that creates the prediction for ``request``."""
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        turns = [m for m in request.messages if m.role != "system"]
        if len(turns) != 1 or turns[0].role != "user":
            raise errors.BadRequestError(
                f"Replicate language models take one prompt; this request has {len(turns)} non-system messages "
                f"({', '.join(m.role for m in turns) or 'none'}). Send one user message (and an optional system one)."
            )
        p = request.params
        inp: dict[str, Any] = {"prompt": turns[0].content}
        if system:
            inp["system_prompt"] = system
        for key, value in ((self.max_tokens_field, p.max_tokens), ("temperature", p.temperature),
                           ("top_p", p.top_p), ("seed", p.seed)):
            if value is not None:
                inp[key] = value
        if p.stop:
            inp["stop_sequences"] = ",".join(p.stop)
        inp.update(self.spec.options.get("extra_input") or {})
        body: dict[str, Any] = {"input": inp, "stream": True}
        if self.version:
            body["version"] = f"{self._model}:{self.version}"
        return body

    async def stream(self, request: Request) -> AsyncIterator[Event]:
        if self._slots is None or self._stream_slots is None:
            await self.load()
        assert self._slots is not None and self._stream_slots is not None
        body = self.body(request)
        client, streamer = self._slots.checkout(), self._stream_slots.checkout()
        req = client.build_request("POST", self.create_url, json=body)
        text: list[str] = []
        finished, urls = False, {}
        try:
            t0 = perf_counter_ns()
            response = await client.send(req, stream=True)
            yield Sent(t0)
            prediction = await self._read(response)
            urls = self._urls(prediction)
            if not urls.get("stream"):
                raise errors.BadRequestError(
                    f"Replicate's prediction for {self._model!r} has no stream URL: this model does not stream "
                    "its output, and Tryouts only measures streaming models."
                )
            async with streamer.stream("GET", urls["stream"]) as stream:
                if stream.status_code >= 400:
                    if stream.status_code == 404:  # not the model: the prediction's stream is gone
                        raise errors.ServerError(
                            f"Replicate's stream URL answered HTTP 404 ({urls['stream']}): the prediction's "
                            "stream expired or never started. Run again.", status=404,
                        )
                    raise self._http_error(await read_capped(stream))
                decoder = SSEDecoder()
                async for raw in stream.aiter_raw():
                    for sse in decoder.feed(raw):
                        if sse.event == "output" and sse.data:
                            text.append(sse.data)
                            yield Delta(sse.t_ns, sse.data, "text")
                        elif sse.event == "error":
                            raise self._stream_error(sse.data, "".join(text))
                        elif sse.event == "done":
                            reason = _json_text(sse.data).get("reason")
                            if reason in ("canceled", "error"):
                                raise errors.ServerError(
                                    f"Replicate ended the prediction early (done: {reason}); the partial output is "
                                    "kept.", partial_text="".join(text),
                                )
                            finished = True
                            yield Finish(sse.t_ns, None)
                            break
                    if finished:
                        break
            if finished and urls.get("get"):
                for ev in await self._metrics(client, urls["get"]):
                    yield ev
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.base_url, partial_text="".join(text)) from exc
        finally:
            self._slots.checkin(client)
            self._stream_slots.checkin(streamer)
            if not finished and urls.get("cancel"):
                self._cancel_later(urls["cancel"])
        if not finished:
            raise errors.StreamCutError(
                f"The stream from Replicate ({self.base_url}) ended without a done event; the partial output is "
                "kept and the prediction was cancelled. Run again, or check the proxy in between.",
                partial_text="".join(text),
            )

    async def _read(self, response: httpx.Response) -> dict[str, Any]:
        """A prediction answered (create or get), read up to :data:`MAX_PREDICTION_BYTES`; an error status
        becomes the provider's error. Closes ``response``."""
        try:
            if response.status_code >= 400:
                raise self._http_error(await read_capped(response))
            body = bytearray()
            async for chunk in decoded(response, f"Replicate ({self.base_url})", limit=MAX_PREDICTION_BYTES):
                body += chunk
        finally:
            await response.aclose()
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def _urls(self, prediction: dict[str, Any]) -> dict[str, str]:
        """The prediction's stream, get and cancel URLs that may carry the token (see :meth:`_may_follow`);
        get and cancel elsewhere are replaced by the documented paths of the prediction's id."""
        given = prediction.get("urls") if isinstance(prediction.get("urls"), dict) else {}
        urls = {k: v for k, v in given.items() if k in ("stream", "get", "cancel") and isinstance(v, str)}
        pid = prediction.get("id")
        documented = {"get": "", "cancel": "/cancel"}
        for name, tail in documented.items():
            if name in urls and not self._may_follow(urls[name], stream=False):
                ok_id = isinstance(pid, str) and pid.replace("-", "").replace("_", "").isalnum()
                urls[name] = f"{self.base_url}/v1/predictions/{pid}{tail}" if ok_id else ""
        if urls.get("stream") and not self._may_follow(urls["stream"], stream=True):
            raise errors.BadResponseError(
                f"Replicate's prediction names a stream on another site ({urlsplit(urls['stream']).hostname!r}): "
                f"Tryouts sends your token only to {urlsplit(self.base_url).hostname} and Replicate's own stream "
                "hosts, so the request is counted as failed. Check REPLICATE_BASE_URL or the proxy in between.")
        return {k: v for k, v in urls.items() if v}

    def _may_follow(self, url: str, *, stream: bool) -> bool:
        """Whether ``url`` may get the token: the API's own scheme, host and port; for a stream, also an https
        host of Replicate's stream sites when the API is Replicate's own (https)."""
        if same_origin(url, self.base_url):
            return True
        a, b = urlsplit(url), urlsplit(self.base_url)
        if not stream or a.scheme != "https" or b.scheme != "https" or not a.hostname or not b.hostname:
            return False
        site = ".".join(b.hostname.split(".")[-2:])
        if site not in STREAM_SITES:  # another API (a proxy): its own host only, never a sibling under .co.uk
            return False
        return any(a.hostname == s or a.hostname.endswith("." + s) for s in STREAM_SITES)

    async def _metrics(self, client: httpx.AsyncClient, url: str) -> list[Event]:
        """The finished prediction's usage and server timings; nothing when they cannot be had."""
        prediction: dict[str, Any] = {}
        for wait in (*METRICS_RETRIES, None):
            try:
                prediction = await self._read(await client.send(client.build_request("GET", url), stream=True))
            except (httpx.HTTPError, errors.TryoutsError):
                return []
            if prediction.get("status") in ("succeeded", "failed", "canceled") or wait is None:
                break
            await asyncio.sleep(wait)
        metrics = prediction.get("metrics") or {}
        out: list[Event] = []
        n_in, n_out = metrics.get("input_token_count"), metrics.get("output_token_count")
        if isinstance(n_out, int | float):
            out.append(UsageReport(Usage(
                input_tokens=int(n_in) if isinstance(n_in, int | float) else None, output_tokens=int(n_out)
            )))
        timings = {SECONDS.get(k, k): v * 1e3 if k in SECONDS else v
                   for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        if timings:
            out.append(ServerTimings(timings))
        return out

    def _cancel_later(self, url: str) -> None:
        """Cancel an unfinished prediction in the background (with its own client: this one may be closing)."""

        async def cancel() -> None:
            try:
                async with httpx.AsyncClient(headers=self._headers, timeout=10, verify=ssl_context()) as c:
                    await c.post(url)
            except httpx.HTTPError:
                pass

        try:
            task = asyncio.get_running_loop().create_task(cancel())
        except RuntimeError:  # no loop: the generator is being collected
            return
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)

    def _stream_error(self, data: str, partial: str) -> errors.ProviderError:
        detail = _json_text(data).get("detail") or data[:300] or "no detail"
        return errors.ServerError(
            f"Replicate reported an error mid-stream ({detail}); the partial output is kept. This is the model's "
            "own failure: check the input, or run again.", partial_text=partial,
        )

    def _http_error(self, response: httpx.Response) -> errors.ProviderError:
        status = response.status_code
        data = _json(response)
        detail = data.get("detail") or data.get("title") or response.text[:300] or response.reason_phrase
        what = f"HTTP {status}: {detail}"
        return self.status_error(response, "Replicate", what, model=self.spec.model, hints={
            "billing": "add credit at https://replicate.com/account/billing",
            "model_not_found": "check OWNER/NAME (and VERSION), e.g. meta/meta-llama-3-8b-instruct. Models that "
                               "are not official need replicate:OWNER/NAME:VERSION",
            422: "The model's inputs are on its API page: rename the max tokens input with the "
                 "max_tokens_field option, or add inputs with extra_input.",
        })



def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _json_text(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}
