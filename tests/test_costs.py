from __future__ import annotations

import numpy as np
import pytest

from rlnas.accuracy.proxies import count_macs
from rlnas.model.arch import Architecture
from rlnas.model.costs import AdditiveCost
from rlnas.model.layers import arch_layers, enumerate_layers
from rlnas.model.network import build_network, count_params
from rlnas.model.ops import build_layer, layer_macs, layer_params
from rlnas.model.space import get_space, list_spaces


def synthetic_cost(space, resolution):
    """A distinct cost per unique layer, so any wrong lookup shows."""
    keys = enumerate_layers(space, resolution)
    return {key: 1.0 + 0.37 * i for i, key in enumerate(keys)}


@pytest.mark.parametrize("name", list_spaces())
def test_total_and_increments_equal_the_layer_sum(name):
    space = get_space(name)
    resolution = space.resolution
    cost = synthetic_cost(space, resolution)
    model = AdditiveCost(space, resolution, cost.__getitem__, fixed=0.5)
    rng = np.random.default_rng(0)
    for _ in range(200):
        arch = Architecture.sample(rng, space)
        expected = 0.5 + sum(cost[k] for k in arch_layers(arch, resolution))
        assert model.total(arch.choices) == pytest.approx(expected, rel=1e-12)
        running = sum(model.increment(p, arch.choices[: p + 1]) for p in range(len(arch.choices)))
        assert running == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("name", list_spaces())
def test_closed_form_counts_match_built_modules(name):
    resolution = 64 if name != "nb201" else None
    for key in enumerate_layers(name, resolution):
        if key.op == "add":
            continue
        module = build_layer(key)
        assert layer_params(key) == count_params(module), key
        assert layer_macs(key) == count_macs(module, (key.cin, key.h, key.w)), key


def test_architecture_params_from_closed_forms():
    space = get_space("mobilenet")
    model = AdditiveCost(space, 224, layer_params)
    rng = np.random.default_rng(1)
    for _ in range(3):
        arch = Architecture.sample(rng, space)
        assert model.total(arch.choices) == count_params(build_network(arch))
