"""Tryouts: put pre-trained AI models through the same drills and pick the one that fits.

The library API mirrors the CLI::

    import asyncio
    from tryouts import compare

    results = asyncio.run(compare("Explain pretrained models", ["hf:./tiny", "openai:gpt-4o-mini"]))

See docs/architecture.md for the layers.
"""

from __future__ import annotations

from ._version import __version__

__all__ = ["__version__", "compare"]


def __getattr__(name: str):  # lazy: importing tryouts stays cheap
    if name == "compare":
        from .engine.compare import compare

        return compare
    raise AttributeError(name)
