"""What the replay server's two batch APIs share: a job's items, its progress one poll at a time, the
``expire`` counts, the hostile lines of ``batch_junk`` and the bounded stores that keep files and batches.

OpenAI's Batch API (:mod:`tryouts.testing.dialects.openai_batch`) and Anthropic's Message Batches
(:mod:`tryouts.testing.dialects.anthropic_batch`) each turn a submission into a :class:`Job`, one
:class:`Item` per request, and render each settled item in their own wire format. A job knows nothing of
time: it moves only when a client polls it (:meth:`Job.poll`), so a test drives it step by step and
never sleeps. The scripts' ``ttft_ms``/``itl_ms``/``capacity`` and ``cut_after`` mean nothing in a batch
(there is no connection to time or to drop) and are ignored; ``status``, ``fail_first`` (counted with the
chat route's counts, through ``app.admit``), ``usage`` and the rest shape each item's answer as they do a
non-streamed answer.
"""

from __future__ import annotations

import copy
import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .script import Script
from .wire import dumps, log_answer_sent

if TYPE_CHECKING:
    from .app import ReplayApp

__all__ = ["JUNK_TEXT_BYTES", "KEEP", "Item", "Job", "Kept", "claim_expiry", "hostile_lines", "jsonl"]

#: files and batches kept per API; the oldest go first
KEEP = 1000
#: the length of ``batch_junk``'s line of plain text
JUNK_TEXT_BYTES = 100_000
#: ``batch_junk``'s line that is not JSON
NOT_JSON = b'{"custom_id": "replay-junk-truncated", "result": {"type": "succ'

#: the outcomes of a settled item (None: still processing)
OUTCOMES = ("succeeded", "errored", "expired", "canceled")

K = TypeVar("K")
V = TypeVar("V")


class Kept(OrderedDict[K, V], Generic[K, V]):
    """A dict that keeps at most ``limit`` entries (and, with ``max_bytes``, that many bytes by ``size``):
    :meth:`add` drops the oldest past either bound."""

    def __init__(self, limit: int = KEEP, max_bytes: int | None = None, size: Callable[[V], int] | None = None) -> None:
        super().__init__()
        self.limit, self.max_bytes, self.size = limit, max_bytes, size
        self.bytes = 0

    def add(self, key: K, value: V) -> None:
        """Keep ``value`` under ``key`` as the newest entry; drop the oldest ones past the bounds."""
        self.discard(key)
        self[key] = value
        self.bytes += self.size(value) if self.size else 0
        while len(self) > 1 and (len(self) > self.limit or (self.max_bytes is not None and self.bytes > self.max_bytes)):
            self.discard(next(iter(self)))

    def discard(self, key: K) -> V | None:
        """Drop ``key`` (and its bytes); returns its value, or None when it was not kept."""
        value = self.pop(key, None)
        if value is not None and self.size:
            self.bytes -= self.size(value)
        return value

    def newest_first(self) -> list[V]:
        """The values, the newest first (as both providers list)."""
        return list(reversed(self.values()))


@dataclass(slots=True)
class Item:
    """One request of a batch.

    ``model`` is the script as sent (``fail_first`` and ``expire`` count per that exact string), ``script``
    its own parse (``fail_first`` changes it), ``extra`` what the provider needs to render it (Anthropic's
    ``cache_write``), ``expire`` whether ``expire`` picked it to miss the completion window.
    """

    custom_id: str
    model: str
    script: Script
    extra: Any = None
    expire: bool = False
    outcome: str | None = None
    result: Any = None


class Job:
    """The items of one batch and how far they have got.

    Each in-progress poll settles the next share of the items, in order: after poll ``j`` of ``polls``
    (``batch_polls``, the largest of the job's scripts), ``n * j // (polls + 1)`` of the ``n`` items have
    been looked at, and :meth:`finish` settles the rest. An item picked by ``expire`` waits until the end
    and then expires; a cancel leaves whatever is still waiting ``canceled``. ``render(item)`` builds a
    settled item's result in the provider's format, once (its ids stay the same on every read).
    """

    def __init__(self, items: list[Item], render: Callable[[Item], Any]) -> None:
        self.items = items
        self.render = render
        self.polls = max((it.script.batch_polls for it in items), default=1)
        self.junk = any(it.script.batch_junk for it in items)
        self.seen = 0  # in-progress polls answered
        self.looked = 0  # items[:looked] have had their turn

    def poll(self, app: ReplayApp) -> bool:
        """Answer one in-progress poll: settle the next share of the items. True when the job's polls are
        used up (this poll should end it, with :meth:`finish`)."""
        self.seen += 1
        if self.seen > self.polls:
            return True
        upto = len(self.items) * self.seen // (self.polls + 1)
        for item in self.items[self.looked:upto]:
            if item.outcome is None and not item.expire:
                self._run(app, item)
        self.looked = max(self.looked, upto)
        return False

    def finish(self, app: ReplayApp, *, canceled: bool = False) -> None:
        """Settle every item still waiting: ``canceled`` when the batch was canceled, else ``expired`` (an
        item picked by ``expire``) or answered from its script."""
        for item in self.items:
            if item.outcome is not None:
                continue
            if canceled:
                self._settle(item, "canceled")
            elif item.expire:
                self._settle(item, "expired")
            else:
                self._run(app, item)
        self.looked = len(self.items)

    def _run(self, app: ReplayApp, item: Item) -> None:
        """Answer ``item`` from its script as a non-streamed request is answered, at once (no timings)."""
        s = item.script
        entry = app.admit(s, item.model, perf_counter_ns(), False)  # fail_first counts here
        if s.status == 200:
            log_answer_sent(entry, perf_counter_ns())
        self._settle(item, "succeeded" if s.status == 200 else "errored")

    def _settle(self, item: Item, outcome: str) -> None:
        item.outcome = outcome
        item.result = self.render(item)

    def counts(self) -> dict[str | None, int]:
        """How many items have each outcome; ``None``: still processing."""
        out: dict[str | None, int] = dict.fromkeys((None, *OUTCOMES), 0)
        for item in self.items:
            out[item.outcome] += 1
        return out

    def results(self, *outcomes: str) -> list[Any]:
        """The rendered results of the settled items with one of ``outcomes``, in submission order."""
        return [it.result for it in self.items if it.outcome in outcomes]


def claim_expiry(app: ReplayApp, items: Iterable[Item]) -> None:
    """``expire=N``: the first N batch submissions of an exact script expire. Counted when a batch is
    accepted, per the script as sent, across both batch APIs (the count lives on the app)."""
    counts: dict[str, int] | None = getattr(app, "_expire_counts", None)
    if counts is None:
        counts = {}
        app._expire_counts = counts  # type: ignore[attr-defined]
    for item in items:
        if item.script.expire:
            seen = counts.get(item.model, 0)
            counts[item.model] = seen + 1
            item.expire = seen < item.script.expire


def hostile_lines(lines: list[Any], template: Any) -> list[bytes]:
    """``batch_junk=1``: ``lines`` (result objects) as JSONL lines, plus what a client must survive: a copy
    of ``template`` under an unknown ``custom_id`` (first), a line that is not JSON (second), a duplicate
    of ``template`` and a line of :data:`JUNK_TEXT_BYTES` bytes of plain text (last two)."""
    unknown = copy.deepcopy(template)
    unknown["custom_id"] = "replay-junk-unknown-" + secrets.token_hex(4)
    if "id" in unknown:
        unknown["id"] = "batch_req_" + secrets.token_hex(12)
    encoded = [dumps(x).encode() for x in lines]
    return [dumps(unknown).encode(), *encoded[:1], NOT_JSON, *encoded[1:], dumps(template).encode(), b"x" * JUNK_TEXT_BYTES]


def jsonl(lines: Iterable[bytes]) -> bytes:
    """JSON Lines: each line followed by ``\\n``."""
    return b"".join(line + b"\n" for line in lines)
