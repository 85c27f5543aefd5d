"""The provider contract: one async stream of stamped events per request.

A provider adapts one wire format or backend. It does three things and nothing else:

* ``load()`` prepares it (opens a client, or loads a local model once) and returns the load time;
* ``stream(request)`` yields :mod:`tryouts.types` events: :class:`Sent` at t0, a :class:`Delta` per
  content chunk stamped with ``perf_counter_ns()`` when parsed, then :class:`UsageReport`,
  :class:`ServerTimings` and :class:`Finish` when it has them; it raises a
  :class:`~tryouts.errors.ProviderError` subclass on failure;
* ``aclose()`` releases what ``load()`` took.

Retries, concurrency, caching, timing arithmetic, token counting and pricing are added once, around
every provider, by the engine; no provider does them itself.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..types import Event, ModelSpec, Request

#: the warm-up's prompt (in-process models in load(), servers through the engine): short, and sent with its own
#: system message (a chat template's default system prompt would be a prefix shared with real prompts), so that
#: no cache gains anything from it
WARMUP_PROMPT = "Warm-up request from Tryouts; reply with one word."

#: options every provider accepts because the engine, not the provider, acts on them:
#: ``price`` (a price override) and ``warmup`` (a warm-up request before any timed one)
ENGINE_OPTIONS = frozenset({"price", "warmup"})


def check_options(spec: ModelSpec, provider: str, accepted: frozenset[str], model: Any = None) -> None:
    """Refuse an option ``provider`` does not accept (listing those it does), and, with its options model
    (providers/options.py), a value of the wrong type or out of bounds; the engine's options are checked too."""
    from pydantic import ValidationError

    from ..errors import UsageError
    from .options import EngineOptions, describe_expectation

    unknown = set(spec.options) - accepted - ENGINE_OPTIONS
    if unknown:
        known = ", ".join(sorted(accepted)) or "none"
        raise UsageError(
            f"Unknown option(s) {', '.join(sorted(unknown))} for {spec.ref}; the {provider} provider accepts: {known}."
        )
    for checker in (model, EngineOptions):
        if checker is None:
            continue
        try:
            checker.model_validate({k: v for k, v in spec.options.items() if k in checker.model_fields})
        except ValidationError as exc:
            name = str(exc.errors()[0]["loc"][0])
            value = spec.options.get(name)
            shown = (f", not {value!r}" if isinstance(value, int | float | bool | str) and len(str(value)) <= 60
                     and name not in ("headers", "api_key_env") else "")
            raise UsageError(f"{spec.ref!r}: the option {name} must be "
                             f"{describe_expectation(checker.model_fields[name])}{shown}.") from None


def is_loopback_url(url: str | None) -> bool:
    """True when ``url``'s host is ``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if not url:
        return False
    import ipaddress
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Provider(ABC):
    """Base class of every provider. Subclasses implement :meth:`stream`.

    What the registry entry (providers/__init__.py ``ProviderInfo``) says about the provider is its one home:
    ``name``, ``local``, the accepted ``options`` (from its options model) and ``price_provider`` are set
    from the entry when the provider is made. A class may still declare them, for a third-party provider
    registered without those facts.
    """

    #: the prefix of model references this provider serves, e.g. ``openai``
    name: str = ""
    #: True for in-process models: their requests run one at a time and the model is loaded once
    local: bool = False
    #: options this provider accepts; anything else is refused with the list
    options: frozenset[str] = frozenset()

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        from . import registered

        info = registered(spec.provider)
        model = info.options if info is not None else None
        if info is not None:
            self.name, self.local = info.name, info.local
            if info.price_id is not None:
                self.price_provider = info.price_id
            if model is not None:
                self.options = frozenset(model.model_fields)
        check_options(spec, self.name or spec.provider, self.options, model)

    @property
    def server(self) -> str | None:
        """The base URL requests go to (one scheduling lane per distinct server); None for in-process models."""
        return getattr(self, "base_url", None) or getattr(self, "endpoint_url", None)

    @property
    def on_this_machine(self) -> bool:
        """True for in-process models and for servers on a loopback address: they share this machine's CPU and
        memory with Tryouts and with each other, so the engine never times two of them at once."""
        return self.local or is_loopback_url(self.server)

    @property
    def model_name(self) -> str:
        """The model's name as the provider and the price list know it."""
        return self.spec.model

    #: id used to look up prices (genai-prices provider id; the entry's ``price_id``); None = no public price list
    price_provider: str | None = None
    #: requests cost nothing: a server on this machine (Ollama, LM Studio...) or an in-process model
    free: bool = False

    async def load(self) -> float | None:
        """Prepare the provider; return the milliseconds spent loading a model, or None."""
        return None

    @abstractmethod
    def stream(self, request: Request) -> AsyncIterator[Event]:
        """Yield the events of one request (see the module docstring)."""

    @property
    def max_batch(self) -> int:
        """How many requests :meth:`run_batch` takes at once; 1 means the provider does not batch."""
        return 1

    async def run_batch(self, requests: list[Request]) -> list[list[Event]]:
        """Generate several requests together; return each one's events, stamped as they happened.

        Only called when :attr:`max_batch` > 1, with requests that share their generation parameters.
        """
        raise NotImplementedError(f"{self.name} does not batch")

    def sampling(self, request: Request) -> dict[str, Any]:
        """The sampling parameters ``request`` runs with, recorded with its result.

        This default suits a server: what Tryouts sends is known; what it does not send (``defaults``) is the
        server's own choice, whose value Tryouts cannot know (None). In-process backends know their defaults
        and override this.
        """
        p = request.params
        out: dict[str, Any] = {name: getattr(p, name) for name in ("temperature", "top_p", "seed", "max_tokens")}
        out["defaults"] = [] if p.temperature == 0 else [name for name in ("temperature", "top_p") if out[name] is None]
        return out

    def count_tokens(self, text: str) -> int | None:
        """Count ``text`` with the model's own tokenizer when this provider has it, else None."""
        return None

    async def aclose(self) -> None:
        """Release clients or models taken by :meth:`load`."""
        return None

    def stop_generation(self, timeout_s: float = 120.0) -> bool:
        """Ask every generation thread of this provider (:func:`stream_from_thread`) to stop, and join them.

        In-process providers call it in :meth:`aclose` before freeing a model: a model freed while a thread
        still generates with it crashes the process (llama.cpp segfaults). A thread stops at its next token.
        True when none is left running (then the model may be freed).
        """
        live: dict[threading.Thread, threading.Event] = self.__dict__.get("_generation", {})
        for stop in list(live.values()):
            stop.set()
        deadline = time.monotonic() + timeout_s
        for thread in list(live):
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in list(live))


class _Stopped(Exception):
    """Raised inside a generation thread whose consumer has gone away."""


async def stream_from_thread(
    work: Callable[[Callable[[Event], None], threading.Event], None],
    owner: Provider | None = None,
) -> AsyncIterator[Event]:
    """Run blocking ``work(emit, stop)`` in a thread and yield the events it emits.

    Used by in-process backends: the generating thread stamps each event itself (so a busy event
    loop cannot delay the stamp), and ``stop`` is set when the consumer goes away. With ``owner``, the
    thread is known to that provider until it ends, so its :meth:`Provider.stop_generation` can stop and
    join it even when the consumer was cancelled before this generator's ``finally`` ran.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()
    done = object()

    def put(item: object) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the event loop is closed (the run was stopped): nobody is listening
            stop.set()

    def emit(ev: Event) -> None:
        if stop.is_set():  # the consumer is gone: end the work at its next event
            raise _Stopped
        put(ev)

    live: dict[threading.Thread, threading.Event] = (
        owner.__dict__.setdefault("_generation", {}) if owner is not None else {})

    def run() -> None:
        try:
            work(emit, stop)
        except _Stopped:
            pass
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)
        finally:
            live.pop(threading.current_thread(), None)
            put(done)

    thread = threading.Thread(target=run, name="tryouts-local-gen", daemon=True)
    live[thread] = stop
    thread.start()
    try:
        while True:
            item = await queue.get()
            if item is done:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        await asyncio.to_thread(thread.join)


@functools.cache
def warm_http_stack() -> None:
    """Import what httpx imports lazily on its first request (anyio's backend, h11, httpcore, certifi).

    Called before any t0: otherwise the first API request of a process pays ~25-90 ms of Python imports
    inside its TTFT, which is client overhead, not the provider's latency. (The engine also loads the price data
    before any t0: :func:`tryouts.pricing.warm`.)
    """
    import importlib

    for name in ("anyio._backends._asyncio", "anyio.streams.tls", "anyio.to_thread", "h11", "httpcore",
                 "httpcore._backends.anyio", "httpcore._async.http11", "httpcore._async.connection_pool", "certifi"):
        try:
            importlib.import_module(name)
        except ImportError:  # a different httpx stack: nothing to warm
            pass
