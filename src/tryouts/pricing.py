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
) -> Cost:
    """The cost of one request.

    Args:
        provider_id: genai-prices provider id (``openai``...), or None when there is no price list.
        model: the model name as the provider knows it.
        usage: token counts; input includes cached reads, output includes reasoning.
        at: the request's time (prices change over time).
        override: the user's price, which wins over everything.
        local: an in-process model: cost 0, source ``local``.
    """
    if override is not None:
        return override.cost(usage)
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
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            calc = calc_price(GPUsage(**fields), model, provider_id=provider_id, genai_request_timestamp=at)
    except LookupError:
        return Cost()
    return Cost(total=calc.total_price, input=calc.input_price, output=calc.output_price, source="genai-prices")
