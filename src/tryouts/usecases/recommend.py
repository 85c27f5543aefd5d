"""tryouts recommend over the catalog, with this user's measured figures from the store."""

from __future__ import annotations


def _size(text: str | None) -> float | None:
    """'24GB', '24 GiB', '80' (GB) → bytes; None stays None."""
    if text is None:
        return None
    from ..errors import UsageError
    from ..memory.gpus import parse_size

    try:
        return float(parse_size(text))
    except UsageError as exc:
        raise UsageError(f"--gpu-memory: {exc.message}") from None


def advise_with_catalog(store, *, task: str, budget: str, privacy: str, offline: bool, latency_ms: float | None,
                        gpu_memory: str | None, quality: str, fine_tune: bool, context: int, top: int) -> dict:
    """The advisor over the catalog, with prices, memory estimates and this user's measured figures."""
    from ..advisor import Constraints
    from ..advisor import recommend as advise
    from ..catalog import entry_price, load_catalog

    c = Constraints(task=task, budget=budget, privacy=privacy, offline=offline, latency_ms=latency_ms,
                    gpu_memory=_size(gpu_memory), quality=quality, fine_tune=fine_tune, context=context, top=top)
    c.check()

    def price_of(entry):
        p = entry_price(entry)
        if p is None:
            return None
        return {"input_per_mtok": float(p.input_per_mtok), "output_per_mtok": float(p.output_per_mtok),
                "source": p.source, "as_of": p.as_of}

    def memory_of(entry, dtype, ctx):
        if entry.arch is None or entry.params.total is None:
            return None
        from ..memory import estimate_entry

        try:
            return float(estimate_entry(entry, dtype=dtype, context=ctx).total_bytes)
        except Exception:  # an entry the estimator cannot handle: no memory figure, not a crash
            return None

    def measured_of(entry):
        best = None
        for route in entry.routes:
            figures = store.model_figures(route)
            if figures and (best is None or figures["n"] > best["n"]):
                best = {**figures, "route": route}
        return best

    return advise(c, load_catalog(), price_of=price_of, memory_of=memory_of, measured_of=measured_of)
