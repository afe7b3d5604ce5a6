"""Parameter and multiply-accumulate counts of architectures, per decision."""

from __future__ import annotations

from rlnas.model.costs import AdditiveCost
from rlnas.model.ops import layer_macs, layer_params
from rlnas.model.space import Space


def params_model(space: Space) -> AdditiveCost:
    """Parameter count of architectures, per decision."""
    return AdditiveCost(space, space.resolution, layer_params)


def macs_model(space: Space, resolution: int) -> AdditiveCost:
    """Multiply-accumulates of architectures at `resolution` ("FLOPs" in most papers)."""
    return AdditiveCost(space, resolution, layer_macs)
