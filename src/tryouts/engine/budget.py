"""A cost budget for a run: cells start only while the spend so far, plus what the cells in flight are expected
to cost, plus the next cell's expected cost stays within the limit.

Each cell's expected cost comes from the run's dry-run estimate (engine/plan.py): its model's estimated cost
divided by its cells (output tokens: a mean of past results, else ``max_tokens``; input tokens: characters / 4).
A cell that costs more than expected raises its model's expectation to what it cost, so the spend as it
accrues corrects the estimate. The cells in flight when a model's first answers arrive can still take the
spend past the limit, by at most what they cost beyond their estimates: a lower concurrency narrows that. When the next cell would not fit, the run stops: cells not
started get no row, so ``--resume`` runs them later, with a higher budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from .events import CellLike


@dataclass
class CostBudget:
    """``limit`` USD for a run; ``per_cell``: the expected cost of one cell of each model (by model index)."""

    limit: Decimal
    per_cell: dict[int, Decimal]
    spent: Decimal = Decimal(0)
    reserved: Decimal = Decimal(0)
    #: set once a cell could not start: the run stopped at the budget
    stopped: bool = False
    _held: dict[tuple[int, int, int], Decimal] = field(default_factory=dict)

    @classmethod
    def from_plans(cls, limit: Decimal, plans: Sequence) -> CostBudget:
        """From the dry-run estimate's :class:`~tryouts.engine.plan.ModelPlan` list (costs must be known)."""
        return cls(limit, {p.model_index: (p.cost_usd or Decimal(0)) / p.cells for p in plans if p.cells})

    def try_start(self, cell: CellLike) -> bool:
        """Reserve ``cell``'s expected cost if it fits; False (and :attr:`stopped`) when it does not."""
        cost = self.per_cell.get(cell.model_index, Decimal(0))
        if self.stopped or self.spent + self.reserved + cost > self.limit:
            self.stopped = True
            return False
        self.reserved += cost
        self._held[(cell.model_index, cell.case_index, cell.repeat_index)] = cost
        return True

    def finish(self, cell: CellLike, cost: Decimal | None) -> None:
        """``cell`` ended costing ``cost`` (None: unknown or nothing): its reservation becomes spend, and a cell
        that cost more than its model's expected cost raises that expectation for the cells to come."""
        self.reserved -= self._held.pop((cell.model_index, cell.case_index, cell.repeat_index), Decimal(0))
        self.spent += cost or Decimal(0)
        if cost is not None and cost > self.per_cell.get(cell.model_index, Decimal(0)):
            self.per_cell[cell.model_index] = cost
