"""The ``echo`` provider: what every provider implements, and nothing else.

``load()`` prepares the model and returns its load time; ``stream(request)`` yields ``Sent`` at t0, a
``Delta`` per piece of text (stamped where it is made), ``UsageReport`` and ``Finish``; ``aclose()`` releases
what ``load()`` took. Tryouts does the rest around it, the same for every provider: TTFT and tokens/s from
the stamps, token counting and cost, timeouts, retries, the cache, storage.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from time import perf_counter_ns
from typing import Any

from tryouts.errors import BadRequestError
from tryouts.providers.base import Provider, stream_from_thread
from tryouts.types import Delta, Event, Finish, Request, Sent, Usage, UsageReport


class EchoProvider(Provider):
    """``echo:reverse`` answers with the prompt's words reversed; ``echo:plain`` as they are.

    Options: ``delay_ms`` (a pause before each word, like a model's decoding time; default 0).
    """

    # name, local and the options come from the registry entry (tryouts_echo.info): their one home
    free = True  # costs nothing (cost 0, source "local")

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)  # refuses unknown options (listing the known ones) and bad values
        if spec.model not in ("reverse", "plain"):
            raise BadRequestError(f"echo:{spec.model} is not a mode: use echo:reverse or echo:plain.")
        self.delay_s = float(spec.options.get("delay_ms", 0)) / 1000
        self.loaded = False
        self.warm = False

    async def load(self) -> float | None:
        t0 = perf_counter_ns()
        # Tryouts imported the runtime before timing anything (warm_imports in the registry entry)
        self.warm = "tryouts_echo.runtime" in sys.modules
        from . import runtime  # noqa: F401  (a real provider would load its weights here)

        self.loaded = True
        return (perf_counter_ns() - t0) / 1e6

    def count_tokens(self, text: str) -> int | None:
        """This model's tokens are words: Tryouts counts with it when a server does not report usage."""
        return len(text.split())

    def stream(self, request: Request) -> AsyncIterator[Event]:
        from .runtime import words

        prompt = request.messages[-1].content
        out = words(prompt, self.spec.model)
        if self.warm:
            out.append("(warm)")
        limit = request.params.max_tokens or len(out)

        def work(emit: Callable[[Event], None], stop: threading.Event) -> None:
            # runs in a thread, so each word is stamped when it is made, whatever the event loop is doing
            emit(Sent(perf_counter_ns()))
            sent = 0
            for i, word in enumerate(out[:limit]):
                if stop.is_set():  # the run was stopped (Ctrl-C): end at the next word
                    return
                if self.delay_s:
                    time.sleep(self.delay_s)
                emit(Delta(perf_counter_ns(), word if i == 0 else " " + word))
                sent += 1
            emit(UsageReport(Usage(input_tokens=len(prompt.split()), output_tokens=sent, method="exact")))
            emit(Finish(perf_counter_ns(), "length" if sent < len(out) else "stop"))

        # owner=self: aclose() can stop and join the thread even if the consumer was cancelled first
        return stream_from_thread(work, owner=self)

    async def aclose(self) -> None:
        self.stop_generation()
        self.loaded = False
