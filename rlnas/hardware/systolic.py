"""An analytic systolic-array accelerator (TPU-like): runtime and utilization of each layer.

The model is U-Boost's (Yüzügüler et al., "U-Boost NAS: Utilization-Boosted
Differentiable Neural Architecture Search", ECCV 2022). A convolution runs on an
s1 x s2 array as a matrix product: its reduction (k1*k2*c input values per
output) is laid along the s1 rows and its f filters along the s2 columns, and
the array works through the tiles of that weight matrix one output pixel at a
time:

    RUNTIME = ceil(k1*k2*c / s1) * ceil(f / s2) * h * w * b   cycles
    UTIL    = k1*k2*c*f / (s1 * s2 * ceil(k1*k2*c / s1) * ceil(f / s2))

with k1, k2 the kernel, c the input channels, f the filters, h x w the output
and b the batch.

Grouped and depthwise convolutions (g groups; depthwise: g = c = f) map in one
of two ways, a setting of the array:

- `block-diagonal` (the default): the g groups form one weight matrix that is
  zero outside its diagonal blocks, and the array runs only the tiles that
  hold a non-zero weight. A depthwise convolution whose channels fill the
  array runs at about 1/s2 utilization: each tile's column holds one channel.
- `per-group`: the groups run one after another, each a small dense matrix
  (g * ceil(k1*k2*c/g / s1) * ceil(f/g / s2) tiles).

Everything else (pooling, residual adds, channel shuffles, SE's channel
scaling) runs on a vector unit of s2 lanes: ceil(elements / s2) cycles, no
array MACs. Activations are applied as results leave the array (free). SE's
two fully connected layers are 1x1 matrix products on the array. Memory
traffic is not modelled (U-Boost's formula has none): the cycles are the
array's compute.

A layer's latency is its cycles over the clock. Utilization is MAC-weighted:
the MACs done over the MAC slots the array offered while doing them,
sum(MACs) / (s1 * s2 * sum(array cycles)), over a layer's matrix products or a
whole network's (the harmonic mean of the layers' utilizations, each weighted by
its MACs). So a depthwise convolution with few MACs but many cycles pulls a
network's utilization down as much as it slows it, as in U-Boost's figures. A
layer with nothing on the array (pooling) has 0 MACs and counts for nothing. A
network's latency is the sum over its layers.

The same module gives the two cost models that U-Boost compares against, for
the same array: `flops` (every MAC at full utilization: MACs / (s1 * s2)
cycles) and `roofline` (max(that, bytes moved / bandwidth); elementwise work
at the vector unit's rate).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

from rlnas.errors import RlnasError, unknown
from rlnas.model.ops import LayerKey, layer_primitives
from rlnas.model.zoo import Op

MAPPINGS = ("block-diagonal", "per-group")
COST_MODELS = ("analytic", "flops", "roofline")
# Matrix products run on the array; everything else on the vector unit.
ARRAY_KINDS = ("conv1x1", "conv", "depthwise", "grouped")


@dataclass(frozen=True)
class SystolicArray:
    """One systolic-array accelerator.

    Attributes:
        rows: s1, the array's rows (the reduction dimension).
        cols: s2, its columns (the filters), also the vector unit's lanes.
        clock_mhz: Clock frequency.
        mapping: How grouped and depthwise convolutions map (`MAPPINGS`).
        bandwidth_gbs: Memory bandwidth, for the `roofline` cost model only.
        bytes_per_element: Size of a weight or activation (int8: 1), for the roofline.
    """

    rows: int = 128
    cols: int = 128
    clock_mhz: float = 700.0
    mapping: str = "block-diagonal"
    bandwidth_gbs: float = 30.0
    bytes_per_element: int = 1

    def __post_init__(self) -> None:
        if self.rows < 1 or self.cols < 1:
            raise RlnasError(f"a systolic array needs at least 1x1 cells, got {self.size}")
        if not self.clock_mhz > 0 or not self.bandwidth_gbs > 0:
            raise RlnasError(
                f"clock ({self.clock_mhz} MHz) and bandwidth ({self.bandwidth_gbs} GB/s) must "
                "be > 0"
            )
        if self.mapping not in MAPPINGS:
            raise RlnasError(unknown("grouped-convolution mapping", self.mapping, MAPPINGS))

    @property
    def size(self) -> str:
        return f"{self.rows}x{self.cols}"

    def describe(self) -> str:
        return (
            f"{self.size} systolic array at {self.clock_mhz:g} MHz, grouped/depthwise "
            f"convolutions {self.mapping}, vector unit of {self.cols} lanes"
        )


def parse_array(text: str) -> tuple[int, int]:
    """(s1, s2) from "128x128"; raises RlnasError naming the value otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX*]\s*(\d+)\s*", text)
    if match is None or min(int(match[1]), int(match[2])) < 1:
        raise RlnasError(f"array size '{text}' is not ROWSxCOLS; write e.g. --array 128x128")
    return int(match[1]), int(match[2])


@dataclass(frozen=True)
class Cost:
    """Cycles of some work and the MACs it performs on the array.

    Attributes:
        cycles: Clock cycles (array and vector unit).
        macs: Multiply-accumulates done on the array.
        slots: MAC slots the array offered while doing them (s1 * s2 * its cycles).
    """

    cycles: float
    macs: float
    slots: float

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.cycles + other.cycles, self.macs + other.macs, self.slots + other.slots)

    @property
    def utilization(self) -> float:
        """MAC-weighted utilization, macs / slots; 0 where nothing ran on the array."""
        return self.macs / self.slots if self.slots else 0.0


def gemm_tiles(reduce: int, filters: int, groups: int, array: SystolicArray) -> int:
    """Weight tiles the array works through per output pixel for a convolution in `groups`
    groups, each with `reduce` inputs per output (k1*k2*c/g) and `filters` / `groups`
    filters."""
    per_group = filters // groups
    if groups == 1 or array.mapping == "per-group":
        return groups * math.ceil(reduce / array.rows) * math.ceil(per_group / array.cols)
    return _diagonal_tiles(reduce, per_group, groups, array.rows, array.cols)


@functools.cache
def _diagonal_tiles(reduce: int, per_group: int, groups: int, rows: int, cols: int) -> int:
    """Tiles of a block-diagonal weight matrix (g blocks of reduce x per_group) that hold a
    non-zero weight."""
    tiles: set[tuple[int, int]] = set()
    for g in range(groups):
        row_tiles = range(g * reduce // rows, ((g + 1) * reduce - 1) // rows + 1)
        col_tiles = range(g * per_group // cols, ((g + 1) * per_group - 1) // cols + 1)
        tiles.update((r, c) for r in row_tiles for c in col_tiles)
    return len(tiles)


def conv_cost(
    kernel: int, cin: int, filters: int, out_pixels: int, array: SystolicArray, groups: int = 1,
    batch: int = 1,
) -> Cost:  # fmt: skip
    """U-Boost's runtime (cycles) and utilization of one convolution (see module docstring)."""
    reduce = kernel * kernel * (cin // groups)
    tiles = gemm_tiles(reduce, filters, groups, array)
    cycles = tiles * out_pixels * batch
    return Cost(cycles, reduce * filters * out_pixels * batch, array.rows * array.cols * cycles)


def op_cost(op: Op, array: SystolicArray, batch: int = 1, model: str = "analytic") -> Cost:
    """Cost of one primitive operation (`rlnas.model.zoo.Op`) under a cost model."""
    if model not in COST_MODELS:
        raise RlnasError(unknown("cost model", model, COST_MODELS))
    if op.kind in ARRAY_KINDS:
        cost = _array_cost(op, array, batch)
    elif op.kind == "se":
        cost = _se_cost(op, array, batch)
    else:
        cost = Cost(math.ceil(op.macs * batch / array.cols), 0.0, 0.0)
    if model == "analytic":
        return cost
    ideal = cost.macs / (array.rows * array.cols) if cost.macs else cost.cycles
    if model == "roofline":
        moved = (op.in_elems + op.out_elems) * batch + op.weights
        memory = moved * array.bytes_per_element * array.clock_mhz / (array.bandwidth_gbs * 1e3)
        ideal = max(ideal, memory)
    return Cost(ideal, cost.macs, cost.macs)


def _array_cost(op: Op, array: SystolicArray, batch: int) -> Cost:
    groups = op.groups
    reduce_per_group = op.weights // op.cout  # k1*k2*c/g
    out_pixels = op.out_elems // op.cout
    cycles = gemm_tiles(reduce_per_group, op.cout, groups, array) * out_pixels * batch
    return Cost(cycles, op.macs * batch, array.rows * array.cols * cycles)


def _se_cost(op: Op, array: SystolicArray, batch: int) -> Cost:
    channels = op.cout
    squeezed = op.weights // (2 * channels)
    first = conv_cost(1, channels, squeezed, 1, array, batch=batch)
    second = conv_cost(1, squeezed, channels, 1, array, batch=batch)
    scale = math.ceil((op.macs - op.weights) * batch / array.cols)  # pooling and the scale
    return first + second + Cost(scale, 0.0, 0.0)


def layer_cost(
    key: LayerKey, array: SystolicArray, batch: int = 1, model: str = "analytic"
) -> Cost:
    """Cost of one layer: the sum over its primitive operations (activations fused)."""
    total = Cost(0.0, 0.0, 0.0)
    for op in layer_primitives(key, fused_activations=True):
        total = total + op_cost(op, array, batch, model)
    return total


def cycles_ms(cycles: float, array: SystolicArray) -> float:
    return cycles / (array.clock_mhz * 1e3)
