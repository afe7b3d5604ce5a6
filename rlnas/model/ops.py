"""Layer ops: the layer key and the one registry of what each op is.

A network is a sequence of layers; a `LayerKey` fixes everything that
determines one layer's computation, and so its latency: it is one row key of a
lookup table. Each op has one `LayerOp` entry in `LAYER_OPS` holding its torch
builder (from `rlnas.model.blocks`), the key fields it reads, its closed-form
parameters and multiply-accumulates (checked against the built modules for
every layer of every built-in space in the tests), and its primitive operations
for the roofline cost model (`rlnas.model.zoo`). Adding an op means one entry
here (and its module in `blocks`, if it needs a new one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import astuple, dataclass, fields

from torch import nn

from rlnas.errors import LayerError
from rlnas.model import blocks
from rlnas.model.zoo import Net, Op, mbconv


@dataclass(frozen=True, order=True)
class LayerKey:
    """One layer configuration; also one row key of a lookup table.

    A new field becomes a new table column (`rlnas.hardware.table` derives its
    key schema from these fields), so give it a default that keeps old keys valid.

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


@dataclass(frozen=True)
class LayerOp:
    """Everything rlnas knows about one layer op.

    Attributes:
        name: The op's name in layer keys and tables.
        description: What it is, in words.
        build: The torch module of a key (any mode; `build_layer` sets eval).
        params: Trainable parameters of that module, in closed form.
        macs: Multiply-accumulates of its convolutions and linear layers at batch 1.
        primitives: Appends its primitive operations to a roofline `Net` started at the
            key's input; None where the cost model has no decomposition.
        inputs: Input tensors of the key's shape it takes.
        block: Whether a macro space file may search it as a block family in `[blocks]`
            (kernel, expansion and SE as its choices).
    """

    name: str
    description: str
    build: Callable[[LayerKey], nn.Module]
    params: Callable[[LayerKey], int]
    macs: Callable[[LayerKey], int]
    primitives: Callable[[LayerKey, Net], None] | None = None
    inputs: int = 1
    block: bool = False


def _pixels(key: LayerKey) -> int:
    return out_size(key.h, key.stride) * out_size(key.w, key.stride)


def _k2(key: LayerKey) -> int:
    return key.kernel * key.kernel


def _se(channels: int, squeezed: int) -> tuple[int, int]:
    """(params, MACs) of squeeze-and-excitation on `channels` channels."""
    return 2 * channels * squeezed + squeezed + channels, 2 * channels * squeezed


def _squeeze(key: LayerKey) -> int:
    return max(1, key.cin // 4)


def _mb_hidden(key: LayerKey) -> int:
    """Channels inside an ir/er block (a fused block with expansion 1 goes straight to cout)."""
    if key.op == "er" and key.expand == 1:
        return key.cout
    return key.cin * key.expand


def _mb_params(key: LayerKey) -> int:
    hidden, cin, cout = _mb_hidden(key), key.cin, key.cout
    if key.op == "ir":
        total = (cin * hidden + 2 * hidden if key.expand != 1 else 0) + _k2(key) * hidden
        total += 2 * hidden
    else:
        total = _k2(key) * cin * hidden + 2 * hidden
    if key.se:
        total += _se(hidden, _squeeze(key))[0]
    if key.op == "ir" or key.expand != 1:
        total += hidden * cout + 2 * cout
    return total


def _mb_macs(key: LayerKey) -> int:
    hidden, pixels = _mb_hidden(key), _pixels(key)
    if key.op == "ir":
        expand = key.h * key.w * hidden * key.cin if key.expand != 1 else 0
        total = expand + pixels * hidden * _k2(key)
    else:
        total = pixels * hidden * key.cin * _k2(key)
    if key.se:
        total += _se(hidden, _squeeze(key))[1]
    if key.op == "ir" or key.expand != 1:
        total += pixels * key.cout * hidden
    return total


def _ir_primitives(key: LayerKey, net: Net) -> None:
    mbconv(net, _mb_hidden(key), key.cout, key.kernel, key.stride, _squeeze(key) if key.se else 0)


def _er_primitives(key: LayerKey, net: Net) -> None:
    net.conv(_mb_hidden(key), key.kernel, key.stride)
    if key.se:
        net.se(_squeeze(key))
    if key.expand != 1:
        net.conv(key.cout, 1, activated=False)
    if key.stride == 1 and key.cin == key.cout:
        net.add()


def _irf_params(key: LayerKey, groups: int) -> int:
    hidden = key.cin * key.expand
    expand = key.cin * hidden // groups + 2 * hidden
    return expand + _k2(key) * hidden + 2 * hidden + hidden * key.cout // groups + 2 * key.cout


def _irf_macs(key: LayerKey, groups: int) -> int:
    hidden, pixels = key.cin * key.expand, _pixels(key)
    expand = key.h * key.w * hidden * key.cin // groups
    return expand + pixels * hidden * _k2(key) + pixels * key.cout * hidden // groups


def _irf_primitives(key: LayerKey, net: Net, groups: int) -> None:
    hidden = key.cin * key.expand
    net.conv(hidden, 1, groups=groups)
    if groups > 1:
        net.shuffle()
    net.dw(key.kernel, key.stride)
    net.conv(key.cout, 1, groups=groups, activated=False)
    if key.stride == 1 and key.cin == key.cout:
        net.add()


def _projects(key: LayerKey) -> bool:
    """A basic block's shortcut needs a 1x1 projection."""
    return key.stride != 1 or key.cin != key.cout


def _basic_params(key: LayerKey) -> int:
    total = _k2(key) * key.cin * key.cout + _k2(key) * key.cout * key.cout + 4 * key.cout
    return total + (key.cin * key.cout + 2 * key.cout if _projects(key) else 0)


def _basic_macs(key: LayerKey) -> int:
    pixels = _pixels(key)
    total = pixels * key.cout * (key.cin + key.cout) * _k2(key)
    return total + (pixels * key.cout * key.cin if _projects(key) else 0)


def _basic_primitives(key: LayerKey, net: Net) -> None:
    shortcut = net.fork()
    if _projects(key):
        shortcut.conv(key.cout, 1, key.stride)
    net.conv(key.cout, key.kernel, key.stride).conv(key.cout, key.kernel, activated=False)
    net.add().activation()


def _conv_params(key: LayerKey) -> int:
    return _k2(key) * key.cin * key.cout + 2 * key.cout


def _conv_macs(key: LayerKey) -> int:
    return _pixels(key) * key.cout * key.cin * _k2(key)


def _conv_primitives(key: LayerKey, net: Net) -> None:
    net.conv(key.cout, key.kernel, key.stride)


def _maxpool_primitives(key: LayerKey, net: Net) -> None:
    net.pool(3, 2)


def _classifier_primitives(key: LayerKey, net: Net) -> None:
    net.global_pool().fc(key.cout)


def _reduce_macs(key: LayerKey) -> int:
    pooled = (key.h // 2) * (key.w // 2)
    return _pixels(key) * key.cout * (key.cin + key.cout) * 9 + pooled * key.cout * key.cin


def _none(key: LayerKey) -> int:
    return 0


LAYER_OPS: dict[str, LayerOp] = {
    op.name: op
    for op in [
        LayerOp(
            "conv",
            "kxk convolution + BN + activation (stems, heads; act none: no activation)",
            lambda k: blocks.ConvBNAct(k.cin, k.cout, k.kernel, k.stride, act=k.act),
            _conv_params,
            _conv_macs,
            _conv_primitives,
        ),
        LayerOp(
            "maxpool",
            "3x3 stride-2 max pooling",
            lambda k: nn.MaxPool2d(3, 2, 1),
            _none,
            _none,
            _maxpool_primitives,
        ),
        LayerOp(
            "ir",
            "inverted residual (MBConv), MobileNetV2; SE as in EfficientNet",
            blocks.MBConv,
            _mb_params,
            _mb_macs,
            _ir_primitives,
            block=True,
        ),
        LayerOp(
            "er",
            "fused MBConv, EfficientNetV2",
            blocks.MBConv,
            _mb_params,
            _mb_macs,
            _er_primitives,
            block=True,
        ),
        LayerOp(
            "irf",
            "FBNet inverted residual: a 1x1 expansion at every ratio, 1 included",
            blocks.IRFBlock,
            lambda k: _irf_params(k, 1),
            lambda k: _irf_macs(k, 1),
            lambda k, net: _irf_primitives(k, net, 1),
            block=True,
        ),
        LayerOp(
            "irf_g2",
            "FBNet inverted residual with both 1x1 convolutions in 2 groups, channel shuffle",
            lambda k: blocks.IRFBlock(k, groups=2),
            lambda k: _irf_params(k, 2),
            lambda k: _irf_macs(k, 2),
            lambda k, net: _irf_primitives(k, net, 2),
        ),
        LayerOp(
            "basic",
            "ResNet basic block",
            blocks.BasicBlock,
            _basic_params,
            _basic_macs,
            _basic_primitives,
            block=True,
        ),
        LayerOp(
            "classifier",
            "global average pooling + linear layer",
            lambda k: blocks.Classifier(k.cin, k.cout),
            lambda k: k.cin * k.cout + k.cout,
            lambda k: k.cin * k.cout,
            _classifier_primitives,
        ),
        LayerOp(
            "relu_conv_bn",
            "NAS-Bench-201 ReLU -> conv -> BN edge op",
            lambda k: blocks.ReLUConvBN(k.cin, k.cout, k.kernel, k.stride),
            _conv_params,
            _conv_macs,
        ),
        LayerOp(
            "avg_pool",
            "3x3 stride-1 average pooling (padding not counted)",
            lambda k: nn.AvgPool2d(3, 1, 1, count_include_pad=False),
            _none,
            _none,
        ),
        LayerOp(
            "add",
            "sum of two tensors of the key's shape",
            lambda k: blocks.Add(),
            _none,
            _none,
            inputs=2,
        ),
        LayerOp(
            "nb201_reduce",
            "NAS-Bench-201 residual reduction block (stride 2)",
            lambda k: blocks.NB201Reduce(k.cin, k.cout),
            lambda k: 9 * k.cin * k.cout + 9 * k.cout * k.cout + 4 * k.cout + k.cin * k.cout,
            _reduce_macs,
        ),
        LayerOp(
            "bn_act",
            "BN + activation",
            lambda k: nn.Sequential(nn.BatchNorm2d(k.cin), blocks.activation(k.act)),
            lambda k: 2 * k.cin,
            _none,
        ),
    ]
}


def get_op(name: str) -> LayerOp:
    if name not in LAYER_OPS:
        raise LayerError(f"unknown layer op '{name}'; allowed: {', '.join(LAYER_OPS)}")
    return LAYER_OPS[name]


def build_layer(key: LayerKey) -> nn.Module:
    """The torch module of one layer key, in eval mode."""
    return get_op(key.op).build(key).eval()


def input_shapes(key: LayerKey, batch: int = 1) -> list[tuple[int, int, int, int]]:
    """NCHW shapes of the layer's inputs (two for `add`)."""
    return [(batch, key.cin, key.h, key.w)] * get_op(key.op).inputs


def layer_params(key: LayerKey) -> int:
    """Trainable parameters of the layer's module."""
    return get_op(key.op).params(key)


def layer_macs(key: LayerKey) -> int:
    """Multiply-accumulates of the layer's convolutions and linear layers, batch 1."""
    return get_op(key.op).macs(key)


def layer_primitives(key: LayerKey, fused_activations: bool = False) -> list[Op]:
    """The primitive operations (`rlnas.model.zoo.Op`) of one layer, for the roofline model."""
    decompose = get_op(key.op).primitives
    if decompose is None:
        covered = ", ".join(name for name, op in LAYER_OPS.items() if op.primitives is not None)
        raise LayerError(
            f"the cost model has no decomposition of layer op '{key.op}' (it covers {covered}); "
            "estimate tables for macro spaces only"
        )
    if key.h != key.w:
        raise LayerError(f"the cost model handles square inputs only, got {key}")
    net = Net(key.cin, key.h, act=key.act, fuse_all=fused_activations)
    decompose(key, net)
    return net.ops
