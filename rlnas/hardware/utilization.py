"""An architecture's utilization of an accelerator, from a table's per-layer columns.

Tables of an analytic accelerator (`rlnas.hardware.systolic`) carry each layer's
MACs on the compute array and their utilization. A network's utilization is
MAC-weighted: its MACs over the MAC slots the array offered while running them,
sum(macs) / sum(macs / utilization). Both sums are additive over layers, so a
search gets them per decision, like latency (`rlnas.model.costs`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rlnas.errors import RlnasError
from rlnas.hardware.table import LatencyTable
from rlnas.model.arch import Architecture
from rlnas.model.costs import AdditiveCost
from rlnas.model.layers import arch_layers
from rlnas.model.space import Space


class Utilization:
    """MAC-weighted utilization of a space's architectures, from one table.

    Raises:
        RlnasError: The table has no utilization columns.
        TableError, MissingEntriesError: The table does not serve the space.
    """

    def __init__(self, table: LatencyTable, space: Space):
        if not table.has_utilization:
            raise RlnasError(
                f"table {table.path or table.meta.name} has no utilization (only an analytic "
                "accelerator's tables do); write one with `rlnas tables estimate --device "
                "systolic --array 128x128`"
            )
        table.cost_model(space)  # checks the space and the coverage
        macs = table.frame["macs"].to_numpy(dtype=np.float64)
        utilization = table.frame["utilization"].to_numpy(dtype=np.float64)
        slots = np.divide(macs, utilization, out=np.zeros_like(macs), where=utilization > 0)
        index, resolution = table.index, table.meta.resolution
        self.slots = AdditiveCost(space, resolution, lambda key: float(slots[index[key]]))
        self.macs = AdditiveCost(space, resolution, lambda key: float(macs[index[key]]))

    def of(self, choices: Sequence[int]) -> float:
        """Utilization in [0, 1] of one architecture (0 where nothing runs on the array)."""
        slots = self.slots.total(choices)
        return self.macs.total(choices) / slots if slots else 0.0


def arch_utilization(table: LatencyTable, arch: Architecture) -> float | None:
    """One architecture's utilization from its layers' rows (None: the table has none)."""
    if not table.has_utilization:
        return None
    rows = table.rows(arch_layers(arch, table.meta.resolution))
    macs = table.frame["macs"].to_numpy(dtype=np.float64)[rows]
    utilization = table.frame["utilization"].to_numpy(dtype=np.float64)[rows]
    slots = np.divide(macs, utilization, out=np.zeros_like(macs), where=utilization > 0).sum()
    return float(macs.sum() / slots) if slots else 0.0
