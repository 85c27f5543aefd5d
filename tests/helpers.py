"""Helpers shared by the provider wire-format tests."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import httpx

from tryouts.engine.execute import execute
from tryouts.providers.base import Provider
from tryouts.types import Delta, Request, Result


def run_provider(provider: Provider, request: Request, *, warm: bool = False, **kw) -> tuple[Result, list[Delta]]:
    """Load ``provider``, execute ``request`` through the engine and close it; return the result and its deltas.

    ``warm`` sends the same request once first, so the measured one reuses an open connection (the server's
    log keeps the second request under a scripted id).
    """
    deltas: list[Delta] = []

    async def go() -> Result:
        await provider.load()
        try:
            if warm:
                await execute(provider, request)
            return await execute(provider, request, on_delta=deltas.append, **kw)
        finally:
            await provider.aclose()

    return asyncio.run(go()), deltas


def server_log(url: str, rid: str) -> dict:
    """The replay server's own record of request ``rid`` (any URL of that server will do)."""
    parts = urlsplit(url)
    return httpx.get(f"{parts.scheme}://{parts.netloc}/_replay/log/{rid}").json()
