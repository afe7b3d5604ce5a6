"""The `table` latency source: latency predicted from a lookup table (the default)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rlnas.errors import EstimatedTableWarning, RlnasError
from rlnas.hardware.catalog import locate_table
from rlnas.hardware.endtoend import HostTable, table_for_host
from rlnas.hardware.table import LatencyTable, read_meta
from rlnas.hardware.utilization import Utilization
from rlnas.model.arch import Architecture
from rlnas.model.space import Space
from rlnas.search.sources.base import LatencyKind, LatencySource

if TYPE_CHECKING:
    from rlnas.search.config import SearchConfig


class TableLatency:
    """Latency predicted from a lookup table."""

    def __init__(self, table: LatencyTable, space: Space, calibration: str = ""):
        self.table: LatencyTable | None = table
        self.model = table.cost_model(space)
        self.utilizations = Utilization(table, space) if table.has_utilization else None
        self.description = f"table {table.path or table.meta.name}" + (
            f"; calibration: {calibration}" if calibration else ""
        )

    def latency_ms(self, arch: Architecture) -> float:
        return self.model.total(arch.choices)

    def utilization(self, arch: Architecture) -> float | None:
        return None if self.utilizations is None else self.utilizations.of(arch.choices)

    def increment_ms(self, position: int, choices: list[int]) -> float:
        return self.model.increment(position, choices)

    def fastest_ms(self) -> float | None:
        cheapest = self.model.cheapest()
        return None if cheapest is None else cheapest[0]


@dataclass(frozen=True)
class TableSettings:
    """The table source's settings (the table itself is the search's `table` or device's).

    Attributes:
        calibrate: Adapt a measured table from another host to this one on first use (once
            per host and table, stored in the user folder); with --no-calibrate a warning
            names the command instead.
        calibration_seconds: Time cap of that first use: it times networks until the
            held-out error reaches the measurement's own, or this many seconds.
    """

    INLINE: ClassVar[bool] = True

    calibrate: bool = True
    calibration_seconds: float = 60.0


def table_path(config: SearchConfig, space: Space) -> Path:
    """The table file a search's latencies come from (`--table`, else the device's own)."""
    if config.table is not None:
        return config.table
    resolution = config.resolution or space.resolution
    precision = config.precision or "fp32"
    return locate_table(config.device, precision, space.name, resolution)[1]


def host_table(
    config: SearchConfig,
    space: Space,
    progress: Callable[[float, float, str], None] | None = None,
) -> HostTable:
    """The search's table as it predicts on this host (calibrated here on first use, see
    `rlnas.hardware.endtoend.table_for_host`)."""
    own = config.sources.table
    path = table_path(config, space)
    return table_for_host(path, own.calibrate, progress, own.calibration_seconds)


def _make(config: SearchConfig, space: Space) -> LatencySource:
    path = table_path(config, space)
    device = read_meta(path).device
    if device != config.device:
        raise RlnasError(
            f"table {path} is for device '{device}', not '{config.device}'; pass "
            f"--device {device} with it, or another --table"
        )
    host = host_table(config, space)
    table = host.table
    if read_meta(path).source != "measured":
        warnings.warn(
            f"latencies come from the {table.meta.source} table {path.name} "
            f"({table.meta.host}); run `rlnas profile --device {table.meta.device}` on the "
            "device for measured ones",
            EstimatedTableWarning,
            stacklevel=3,
        )
    return TableLatency(table, space, host.calibration)


KIND = LatencyKind(name="table", make=_make)
