"""Cell spaces: one DAG cell, repeated through the NAS-Bench-201 skeleton.

Decisions: one per edge `i->j` (i < j), ordered by j then i. Canonical
string: NAS-Bench-201's, e.g. `|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|`.
The skeleton (Dong & Yang 2020): a 3x3 stem convolution, stages of
`cells_per_stage` cells joined by residual reduction blocks, BN + ReLU,
global pooling and a classifier.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from rlnas.errors import ArchitectureError, SpaceError
from rlnas.model.costs import CostTerms, LayerCost
from rlnas.model.ops import LayerKey, build_layer, out_size
from rlnas.model.space import Decision, SiblingReader, Space, SpaceReader

CELL_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# Edge ops that compute something: (layer op, kernel). none and skip_connect have no layer.
EDGE_LAYERS = {
    "nor_conv_1x1": ("relu_conv_bn", 1),
    "nor_conv_3x3": ("relu_conv_bn", 3),
    "avg_pool_3x3": ("avg_pool", 3),
}


def edge_layer(op: str, channels: int, size: int) -> LayerKey | None:
    """The layer of one cell edge op, or None for ops that compute nothing (none, skip)."""
    if op not in EDGE_LAYERS:
        return None
    layer_op, kernel = EDGE_LAYERS[op]
    act = "relu" if layer_op == "relu_conv_bn" else "none"
    return LayerKey(layer_op, channels, channels, size, size, kernel, 1, act=act)


@dataclass(frozen=True, eq=False)
class CellSpace(Space):
    """One DAG cell, repeated through the NAS-Bench-201 skeleton (see the module docstring).

    Attributes:
        ops: Operation choices per edge.
        nodes: Nodes in the cell, the input node included.
        cells_per_stage: Cells in each of the stages.
        widths: Channels of each stage.
        order: If given, the benchmark's enumeration order: `order[i]` is the
            choice vector of index i.
    """

    KEYS: ClassVar[set[str]] = {"ops", "nodes", "cells_per_stage", "widths", "order"}
    RESOLUTION_MULTIPLE: ClassVar[int] = 4

    ops: tuple[str, ...] = ()
    nodes: int = 4
    cells_per_stage: int = 5
    widths: tuple[int, ...] = ()
    order: tuple[tuple[int, ...], ...] | None = field(default=None, repr=False)

    @functools.cached_property
    def edges(self) -> tuple[tuple[int, int], ...]:
        """(source, target) node pairs, in decision order."""
        return tuple((i, j) for j in range(1, self.nodes) for i in range(j))

    @functools.cached_property
    def _order_index(self) -> dict[tuple[int, ...], int]:
        return {choices: i for i, choices in enumerate(self.order or ())}

    # -- canonical strings and the benchmark's order

    def encode(self, choices: tuple[int, ...]) -> str:
        self.check_choices(choices)
        groups: list[list[str]] = [[] for _ in range(self.nodes - 1)]
        for (i, j), choice in zip(self.edges, choices, strict=True):
            groups[j - 1].append(f"{self.ops[choice]}~{i}")
        return "+".join("|" + "|".join(group) + "|" for group in groups)

    def decode(self, text: str) -> tuple[int, ...]:
        groups = text.strip().split("+")
        if len(groups) != self.nodes - 1:
            raise ArchitectureError(
                f"'{text}' has {len(groups)} '+'-separated node groups; space '{self.name}' "
                f"needs {self.nodes - 1}, e.g. '{self.encode((0,) * self.num_decisions)}'"
            )
        choices: list[int] = []
        for j, group in enumerate(groups, 1):
            items = group.split("|")
            if len(items) != j + 2 or items[0] or items[-1]:
                raise ArchitectureError(
                    f"node group {j} '{group}' of '{text}' must be '|op~0|...|op~{j - 1}|'"
                )
            for i, item in enumerate(items[1:-1]):
                op, sep, source = item.partition("~")
                if not sep or source != str(i):
                    raise ArchitectureError(
                        f"token '{item}' in node group {j} of '{text}' must be 'op~{i}'"
                    )
                choices.append(self.token_index(len(choices), op))
        return tuple(choices)

    def index(self, choices: tuple[int, ...]) -> int:
        if self.order is None:
            return super().index(choices)
        self.check_choices(choices)
        return self._order_index[choices]

    def from_index(self, index: int) -> tuple[int, ...]:
        if self.order is None:
            return super().from_index(index)
        if not 0 <= index < len(self.order):
            raise ArchitectureError(
                f"index {index} is outside space '{self.name}'; allowed: 0..{self.size - 1}"
            )
        return self.order[index]

    # -- layers

    def frame(
        self, resolution: int
    ) -> tuple[list[LayerKey], list[LayerKey], list[tuple[int, int]]]:
        """Stem and reductions, the head, and (channels, size) of each stage."""
        c0 = self.widths[0]
        front = [LayerKey("conv", 3, c0, resolution, resolution, 3, 1, act="none")]
        stages = []
        r = resolution
        for number, c in enumerate(self.widths):
            if number:
                prev = self.widths[number - 1]
                front.append(LayerKey("nb201_reduce", prev, c, r, r, 3, 2, act="relu"))
                r = out_size(r, 2)
            stages.append((c, r))
        c, r = stages[-1]
        head = [
            LayerKey("bn_act", c, c, r, r, act="relu"),
            LayerKey("classifier", c, self.num_classes, r, r),
        ]
        return front, head, stages

    def layers(self, choices: tuple[int, ...], resolution: int) -> list[LayerKey]:
        front, head, stages = self.frame(resolution)
        ops = [self.ops[c] for c in choices]
        keys = [front[0]]
        for number, (c, r) in enumerate(stages):
            if number:
                keys.append(front[number])
            cell: list[LayerKey] = []
            for j in range(1, self.nodes):
                inputs = [
                    op
                    for op, (_, target) in zip(ops, self.edges, strict=True)
                    if target == j and op != "none"
                ]
                cell += [k for k in (edge_layer(op, c, r) for op in inputs) if k is not None]
                cell += [LayerKey("add", c, c, r, r)] * max(0, len(inputs) - 1)
            keys += cell * self.cells_per_stage
        return keys + head

    def unique_layers(self, resolution: int) -> set[LayerKey]:
        front, head, stages = self.frame(resolution)
        keys = set(front) | set(head)
        for c, r in stages:
            keys.update(k for k in (edge_layer(op, c, r) for op in self.ops) if k is not None)
            if self.nodes > 2 and any(op != "none" for op in self.ops):
                keys.add(LayerKey("add", c, c, r, r))
        return keys

    # -- per-decision costs

    def cost_terms(self, resolution: int, cost: LayerCost, fixed: float) -> CostTerms:
        """Each edge adds its op in every cell; a node's adds are fixed by its last edge."""
        front, head, stages = self.frame(resolution)
        base = fixed + sum(cost(k) for k in front + head)
        per_op = []
        for op in self.ops:
            total = 0.0
            for c, r in stages:
                key = edge_layer(op, c, r)
                total += self.cells_per_stage * (cost(key) if key is not None else 0.0)
            per_op.append(total)
        add = sum(self.cells_per_stage * cost(LayerKey("add", c, c, r, r)) for c, r in stages)
        tables: list[Any] = [list(per_op) for _ in range(self.num_decisions)]
        tables[0] = [v + base for v in per_op]
        none = self.ops.index("none") if "none" in self.ops else -1
        last_edge = {
            max(p for p, (_, target) in enumerate(self.edges) if target == j): [
                p for p, (_, target) in enumerate(self.edges) if target == j
            ]
            for j in range(1, self.nodes)
        }

        def adds(position: int, choices: Sequence[int]) -> float:
            group = last_edge.get(position)
            if group is None:
                return 0.0
            inputs = sum(choices[p] != none for p in group)
            return add * max(0, inputs - 1)

        return CostTerms(tuple(() for _ in tables), tables, adds)

    # -- torch

    def build(self, choices: tuple[int, ...], resolution: int) -> nn.Module:
        front, head, stages = self.frame(resolution)
        layers: list[nn.Module] = [build_layer(front[0])]
        for number, (channels, size) in enumerate(stages):
            if number:
                layers.append(build_layer(front[number]))
            layers += [Cell(self, choices, channels, size) for _ in range(self.cells_per_stage)]
        layers += [build_layer(k) for k in head]
        return nn.Sequential(*layers)

    # -- space files

    @classmethod
    def parse(
        cls, reader: SpaceReader, read_sibling: SiblingReader
    ) -> tuple[dict[str, Any], tuple[Decision, ...], dict[str, Any]]:
        ops = tuple(reader.get_list("ops", str, choices=CELL_OPS))
        nodes = reader.get("nodes", int, minimum=2)
        edges = [(i, j) for j in range(1, nodes) for i in range(j)]
        decisions = tuple(Decision(f"edge {i}->{j}", ops) for i, j in edges)
        order = None
        if "order" in reader.data:
            order_file = reader.get("order", str)
            expected = len(ops) ** len(edges)
            problem = SpaceError(
                f"{reader.source}: order file '{order_file}' must list each of the {expected} "
                f"cells once, as {len(edges)} digits below {len(ops)} per line"
            )
            try:
                lines = read_sibling(order_file).split()
            except OSError as exc:
                raise SpaceError(
                    f"{reader.source}: cannot read order file '{order_file}': {exc}"
                ) from None
            allowed_digits = {str(i) for i in range(len(ops))}
            if any(len(line) != len(edges) or not set(line) <= allowed_digits for line in lines):
                raise problem
            order = tuple(tuple(int(c) for c in line) for line in lines)
            if len(set(order)) != expected or len(order) != expected:
                raise problem
        extra = dict(
            ops=ops,
            nodes=nodes,
            cells_per_stage=reader.get("cells_per_stage", int, minimum=1),
            widths=tuple(reader.get_list("widths", int, minimum=1)),
            order=order,
        )
        # The order is part of what the space is: an edited order is another space.
        return extra, decisions, {"order": order}


class Cell(nn.Module):
    """A NAS-Bench-201 cell: node j sums op(i->j)(node i) over its non-`none` edges."""

    def __init__(self, space: CellSpace, choices: tuple[int, ...], channels: int, size: int):
        super().__init__()
        self.edges: list[tuple[int, int]] = []
        ops = nn.ModuleList()
        for (i, j), choice in zip(space.edges, choices, strict=True):
            op = space.ops[choice]
            if op == "none":
                continue
            key = edge_layer(op, channels, size)
            ops.append(nn.Identity() if key is None else build_layer(key))
            self.edges.append((i, j))
        self.ops = ops
        self.nodes = space.nodes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in range(1, self.nodes):
            inputs = [
                op(nodes[i])
                for (i, target), op in zip(self.edges, self.ops, strict=True)
                if target == j
            ]
            if not inputs:
                # NAS-Bench-201's `none` op outputs zeros.
                nodes.append(x * 0.0)
                continue
            total = inputs[0]
            for other in inputs[1:]:
                total = total + other
            nodes.append(total)
        return nodes[-1]
