from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlnas.errors import LayerError
from rlnas.model.arch import Architecture
from rlnas.model.baselines import BASELINES
from rlnas.model.layers import arch_layers, enumerate_layers
from rlnas.model.ops import LayerKey
from rlnas.model.space import get_space, list_spaces


@pytest.mark.parametrize("name", list_spaces())
@pytest.mark.parametrize("resolution", [None, 160])
@given(data=st.data())
def test_every_arch_maps_into_enumeration(name, resolution, data):
    space = get_space(name)
    if resolution is not None and name == "nb201":
        resolution = 64
    keys = set(enumerate_layers(space, resolution))
    counts = space.choice_counts
    choices = data.draw(st.tuples(*(st.integers(0, n - 1) for n in counts)))
    layers = arch_layers(Architecture(space, choices), resolution)
    assert set(layers) <= keys


TINY_SPACE = """
name = "tiny"
kind = "macro"
description = "a space small enough to list every architecture"
resolution = 32
num_classes = 10
activations = ["relu", "silu"]
[stem]
kernel = 3
stride = 2
width = 8
maxpool = true
[head]
width = 32
[blocks.ir]
kernel = [3]
expand = [1, 3]
se = [true]
[blocks.basic]
kernel = [3]
[[stages]]
stride = 1
widths = [8, 16]
slots = 1
[[stages]]
stride = 2
widths = [16, 24]
slots = 2
[[stages]]
stride = 2
widths = [24, 32]
slots = 1
"""


@pytest.mark.parametrize("name", ["tiny", "nb201"])
def test_enumeration_equals_union_over_all_architectures(tmp_path, name):
    """Small spaces, every architecture: the enumeration is exact, not just a superset."""
    if name == "tiny":
        path = tmp_path / "tiny.toml"
        path.write_text(TINY_SPACE)
        space = get_space(path)
    else:
        space = get_space(name)
    assert space.size < 20_000
    union: set[LayerKey] = set()
    for index in range(space.size):
        union.update(arch_layers(Architecture.from_index(index, space)))
    assert union == set(enumerate_layers(space))


def test_default_space_table_is_tractable():
    assert len(enumerate_layers("mobilenet", 224)) <= 5000


def test_mobilenetv2_layers():
    layers = arch_layers(BASELINES["mobilenetv2"].architecture())
    # stem, 17 inverted residuals, head conv, classifier
    assert [k.op for k in layers] == ["conv"] + ["ir"] * 17 + ["conv", "classifier"]
    assert layers[0] == LayerKey("conv", 3, 32, 224, 224, 3, 2, act="relu6")
    assert layers[-1] == LayerKey("classifier", 1280, 1000, 7, 7)
    assert layers[-2].h == 7 and layers[-2].cin == 320


def test_resnet18_layers():
    layers = arch_layers(BASELINES["resnet18"].architecture())
    assert [k.op for k in layers] == ["conv", "maxpool"] + ["basic"] * 8 + ["classifier"]
    assert layers[2].h == 56 and layers[-1].h == 7


def test_nb201_cell_layers():
    # Every edge nor_conv_3x3: 6 convs and 0+1+2 adds per cell, 15 cells.
    arch = Architecture.decode(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
        "|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        "nb201",
    )
    ops = [k.op for k in arch_layers(arch)]
    assert ops.count("relu_conv_bn") == 6 * 15
    assert ops.count("add") == 3 * 15
    assert ops.count("nb201_reduce") == 2


def test_bad_resolution():
    with pytest.raises(LayerError, match="resolution 30 is not usable for space 'nb201'"):
        enumerate_layers("nb201", 30)


def test_unknown_layer_op():
    with pytest.raises(LayerError, match="unknown layer op 'conv3d'"):
        LayerKey("conv3d", 1, 1, 1, 1)
