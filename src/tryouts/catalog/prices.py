"""A catalog entry's price per million tokens: genai-prices, or the catalog's own dated price where it is newer.

Each of the entry's commercial routes is priced through :func:`tryouts.pricing.price` (the provider's price list
id and model name), exactly as a run's real usage would be: genai-prices' price, unless the catalog's own price
(``price:`` with ``as_of`` and ``sources.price``) is newer than genai-prices' for that model or genai-prices does
not know it (:func:`tryouts.pricing.catalog_wins`); the first route priced gives the price. The price is the base
tier (a short request); long-context tiers are what a run's real usage is priced at. Unknown stays unknown
(None), never 0. An open-weight model with no API route has no per-token price: it is free to run on your
own hardware, which the CLI says as such ("local") rather than as a price.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from .entry import Entry

#: tokens priced to read a per-token price off genai-prices (small enough to stay in the base tier)
_PROBE = 1000


@dataclass(frozen=True)
class EntryPrice:
    """USD per million tokens, with where it comes from."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    #: "genai-prices" or "catalog"
    source: str
    #: the Tryouts reference it prices (e.g. ``openai:gpt-6.1-terra``); None for a catalog price with no API route
    route: str | None = None
    #: the catalog price's date; None for genai-prices (its data is dated by the installed package)
    as_of: str | None = None
    currency: str = "USD"
    #: input read from the provider's cache (a cache hit); None when not published
    cached_input_per_mtok: Decimal | None = None

    @property
    def source_label(self) -> str:
        """Where the price comes from, in words: ``genai-prices 0.2.3`` or ``catalog, as of 2025-09-29``."""
        if self.source == "catalog":
            return f"catalog, as of {self.as_of}"
        from ..pricing import genai_prices_version

        return f"{self.source} {genai_prices_version()}"

    @property
    def blended(self) -> Decimal:
        """The mean of input and output prices: the cost of a million tokens split 1:1 (``--max-price``)."""
        return _tidy((self.input_per_mtok + self.output_per_mtok) / 2)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_per_mtok"] = str(self.input_per_mtok)
        d["output_per_mtok"] = str(self.output_per_mtok)
        d["cached_input_per_mtok"] = None if self.cached_input_per_mtok is None else str(self.cached_input_per_mtok)
        d["blended_per_mtok"] = str(self.blended)
        d["source_label"] = self.source_label
        return d


def _tidy(d: Decimal) -> Decimal:
    """Drop trailing zeros without switching to exponent notation (2.5000 -> 2.5, 10.00 -> 10)."""
    return d.quantize(Decimal(1)) if d == d.to_integral_value() else d.normalize()


def commercial_routes(entry: Entry) -> list[str]:
    """The entry's routes that go to a paid API (not an in-process model nor a server on this machine)."""
    from ..errors import TryoutsError
    from ..providers import get_info

    out = []
    for route in entry.routes:
        try:
            info = get_info(route.partition(":")[0])
        except TryoutsError:
            continue
        if not info.local and info.server is None:
            out.append(route)
    return out


def catalog_price(price_id: str | None, model: str) -> Any:
    """The catalog's own price (a :class:`~tryouts.catalog.entry.CatalogPrice`) for ``model`` on the price list
    ``price_id``: the price of the catalog entry with a route to it; None when no entry has one. Pass it to
    :func:`tryouts.pricing.price` (``catalog_price=``), which decides whether it is newer than genai-prices'."""
    return _catalog_prices().get((price_id, model)) if price_id else None


@functools.cache
def _catalog_prices() -> dict[tuple[str, str], Any]:
    """(price list id, model name) -> the catalog price of the entry whose route it is; loaded once."""
    from ..errors import TryoutsError
    from ..providers import get_info
    from .load import load_catalog

    out: dict[tuple[str, str], Any] = {}
    try:
        entries = load_catalog()
    except TryoutsError:  # a broken catalog file costs its prices, never a run
        return out
    for entry in entries:
        if entry.price is None:
            continue
        for route in commercial_routes(entry):
            provider, _, name = route.partition(":")
            try:
                price_id = get_info(provider).price_id
            except TryoutsError:
                continue
            if price_id:
                out.setdefault((price_id, name), entry.price)
    return out


def warm_catalog_prices() -> None:
    """Load the catalog's prices now (before any request is timed)."""
    _catalog_prices()


def entry_price(entry: Entry, at: datetime | None = None) -> EntryPrice | None:
    """Input/output USD per million tokens for ``entry``, and its source; None when unknown.

    For the first commercial route priced (at time ``at``, default now), as a run would price it: genai-prices',
    or the catalog's own ``price`` where it is newer (or genai-prices does not know the model); else the catalog's
    own ``price`` with its ``as_of`` date; else None.
    """
    from ..errors import TryoutsError
    from ..pricing import price
    from ..providers import get_info
    from ..types import ModelSpec, Usage

    at = at or datetime.now(UTC)
    routes = commercial_routes(entry)
    for route in routes:
        try:  # the registry entry says where a provider's prices are: no provider object is made
            spec = ModelSpec.parse(route)
            price_id = get_info(spec.provider).price_id
        except TryoutsError:
            continue
        if not price_id:
            continue
        listed = catalog_price(price_id, spec.model)
        cost = price(price_id, spec.model, Usage(input_tokens=_PROBE, output_tokens=_PROBE), at, catalog_price=listed)
        if cost.source.startswith("catalog") and entry.price is not None:
            return _listed(entry, route)
        if cost.source == "genai-prices" and cost.input is not None and cost.output is not None:
            scale = Decimal(1_000_000 // _PROBE)
            hit = price(price_id, spec.model, Usage(input_tokens=_PROBE, output_tokens=0, cached_input_tokens=_PROBE),
                        at, catalog_price=listed)
            cached = _tidy(hit.input * scale) if hit.source == "genai-prices" and hit.input is not None else None
            return EntryPrice(_tidy(cost.input * scale), _tidy(cost.output * scale), "genai-prices", route,
                              cached_input_per_mtok=cached)
    if entry.price is not None:
        return _listed(entry, routes[0] if routes else None)
    return None


def _listed(entry: Entry, route: str | None) -> EntryPrice:
    """The entry's own catalog price, for ``route``."""
    p = entry.price
    assert p is not None
    cached = _tidy(p.cached_input_per_mtok) if p.cached_input_per_mtok is not None else None
    return EntryPrice(_tidy(p.input_per_mtok), _tidy(p.output_per_mtok), "catalog", route, p.as_of, p.currency,
                      cached_input_per_mtok=cached)
