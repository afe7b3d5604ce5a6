"""An architecture's layers, and every layer a space can produce: the rows of a lookup table.

Each kind of space lays out its own layers (`Space.layers`,
`Space.unique_layers`); these functions add the resolution check and order.
"""

from __future__ import annotations

from rlnas.model.arch import Architecture
from rlnas.model.ops import LayerKey
from rlnas.model.space import Space, get_space


def arch_layers(arch: Architecture, resolution: int | None = None) -> list[LayerKey]:
    """The architecture's layers in execution order (repeats kept)."""
    space = arch.space
    return space.layers(arch.choices, space.check_resolution(resolution))


def enumerate_layers(space: str | Space, resolution: int | None = None) -> list[LayerKey]:
    """Every unique layer key the space can produce at this resolution, sorted."""
    space = get_space(space)
    return sorted(space.unique_layers(space.check_resolution(resolution)))
