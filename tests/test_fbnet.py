"""The fbnet space is HW-NAS-Bench's FBNet: its arch_str, grouped blocks and projections."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from rlnas.errors import ArchitectureError, SpaceError
from rlnas.model.arch import Architecture
from rlnas.model.blocks import ChannelShuffle, IRFBlock
from rlnas.model.fbnet import from_arch_str, to_arch_str
from rlnas.model.network import build_network, count_params
from rlnas.model.ops import LayerKey, layer_macs, layer_params
from rlnas.model.space import get_space

BUILTIN = Path(__file__).resolve().parents[1] / "rlnas" / "spaces"


@pytest.fixture(scope="module")
def bench(shared_data) -> pd.DataFrame:
    return pd.read_parquet(shared_data / "fbnet" / "fbnet_latency.parquet")


def test_every_arch_str_maps_to_one_architecture_and_back(bench):
    archs = [from_arch_str(text) for text in bench["arch_str"]]
    assert [to_arch_str(a) for a in archs] == list(bench["arch_str"])
    assert len({a.index for a in archs}) == len(bench)


def test_strings_and_errors():
    text = "-".join(["k3_e1"] * 11 + ["k5_e1_g2"] * 10 + ["skip"])
    arch = from_arch_str(text)
    assert str(arch).startswith("relu|c16:irf_k3_e1|c24:irf_k3_e1,")
    assert str(arch).endswith("|c352:skip")
    assert Architecture.decode(str(arch), "fbnet") == arch
    with pytest.raises(ArchitectureError, match="needs 22 ops"):
        from_arch_str("k3_e1-skip")
    with pytest.raises(ArchitectureError, match="unknown FBNet op 'k7_e6'"):
        from_arch_str(text.replace("k3_e1", "k7_e6", 1))
    with pytest.raises(ArchitectureError, match="only fbnet"):
        to_arch_str(Architecture.from_index(0, "mobilenet"))


def test_grouped_block_by_hand():
    # 24 -> 24 channels, kernel 3, expansion 1, 2 groups, 8x8 input: expansion 24*24/2 + BN,
    # depthwise 9*24 + BN, projection 24*24/2 + BN.
    key = LayerKey("irf_g2", 24, 24, 8, 8, 3, 1, 1, act="relu")
    assert layer_params(key) == 288 + 48 + 216 + 48 + 288 + 48
    assert layer_macs(key) == 64 * (288 + 216 + 288)
    block = IRFBlock(key, groups=2)
    assert block.residual
    assert any(isinstance(m, ChannelShuffle) for m in block.modules())
    assert sum(p.numel() for p in block.parameters()) == layer_params(key)


def test_channel_shuffle_interleaves_groups():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert ChannelShuffle(2)(x).flatten().tolist() == [0, 3, 1, 4, 2, 5]


def test_expansion_one_keeps_its_1x1_expansion():
    net = build_network(from_arch_str("-".join(["k3_e1"] * 22)), seed=0)
    first = net[1]
    assert isinstance(first, IRFBlock)
    assert [m.kernel_size for m in first.modules() if isinstance(m, nn.Conv2d)] == [
        (1, 1),
        (3, 3),
        (1, 1),
    ]


def test_skip_projection_has_the_activation():
    net = build_network(from_arch_str("-".join(["skip"] * 22)), seed=0)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    # stem; projections where the width changes (stages 2-7); head
    assert len(convs) == 1 + 6 + 1
    assert any(isinstance(m, nn.ReLU) for m in net[1].modules())
    assert net(torch.zeros(1, 3, 32, 32)).shape == (1, 100)
    assert count_params(net) > 0


def test_groups_only_on_irf_blocks(tmp_path):
    text = (
        (BUILTIN / "fbnet.toml")
        .read_text()
        .replace(
            "[[blocks.irf]]\nkernel = [3]\nexpand = [1]\ngroups = [2]",
            "[[blocks.ir]]\nkernel = [3]\nexpand = [1]\ngroups = [2]",
        )
    )
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SpaceError, match="only irf blocks take 'groups'"):
        get_space(path)
