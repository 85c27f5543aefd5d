"""The plan of a run and its estimate before anything is sent (``tryouts run --dry-run``).

Per model: the cells, estimated input tokens (the model's tokenizer is not loaded for a dry run, so
``ceil(chars / 4)`` of the rendered messages), estimated output tokens (the mean of this model's past
fresh results in the store, else ``max_tokens`` as an upper bound), the cost of those tokens at the
model's price (genai-prices or an override), and a time estimate from the past runs' median end-to-end
latency and the concurrency, else "unknown". A model whose provider has a batch API is priced both ways
(streamed and at the batch rate); the run's estimate is the batch one when it sends the model as batches.
"""

from __future__ import annotations

import hashlib
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from ..catalog.prices import catalog_price
from ..pricing import PriceOverride, price
from ..providers import create_provider, get_info
from ..providers.batch import supports_batch
from ..store import Store
from ..tokens import fallback_count
from ..types import Usage
from .cache import cache_key
from .events import CellLike
from .policy import Policy


@dataclass
class ModelPlan:
    """The estimate for one model of a run."""

    model_index: int
    model: str
    cells: int
    input_tokens: int
    output_tokens: int
    output_basis: str  # "history (n=...)" or "max_tokens (upper bound)"
    cost_usd: Decimal | None
    cost_basis: str
    seconds: float | None
    time_basis: str
    #: this run sends the model's cells as batch jobs (``cost_usd`` is then at the batch rate)
    batch: bool = False
    #: the cost streamed, and through the provider's batch API (None: it has none, or the price is unknown)
    cost_streamed_usd: Decimal | None = None
    cost_batch_usd: Decimal | None = None

    def as_dict(self) -> dict:
        d = self.__dict__.copy()
        for name in ("cost_usd", "cost_streamed_usd", "cost_batch_usd"):
            d[name] = None if d[name] is None else str(d[name])
        return d


def fingerprint(cells: Sequence[CellLike]) -> str:
    """A hash of every cell's identity and request: resuming needs the same cells."""
    h = hashlib.sha256()
    for c in sorted(cells, key=lambda c: (c.model_index, c.case_index, c.repeat_index)):
        h.update(f"{c.model_index}/{c.case_index}/{c.repeat_index}/{cache_key(c.spec, c.request)}\n".encode())
    return h.hexdigest()


def estimate(
    cells: Sequence[CellLike],
    *,
    store: Store | None,
    policy: Policy,
    prices: dict[str, PriceOverride] | None = None,
) -> list[ModelPlan]:
    """One :class:`ModelPlan` per model, in model order."""
    prices = prices or {}
    by_model: dict[int, list[CellLike]] = defaultdict(list)
    for c in cells:
        by_model[c.model_index].append(c)
    plans = []
    now = datetime.now(UTC)
    for m in sorted(by_model):
        group = by_model[m]
        spec = group[0].spec
        n_in = sum(fallback_count(msg.content) for c in group for msg in c.request.messages)
        history = store.model_history(spec.ref) if store is not None else []
        outs = [h["output_tokens"] for h in history if h["output_tokens"] is not None]
        if outs:
            n_out = round(statistics.mean(outs) * len(group))
            out_basis = f"history (n={len(outs)})"
        else:
            n_out = sum(c.request.params.max_tokens or 0 for c in group)
            out_basis = "max_tokens (upper bound)"
        try:
            provider = create_provider(spec)
            price_id, model_name = provider.price_provider, provider.model_name
            local = provider.local or provider.free
        except Exception:  # the run itself reports it; the estimate just cannot price it
            price_id, model_name, local = None, spec.model, False
        override = prices.get(spec.ref)
        if override is None and "price" in spec.options:
            override = PriceOverride.parse(spec.options["price"], spec.ref)
        usage = Usage(input_tokens=n_in, output_tokens=n_out)
        listed = catalog_price(price_id, model_name)
        cost = price(price_id, model_name, usage, now, override=override, local=local, catalog_price=listed)
        batchable = supports_batch(spec.provider) and not local
        batch_cost = price(price_id, model_name, usage, now, override=override, batch=True,
                           catalog_price=listed) if batchable else None
        batched = batchable and policy.wants_batch(m)
        e2es = [h["e2e_ms"] for h in history if h["e2e_ms"] is not None]
        if e2es:
            try:
                info = get_info(spec.provider)
                parallel = 1 if info.local else policy.concurrency_for(info.name, declared=info.concurrency)
            except Exception:
                parallel = 1
            seconds = statistics.median(e2es) / 1000 * len(group) / parallel
            time_basis = f"median E2E of {len(e2es)} past results, concurrency {parallel}"
        else:
            seconds, time_basis = None, "unknown: no past results of this model"
        if batched:
            seconds, time_basis = None, "batch: answers within the provider's 24 h window"
        plans.append(ModelPlan(
            model_index=m, model=spec.ref, cells=len(group), input_tokens=n_in, output_tokens=n_out,
            output_basis=out_basis, cost_usd=batch_cost.total if batched and batch_cost else cost.total,
            cost_basis=batch_cost.source if batched and batch_cost else cost.source, seconds=seconds,
            time_basis=time_basis, batch=batched, cost_streamed_usd=cost.total,
            cost_batch_usd=batch_cost.total if batch_cost is not None else None,
        ))
    return plans
