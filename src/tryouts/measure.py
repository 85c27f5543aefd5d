"""The metric definitions of docs/metrics.md, applied to a provider's stream of events.

Providers stamp events (``perf_counter_ns``) as they parse them; this module only does arithmetic
on those stamps, so every provider is measured the same way.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from .types import Delta, Timing

NS_PER_MS = 1_000_000


def _ms(ns: int) -> float:
    return ns / NS_PER_MS


def compute_timing(
    t0_ns: int | None,
    deltas: Sequence[Delta],
    n_out: int | None,
    *,
    queue_ms: float | None = None,
    load_ms: float | None = None,
) -> Timing:
    """Turn stamped content chunks into a :class:`Timing`.

    Args:
        t0_ns: when the request was handed to the network (after any wait for a slot).
        deltas: the content-bearing chunks, in arrival order. Empty-text deltas are ignored.
        n_out: output tokens (from usage, or counted); chunks are never counted as tokens.
        queue_ms: time spent waiting for Tryouts' own concurrency slot, recorded apart.
        load_ms: model load and warm-up time, recorded apart (never part of TTFT).
    """
    timing = Timing(queue_ms=queue_ms, load_ms=load_ms)
    content = [d for d in deltas if d.text]
    timing.n_chunks = len(content)
    if t0_ns is None or not content:
        return timing
    first, last = content[0].t_ns, content[-1].t_ns
    timing.ttft_ms = _ms(first - t0_ns)
    answer = next((d for d in content if d.channel == "text"), None)
    if answer is not None:
        timing.ttfat_ms = _ms(answer.t_ns - t0_ns)
    timing.e2e_ms = _ms(last - t0_ns)
    timing.itl_ms = [_ms(b.t_ns - a.t_ns) for a, b in itertools.pairwise(content)]
    decode_ns = last - first
    if n_out is not None and n_out >= 2 and decode_ns > 0:
        timing.tpot_ms = _ms(decode_ns) / (n_out - 1)
        timing.output_tokens_per_s = (n_out - 1) / (decode_ns / 1e9)
    return timing
