"""Ctrl-C and SIGTERM end a run the same way: the work is cancelled, generation threads stop and are joined,
results already made are committed, and the caller marks the run ``interrupted`` and prints how to resume.

:func:`run_interruptible` replaces ``asyncio.run`` in the commands that run models. The first SIGINT or
SIGTERM cancels the main task (each lane's ``finally`` closes its providers, which stop and join their
generation threads before freeing a model: llama.cpp freed under a running thread segfaults); a second one
says it is still stopping; a third exits at once (the run then shows as stale, and can be resumed).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: presses (or SIGTERMs) after which the process exits without waiting
FORCE_AFTER = 3


class Interrupted(KeyboardInterrupt):
    """The work was stopped by a signal; ``signum`` says which (SIGINT for Ctrl-C, SIGTERM)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM)."""
        return 128 + self.signum


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_interruptible(coro: Coroutine[Any, Any, T], say: Callable[[str], None] = _say) -> T:
    """Run ``coro`` like ``asyncio.run``; SIGINT and SIGTERM cancel it and raise :class:`Interrupted`.

    Outside the main thread (where signal handlers cannot be set) this is ``asyncio.run``.
    """
    if threading.current_thread() is not threading.main_thread():
        return asyncio.run(coro)
    hits: list[int] = []
    main: list[asyncio.Task] = []

    def on_signal(signum: int) -> None:
        hits.append(signum)
        if len(hits) == 1:
            say("\nStopping: closing the models and saving what is done (press Ctrl-C twice more to quit at once).")
            if main:
                main[0].cancel()
        elif len(hits) < FORCE_AFTER:
            say("Still stopping: waiting for the current token or request to end.")
        else:
            say("Quitting without waiting. The run shows as stale; resume it with tryouts run --resume.")
            os._exit(128 + signum)

    async def wrapper() -> T:
        main.append(asyncio.current_task())  # type: ignore[arg-type]
        return await coro

    signals = [s for s in (signal.SIGINT, signal.SIGTERM) if hasattr(signal, s.name)]
    previous = {s: signal.getsignal(s) for s in signals}
    with asyncio.Runner() as runner:
        loop = runner.get_loop()
        for s in signals:
            loop.add_signal_handler(s, on_signal, int(s))
        try:
            try:
                return runner.run(wrapper())
            except asyncio.CancelledError:
                if hits:
                    raise Interrupted(hits[0]) from None
                raise
            finally:
                runner.close()  # remaining tasks cancelled, async generators closed, executor threads joined
        finally:
            for s in signals:
                loop.remove_signal_handler(s)
                signal.signal(s, previous[s])  # the caller's handlers again (e.g. SIGTERM as Ctrl-C)
