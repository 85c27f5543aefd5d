"""The model catalog: YAML data in ``catalog/data/<family>.yaml``, validated by ``catalog/schema.json``.

::

    from tryouts.catalog import load_catalog, find_model, entry_price

    entries = load_catalog()                      # every entry, validated once and cached
    e = find_model("meta-llama/Llama-3.1-70B-Instruct")   # id, alias or route, any case
    e.params.total, e.arch.layers, e.context_window
    entry_price(find_model("gpt-4o"))             # EntryPrice(input_per_mtok=Decimal('2.5'), ..., source='genai-prices')

Unknown names raise :class:`~tryouts.errors.NotInCatalogError` with the closest catalog names; a file
that does not validate raises :class:`CatalogError` naming file, line, model id and field. The format is
described in docs/catalog.md; model cards (``tryouts card``) are in :mod:`tryouts.catalog.card`.
"""

from __future__ import annotations

from .entry import SOURCED, TASKS, Arch, CatalogPrice, Entry, Modalities, Params
from .load import (
    DATA_DIR,
    SCHEMA_PATH,
    CatalogError,
    find_model,
    load_catalog,
    load_file,
    lookup,
    lookup_keys,
    schema,
)
from .prices import EntryPrice, commercial_routes, entry_price

__all__ = [
    "DATA_DIR",
    "SCHEMA_PATH",
    "SOURCED",
    "TASKS",
    "Arch",
    "CatalogError",
    "CatalogPrice",
    "Entry",
    "EntryPrice",
    "Modalities",
    "Params",
    "commercial_routes",
    "entry_price",
    "find_model",
    "load_catalog",
    "load_file",
    "lookup",
    "lookup_keys",
    "schema",
]
