"""Layer configurations: the keys of a lookup table.

A network is a sequence of layers (blocks); each `LayerKey` fixes everything
that determines one layer's computation and so its latency. A lookup table
holds one row per unique key of a space at one resolution and batch size.
`arch_layers` lists an architecture's keys; `enumerate_layers` lists every key
that any architecture of the space can produce, without enumerating the
architectures.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields

from rlnas.errors import LayerError
from rlnas.model.arch import Architecture
from rlnas.model.space import CellSpace, MacroSpace, Space, get_space

# Layer ops and what they are (built by rlnas.model.blocks):
#   conv          kxk convolution + BN + activation (stems, heads; act "none": no activation)
#   maxpool       3x3 stride-2 max pooling
#   ir, er, basic inverted residual (MBConv), fused MBConv, ResNet basic block
#   classifier    global average pooling + linear layer
#   relu_conv_bn  NAS-Bench-201 ReLU -> conv -> BN edge op
#   avg_pool      3x3 stride-1 average pooling (padding not counted)
#   add           sum of two tensors of the key's shape
#   nb201_reduce  NAS-Bench-201 residual reduction block (stride 2)
#   bn_act        BN + activation
LAYER_OPS = (
    "conv",
    "maxpool",
    "ir",
    "er",
    "basic",
    "classifier",
    "relu_conv_bn",
    "avg_pool",
    "add",
    "nb201_reduce",
    "bn_act",
)


@dataclass(frozen=True, order=True)
class LayerKey:
    """One layer configuration; also one row key of a lookup table.

    Attributes:
        op: One of `LAYER_OPS`.
        cin: Input channels.
        cout: Output channels (classes for the classifier).
        h: Input height in pixels.
        w: Input width in pixels.
        kernel: Spatial kernel size (0 where none applies).
        stride: Stride of the layer (1 where none applies).
        expand: Expansion ratio of ir/er blocks (1 otherwise).
        se: Squeeze-and-excitation on or off.
        act: Activation: relu, relu6, silu, or none.
    """

    op: str
    cin: int
    cout: int
    h: int
    w: int
    kernel: int = 0
    stride: int = 1
    expand: int = 1
    se: bool = False
    act: str = "none"

    def __post_init__(self) -> None:
        if self.op not in LAYER_OPS:
            raise LayerError(f"unknown layer op '{self.op}'; allowed: {', '.join(LAYER_OPS)}")

    @property
    def h_out(self) -> int:
        return out_size(self.h, self.stride)

    def as_dict(self) -> dict[str, int | str | bool]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __str__(self) -> str:
        return ",".join(f"{f.name}={v}" for f, v in zip(fields(self), astuple(self), strict=True))


KEY_FIELDS = tuple(f.name for f in fields(LayerKey))


def out_size(size: int, stride: int) -> int:
    """Output size of a 'same'-padded layer (padding kernel // 2) with this stride."""
    return (size - 1) // stride + 1


def arch_layers(arch: Architecture, resolution: int | None = None) -> list[LayerKey]:
    """The architecture's layers in execution order (repeats kept)."""
    space = arch.space
    resolution = _check_resolution(space, resolution)
    if isinstance(space, MacroSpace):
        return _macro_layers(space, arch.choices, resolution)
    if isinstance(space, CellSpace):
        return _cell_layers(space, arch.choices, resolution)
    raise LayerError(f"space kind '{space.kind}' has no layer model")


def enumerate_layers(space: str | Space, resolution: int | None = None) -> list[LayerKey]:
    """Every unique layer key the space can produce at this resolution, sorted."""
    space = get_space(space)
    resolution = _check_resolution(space, resolution)
    if isinstance(space, MacroSpace):
        keys = _macro_enumerate(space, resolution)
    elif isinstance(space, CellSpace):
        keys = _cell_enumerate(space, resolution)
    else:
        raise LayerError(f"space kind '{space.kind}' has no layer model")
    return sorted(keys)


def _check_resolution(space: Space, resolution: int | None) -> int:
    resolution = space.resolution if resolution is None else resolution
    multiple = 4 if isinstance(space, CellSpace) else 1
    if resolution < 8 or resolution % multiple:
        raise LayerError(
            f"resolution {resolution} is not usable for space '{space.name}'; use a value >= 8"
            + (f" divisible by {multiple}" if multiple > 1 else "")
            + f" (default {space.resolution})"
        )
    return resolution


# ---------------------------------------------------------------------------
# Macro spaces


def stem_layers(space: MacroSpace, act: str, resolution: int) -> tuple[list[LayerKey], int]:
    r = resolution
    keys = [
        LayerKey("conv", 3, space.stem_width, r, r, space.stem_kernel, space.stem_stride, act=act)
    ]
    r = out_size(r, space.stem_stride)
    if space.stem_maxpool:
        keys.append(LayerKey("maxpool", space.stem_width, space.stem_width, r, r, 3, 2))
        r = out_size(r, 2)
    return keys, r


def tail_layers(space: MacroSpace, cin: int, act: str, r: int) -> list[LayerKey]:
    keys = []
    if space.head_width:
        keys.append(LayerKey("conv", cin, space.head_width, r, r, 1, 1, act=act))
        cin = space.head_width
    keys.append(LayerKey("classifier", cin, space.num_classes, r, r))
    return keys


def _macro_layers(space: MacroSpace, choices: tuple[int, ...], resolution: int) -> list[LayerKey]:
    act = space.activation(choices)
    keys, r = stem_layers(space, act, resolution)
    cin = space.stem_width
    for stage, (width, blocks) in zip(space.stages, space.stage_choices(choices), strict=True):
        for slot, block in enumerate(blocks):
            if block is None:
                continue
            stride = stage.stride if slot == 0 else 1
            keys.append(
                LayerKey(
                    block.op, cin, width, r, r, block.kernel, stride, block.expand, block.se, act
                )
            )
            r, cin = out_size(r, stride), width
    return keys + tail_layers(space, cin, act, r)


def _macro_enumerate(space: MacroSpace, resolution: int) -> set[LayerKey]:
    keys: set[LayerKey] = set()
    for act in space.activations:
        stem, r = stem_layers(space, act, resolution)
        keys.update(stem)
        cins: tuple[int, ...] = (space.stem_width,)
        for stage in space.stages:
            for cin in cins:
                for width in stage.widths:
                    keys.update(
                        LayerKey(
                            b.op, cin, width, r, r, b.kernel, stage.stride, b.expand, b.se, act
                        )
                        for b in space.blocks
                    )
            r = out_size(r, stage.stride)
            if stage.slots > 1:
                for width in stage.widths:
                    keys.update(
                        LayerKey(b.op, width, width, r, r, b.kernel, 1, b.expand, b.se, act)
                        for b in space.blocks
                    )
            cins = stage.widths
        for cin in cins:
            keys.update(tail_layers(space, cin, act, r))
    return keys


# ---------------------------------------------------------------------------
# Cell spaces (NAS-Bench-201 skeleton)

_EDGE_LAYERS = {
    "nor_conv_1x1": ("relu_conv_bn", 1),
    "nor_conv_3x3": ("relu_conv_bn", 3),
    "avg_pool_3x3": ("avg_pool", 3),
}


def cell_frame(
    space: CellSpace, resolution: int
) -> tuple[list[LayerKey], list[LayerKey], list[tuple[int, int]]]:
    """Stem and reductions, the head, and (channels, size) of each stage."""
    c0 = space.widths[0]
    front = [LayerKey("conv", 3, c0, resolution, resolution, 3, 1, act="none")]
    stages = []
    r = resolution
    for number, c in enumerate(space.widths):
        if number:
            prev = space.widths[number - 1]
            front.append(LayerKey("nb201_reduce", prev, c, r, r, 3, 2, act="relu"))
            r = out_size(r, 2)
        stages.append((c, r))
    c, r = stages[-1]
    head = [
        LayerKey("bn_act", c, c, r, r, act="relu"),
        LayerKey("classifier", c, space.num_classes, r, r),
    ]
    return front, head, stages


def cell_edge_layer(op: str, channels: int, size: int) -> LayerKey | None:
    """The layer of one cell edge op, or None for ops that compute nothing (none, skip)."""
    if op not in _EDGE_LAYERS:
        return None
    layer_op, kernel = _EDGE_LAYERS[op]
    return LayerKey(
        layer_op,
        channels,
        channels,
        size,
        size,
        kernel,
        1,
        act="relu" if layer_op == "relu_conv_bn" else "none",
    )


def _cell_layers(space: CellSpace, choices: tuple[int, ...], resolution: int) -> list[LayerKey]:
    front, head, stages = cell_frame(space, resolution)
    ops = [space.ops[c] for c in choices]
    keys = [front[0]]
    for number, (c, r) in enumerate(stages):
        if number:
            keys.append(front[number])
        cell: list[LayerKey] = []
        for j in range(1, space.nodes):
            inputs = [
                op
                for op, (_, target) in zip(ops, space.edges, strict=True)
                if target == j and op != "none"
            ]
            cell += [k for k in (cell_edge_layer(op, c, r) for op in inputs) if k is not None]
            cell += [LayerKey("add", c, c, r, r)] * max(0, len(inputs) - 1)
        keys += cell * space.cells_per_stage
    return keys + head


def _cell_enumerate(space: CellSpace, resolution: int) -> set[LayerKey]:
    front, head, stages = cell_frame(space, resolution)
    keys = set(front) | set(head)
    max_inputs = space.nodes - 1
    for c, r in stages:
        keys.update(k for k in (cell_edge_layer(op, c, r) for op in space.ops) if k is not None)
        if max_inputs > 1 and len([op for op in space.ops if op != "none"]) > 0:
            keys.add(LayerKey("add", c, c, r, r))
    return keys
