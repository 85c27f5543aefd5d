"""Which price wins: genai-prices', or the catalog's own sourced price when it is newer (docs/metrics.md, cost)."""

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest

from tryouts import pricing
from tryouts.catalog.entry import CatalogPrice
from tryouts.catalog.prices import catalog_price
from tryouts.pricing import catalog_wins, genai_price_date
from tryouts.types import Usage


def price(provider_id, model, usage, at, **kw):
    """As the engine prices a run: with the catalog's price for the model, where the catalog has one."""
    kw.setdefault("catalog_price", catalog_price(provider_id, model))
    return pricing.price(provider_id, model, usage, at, **kw)

M = Decimal(10**6)
NOW = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)  # 03:00 UTC: genai-prices 0.2.3's DeepSeek "standard" (day) hours
NIGHT = datetime(2026, 11, 2, 20, 0, tzinfo=UTC)


def calc(provider_id, model, at=NOW):
    return pricing._calc(provider_id, model, Usage(input_tokens=1, output_tokens=1), at, batch=False, tier=None)


def test_genai_prices_dates_a_price_by_its_start_date_or_not_at_all():
    # deepseek-chat: a day price and a night price (a time-of-day window), no start date: undated
    assert genai_price_date(calc("deepseek", "deepseek-chat"), NOW) is None
    # deepseek-v4-pro: revised on 2026-08-17 (a start date); before that, its first (undated) price
    assert genai_price_date(calc("deepseek", "deepseek-v4-pro"), NOW).isoformat() == "2026-08-17"
    early = datetime(2026, 6, 1, tzinfo=UTC)
    assert genai_price_date(calc("deepseek", "deepseek-v4-pro", early), early) is None
    # prices fetched by genai-prices' auto-update are dated by the fetch
    fetched = SimpleNamespace(model=SimpleNamespace(prices=None), auto_update_timestamp=datetime(2026, 10, 5, tzinfo=UTC))
    assert genai_price_date(fetched, NOW).isoformat() == "2026-10-05"


def test_the_catalog_wins_only_when_newer_and_in_force():
    v4 = calc("deepseek", "deepseek-v4-pro")
    assert catalog_wins("2026-09-01", v4, NOW)  # newer than genai-prices' 2026-08-17
    assert not catalog_wins("2026-08-17", v4, NOW) and not catalog_wins("2026-01-01", v4, NOW)
    assert not catalog_wins("2026-12-01", v4, NOW)  # not yet in force at the request's time
    assert catalog_wins("2025-09-29", calc("deepseek", "deepseek-chat"), NOW)  # genai-prices' price is undated
    assert catalog_wins("2024-03-11", None, NOW)  # genai-prices does not know the model
    assert not catalog_wins("not a date", None, NOW)


def test_a_run_is_priced_with_the_newer_price():
    usage = Usage(input_tokens=1000, output_tokens=100)
    genai = price("deepseek", "deepseek-v4-pro", usage, NOW)
    assert genai.source == "genai-prices"
    listed = {("deepseek", "deepseek-v4-pro"): CatalogPrice(input_per_mtok=Decimal(1), output_per_mtok=Decimal(2),
                                                            as_of="2026-01-01")}
    older = listed[("deepseek", "deepseek-v4-pro")]
    # genai-prices' 2026-08-17 price is newer
    assert price("deepseek", "deepseek-v4-pro", usage, NOW, catalog_price=older) == genai
    cost = price("deepseek", "deepseek-v4-pro", usage, NOW, catalog_price=older.model_copy(update={"as_of": "2026-10-01"}))
    assert (cost.source, cost.total) == ("catalog (2026-10-01)", (1000 * 1 + 100 * 2) / M)


def test_deepseek_chat_day_and_night_against_the_current_list():
    """genai-prices 0.2.3 still has DeepSeek's night discount (cancelled 2025-09-05, then the 2025-09-29 list):
    the catalog's price is used at any hour; before its date, genai-prices' (then right) prices stay."""
    usage = Usage(input_tokens=1000, output_tokens=100, cached_input_tokens=200)
    day, night = price("deepseek", "deepseek-chat", usage, NOW), price("deepseek", "deepseek-chat", usage, NIGHT)
    # https://api-docs.deepseek.com/quick_start/pricing: $0.28 input (cache miss), $0.028 cache hit, $0.42 output
    want = (800 * Decimal("0.28") + 200 * Decimal("0.028") + 100 * Decimal("0.42")) / M
    assert day == night and day.total == want == Decimal("0.0002716") and day.source == "catalog (2025-09-29)"
    assert price("deepseek", "deepseek-reasoner", usage, NIGHT).total == want  # one price for both since V3.2
    before = datetime(2025, 6, 1, 3, 0, tzinfo=UTC)
    old = price("deepseek", "deepseek-chat", usage, before)  # genai-prices' day price then: $0.27 / $0.07 / $1.10
    assert old.source == "genai-prices"
    assert old.total == (800 * Decimal("0.27") + 200 * Decimal("0.07") + 100 * Decimal("1.1")) / M


@pytest.mark.parametrize("usage", [
    Usage(input_tokens=1000, output_tokens=100, cache_write_tokens=10),  # the catalog has no cache-write price
    Usage(input_tokens=1000, output_tokens=100, service_tier="flex"),  # nor a tier's
])
def test_the_catalog_price_never_guesses(usage):
    assert price("deepseek", "deepseek-chat", usage, NOW).total is None
    assert price("deepseek", "deepseek-chat", Usage(input_tokens=10, output_tokens=1), NOW, batch=True).total is None
    # no cached price in the catalog, and cache reads reported: unknown
    assert price("cohere", "command-r-03-2024", Usage(input_tokens=10, output_tokens=1, cached_input_tokens=5),
                 NOW).total is None


def test_entry_price_and_runs_agree():
    from tryouts.catalog import entry_price, find_model

    p = entry_price(find_model("deepseek-v3"), NOW)
    assert (p.source, p.as_of, p.route) == ("catalog", "2025-09-29", "deepseek:deepseek-chat")
    assert (p.input_per_mtok, p.cached_input_per_mtok, p.output_per_mtok) == (Decimal("0.28"), Decimal("0.028"),
                                                                              Decimal("0.42"))
    # the same at night: `tryouts models` no longer shows another price by night
    assert entry_price(find_model("deepseek-v3"), NIGHT) == p
    g = entry_price(find_model("gpt-4o"), NOW)
    assert g.source == "genai-prices" and g.cached_input_per_mtok == Decimal("1.25")
    assert g.source_label.startswith("genai-prices ") and p.source_label == "catalog, as of 2025-09-29"
