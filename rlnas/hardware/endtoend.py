"""Whole networks timed end to end on a device, and the calibration of a table against them.

`NetworkTimer` builds, compiles and times a network as the backend will run it.
`calibrate_table` fits a table's affine calibration (`rlnas.hardware.calibration`)
on seeded random networks. Where the table was measured on this host (same
fingerprint, `rlnas.hardware.host`) and is not a shipped file, the calibration
goes into the table's metadata; otherwise it is stored for this host in the
user folder, and the table file is left as it is.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from rlnas.errors import ForeignTableWarning, TableError
from rlnas.hardware.backends import Workload, check_precision, get_backend
from rlnas.hardware.calibration import Calibration, fit_calibration, layer_kind
from rlnas.hardware.catalog import shipped_tables_dir
from rlnas.hardware.devices import (
    Device,
    get_device,
    list_devices,
    measuring_host,
    resolve_precision,
)
from rlnas.hardware.host import (
    calibration_path,
    fingerprint,
    load_host_calibration,
    measured_here,
    save_host_calibration,
    with_calibration,
)
from rlnas.hardware.table import LatencyTable, TableMeta, load_table, save_calibration
from rlnas.hardware.timing import Timing, TimingConfig, measure
from rlnas.model.arch import Architecture
from rlnas.model.layers import arch_layers
from rlnas.model.network import build_network
from rlnas.model.space import get_space

if TYPE_CHECKING:
    from rlnas.hardware.fleet import FleetNetworkTimer


@dataclass(frozen=True)
class NetworkTiming:
    """End-to-end timing of one network over several passes.

    Attributes:
        median_ms: Median of the passes' medians.
        spread_pct: (largest - smallest pass median) / median_ms, in percent.
        passes: Each pass's summary.
    """

    median_ms: float
    spread_pct: float
    passes: tuple[Timing, ...]


class NetworkTimer:
    """Compiles and times whole networks on one device at one precision.

    Args:
        device: Device name.
        precision: Precision (default: the device's first).
        threads: Intra-op threads for CPU backends.
        timing: Harness settings (the profiler's by default).
        seed: Seed of the network's random input.

    Raises:
        DeviceError: The device is not here or its backend is not installed.
    """

    def __init__(
        self,
        device: str,
        precision: str | None = None,
        threads: int = 1,
        timing: TimingConfig | None = None,
        seed: int = 0,
    ):
        self.device = get_device(device)
        self.precision = resolve_precision(self.device, precision)
        self.host = measuring_host(self.device, action="measure on")
        self.backend = get_backend(self.device.backend, threads=threads)
        check_precision(self.backend, self.precision)
        self.threads = threads
        self.timing = timing or TimingConfig()
        self.seed = seed

    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def backend_version(self) -> str:
        return self.backend.version()

    @property
    def fingerprint(self) -> str:
        """This host's fingerprint as tables store it (JSON; empty for a GPU device)."""
        return self.local_fingerprint(self.device)

    @staticmethod
    def local_fingerprint(device: Device) -> str:
        return "" if device.gpu else json.dumps(fingerprint(), sort_keys=True)

    def time(
        self, arch: Architecture, resolution: int, batch: int = 1, passes: int = 2
    ) -> NetworkTiming:
        """Builds, compiles and times `arch` in `passes` passes."""
        module = build_network(arch, resolution)
        workload = Workload.random(module, [(batch, 3, resolution, resolution)], self.seed)
        compiled = self.backend.compile(workload, self.precision)
        timings = tuple(measure(compiled.run_timed, self.timing) for _ in range(max(1, passes)))
        medians = np.array([t.median_ms for t in timings])
        median = float(np.median(medians))
        spread = float((medians.max() - medians.min()) / median * 100) if median > 0 else 0.0
        return NetworkTiming(median, spread, timings)


@dataclass(frozen=True)
class CalibrationResult:
    """What `calibrate_table` measured and stored.

    Attributes:
        calibration: The fitted calibration.
        frame: One row per network: arch, raw prediction, measured, spread.
        stored_at: The table file (its metadata) or this host's calibration file.
    """

    calibration: Calibration
    frame: pd.DataFrame
    stored_at: Path


def _is_shipped(path: Path) -> bool:
    return Path(path).resolve().parent == shipped_tables_dir().resolve()


def calibrate_table(
    path: Path,
    archs: int = 30,
    seed: int = 2026,
    passes: int = 2,
    timing: TimingConfig | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    into_table: bool = True,
    timer: NetworkTimer | FleetNetworkTimer | None = None,
) -> CalibrationResult:
    """Measures `archs` seeded random architectures end to end and stores the fitted calibration.

    Stored in the table's metadata (its rows unchanged, written atomically) where
    `into_table` and the table is the user's and was measured here (same
    fingerprint; a table from before fingerprints, same CPU name); else in this
    host's calibration file, leaving the table untouched. `timer` times elsewhere (a
    `rlnas.hardware.fleet.FleetNetworkTimer`); "here" is then the node that times.

    Raises:
        TableError: The table was measured with another runtime version.
        DeviceError: Its device cannot be measured here.
    """
    table = load_table(path)
    meta = table.meta
    space = get_space(meta.space)
    table.check_space(space)
    timer = timer or NetworkTimer(meta.device, meta.precision, meta.threads or 1, timing)
    if meta.backend_version != timer.backend_version:
        raise TableError(
            f"table {path} was measured with {meta.backend} {meta.backend_version} but "
            f"{timer.host} has {timer.backend_version}; profile a table there"
        )
    rng = np.random.default_rng(seed)
    rows, parts = [], []
    for done in range(1, archs + 1):
        arch = Architecture.sample(rng, space)
        raw = table.raw_predict_ms(arch)
        parts.append(kind_parts(table, arch))
        timing_ = timer.time(arch, meta.resolution, meta.batch, passes)
        rows.append(
            {
                "arch": str(arch),
                "raw_predicted_ms": raw,
                "measured_ms": timing_.median_ms,
                "spread_pct": timing_.spread_pct,
            }
        )
        if progress is not None:
            progress(done, archs, str(arch))
    frame = pd.DataFrame(rows)
    calibration = fit_calibration(
        frame["raw_predicted_ms"].to_numpy(),
        frame["measured_ms"].to_numpy(),
        timer.backend_version,
        timer.host,
        parts,
        meta.overhead_ms,
    )
    same_print = bool(meta.host_fingerprint) and json.loads(meta.host_fingerprint) == json.loads(
        timer.fingerprint or "null"
    )
    native = same_print or (not meta.host_fingerprint and meta.host == timer.host)
    if into_table and native and not _is_shipped(Path(path)):
        save_calibration(Path(path), calibration)
        return CalibrationResult(calibration, frame, Path(path))
    if timer.fingerprint != NetworkTimer.local_fingerprint(get_device(meta.device)):
        raise TableError(
            f"table {path} was not measured on {timer.host}, the node that timed, and a "
            "calibration for another host is kept only in that host's own folder; run "
            "`rlnas tables calibrate` on that host, or profile the table there"
        )
    return CalibrationResult(calibration, frame, save_host_calibration(meta, calibration))


@dataclass(frozen=True)
class HostTable:
    """A table as it predicts on this host.

    Attributes:
        table: The table, with the calibration that applies here.
        calibration: Which calibration that is, in words (for predict and config.json).
    """

    table: LatencyTable
    calibration: str


def calibrates_here(meta: TableMeta) -> bool:
    """Whether this host calibrates the table for itself: a measured table from another
    host, of a device this host can measure."""
    if meta.source != "measured" or measured_here(meta) or meta.device not in list_devices():
        return False
    return get_device(meta.device).missing() is None


def table_for_host(
    path: Path,
    calibrate: bool = True,
    progress: Callable[[int, int, str], None] | None = None,
    archs: int = 30,
    timing: TimingConfig | None = None,
) -> HostTable:
    """The table at `path` calibrated for this host.

    A measured table from another host (another fingerprint, or none) that this
    host can measure is calibrated here on first use (`calibrate_table`, stored
    per host; with `calibrate=False` a warning names the command instead), and
    that calibration is used from then on. Estimated tables, and tables of
    devices that are not here, keep their own calibration.
    """
    table = load_table(path)
    meta = table.meta
    own = table.calibration.describe() if table.calibration else "none (raw sum of layers)"
    if not calibrates_here(meta):
        if meta.device not in list_devices() or get_device(meta.device).missing() is not None:
            return HostTable(table, f"the table's own ({meta.device} is not here): {own}")
        return HostTable(table, f"the table's own: {own}")
    stored = load_host_calibration(meta)
    if stored is None and calibrate:
        try:
            result = calibrate_table(
                path, archs, timing=timing, progress=progress, into_table=False
            )
        except TableError as exc:  # another runtime version: no calibration can hold
            warnings.warn(str(exc), ForeignTableWarning, stacklevel=2)
            return HostTable(table, f"the table's own, measured elsewhere: {own}")
        stored = result.calibration
    if stored is None:
        warnings.warn(
            f"table {meta.name} was measured on another host ({meta.host}); its predictions "
            f"can be 10-30% off here: calibrate it with `rlnas tables calibrate {meta.name}` "
            "(about 30 s), or drop --no-calibrate",
            ForeignTableWarning,
            stacklevel=2,
        )
        return HostTable(table, f"the table's own, measured on another host: {own}")
    where = calibration_path(meta)
    return HostTable(with_calibration(table, stored), f"this host's ({where}): {stored.describe()}")


def kind_parts(table: LatencyTable, arch: Architecture) -> dict[str, float]:
    """The layers' latencies in `table` without their call overhead, summed per
    `layer_kind` (what a calibration per kind scales)."""
    parts: dict[str, float] = {}
    keys = arch_layers(arch, table.meta.resolution)
    for key, row in zip(keys, table.rows(keys), strict=True):
        parts[layer_kind(key)] = parts.get(layer_kind(key), 0.0) + float(table.net_latency[row])
    return parts
