"""Choosing catalog entries: the filters behind ``tryouts models`` (and the dashboard's catalog page).

Definitions (docs/catalog.md):

* ``min_context`` counts tokens of input: the context window, or ``max_input`` where the window counts input plus
  output (GPT-5: 272k of its 400k); ``128k`` = 128,000 and ``1M`` = 1,000,000 (decimal, so "128k" keeps both
  OpenAI's 128,000 and Llama's 131,072).
* ``max_price`` compares the *blended* price: the mean of input and output USD per million tokens (a
  workload of as many output tokens as input tokens). Models without a known per-token price are left out.
* ``fits_bytes`` keeps models whose memory estimate (weights + KV cache for ``context`` tokens, from
  :func:`tryouts.memory.estimate_entry`) is at most that many bytes; ``--fits`` reads sizes as ``24``
  or ``24GB`` (10**9 bytes, like ``tryouts recommend --gpu-memory``) or ``24GiB`` (2**30 bytes).
  Models without architecture numbers (commercial APIs) are left out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from ..errors import UsageError
from ..memory.gpus import parse_size as parse_size  # one parser of memory sizes for every command
from .entry import TASKS, Entry
from .prices import EntryPrice, entry_price

_SUFFIX = {"": 1, "k": 1_000, "m": 1_000_000}


def parse_tokens(text: str | int) -> int:
    """``131072``, ``128k``, ``1M``, ``1.5m`` -> tokens; :class:`UsageError` otherwise."""
    s = str(text).strip().lower().replace("_", "").replace(",", "")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([km]?)", s)
    if not m:
        raise UsageError(f"Bad token count {text!r}: write a number of tokens such as 32768, 128k or 1M.")
    return int(Decimal(m.group(1)) * _SUFFIX[m.group(2)])


def parse_money(text: str | float) -> Decimal:
    """A non-negative USD amount (``0.5``, ``$2``); :class:`UsageError` otherwise."""
    try:
        value = Decimal(str(text).strip().lstrip("$"))
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0:
        raise UsageError(f"Bad price {text!r}: give USD per million tokens, e.g. 0.5 or 3.")
    return value


@dataclass
class Filters:
    """What ``tryouts models`` asks for; None = no constraint."""

    access: str | None = None  # "open" | "commercial"
    task: str | None = None
    min_context: int | None = None
    max_price: Decimal | None = None
    licenses: tuple[str, ...] = ()
    fits_bytes: int | None = None
    dtype: str = "bf16"
    context: int = 4096

    def check(self) -> None:
        """Raise :class:`UsageError` for values no entry could ever match."""
        if self.access not in (None, "open", "commercial"):
            raise UsageError(f"access must be open or commercial, not {self.access!r}.")
        if self.task is not None and self.task not in TASKS:
            raise UsageError(f"Unknown task {self.task!r}: use one of {', '.join(TASKS)}.")
        if self.fits_bytes is not None and self.fits_bytes <= 0:
            raise UsageError(f"--fits takes a memory size such as 24GB, not {self.fits_bytes} bytes.")
        if self.context < 1:
            raise UsageError(f"--context must be at least 1 token, not {self.context}.")


@dataclass
class Row:
    """One entry that passed, with what the filters computed for it."""

    entry: Entry
    price: EntryPrice | None
    #: bytes the memory estimate needs (only with ``fits_bytes``)
    memory_bytes: int | None = None

    def to_dict(self) -> dict:
        d = self.entry.to_dict()
        d["catalog_price"] = d.pop("price")
        d["price"] = self.price.to_dict() if self.price else None
        d["memory_bytes"] = self.memory_bytes
        return d


@dataclass
class Selection:
    rows: list[Row]
    #: why entries were left out beyond simply not matching: reason -> ids
    left_out: dict[str, list[str]] = field(default_factory=dict)


def license_matches(license: str, wanted: Sequence[str]) -> bool:
    """Case-insensitive: equal, or ``wanted`` is a prefix (``llama`` matches llama3.1, llama3.2, ...)."""
    lic = license.lower()
    return any(lic == w.lower() or lic.startswith(w.lower()) for w in wanted)


def select(entries: Sequence[Entry], f: Filters) -> Selection:
    """The entries matching ``f``, in catalog order, each with its price (and memory need with ``fits_bytes``)."""
    f.check()
    rows: list[Row] = []
    left_out: dict[str, list[str]] = {}
    for e in entries:
        if f.access and e.access != f.access:
            continue
        if f.task and f.task not in e.tasks:
            continue
        if f.licenses and not license_matches(e.license, f.licenses):
            continue
        if f.min_context is not None and (e.max_input or e.context_window or 0) < f.min_context:  # what fits in
            continue
        p = entry_price(e)
        if f.max_price is not None:
            if p is None:
                left_out.setdefault("no per-token price known", []).append(e.id)
                continue
            if p.blended > f.max_price:
                continue
        rows.append(Row(e, p))
    if f.fits_bytes is not None:
        rows = _fits(rows, f, left_out)
    return Selection(rows, left_out)


def _fits(rows: list[Row], f: Filters, left_out: dict[str, list[str]]) -> list[Row]:
    estimate_entry = _estimator()
    limit = f.fits_bytes
    kept, errors = [], []
    for row in rows:
        e = row.entry
        if e.arch is None or e.params.total is None:
            left_out.setdefault("no architecture numbers (API-only or not recorded)", []).append(e.id)
            continue
        try:
            need = int(estimate_entry(e, dtype=f.dtype, context=f.context, batch=1).total_bytes)
        except UsageError:
            raise
        except Exception as exc:  # one entry the estimator cannot handle must not hide the others
            errors.append(str(exc))
            left_out.setdefault("memory estimate failed", []).append(f"{e.id} ({exc})")
            continue
        if need <= limit:  # type: ignore[operator]
            row.memory_bytes = need
            kept.append(row)
    if errors and not kept and len(set(errors)) == 1 and len(errors) > 1:
        raise UsageError(f"The memory estimate failed for every model: {errors[0]}")
    return kept


def _estimator():
    """:func:`tryouts.memory.estimate_entry`, imported only when ``--fits`` is used."""
    try:
        try:
            from ..memory import estimate_entry  # type: ignore[attr-defined]
        except ImportError:  # a package that does not re-export it (yet)
            from ..memory.estimate import estimate_entry  # type: ignore[no-redef]
    except ImportError as exc:
        raise UsageError(
            "--fits needs the memory estimator (tryouts.memory.estimate_entry), which this installation does not "
            f"have ({exc}). Update tryouts, or leave out --fits."
        ) from exc
    return estimate_entry
