"""The scheduler: a run's cells into lanes (engine/executor.py), before anything is sent.

* Servers: one lane per server (provider name and base URL), each with its own limits
  (:meth:`Policy.limits_for`): the suite's concurrency for the provider, else what its registry entry
  declares (1 for llama.cpp's server, which aborts a running request when another arrives, wherever it
  runs), else 4 for a remote API and 1 for a server on this machine. Its
  cells are ordered repeat by repeat, case by case, so every model of a lane makes progress together.
* In-process models (``hf``, ``llamacpp``, a plugin's): one lane for all of them; they take turns, each
  loaded once, fed its cells, then closed before the next loads.
* Owners for the machine gate (engine/gate.py): ``remote`` for servers elsewhere, one per server on a
  loopback address, ``in-process`` for in-process models: timed work of different owners never overlaps.

A model whose provider cannot be set up (unknown provider, missing key, bad option) goes to
``Schedule.failed`` with the reason, so each of its cells is recorded as failed with the same clear error.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence

from .. import errors
from ..providers import create_provider, get_info
from ..providers.base import Provider, is_loopback_url
from .events import CellLike
from .executor import IN_PROCESS, Lane, LaneKey, Schedule
from .policy import Policy


def make_provider(cell: CellLike, policy: Policy) -> Provider:
    """The provider for ``cell``'s model, with the policy's connect timeout where the provider takes one."""
    provider = create_provider(cell.spec)
    if policy.connect_timeout_s and "connect_timeout" in provider.options:
        provider.spec.options.setdefault("connect_timeout", policy.connect_timeout_s)
    return provider


def _owner(key: LaneKey, providers: Iterable[Provider]) -> Hashable:
    return ("server", key.provider, key.server) if any(p.on_this_machine for p in providers) else "remote"


def schedule(
    cells: Sequence[CellLike], policy: Policy, skip: set[tuple[int, int, int]] | None = None,
) -> Schedule:
    """Every cell not in ``skip`` (cells already recorded, on resume), in its lane."""
    skip = skip or set()
    by_model: dict[int, list[CellLike]] = defaultdict(list)
    for c in cells:
        if (c.model_index, c.case_index, c.repeat_index) not in skip:
            by_model[c.model_index].append(c)

    failed: list[tuple[list[CellLike], BaseException]] = []
    local = Lane(IN_PROCESS, policy.limits_for(IN_PROCESS.provider, True), "in-process", {})
    servers: dict[LaneKey, Lane] = {}
    for m in sorted(by_model):
        model_cells = by_model[m]
        try:
            info = get_info(model_cells[0].spec.provider)
        except errors.TryoutsError as exc:
            failed.append((model_cells, exc))
            continue
        if info.local:
            local.cells[m] = model_cells
            continue
        try:
            provider = make_provider(model_cells[0], policy)
        except Exception as exc:  # every cell of this model fails with the same clear error
            failed.append((model_cells, exc))
            continue
        key = LaneKey(info.name, provider.server)
        lane = servers.get(key)
        if lane is None:
            limits = policy.limits_for(info.name, is_loopback_url(provider.server), info.concurrency)
            lane = servers[key] = Lane(key, limits, "", {})
        lane.cells[m] = model_cells
        lane.providers[m] = provider
    for lane in servers.values():
        lane.owner = _owner(lane.key, lane.providers.values())
    lanes = ([local] if local.cells else []) + list(servers.values())
    return Schedule(lanes=lanes, failed=failed)


def lane_order(lane: Lane) -> list[CellLike]:
    """An API lane's cells in the order to hand them out: repeat by repeat, case by case, model by model."""
    return sorted((c for cs in lane.cells.values() for c in cs),
                  key=lambda c: (c.repeat_index, c.case_index, c.model_index))
