"""The response cache's rules: what a cache key covers, and what a result served from the cache looks like."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ..providers import neutral_options
from ..types import Cost, ModelSpec, Request, Result, Usage
from .events import CellLike
from .executor import CacheEntry


def cache_key(spec: ModelSpec, request: Request) -> str:
    """A hash of everything that changes the answer: provider, model, options, messages, parameters (the
    options its registry entry declares neutral, such as timeouts, are left out)."""
    neutral = neutral_options(spec.provider)
    options = {k: v for k, v in sorted(spec.options.items()) if k not in neutral}
    payload = {
        "provider": spec.provider,
        "model": spec.model,
        "options": options,
        "request": request.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _signed_fields(key: str, response: dict[str, Any]) -> dict[str, Any]:
    """What a cache entry's signature covers: its key and its answer."""
    return {"key": key, "response": {k: v for k, v in response.items() if k != "signature"}}


def cache_entry(key: str, cell: CellLike, result: Result) -> CacheEntry:
    """What a fresh answer leaves in the cache under ``key``, signed with this user's key (trust.py)."""
    from ..trust import sign

    response = {
        "model_name": result.model_name, "text": result.text, "reasoning_text": result.reasoning_text,
        "finish_reason": result.finish_reason, "usage": result.usage.model_dump(mode="json"),
    }
    return (key, cell.spec.ref, {**response, "signature": sign(_signed_fields(key, response))})


def usable(key: str, response: Any) -> bool:
    """Whether a cache row may answer a cell: this user's Tryouts wrote it under this key (its signature
    verifies; a shared database's rows may be anyone's, and a planted answer would be stored and scored as the
    model's) and it has the shape :func:`cache_entry` gives. Anything else is a miss: the cell is sent."""
    from ..trust import verify

    if not isinstance(response, dict) or not verify(_signed_fields(key, response), response.get("signature")):
        return False
    text_fields = ("model_name", "text", "reasoning_text")
    if not all(isinstance(response.get(k, ""), str) for k in text_fields) or \
            not isinstance(response.get("finish_reason"), str | None):
        return False
    try:
        Usage.model_validate(response.get("usage") or {})
    except ValueError:
        return False
    return True


def trusted_reader(get: Callable[[str], Any]) -> Callable[[str], dict[str, Any] | None]:
    """``get`` (the store's cache read) answering only rows that are :func:`usable`."""

    def read(key: str) -> dict[str, Any] | None:
        hit = get(key)
        return hit if hit is not None and usable(key, hit) else None

    return read


def cached_result(cell: CellLike, response: dict[str, Any], case: dict | None) -> Result:
    """A result served from the cache: flagged, no timings, costs nothing now."""
    return Result(
        model=cell.spec.ref,
        provider=cell.spec.provider,
        model_name=response.get("model_name", cell.spec.model),
        ok=True,
        text=response.get("text", ""),
        reasoning_text=response.get("reasoning_text", ""),
        finish_reason=response.get("finish_reason"),
        started_at=datetime.now(UTC),
        usage=Usage.model_validate(response.get("usage") or {}),
        cost=Cost(total=Decimal(0), input=Decimal(0), output=Decimal(0), source="cache"),
        request=cell.request,
        options=cell.spec.options,
        cached=True,
        case=case,
        model_index=cell.model_index,
        case_index=cell.case_index,
        repeat_index=cell.repeat_index,
    )
