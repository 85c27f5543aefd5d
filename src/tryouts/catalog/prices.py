"""A catalog entry's price per million tokens: genai-prices first, else the catalog's own dated price.

genai-prices is asked through :func:`tryouts.pricing.price` with the entry's first commercial route that it
knows (the provider's price list id and model name, as a run would price it). The price is the base tier
(a short request); long-context tiers are what a run's real usage is priced at. Unknown stays unknown
(None), never 0. An open-weight model with no API route has no per-token price: it is free to run on your
own hardware, which the CLI says as such ("local") rather than as a price.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal

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
    #: the Tryouts reference it prices (e.g. ``openai:gpt-4o``); None for a catalog price with no API route
    route: str | None = None
    #: the catalog price's date; None for genai-prices (its data is dated by the installed package)
    as_of: str | None = None
    currency: str = "USD"

    @property
    def blended(self) -> Decimal:
        """The mean of input and output prices: the cost of a million tokens split 1:1 (``--max-price``)."""
        return _tidy((self.input_per_mtok + self.output_per_mtok) / 2)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_per_mtok"] = str(self.input_per_mtok)
        d["output_per_mtok"] = str(self.output_per_mtok)
        d["blended_per_mtok"] = str(self.blended)
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


def entry_price(entry: Entry, at: datetime | None = None) -> EntryPrice | None:
    """Input/output USD per million tokens for ``entry``, and its source; None when unknown.

    genai-prices (at time ``at``, default now) for the first commercial route it knows; else the catalog's own
    ``price`` with its ``as_of`` date; else None.
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
        cost = price(price_id, spec.model, Usage(input_tokens=_PROBE, output_tokens=_PROBE), at)
        if cost.source == "genai-prices" and cost.input is not None and cost.output is not None:
            scale = Decimal(1_000_000 // _PROBE)
            return EntryPrice(_tidy(cost.input * scale), _tidy(cost.output * scale), "genai-prices", route)
    if entry.price is not None:
        return EntryPrice(_tidy(entry.price.input_per_mtok), _tidy(entry.price.output_per_mtok), "catalog",
                          routes[0] if routes else None, entry.price.as_of, entry.price.currency)
    return None
