"""Whole networks timed end to end on a device, and the calibration of a table against them.

`NetworkTimer` builds, compiles and times a network as the backend will run it.
`calibrate_table` adapts a table to this host: it times seeded random networks
until the fit's held-out error reaches the measurement's own, or a time cap, and
stores the table fitted to them (`rlnas.hardware.fit`, the measured table as the
first prior) for this host in the user folder (`rlnas.hardware.host`); the table
file is left as it is. `table_for_host` gives the table as it predicts here.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from rlnas.errors import ForeignTableWarning, TableError
from rlnas.hardware.backends import Workload, check_precision, get_backend
from rlnas.hardware.devices import (
    Device,
    get_device,
    list_devices,
    measuring_host,
    resolve_precision,
)
from rlnas.hardware.features import PriorTable, prior_tables
from rlnas.hardware.fit import (
    ADAPTATION_MODELS,
    MIN_NETWORKS,
    FitResult,
    fit_latencies,
    write_fitted_table,
)
from rlnas.hardware.host import busy_note, fingerprint, host_fit_path, load_host_fit, measured_here
from rlnas.hardware.table import LatencyTable, load_table
from rlnas.hardware.table_meta import TableMeta, profile_command
from rlnas.hardware.timing import Timing, TimingConfig, measure
from rlnas.model.arch import Architecture
from rlnas.model.layers import enumerate_layers
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
        """This host's fingerprint as tables store it (JSON; the GPU's for a GPU device)."""
        return self.local_fingerprint(self.device)

    @staticmethod
    def local_fingerprint(device: Device) -> str:
        return json.dumps(fingerprint(device.gpu), sort_keys=True)

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


MIN_ARCHS = 20
CHECK_EVERY = 5
# A first use stops early only where its table has also settled: its predictions of 100
# other networks moved by less than this (mean, %) since the previous check. Where the
# timings are noisy, the error reaches their floor early and the table is still moving.
SETTLED_PCT = 1.0
PROBES = 100


@dataclass(frozen=True)
class Adaptation:
    """A table adapted to whole networks timed on one host (`adapt`).

    Attributes:
        meta: The measured table that was adapted.
        fit: The table fitted to the timings, with the measured one as its first prior.
        frame: One row per network: arch, raw prediction, each pass, measured (their mean).
        floor_pct: The measurement's own error: mean |pass 1 / pass 2 - 1|, in percent
            (nan with one pass).
        seconds: Wall time of the timing and fitting.
    """

    meta: TableMeta
    fit: FitResult
    frame: pd.DataFrame
    floor_pct: float
    seconds: float

    @property
    def at_floor(self) -> bool:
        return bool(self.fit.cv_mape <= self.floor_pct)

    def summary(self) -> str:
        """One line: how many networks, the held-out error, and whether it is at the floor."""
        meta = self.meta
        line = (
            f"{meta.name} adapted to this host: {self.fit.networks} networks timed in "
            f"{self.seconds:.0f} s, held-out error {self.fit.cv_mape:.1f}% against the "
            f"measurement's own {self.floor_pct:.1f}% (pass against pass)"
        )
        if self.at_floor:
            return line + ": at the floor"
        device = get_device(meta.device)
        layers = len(enumerate_layers(get_space(meta.space), meta.resolution))
        wall_s = layers * device.seconds_per_layer.get(meta.precision, 1.0)
        took = f"{wall_s / 60:.0f} min" if wall_s >= 90 else f"{wall_s:.0f} s"
        return (
            f"{line}: above the floor; for this host's own table run `{profile_command(meta)}` "
            f"(about {took} here)"
        )


def adapt(
    table: LatencyTable,
    timer: NetworkTimer | FleetNetworkTimer,
    seconds: float = 60.0,
    seed: int = 2026,
    passes: int = 2,
    progress: Callable[[float, float, str], None] | None = None,
    min_archs: int = MIN_ARCHS,
    max_archs: int | None = None,
    priors: Sequence[PriorTable] | None = None,
) -> Adaptation:
    """Times seeded random networks of the table's space with `timer` until the fit's
    held-out error reaches the measurement's own (pass against pass) and the fitted table
    has settled (`SETTLED_PCT`), or `seconds` have passed (the fit is checked every few
    networks from `min_archs` on), and fits a table to them (`rlnas.hardware.fit`). The
    priors are the table, then every other table of its space and resolution (or `priors`,
    after the table)."""
    started = time.perf_counter()
    meta = table.meta
    space = get_space(meta.space)
    if priors is None:
        others = prior_tables(
            ["auto"], space, meta.resolution, exclude=[p for p in [table.path] if p]
        )
        priors = [p for p in others if p.name != meta.name]
    everything = [PriorTable.of(table), *priors]
    caches = json.loads(timer.fingerprint)["caches"] if timer.fingerprint else ""
    rng = np.random.default_rng(seed)
    probe_rng = np.random.default_rng(seed + 1)
    probes = [Architecture.sample(probe_rng, space) for _ in range(PROBES)]
    previous: np.ndarray | None = None
    archs: list[Architecture] = []
    raw: list[float] = []
    first: list[float] = []
    second: list[float] = []
    while True:
        archs.append(Architecture.sample(rng, space))
        raw.append(table.raw_predict_ms(archs[-1]))
        first.append(timer.time(archs[-1], meta.resolution, meta.batch, 1).median_ms)
        if passes < 2:
            second.append(first[-1])
        elif len(archs) >= 2:
            # Each pass compiles afresh, and a network's second pass comes after the next
            # network's first: two passes of one compiled model, back to back, agree far
            # better than the network's timings do, and would put the floor too low.
            second.append(timer.time(archs[-2], meta.resolution, meta.batch, 1).median_ms)
        done = len(second)  # networks with every pass timed
        elapsed = time.perf_counter() - started
        # the cap holds if the next network, as long as the average one, would pass it
        ahead = elapsed * (len(archs) + 1) / len(archs)
        last = (ahead > seconds and done >= MIN_NETWORKS) or done == max_archs
        check = done >= max(min_archs, MIN_NETWORKS) and done % CHECK_EVERY == 0
        if last or check:
            frame = pd.DataFrame(
                {
                    "arch": [str(a) for a in archs[:done]],
                    "raw_predicted_ms": raw[:done],
                    "pass1_ms": first[:done],
                    "pass2_ms": second,
                }
            )
            frame["measured_ms"] = (frame["pass1_ms"] + frame["pass2_ms"]) / 2
            floor = _floor_pct(frame, passes)
            measured = frame["measured_ms"].to_numpy()
            fit = fit_latencies(
                archs[:done], measured, meta.resolution, everything, caches, ADAPTATION_MODELS
            )
            predicted = np.array([fit.predict_ms(a, meta.resolution) for a in probes])
            moved = np.inf if previous is None else 100 * np.mean(np.abs(predicted / previous - 1))
            previous = predicted
            if last or (fit.cv_mape <= floor and moved <= SETTLED_PCT):
                seconds_taken = time.perf_counter() - started
                return Adaptation(meta, fit, frame, floor, seconds_taken)
        if progress is not None:
            progress(min(elapsed, seconds), seconds, f"{done} networks")


def calibrate_table(
    path: Path,
    seconds: float = 60.0,
    seed: int = 2026,
    passes: int = 2,
    timing: TimingConfig | None = None,
    progress: Callable[[float, float, str], None] | None = None,
    timer: NetworkTimer | FleetNetworkTimer | None = None,
    min_archs: int = MIN_ARCHS,
    max_archs: int | None = None,
) -> tuple[Adaptation, Path]:
    """Adapts a table to this host (`adapt`) and stores the fitted table for this host in
    the user folder; returns the adaptation and where it is stored. The table file is left
    as it is, and nothing is written before the end, so an interrupted calibration leaves
    nothing behind and the next use starts again. `timer` times elsewhere (a
    `rlnas.hardware.fleet.FleetNetworkTimer`) if that node is this host.

    Raises:
        TableError: The table was measured with another runtime version, or the node that
            timed is another host.
        DeviceError: Its device cannot be measured here.
    """
    table = load_table(path)
    meta = table.meta
    table.check_space(get_space(meta.space))
    timer = timer or NetworkTimer(meta.device, meta.precision, meta.threads or 1, timing)
    if meta.backend_version != timer.backend_version:
        raise TableError(
            f"table {path} was measured with {meta.backend} {meta.backend_version} but "
            f"{timer.host} has {timer.backend_version}; profile a table there"
        )
    if timer.fingerprint != NetworkTimer.local_fingerprint(get_device(meta.device)):
        raise TableError(
            f"table {path} would be adapted to {timer.host}, the node that timed, which is "
            "not this host; run `rlnas tables calibrate` on that host, or profile the table there"
        )
    result = adapt(table, timer, seconds, seed, passes, progress, min_archs, max_archs)
    out = host_fit_path(meta)
    method = (
        f"adapted to this host from {meta.name} (created {meta.created}): "
        f"{result.fit.describe()}; the measurement's own error {result.floor_pct:.1f}% "
        "(pass against pass)"
    )
    write_fitted_table(
        result.fit,
        get_space(meta.space),
        meta.resolution,
        meta.device,
        meta.precision,
        timer.host,
        out,
        threads=meta.threads,
        host_fingerprint=timer.fingerprint,
        backend=meta.backend,
        backend_version=timer.backend_version,
        batch=meta.batch,
        method=method,
    )
    return result, out


def _floor_pct(frame: pd.DataFrame, passes: int) -> float:
    if passes < 2:
        return math.nan
    return float(100 * np.mean(np.abs(frame["pass1_ms"] / frame["pass2_ms"] - 1)))


@dataclass(frozen=True)
class HostTable:
    """A table as it predicts on this host.

    Attributes:
        table: The table that applies here: this host's adaptation where there is one.
        calibration: Which that is, in words (for predict and config.json).
        summary: The one-line summary of an adaptation run by this call, else "".
    """

    table: LatencyTable
    calibration: str
    summary: str = ""


def calibrates_here(meta: TableMeta) -> bool:
    """Whether this host adapts the table to itself on first use: a measured table from
    another host, of a device this host can measure."""
    if meta.source != "measured" or measured_here(meta) or meta.device not in list_devices():
        return False
    return get_device(meta.device).missing() is None


def table_for_host(
    path: Path,
    calibrate: bool = True,
    progress: Callable[[float, float, str], None] | None = None,
    seconds: float = 60.0,
    timing: TimingConfig | None = None,
    max_archs: int | None = None,
) -> HostTable:
    """The table at `path` as it predicts on this host.

    This host's adaptation of it (`calibrate_table`) where there is one. Else a
    measured table from another host (another fingerprint, or none) that this host
    can measure is adapted here on first use (with `calibrate=False` a warning names
    the command instead). Estimated and fitted tables, and tables of devices that are
    not here, keep their own figures.
    """
    table = load_table(path)
    meta = table.meta
    own = table.calibration.describe() if table.calibration else "none (raw sum of layers)"
    fitted = load_host_fit(meta)
    if fitted is not None:
        return HostTable(fitted, f"this host's ({host_fit_path(meta)}): {fitted.meta.method}")
    if not calibrates_here(meta):
        if meta.device not in list_devices() or get_device(meta.device).missing() is not None:
            return HostTable(table, f"the table's own ({meta.device} is not here): {own}")
        return HostTable(table, f"the table's own: {own}")
    if not calibrate:
        warnings.warn(
            f"table {meta.name} was measured on another host ({meta.host}); its predictions "
            f"can be 10-30% off here: adapt it with `rlnas tables calibrate {meta.name}` "
            "(about a minute), or drop --no-calibrate",
            ForeignTableWarning,
            stacklevel=2,
        )
        return HostTable(table, f"the table's own, measured on another host: {own}")
    try:
        result, stored = calibrate_table(
            path, seconds, timing=timing, progress=progress, max_archs=max_archs
        )
    except TableError as exc:  # another runtime version: no adaptation can hold
        warnings.warn(str(exc), ForeignTableWarning, stacklevel=2)
        return HostTable(table, f"the table's own, measured elsewhere: {own}")
    fitted = load_table(stored)
    where = f"this host's ({stored}): {fitted.meta.method}"
    return HostTable(fitted, where, result.summary() + busy_note(meta))
