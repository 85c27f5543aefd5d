"""Cost from real usage.

Prices come from ``genai-prices`` (its bundled data works offline; prices depend on the request's
time), unless the user overrides them, or the model catalog has a sourced price newer than genai-prices'
(:func:`catalog_wins`). Money is ``Decimal``. A model whose price is unknown has an unknown cost, never 0;
an in-process local model costs nothing per request (source ``local``).

Token classes priced: input (fresh), cached input read, cache writes (5-minute, and 1-hour where the
provider reports them: ``Usage.cache_write_1h_tokens``), output (reasoning included). A service tier the
provider reports (``Usage.service_tier``: OpenAI's flex, priority...) is priced with genai-prices' price for
that tier, or is unknown where it has none; a batch answer with the batch price (``batch=True``).

Overrides are USD per million tokens, from ``config.yaml`` in the config directory::

    prices:
      "openai-compat:http://127.0.0.1:8080/v1#tiny": {input: 0, output: 0}
      "openai:gpt-6-luna": {input: 0.20, output: 0.50, cached_input: 0.02}

or a model's ``price`` option, or ``tryouts compare --price REF=IN,OUT``.
"""

from __future__ import annotations

import warnings
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from .errors import UsageError
from .types import Cost, Usage

MTOK = Decimal(1_000_000)

#: the tiers a provider reports for its standard price: OpenAI's ``default``, Groq's ``on_demand``, Anthropic's
#: ``standard``; any other reported tier needs a price of its own
STANDARD_TIERS = frozenset({"default", "on_demand", "standard"})


#: what a provider's batch API charges against its standard prices, with the page that says so (checked on the
#: date given): used where genai-prices has no batch price for the model (docs/batch.md)
BATCH_RATES: dict[str, tuple[Decimal, str, str]] = {
    "openai": (Decimal("0.5"), "https://platform.openai.com/docs/guides/batch (\"a 50% cost discount\")",
               "2026-12-03"),
    "anthropic": (Decimal("0.5"), "https://docs.anthropic.com/en/docs/build-with-claude/batch-processing "
                  "(\"50% of standard API prices\")", "2026-12-03"),
}


class PriceOverride(BaseModel):
    """USD per million tokens."""

    model_config = ConfigDict(extra="forbid")

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None

    @classmethod
    def parse(cls, value: Any, where: str) -> PriceOverride:
        """From a mapping, or a string ``IN,OUT[,CACHED]``; :class:`UsageError` names ``where``."""
        try:
            if isinstance(value, str):
                parts = [Decimal(x.strip()) for x in value.split(",")]
                if len(parts) not in (2, 3):
                    raise ValueError("expected IN,OUT or IN,OUT,CACHED_IN")
                return cls(input=parts[0], output=parts[1], cached_input=parts[2] if len(parts) == 3 else None)
            return cls.model_validate(value)
        except Exception as exc:
            raise UsageError(
                f"Bad price for {where}: {exc}. Give USD per million tokens, e.g. 0.15,0.60 "
                "or {input: 0.15, output: 0.60, cached_input: 0.075}."
            ) from exc

    def cost(self, usage: Usage) -> Cost:
        cached = usage.cached_input_tokens or 0
        fresh = (usage.input_tokens or 0) - cached
        cached_price = self.cached_input if self.cached_input is not None else self.input
        inp = (Decimal(fresh) * self.input + Decimal(cached) * cached_price) / MTOK
        out = Decimal(usage.output_tokens or 0) * self.output / MTOK
        return Cost(total=inp + out, input=inp, output=out, source="override")


def price(
    provider_id: str | None,
    model: str,
    usage: Usage,
    at: datetime,
    *,
    override: PriceOverride | None = None,
    local: bool = False,
    batch: bool = False,
    catalog_price: Any = None,
) -> Cost:
    """The cost of one request.

    Args:
        provider_id: genai-prices provider id (``openai``...), or None when there is no price list.
        model: the model name as the provider knows it.
        usage: token counts; input includes cached reads and cache writes, output includes reasoning; its
            ``service_tier`` (as the provider reported it) picks the tier's price.
        at: the request's time (prices change over time).
        override: the user's price, which wins over everything.
        local: an in-process model: cost 0, source ``local``.
        batch: answered through the provider's batch API: genai-prices' batch price where it has one (source
            ``genai-prices (batch)``), else the standard price times the provider's :data:`BATCH_RATES` (source
            ``genai-prices x catalog batch rate``; an override is a standard price and gets the same rate, or is
            taken as the price paid where no rate is known).
        catalog_price: the catalog's own dated price for this model (a ``CatalogPrice``: the caller looks it up
            with :func:`tryouts.catalog.prices.catalog_price`, as the engine does), used instead of genai-prices'
            where :func:`catalog_wins` (source ``catalog (AS_OF)``); pricing itself never reads the catalog.

    A service tier other than the standard one is priced with
    genai-prices' price for that tier (source ``genai-prices (flex)``...), never with the standard price: with no
    such price the cost is unknown. So are 1-hour cache writes where no 1-hour write price is known.
    """
    rate = BATCH_RATES.get(provider_id or "") if batch else None
    if override is not None:
        cost = override.cost(usage)
        return _scaled(cost, rate[0], "override x catalog batch rate") if rate else cost
    if local:
        return Cost(total=Decimal(0), input=Decimal(0), output=Decimal(0), source="local")
    if provider_id is None or usage.input_tokens is None or usage.output_tokens is None:
        return Cost()
    tier = None if batch or usage.service_tier in (None, *STANDARD_TIERS) else usage.service_tier
    calc = _calc(provider_id, model, usage, at, batch=batch, tier=tier)
    listed = catalog_price
    if listed is not None and catalog_wins(listed.as_of, calc, at):
        return _catalog_cost(listed, usage, tier=tier, rate=rate[0] if rate else None, batch=batch)
    if calc is None:
        return Cost()
    if usage.cache_write_1h_tokens and getattr(calc.model_price, "cache_write_1h_mtok", None) is None:
        return Cost()  # 1-hour writes cost more than 5-minute ones: never priced at the 5-minute rate
    cost = Cost(total=calc.total_price, input=calc.input_price, output=calc.output_price, source="genai-prices")
    if tier is not None:  # a price of that tier's own, or unknown (never the standard price)
        return cost.model_copy(update={"source": f"genai-prices ({tier})"}) if _variant(calc, "service_tier", tier,
                                                                                        at) else Cost()
    if not batch:
        return cost
    if _variant(calc, "processing", "batch", at):
        return cost.model_copy(update={"source": "genai-prices (batch)"})
    if rate is None:  # a batch answer whose batch price nobody knows: unknown, never the standard price
        return Cost()
    return _scaled(cost, rate[0], "genai-prices x catalog batch rate")


def _calc(provider_id: str, model: str, usage: Usage, at: datetime, *, batch: bool, tier: str | None) -> Any:
    """genai-prices' calculation for ``usage`` (its ``PriceCalculation``), or None when it does not know the model."""
    from genai_prices import Usage as GPUsage
    from genai_prices import calc_price

    assert usage.input_tokens is not None and usage.output_tokens is not None
    fields: dict[str, int] = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
    if usage.cached_input_tokens:
        fields["cache_read_tokens"] = usage.cached_input_tokens
    if usage.cache_write_tokens:
        fields["cache_write_tokens"] = usage.cache_write_tokens
        if usage.cache_write_1h_tokens:  # a part of the writes; genai-prices prices the rest at the 5-minute rate
            fields["cache_write_1h_tokens"] = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
    context = {"processing": "batch"} if batch else {"service_tier": tier} if tier else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return calc_price(GPUsage(**fields), model, provider_id=provider_id, genai_request_timestamp=at,
                              price_context=context)
    except (LookupError, ValueError):
        return None


def _variant(calc: Any, key: str, value: str, at: datetime) -> bool:
    """Whether genai-prices priced ``calc`` with a price variant of its own for ``key`` = ``value`` (batch
    processing, a service tier) in force at ``at``. It silently uses the standard price where it has none, and
    ignores the variants of a model it borrowed from another provider's list."""
    if not any(m is calc.model for m in getattr(calc.provider, "models", ())):
        return False
    for variant in getattr(calc.model, "price_variants", None) or ():
        if dict(variant.when or {}).get(key) == value and (variant.constraint is None or variant.constraint.active(at)):
            return True
    return False


def _scaled(cost: Cost, rate: Decimal, source: str) -> Cost:
    def x(v: Decimal | None) -> Decimal | None:
        return v * rate if v is not None else None

    return Cost(total=x(cost.total), input=x(cost.input), output=x(cost.output), currency=cost.currency, source=source)


# ---- the catalog's own prices ----------------------------------------------------------------------------


def genai_price_date(calc: Any, at: datetime) -> date | None:
    """When genai-prices' price used in ``calc`` (for a request at ``at``) dates from: the latest start date of
    the model's prices not after ``at`` (genai-prices dates a price change with a start date), else the time its
    data were fetched (an auto-updated snapshot); None when it does not date it: the bundled data of
    genai-prices 0.2.3 carry no date, and a price with no start date (or only a time-of-day window, as
    DeepSeek's old night discount) is undated."""
    from genai_prices.types import StartDateConstraint

    prices = calc.model.prices if isinstance(calc.model.prices, list) else []
    starts = [p.constraint.start_date for p in prices
              if isinstance(p.constraint, StartDateConstraint) and p.constraint.start_date <= at.date()]
    if starts:
        return max(starts)
    stamp = getattr(calc, "auto_update_timestamp", None)
    return stamp.date() if stamp is not None else None


def catalog_wins(as_of: str, calc: Any, at: datetime) -> bool:
    """Whether the catalog's price dated ``as_of`` is used rather than genai-prices' (``calc``, None when it does
    not know the model) for a request at ``at``: it must be in force (``as_of`` not after the request), and newer
    than genai-prices' price (:func:`genai_price_date`), or genai-prices must have no dated price for it."""
    try:
        listed = date.fromisoformat(as_of)
    except ValueError:
        return False
    if listed > at.date():
        return False
    if calc is None:
        return True
    since = genai_price_date(calc, at)
    return since is None or listed > since


def _catalog_cost(listed: Any, usage: Usage, *, tier: str | None, rate: Decimal | None, batch: bool) -> Cost:
    """``usage`` at the catalog's price; unknown where it lacks a price the usage needs (a service tier, cache
    writes, cache reads without a cached price, a batch answer without a known batch rate)."""
    cached = usage.cached_input_tokens or 0
    if tier is not None or usage.cache_write_tokens or (cached and listed.cached_input_per_mtok is None):
        return Cost()
    if batch and rate is None:
        return Cost()
    fresh = (usage.input_tokens or 0) - cached
    inp = (Decimal(fresh) * listed.input_per_mtok + Decimal(cached) * (listed.cached_input_per_mtok or 0)) / MTOK
    out = Decimal(usage.output_tokens or 0) * listed.output_per_mtok / MTOK
    source = f"catalog ({listed.as_of})"
    cost = Cost(total=inp + out, input=inp, output=out, currency=listed.currency, source=source)
    return _scaled(cost, rate, f"{source} x catalog batch rate") if batch and rate is not None else cost


def genai_prices_version() -> str:
    """The installed genai-prices' version (its data's only date stamp)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("genai-prices")
    except PackageNotFoundError:
        return "unknown"


def warm() -> None:
    """Load genai-prices' data now, before any request is timed: the first price of a run would otherwise pay for
    it (about 0.4 s) on the event loop that stamps other requests' chunks."""
    try:
        from genai_prices.data_snapshot import get_snapshot

        get_snapshot()
    except ImportError:
        pass
