"""tryouts-echo: a sample Tryouts provider, registered through the ``tryouts.providers`` entry-point group.

Nothing here imports the provider's module: Tryouts reads this entry (name, module, class, what it needs)
for ``tryouts providers`` and ``--help`` and imports ``tryouts_echo.provider`` only when an ``echo:`` model
is used.
"""

from pydantic import Field

from tryouts.providers import ProviderInfo
from tryouts.providers.options import Options


class EchoOptions(Options):
    """The echo provider's options: names, types, bounds and meaning (unknown names and bad values are refused
    before anything runs, and `tryouts providers` documents them)."""

    delay_ms: float | None = Field(None, ge=0, le=10_000, description="A pause before each word, like a model's "
                                   "decoding time (default 0)")


def info() -> ProviderInfo:
    """The registry entry of the ``echo`` provider."""
    return ProviderInfo(
        name="echo",
        module="tryouts_echo.provider",
        cls="EchoProvider",
        description="Echoes the prompt back word by word, in process (a sample third-party provider)",
        example="echo:reverse or echo:plain",
        needs_key=False,
        local=True,  # in process: one request at a time, loaded once, timed apart from other models
        # the "runtime" to import before any request is timed (torch, say, for a real in-process model)
        warm_imports=("tryouts_echo.runtime",),
        # options that never change the answer: left out of the response cache key
        neutral_options=("delay_ms",),
        options=EchoOptions,
    )
