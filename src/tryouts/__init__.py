"""Tryouts: put pre-trained AI models through the same drills and pick the one that fits.

The library API mirrors the CLI::

    import asyncio
    from tryouts import compare, load_suite, run_suite

    results = asyncio.run(compare("Explain pretrained models", ["hf:./tiny", "openai:gpt-6-luna"]))
    suite = load_suite("examples/support.yaml")       # validated; errors name file, line and field
    outcome = run_suite("examples/support.yaml")      # as `tryouts run`: stored, scored, summarized
    print(outcome.run_id, outcome.status, outcome.n_failed)

See docs/architecture.md for the layers.
"""

from __future__ import annotations

from ._version import __version__

__all__ = ["SuiteOutcome", "__version__", "compare", "load_suite", "run_suite"]


def __getattr__(name: str):  # lazy: importing tryouts stays cheap
    if name == "compare":
        from .usecases.compare import compare

        return compare
    if name == "load_suite":
        from .suite import load_suite

        return load_suite
    if name in ("run_suite", "SuiteOutcome"):
        from .usecases import suites

        return getattr(suites, name)
    raise AttributeError(name)
