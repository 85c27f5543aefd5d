"""Cost from real usage.

Prices come from ``genai-prices`` (its bundled data works offline; prices depend on the request's
time), unless the user overrides them. Money is ``Decimal``. A model whose price is unknown has an
unknown cost, never 0; an in-process local model costs nothing per request (source ``local``).

Overrides are USD per million tokens, from ``config.yaml`` in the config directory::

    prices:
      "openai-compat:http://127.0.0.1:8080/v1#tiny": {input: 0, output: 0}
      "openai:gpt-4o-mini": {input: 0.15, output: 0.60, cached_input: 0.075}

or a model's ``price`` option, or ``tryouts compare --price REF=IN,OUT``.
"""

from __future__ import annotations

import warnings
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from .errors import UsageError
from .types import Cost, Usage

MTOK = Decimal(1_000_000)


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
) -> Cost:
    """The cost of one request.

    Args:
        provider_id: genai-prices provider id (``openai``...), or None when there is no price list.
        model: the model name as the provider knows it.
        usage: token counts; input includes cached reads, output includes reasoning.
        at: the request's time (prices change over time).
        override: the user's price, which wins over everything.
        local: an in-process model: cost 0, source ``local``.
        batch: answered through the provider's batch API: genai-prices' batch price where it has one (source
            ``genai-prices (batch)``), else the standard price times the provider's :data:`BATCH_RATES` (source
            ``genai-prices x catalog batch rate``; an override is a standard price and gets the same rate, or is
            taken as the price paid where no rate is known).
    """
    rate = BATCH_RATES.get(provider_id or "") if batch else None
    if override is not None:
        cost = override.cost(usage)
        return _scaled(cost, rate[0], "override x catalog batch rate") if rate else cost
    if local:
        return Cost(total=Decimal(0), input=Decimal(0), output=Decimal(0), source="local")
    if provider_id is None or usage.input_tokens is None or usage.output_tokens is None:
        return Cost()
    from genai_prices import Usage as GPUsage
    from genai_prices import calc_price

    fields: dict[str, int] = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
    if usage.cached_input_tokens:
        fields["cache_read_tokens"] = usage.cached_input_tokens
    if usage.cache_write_tokens:
        fields["cache_write_tokens"] = usage.cache_write_tokens
    context = {"processing": "batch"} if batch else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            calc = calc_price(GPUsage(**fields), model, provider_id=provider_id, genai_request_timestamp=at,
                              price_context=context)
    except LookupError:
        return Cost()
    cost = Cost(total=calc.total_price, input=calc.input_price, output=calc.output_price, source="genai-prices")
    if not batch:
        return cost
    if _has_batch_price(calc, at):
        return cost.model_copy(update={"source": "genai-prices (batch)"})
    if rate is None:  # a batch answer whose batch price nobody knows: unknown, never the standard price
        return Cost()
    return _scaled(cost, rate[0], "genai-prices x catalog batch rate")


def _has_batch_price(calc: Any, at: datetime) -> bool:
    """Whether genai-prices priced ``calc`` with a batch price of its own (a price variant for batch
    processing, in force at ``at``); it silently uses the standard price where it has none."""
    for variant in getattr(calc.model, "price_variants", None) or ():
        if dict(variant.when or {}).get("processing") == "batch" and (
                variant.constraint is None or variant.constraint.active(at)):
            return True
    return False


def _scaled(cost: Cost, rate: Decimal, source: str) -> Cost:
    def x(v: Decimal | None) -> Decimal | None:
        return v * rate if v is not None else None

    return Cost(total=x(cost.total), input=x(cost.input), output=x(cost.output), currency=cost.currency, source=source)
