"""Fast additive costs of architectures (latency from a table, parameter bytes), per decision.

A network's latency predicted from a table, and its parameter count, are sums
over its layers. Each layer is fixed as soon as the last decision it depends on
is taken, so the sum can be accumulated one decision at a time: each kind of
space precomputes (`Space.cost_terms`), for every decision position, the cost
that each choice adds given the earlier choices it depends on. `increment`
serves the environment's "cost so far"; `total` gives a whole architecture in
a few microseconds, without building layer keys.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rlnas.model.ops import LayerKey
    from rlnas.model.space import Space

LayerCost = Callable[["LayerKey"], float]


@dataclass(frozen=True)
class CostTerms:
    """Per-decision cost tables of one space, resolution and layer cost.

    Attributes:
        deps: For each position, the earlier positions its cost depends on.
        tables: For each position, a nested list indexed by the choices at `deps`, then
            by the choice at the position.
        extra: Cost a position adds that no table holds (e.g. a cell node's adds, known
            once its last incoming edge is chosen), or None.
    """

    deps: tuple[tuple[int, ...], ...]
    tables: list[Any]
    extra: Callable[[int, Sequence[int]], float] | None = None


class AdditiveCost:
    """Sum of a per-layer cost over an architecture's layers, decision by decision.

    Args:
        space: The space.
        resolution: Input resolution of the layers.
        layer_cost: Cost of one layer (e.g. its table latency without call overhead).
        fixed: A constant added once (e.g. the per-call overhead), counted at position 0.
    """

    def __init__(self, space: Space, resolution: int, layer_cost: LayerCost, fixed: float = 0.0):
        self.space = space
        self.resolution = resolution
        self.fixed = fixed
        self.terms = space.cost_terms(resolution, layer_cost, fixed)

    def increment(self, position: int, choices: Sequence[int]) -> float:
        """Cost added by the decision at `position`, given the choices up to it."""
        table = self.terms.tables[position]
        for dep in self.terms.deps[position]:
            table = table[choices[dep]]
        value = float(table[choices[position]])
        if self.terms.extra is not None:
            value += self.terms.extra(position, choices)
        return value

    def total(self, choices: Sequence[int]) -> float:
        """Cost of a whole architecture."""
        return sum(self.increment(p, choices) for p in range(len(choices)))

    def cheapest(self, max_states: int = 1_000_000) -> tuple[float, tuple[int, ...]] | None:
        """The least total cost any architecture of the space has, and one such
        architecture; None where it cannot be found exactly within `max_states`.

        Dynamic programming over the decisions: after each one, only the choices that
        later decisions still depend on are kept as the state, with the cheapest way
        to reach it. A space with costs outside the tables (`extra`) is enumerated
        where it is small enough.
        """
        if self.terms.extra is not None:
            if self.space.size > max_states:
                return None
            every = (self.space.from_index(i) for i in range(self.space.size))
            return min((self.total(c), c) for c in every)
        counts = self.space.choice_counts
        needed_after = [
            {q for later in self.terms.deps[p + 1 :] for q in later if q <= p}
            for p in range(len(counts))
        ]
        states: dict[tuple[int, ...], tuple[float, tuple[int, ...]]] = {(): (0.0, ())}
        for position, count in enumerate(counts):
            live = sorted(needed_after[position])
            reached: dict[tuple[int, ...], tuple[float, tuple[int, ...]]] = {}
            for cost, choices in states.values():
                for choice in range(count):
                    path = (*choices, choice)
                    value = cost + self.increment(position, path)
                    key = tuple(path[q] for q in live)
                    if key not in reached or value < reached[key][0]:
                        reached[key] = (value, path)
            if len(reached) > max_states:
                return None
            states = reached
        return min(states.values())
