"""What the commands share: the --db option and its store, -o options, number formats. Command modules import
this module and render.py / views.py, never each other."""

from __future__ import annotations

from typing import Any

DB_HELP = "Results database: a file path or an SQLAlchemy URL (default: TRYOUTS_DB, else tryouts.db in the user data dir)."


def parse_options(raw: list[str], n_models: int) -> list[dict[str, Any]]:
    """``[N:]KEY=VALUE`` items -> one options mapping per model (N is the model's 1-based position)."""
    import yaml

    from ..errors import UsageError

    per_model: list[dict[str, Any]] = [{} for _ in range(n_models)]
    for item in raw:
        target, key_value = None, item
        head, sep, rest = item.partition(":")
        if sep and head.isdigit():
            target, key_value = int(head), rest
        key, sep, value = key_value.partition("=")
        if not sep or not key:
            raise UsageError(f"Option {item!r} is not KEY=VALUE (or N:KEY=VALUE for the N-th model only).")
        if target is not None and not 1 <= target <= n_models:
            raise UsageError(f"Option {item!r} names model {target}, but there are {n_models} models.")
        parsed = yaml.safe_load(value) if value else ""
        for i in [target - 1] if target else range(n_models):
            per_model[i][key.strip()] = parsed
    return per_model


def open_store(db: str | None):
    """The results store of --db (else TRYOUTS_DB, else the default file)."""
    from ..paths import default_db
    from ..store import Store

    return Store(db or default_db())


def fmt_params(total: int | None, active: int | None = None, is_open: bool = False) -> str:
    """Billions: ``70.6``, ``8.03``, ``0.110``; MoE adds the active count in brackets; None = undisclosed (or not recorded)."""
    if total is None:
        return "not recorded" if is_open else "undisclosed"

    def b(n: int) -> str:
        x = n / 1e9
        return f"{x:.3f}" if x < 1 else (f"{x:.2f}" if x < 10 else f"{x:.1f}")

    return f"{b(total)} ({b(active)})" if active else b(total)


def fmt_context(n: int | None) -> str:
    """A context window as people say it: a multiple of 1024 (and not of 1000) in binary units (8192 → 8k, 131072 → 128k,
    1048576 → 1M), any other size in decimal ones (200000 → 200k, 1000000 → 1M). ``--min-context 128k``
    (128,000) keeps every window shown as 128k."""
    if n is None:
        return "-"
    for unit, step in (("M", 1 << 20), ("k", 1 << 10)):
        if n >= step and n % step == 0 and n % 1000:  # 128000 is 128k, not 125 × 1024
            return f"{n // step}{unit}"
    if n >= 1_000_000:
        return f"{n / 1e6:.3g}M"
    if n >= 10_000:
        return f"{n / 1e3:.0f}k"
    return f"{n / 1e3:.1f}k" if n >= 1000 else str(n)


def fmt_count(n: int) -> str:
    """A parameter count: 1.24 B, 135.0 M, 12.3 K."""
    if n >= 1e9:
        return f"{n / 1e9:,.2f} B"
    if n >= 1e6:
        return f"{n / 1e6:,.1f} M"
    return f"{n / 1e3:,.1f} K" if n >= 1e3 else str(n)


def scoring_from_options(*, judge: str | None, rubric: str | None, scale: str, pairwise: bool,
                         embedding: str | None, scorers: list[str], judge_options: list[str]) -> Any:
    """The :class:`~tryouts.suite.schema.ScoringSpec` of the command line's scoring options (None: none given).

    Shared by ``tryouts score`` and ``tryouts compare``; a bad option raises UsageError naming it.
    """
    from ..errors import UsageError
    from ..suite.schema import ScoringSpec
    from .common import parse_options

    if not (judge or rubric or pairwise or embedding or scorers):
        return None
    if (rubric or pairwise) and not judge:
        raise UsageError("--rubric and --pairwise need a judge model: --judge PROVIDER:MODEL.")
    if judge and not (rubric or pairwise):
        raise UsageError("Tell the judge what to do: --rubric TEXT and/or --pairwise.")
    try:
        lo, hi = (int(x) for x in scale.split("-", 1))
    except ValueError:
        raise UsageError(f"--scale should be LOW-HIGH such as 1-5, not {scale!r}.") from None
    spec: dict = {"embedding": embedding, "scorers": list(scorers)}
    if judge:
        spec["judge"] = {"model": {"model": judge, "options": parse_options(judge_options, 1)[0]}, "rubric": rubric,
                         "pairwise": pairwise, "scale": [lo, hi]}
    try:
        return ScoringSpec.model_validate(spec)
    except ValueError as exc:
        problems = exc.errors() if hasattr(exc, "errors") else []
        if not problems:
            raise UsageError(f"Bad scoring options: {exc}") from None
        flag = {"judge": "--judge", "scorers": "--scorer", "embedding": "--embedding", "scale": "--scale"}

        def where(loc: tuple) -> str:
            parts = [str(p) for p in loc if not str(p).startswith("<")]
            named = [flag[p] for p in parts if p in flag]
            return named[-1] if named else ".".join(parts)

        raise UsageError("Bad scoring options: " + "; ".join(
            f"{where(p['loc'])}: {p['msg'].removeprefix('Value error, ')}" for p in problems)) from None
