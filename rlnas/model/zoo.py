"""Published networks as lists of primitive operations, for calibrating device cost models.

Each network is written out from its paper's architecture table at its
standard ImageNet resolution (224 px; EfficientNet-B1 240 px), batch 1,
1000 classes. Batch norm, ReLU/ReLU6 and a residual add are fused into the convolution
before them, as TensorRT does (they move data but launch no kernel of their
own); swish and hard-swish are separate elementwise kernels, or fused too
(`fused_activations`: TensorRT versions differ, and the calibration picks
whichever fits a device's published figures better); a
squeeze-and-excite gate (pool, two small fully connected layers,
sigmoid-scale) counts as one kernel; pooling and concatenation are operations
of their own. These launch counts were chosen among variants by their
leave-one-out error (BENCHMARKS.md lists them).

Sources: ResNet (He et al. 2016, table 1; stride on the 3x3 as in the
common "v1.5"), VGG (Simonyan & Zisserman 2015, configurations D and E),
GoogLeNet (Szegedy et al. 2015, table 1, with 5x5 convolutions as in the
paper), DenseNet (Huang et al. 2017, table 1, bottleneck width 4k,
compression 0.5), MobileNetV2 (Sandler et al. 2018, table 2), MobileNetV3
(Howard et al. 2019, tables 1 and 2; squeeze to a quarter of the expanded
width, rounded to 8), EfficientNet (Tan & Le 2019, table 1; B1 = depth
x1.1 at 240 px).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from rlnas.errors import RlnasError, unknown


@dataclass(frozen=True)
class Op:
    """One primitive operation of a network at batch 1.

    Attributes:
        kind: conv1x1, conv (k x k, k > 1), depthwise, grouped, se, pool or elementwise.
        macs: Multiply-accumulates (pooling and elementwise: one per element touched).
        in_elems: Input activation elements read.
        out_elems: Output activation elements written.
        weights: Parameters read.
        launches: Kernels it launches (0 when fused into the previous kernel).
        activation: A standalone activation kernel (swish, hard-swish).
        cout: Output channels of a convolution; the channels an SE block scales (0 for
            other kinds). With `weights` and `out_elems` it fixes the GEMM a systolic
            array runs (`rlnas.hardware.systolic`).
        groups: Groups of a convolution (its channels for a depthwise one).
    """

    kind: str
    macs: int
    in_elems: int
    out_elems: int
    weights: int
    launches: int = 1
    activation: bool = False
    cout: int = 0
    groups: int = 1


KINDS = ("conv1x1", "conv", "depthwise", "grouped", "se", "pool", "elementwise")


class Net:
    """Builds a network's op list while tracking the activation shape (channels, size)."""

    def __init__(
        self,
        channels: int = 3,
        size: int = 224,
        ops: list[Op] | None = None,
        act: str = "relu",
        fuse_all: bool = False,
    ):
        self.c = channels
        self.size = size
        self.ops: list[Op] = [] if ops is None else ops
        self.act = act
        self.fuse_all = fuse_all

    def fork(self) -> Net:
        """A branch from the current activation that writes into the same op list."""
        return Net(self.c, self.size, self.ops, self.act, self.fuse_all)

    def activation(self) -> Net:
        """The current activation: fused (relu, relu6, none; all with `fuse_all`) or a kernel."""
        if not self.fuse_all and self.act not in ("relu", "relu6", "none"):
            elems = self.c * self.size**2
            self.ops.append(Op("elementwise", elems, elems, elems, 0, activation=True))
        return self

    def conv(
        self, cout: int, kernel: int, stride: int = 1, groups: int = 1, activated: bool = True
    ) -> Net:
        out = math.ceil(self.size / stride)
        if groups == self.c == cout and groups > 1:
            kind = "depthwise"
        elif groups > 1:
            kind = "grouped"
        else:
            kind = "conv1x1" if kernel == 1 else "conv"
        weights = cout * (self.c // groups) * kernel * kernel
        self.ops.append(
            Op(
                kind,
                weights * out * out,
                self.c * self.size**2,
                cout * out * out,
                weights,
                cout=cout,
                groups=groups,
            )
        )
        self.c, self.size = cout, out
        return self.activation() if activated else self

    def dw(self, kernel: int, stride: int = 1) -> Net:
        return self.conv(self.c, kernel, stride, groups=self.c)

    def pool(self, kernel: int, stride: int, ceil: bool = True) -> Net:
        out = math.ceil(self.size / stride) if ceil else self.size // stride
        self.ops.append(
            Op("pool", self.c * out * out * kernel * kernel, self.c * self.size**2,
               self.c * out * out, 0)
        )  # fmt: skip
        self.size = out
        return self

    def global_pool(self) -> Net:
        return self.pool(self.size, self.size)

    def se(self, squeezed: int) -> Net:
        """Squeeze-and-excite: pool, two small fully connected layers, a channel-wise scale."""
        elems = self.c * self.size**2
        weights = 2 * self.c * squeezed
        self.ops.append(Op("se", 2 * elems + weights, 2 * elems, elems, weights, cout=self.c))
        return self

    def add(self) -> Net:
        """A residual add, fused into the convolution before it."""
        elems = self.c * self.size**2
        self.ops.append(Op("elementwise", elems, elems, 0, 0, launches=0))
        return self

    def shuffle(self) -> Net:
        """A channel shuffle: a copy of every element."""
        elems = self.c * self.size**2
        self.ops.append(Op("elementwise", elems, elems, elems, 0))
        return self

    def concat(self, branches: list[Net]) -> Net:
        """Joins branches of the same size along channels (a copy of every element)."""
        self.c = sum(b.c for b in branches)
        self.size = branches[0].size
        elems = self.c * self.size**2
        self.ops.append(Op("elementwise", elems, elems, elems, 0))
        return self

    def fc(self, cout: int, activated: bool = False) -> Net:
        self.size = 1
        return self.conv(cout, 1, activated=activated)


def _resnet(blocks: list[int], bottleneck: bool) -> list[Op]:
    net = Net().conv(64, 7, 2).pool(3, 2)
    for stage, count in enumerate(blocks):
        width = 64 * 2**stage
        for i in range(count):
            stride = 2 if stage > 0 and i == 0 else 1
            out = width * 4 if bottleneck else width
            shortcut = net.fork()
            if stride != 1 or net.c != out:
                shortcut.conv(out, 1, stride)
            if bottleneck:
                net.conv(width, 1).conv(width, 3, stride).conv(out, 1)
            else:
                net.conv(width, 3, stride).conv(width, 3)
            net.add()
    return net.global_pool().fc(1000).ops


def _vgg(counts: list[int]) -> list[Op]:
    net = Net()
    for stage, count in enumerate(counts):
        for _ in range(count):
            net.conv(min(64 * 2**stage, 512), 3)
        net.pool(2, 2)
    # The first fully connected layer reads the 7x7x512 map: a 7x7 convolution to 4096.
    net.conv(4096, 7, 7).fc(4096).fc(1000)
    return net.ops


def _googlenet() -> list[Op]:
    net = Net().conv(64, 7, 2).pool(3, 2).conv(64, 1).conv(192, 3).pool(3, 2)
    modules = {
        "3a": (64, 96, 128, 16, 32, 32),
        "3b": (128, 128, 192, 32, 96, 64),
        "4a": (192, 96, 208, 16, 48, 64),
        "4b": (160, 112, 224, 24, 64, 64),
        "4c": (128, 128, 256, 24, 64, 64),
        "4d": (112, 144, 288, 32, 64, 64),
        "4e": (256, 160, 320, 32, 128, 128),
        "5a": (256, 160, 320, 32, 128, 128),
        "5b": (384, 192, 384, 48, 128, 128),
    }
    for name, (n1, r3, n3, r5, n5, proj) in modules.items():
        if name in ("4a", "5a"):
            net.pool(3, 2)
        branches = [
            net.fork().conv(n1, 1),
            net.fork().conv(r3, 1).conv(n3, 3),
            net.fork().conv(r5, 1).conv(n5, 5),
            net.fork().pool(3, 1).conv(proj, 1),
        ]
        net.concat(branches)
    return net.global_pool().fc(1000).ops


def _densenet(growth: int, blocks: list[int], initial: int) -> list[Op]:
    net = Net().conv(initial, 7, 2).pool(3, 2)
    for number, count in enumerate(blocks):
        for _ in range(count):
            new = net.fork().conv(4 * growth, 1).conv(growth, 3)
            net.concat([Net(net.c, net.size), new])
        if number < len(blocks) - 1:
            net.conv(net.c // 2, 1).pool(2, 2)
    return net.global_pool().fc(1000).ops


def mbconv(net: Net, expand_to: int, out: int, kernel: int, stride: int, squeeze: int) -> None:
    """An inverted residual: expand (if wider), depthwise, optional SE, project, residual add."""
    cin = net.c
    if expand_to != cin:
        net.conv(expand_to, 1)
    net.dw(kernel, stride)
    if squeeze:
        net.se(squeeze)
    net.conv(out, 1, activated=False)
    if stride == 1 and cin == out:
        net.add()


def _mobilenetv2() -> list[Op]:
    net = Net().conv(32, 3, 2)
    for t, c, n, s in [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]:
        for i in range(n):
            mbconv(net, net.c * t, c, 3, s if i == 0 else 1, 0)
    return net.conv(1280, 1).global_pool().fc(1000).ops


def _divisible(value: float) -> int:
    return max(8, int(value + 4) // 8 * 8)


def _mobilenetv3(
    rows: list[tuple[int, int, int, bool, str, int]], last: int, head: int
) -> list[Op]:
    net = Net(act="hswish").conv(16, 3, 2)
    for kernel, expand_to, out, se, act, stride in rows:
        net.act = act
        mbconv(net, expand_to, out, kernel, stride, _divisible(expand_to / 4) if se else 0)
    net.act = "hswish"
    return net.conv(last, 1).global_pool().fc(head, activated=True).fc(1000).ops


_MBV3_LARGE = [
    (3, 16, 16, False, "relu", 1),
    (3, 64, 24, False, "relu", 2),
    (3, 72, 24, False, "relu", 1),
    (5, 72, 40, True, "relu", 2),
    (5, 120, 40, True, "relu", 1),
    (5, 120, 40, True, "relu", 1),
    (3, 240, 80, False, "hswish", 2),
    (3, 200, 80, False, "hswish", 1),
    (3, 184, 80, False, "hswish", 1),
    (3, 184, 80, False, "hswish", 1),
    (3, 480, 112, True, "hswish", 1),
    (3, 672, 112, True, "hswish", 1),
    (5, 672, 160, True, "hswish", 2),
    (5, 960, 160, True, "hswish", 1),
    (5, 960, 160, True, "hswish", 1),
]
_MBV3_SMALL = [
    (3, 16, 16, True, "relu", 2),
    (3, 72, 24, False, "relu", 2),
    (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hswish", 2),
    (5, 240, 40, True, "hswish", 1),
    (5, 240, 40, True, "hswish", 1),
    (5, 120, 48, True, "hswish", 1),
    (5, 144, 48, True, "hswish", 1),
    (5, 288, 96, True, "hswish", 2),
    (5, 576, 96, True, "hswish", 1),
    (5, 576, 96, True, "hswish", 1),
]


def _efficientnet(depth: float, size: int) -> list[Op]:
    net = Net(size=size, act="swish").conv(32, 3, 2)
    for e, k, s, c, n in [
        (1, 3, 1, 16, 1),
        (6, 3, 2, 24, 2),
        (6, 5, 2, 40, 2),
        (6, 3, 2, 80, 3),
        (6, 5, 1, 112, 3),
        (6, 5, 2, 192, 4),
        (6, 3, 1, 320, 1),
    ]:
        for i in range(math.ceil(n * depth)):
            mbconv(net, net.c * e, c, k, s if i == 0 else 1, max(1, net.c // 4))
    return net.conv(1280, 1).global_pool().fc(1000).ops


# Names as in ../shared/data/published/deci_whitepaper_latency.csv.
NETWORKS: dict[str, Callable[[], list[Op]]] = {
    "ResNet18": lambda: _resnet([2, 2, 2, 2], bottleneck=False),
    "ResNet34": lambda: _resnet([3, 4, 6, 3], bottleneck=False),
    "ResNet50": lambda: _resnet([3, 4, 6, 3], bottleneck=True),
    "ResNet101": lambda: _resnet([3, 4, 23, 3], bottleneck=True),
    "VGG16": lambda: _vgg([2, 2, 3, 3, 3]),
    "VGG19": lambda: _vgg([2, 2, 4, 4, 4]),
    "GoogleNet_v1": _googlenet,
    "DenseNet121": lambda: _densenet(32, [6, 12, 24, 16], 64),
    "DenseNet161": lambda: _densenet(48, [6, 12, 36, 24], 96),
    "MobileNet_v2": _mobilenetv2,
    "MobileNet_v3_L": lambda: _mobilenetv3(_MBV3_LARGE, 960, 1280),
    "MobileNet_v3_S": lambda: _mobilenetv3(_MBV3_SMALL, 576, 1024),
    "EfficientNet_B0": lambda: _efficientnet(1.0, 224),
    "EfficientNet_B1": lambda: _efficientnet(1.1, 240),
}


def network_ops(name: str, fused_activations: bool = False) -> list[Op]:
    """The primitive operations of a published network.

    Args:
        name: As in the published file (`NETWORKS`).
        fused_activations: Swish and hard-swish fused into the convolution before them.
    """
    if name not in NETWORKS:
        raise RlnasError(unknown("published network", name, NETWORKS))
    ops = NETWORKS[name]()
    if fused_activations:
        # Activation kernels are the only elementwise ops that read as much as they write
        # with no other input; fusing them removes them.
        ops = [o for o in ops if not o.activation]
    return ops
