"""Fast additive costs of architectures (latency from a table, parameter bytes), per decision.

A network's latency predicted from a table, and its parameter count, are sums
over its layers. Each layer is fixed as soon as the last decision it depends on
is taken, so the sum can be accumulated one decision at a time: this module
precomputes, for every decision position, the cost that each choice adds given
the choices it depends on (activation, this and the previous stage's widths).
`increment` serves the environment's "cost so far"; `total` gives a whole
architecture in a few microseconds, without building layer keys.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rlnas.errors import LayerError
from rlnas.model.layers import (
    LayerKey,
    cell_edge_layer,
    cell_frame,
    out_size,
    stem_layers,
    tail_layers,
)
from rlnas.model.space import CellSpace, MacroSpace, Space

LayerCost = Callable[[LayerKey], float]


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
        self._adds: tuple[float, int, list[list[int]]] | None = None
        if isinstance(space, MacroSpace):
            self._macro(space, layer_cost)
        elif isinstance(space, CellSpace):
            self._cell(space, layer_cost)
        else:
            raise LayerError(f"no cost model for space kind '{space.kind}'")

    # Tables: self.tables[p] is a nested list indexed by the choices in self.deps[p], then by
    # the choice at p. deps[p] lists the earlier positions the cost at p depends on.

    def _macro(self, space: MacroSpace, cost: LayerCost) -> None:
        n = space.num_decisions
        self.deps: list[tuple[int, ...]] = [()] * n
        self.tables: list[list[Any]] = [[] for _ in range(n)]
        acts = space.activations
        stems = [stem_layers(space, act, self.resolution) for act in acts]
        self.tables[0] = [self.fixed + sum(cost(k) for k in keys) for keys, _ in stems]
        size = stems[0][1]

        def slot(act: str, cin: int, width: int, size: int, stride: int) -> list[float]:
            """Cost of each block choice of one slot (skip, where allowed, is last and free)."""
            return [
                cost(LayerKey(b.op, cin, width, size, size, b.kernel, stride, b.expand, b.se, act))
                for b in space.blocks
            ]

        position, prev_position = 1, None
        prev_widths: tuple[int, ...] = (space.stem_width,)
        for number, stage in enumerate(space.stages):
            width_position, first = position, position + 1
            size_out = out_size(size, stage.stride)
            self.tables[width_position] = [0.0] * len(stage.widths)
            if number == len(space.stages) - 1:
                # The head and classifier follow the last stage: fixed once its width is known.
                self.deps[width_position] = (0,)
                self.tables[width_position] = [
                    [
                        sum(cost(k) for k in tail_layers(space, w, act, size_out))
                        for w in stage.widths
                    ]
                    for act in acts
                ]
            # The first slot changes width and stride: it depends on the previous stage's width.
            if prev_position is None:
                self.deps[first] = (0, width_position)
                self.tables[first] = [
                    [slot(act, prev_widths[0], w, size, stage.stride) for w in stage.widths]
                    for act in acts
                ]
            else:
                self.deps[first] = (0, prev_position, width_position)
                self.tables[first] = [
                    [
                        [slot(act, cin, w, size, stage.stride) for w in stage.widths]
                        for cin in prev_widths
                    ]
                    for act in acts
                ]
            for p in range(first + 1, first + stage.slots):
                self.deps[p] = (0, width_position)
                self.tables[p] = [
                    [[*slot(act, w, w, size_out, 1), 0.0] for w in stage.widths] for act in acts
                ]
            size, prev_widths, prev_position = size_out, stage.widths, width_position
            position = first + stage.slots

    def _cell(self, space: CellSpace, cost: LayerCost) -> None:
        front, head, stages = cell_frame(space, self.resolution)
        n = space.num_decisions
        base = self.fixed + sum(cost(k) for k in front + head)
        per_op = []
        for op in space.ops:
            total = 0.0
            for c, r in stages:
                key = cell_edge_layer(op, c, r)
                total += space.cells_per_stage * (cost(key) if key is not None else 0.0)
            per_op.append(total)
        add = sum(space.cells_per_stage * cost(LayerKey("add", c, c, r, r)) for c, r in stages)
        self.deps = [()] * n
        self.tables = [list(per_op) for _ in range(n)]
        self.tables[0] = [v + base for v in per_op]
        # The adds of node j are fixed when its last incoming edge is decided.
        none = space.ops.index("none") if "none" in space.ops else -1
        self._adds = (
            add,
            none,
            [
                [p for p, (_, target) in enumerate(space.edges) if target == j]
                for j in range(1, space.nodes)
            ],
        )

    def increment(self, position: int, choices: Sequence[int]) -> float:
        """Cost added by the decision at `position`, given the choices up to it."""
        table = self.tables[position]
        for dep in self.deps[position]:
            table = table[choices[dep]]
        value = float(table[choices[position]])
        if self._adds is not None:
            add, none, groups = self._adds
            for group in groups:
                if group[-1] == position:
                    inputs = sum(choices[p] != none for p in group)
                    value += add * max(0, inputs - 1)
        return value

    def total(self, choices: Sequence[int]) -> float:
        """Cost of a whole architecture."""
        return sum(self.increment(p, choices) for p in range(len(choices)))
