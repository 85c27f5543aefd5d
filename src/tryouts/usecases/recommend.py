"""tryouts recommend over the catalog, with this user's measured figures from the store."""

from __future__ import annotations

from typing import Any


def _size(text: str | None, option: str, reader=None) -> float | None:
    """'24GB', '24 GiB', '80' (GB) → bytes; None stays None."""
    if text is None:
        return None
    from ..errors import UsageError
    from ..memory.gpus import parse_size

    try:
        return float((reader or parse_size)(text))
    except UsageError as exc:
        raise UsageError(f"{option}: {exc.message}") from None


def hardware_of(*, gpu: str | None = None, gpu_memory: str | None = None, ram: str | None = None,
                unified_memory: str | None = None, chip: str | None = None, bandwidth: float | None = None) -> Any:
    """The :class:`~tryouts.memory.hardware.Hardware` the options describe, or None when none is given."""
    from ..errors import UsageError
    from ..memory import hardware as hwm

    given = [name for name, v in (("--gpu/--gpu-memory", gpu or gpu_memory), ("--ram", ram),
                                  ("--unified-memory", unified_memory)) if v]
    if len(given) > 1:
        raise UsageError(f"Describe one machine: {' and '.join(given)} were both given. Use --gpu or --gpu-memory for "
                         "a GPU, --ram for a CPU-only machine, --unified-memory for Apple silicon.")
    if bandwidth is not None and bandwidth <= 0:
        raise UsageError("--bandwidth must be a positive number of GB/s, e.g. 100.")
    bw = bandwidth * 1e9 if bandwidth else None
    if chip and not unified_memory:
        raise UsageError("--chip names an Apple silicon chip: give --unified-memory too, e.g. --unified-memory 16GB "
                         "--chip M3.")
    if gpu or gpu_memory:
        mem = _size(gpu_memory, "--gpu-memory")
        return hwm.gpu(gpu, int(mem) if mem else None, bw)
    if ram:
        return hwm.cpu(int(_size(ram, "--ram", hwm.parse_ram)), bw)
    if unified_memory:
        return hwm.unified(int(_size(unified_memory, "--unified-memory", hwm.parse_ram)), chip, bw)
    if bandwidth is not None:
        raise UsageError("--bandwidth goes with a machine: --gpu, --gpu-memory, --ram or --unified-memory.")
    return None


def advise_with_catalog(store, *, task: str, budget: str, privacy: str, offline: bool, latency_ms: float | None,
                        gpu_memory: str | None, quality: str, fine_tune: bool, context: int, top: int,
                        gpu: str | None = None, ram: str | None = None, unified_memory: str | None = None,
                        chip: str | None = None, bandwidth: float | None = None, commercial: bool = False,
                        open_weights: bool = False) -> dict:
    """The advisor over the catalog, with prices, memory estimates and this user's measured figures."""
    from ..advisor import Constraints
    from ..advisor import recommend as advise
    from ..catalog import entry_price, load_catalog

    hw = hardware_of(gpu=gpu, gpu_memory=gpu_memory, ram=ram, unified_memory=unified_memory, chip=chip,
                     bandwidth=bandwidth)
    c = Constraints(task=task, budget=budget, privacy=privacy, offline=offline, latency_ms=latency_ms,
                    quality=quality, fine_tune=fine_tune, context=context, top=top, hardware=hw,
                    commercial=commercial, open_weights=open_weights)
    c.check()

    def price_of(entry):
        p = entry_price(entry)
        if p is None:
            return None
        return {"input_per_mtok": float(p.input_per_mtok), "output_per_mtok": float(p.output_per_mtok),
                "source": p.source, "as_of": p.as_of, "route": p.route}

    def estimate_of(entry, fmt, ctx):
        if entry.arch is None or entry.params.total is None:
            return None
        from ..memory import estimate_entry

        dtype = f"gguf:{fmt}" if fmt[0] in "QF" else fmt
        try:
            return estimate_entry(entry, dtype=dtype, context=ctx)
        except Exception:  # an entry or format the estimator cannot handle: try the next
            if fmt == "native":
                try:
                    return estimate_entry(entry, dtype="bf16", context=ctx)
                except Exception:
                    return None
            return None

    def measured_of(entry):
        best = None
        for route in entry.routes:
            figures = store.model_figures(route)
            if figures and (best is None or figures["n"] > best["n"]):
                best = {**figures, "route": route}
        return best

    return advise(c, load_catalog(), price_of=price_of, estimate_of=estimate_of, measured_of=measured_of)
