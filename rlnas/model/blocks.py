"""Torch modules of the layer ops (`rlnas.model.ops` maps each op to its module).

A `LayerKey` fixes a layer completely, so the module built for a key is the
same whether it is timed alone (profiling) or inside a whole network.
Definitions follow the papers: MobileNetV2 (Sandler et al. 2018) for the
inverted residual, EfficientNet (Tan & Le 2019) for squeeze-and-excitation
(squeeze to a quarter of the block's input channels), EfficientNetV2 (Tan &
Le 2021) for the fused MBConv, FBNet (Wu et al. 2019) and ShuffleNet (Zhang et
al. 2018) for the grouped inverted residual and its channel shuffle, ResNet
(He et al. 2016) for the basic block, NAS-Bench-201 (Dong & Yang 2020) for its
cell ops and reduction block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from rlnas.errors import LayerError

if TYPE_CHECKING:
    from rlnas.model.ops import LayerKey


def activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "relu6":
        return nn.ReLU6()
    if name == "silu":
        return nn.SiLU()
    if name == "none":
        return nn.Identity()
    raise LayerError(f"unknown activation '{name}'; allowed: relu, relu6, silu, none")


class ConvBNAct(nn.Sequential):
    """Convolution without bias, batch norm, activation; 'same' padding."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: str = "none"
    ):
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            activation(act),
        )


class SqueezeExcite(nn.Module):
    """Channel gating: pool, reduce, activate, expand, sigmoid, scale."""

    def __init__(self, channels: int, squeezed: int, act: str):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.act = activation(act)
        self.expand = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.expand(self.act(self.reduce(self.pool(x))))
        return x * torch.sigmoid(scale)


class MBConv(nn.Module):
    """Inverted residual (`ir`) or fused MBConv (`er`); residual when shapes allow."""

    def __init__(self, key: LayerKey):
        super().__init__()
        hidden = key.cin * key.expand
        layers: list[nn.Module] = []
        if key.op == "ir":
            if key.expand != 1:
                layers.append(ConvBNAct(key.cin, hidden, 1, act=key.act))
            layers.append(ConvBNAct(hidden, hidden, key.kernel, key.stride, hidden, key.act))
        else:
            # A fused block with expansion 1 is a single kxk convolution to cout.
            hidden = hidden if key.expand != 1 else key.cout
            layers.append(ConvBNAct(key.cin, hidden, key.kernel, key.stride, act=key.act))
        if key.se:
            layers.append(SqueezeExcite(hidden, max(1, key.cin // 4), key.act))
        if key.op == "ir" or key.expand != 1:
            layers.append(ConvBNAct(hidden, key.cout, 1))
        self.body = nn.Sequential(*layers)
        self.residual = key.stride == 1 and key.cin == key.cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle: interleaves the channels of `groups` groups."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class IRFBlock(nn.Module):
    """FBNet's inverted residual (`irf`, `irf_g2`): a 1x1 expansion at every expansion ratio
    (1 included), in `groups` groups followed by a channel shuffle where grouped; a kxk
    depthwise convolution; a 1x1 projection in the same groups; residual when shapes allow."""

    def __init__(self, key: LayerKey, groups: int = 1):
        super().__init__()
        hidden = key.cin * key.expand
        layers: list[nn.Module] = [ConvBNAct(key.cin, hidden, 1, groups=groups, act=key.act)]
        if groups > 1:
            layers.append(ChannelShuffle(groups))
        layers += [
            ConvBNAct(hidden, hidden, key.kernel, key.stride, hidden, key.act),
            ConvBNAct(hidden, key.cout, 1, groups=groups),
        ]
        self.body = nn.Sequential(*layers)
        self.residual = key.stride == 1 and key.cin == key.cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class BasicBlock(nn.Module):
    """ResNet basic block: two kxk convolutions and a (projected) shortcut."""

    def __init__(self, key: LayerKey):
        super().__init__()
        self.conv1 = ConvBNAct(key.cin, key.cout, key.kernel, key.stride, act=key.act)
        self.conv2 = ConvBNAct(key.cout, key.cout, key.kernel)
        identity = key.stride == 1 and key.cin == key.cout
        self.shortcut = nn.Identity() if identity else ConvBNAct(key.cin, key.cout, 1, key.stride)
        self.act = activation(key.act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


class Classifier(nn.Sequential):
    """Global average pooling and a linear layer."""

    def __init__(self, cin: int, classes: int):
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(cin, classes))


class ReLUConvBN(nn.Sequential):
    """NAS-Bench-201's edge convolution: ReLU, convolution, batch norm."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1):
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
            nn.BatchNorm2d(cout),
        )


class NB201Reduce(nn.Module):
    """NAS-Bench-201's residual reduction block between stages."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv_a = ReLUConvBN(cin, cout, 3, 2)
        self.conv_b = ReLUConvBN(cout, cout, 3, 1)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class Add(nn.Module):
    """The sum of two tensors (a node of a cell with several inputs)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b
