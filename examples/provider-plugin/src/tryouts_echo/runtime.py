"""Stands for an in-process runtime with an expensive import (torch, llama_cpp, ...).

The provider's registry entry lists this module in ``warm_imports``, so Tryouts imports it before any
request of a run is timed, never inside another model's time to first token.
"""

import time

#: when this module was imported (the sample provider reports whether that was before it loaded)
IMPORTED_NS = time.perf_counter_ns()


def words(text: str, mode: str) -> list[str]:
    """The answer, word by word: the prompt's words reversed (``reverse``) or as they are (``plain``)."""
    parts = text.split()
    return list(reversed(parts)) if mode == "reverse" else parts
