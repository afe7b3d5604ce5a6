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
from rlnas.layers import LayerKey, _stem_layers, _tail_layers, cell_edge_layer, cell_frame, out_size
from rlnas.space import CellSpace, MacroSpace, Space

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
        self.tables[0] = [
            self.fixed + sum(cost(k) for k in _stem_layers(space, act, self.resolution)[0])
            for act in acts
        ]
        r = _stem_layers(space, acts[0], self.resolution)[1]
        position = 1
        prev_widths: tuple[int, ...] = (space.stem_width,)
        prev_width_pos: int | None = None
        for number, stage in enumerate(space.stages):
            width_pos = position
            last = number == len(space.stages) - 1
            if last:
                # The head and classifier follow the last stage: fixed once its width is known.
                r_end = r
                for s in space.stages[number:]:
                    r_end = out_size(r_end, s.stride)
                self.deps[width_pos] = (0,)
                self.tables[width_pos] = [
                    [sum(cost(k) for k in _tail_layers(space, w, act, r_end)) for w in stage.widths]
                    for act in acts
                ]
            else:
                self.deps[width_pos] = ()
                self.tables[width_pos] = [0.0] * len(stage.widths)
            for slot in range(stage.slots):
                p = width_pos + 1 + slot
                stride = stage.stride if slot == 0 else 1
                r_in = r if slot == 0 else out_size(r, stage.stride)
                if slot == 0:
                    cins_pos = prev_width_pos
                    self.deps[p] = (
                        (0, cins_pos, width_pos) if cins_pos is not None else (0, width_pos)
                    )
                    per_act = []
                    for act in acts:
                        per_cin = []
                        for cin in prev_widths:
                            per_cin.append(
                                [
                                    [
                                        cost(
                                            LayerKey(
                                                b.op,
                                                cin,
                                                w,
                                                r_in,
                                                r_in,
                                                b.kernel,
                                                stride,
                                                b.expand,
                                                b.se,
                                                act,
                                            )
                                        )
                                        for b in space.blocks
                                    ]
                                    for w in stage.widths
                                ]
                            )
                        per_act.append(per_cin if cins_pos is not None else per_cin[0])
                    self.tables[p] = per_act
                else:
                    self.deps[p] = (0, width_pos)
                    self.tables[p] = [
                        [
                            [
                                cost(
                                    LayerKey(
                                        b.op, w, w, r_in, r_in, b.kernel, 1, b.expand, b.se, act
                                    )
                                )
                                for b in space.blocks
                            ]
                            + [0.0]  # skip costs nothing
                            for w in stage.widths
                        ]
                        for act in acts
                    ]
            r = out_size(r, stage.stride)
            prev_widths, prev_width_pos = stage.widths, width_pos
            position = width_pos + 1 + stage.slots

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
