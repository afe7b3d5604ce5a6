"""End-to-end re-measurement: whole networks compiled and timed on the device.

The run's best candidates (by reward) and the baselines are built as whole
networks, compiled by the device's backend at the table's precision and timed
with the profiler's harness, in `passes` separate passes (the spread between
passes is the measurement's own run-to-run noise). Each network's predicted
latency comes from the lookup table of the same device, precision, space and
resolution, so prediction and measurement sit side by side.

Results go to `<run>/measured.parquet` (rewritten atomically after every
network, so an interrupted run keeps what it measured; rows of other devices
or precisions are kept), then `rlnas.results.report` writes the report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

from rlnas.cluster import ray_address
from rlnas.errors import RlnasError, TableError
from rlnas.files import atomic_write_parquet
from rlnas.hardware.catalog import locate_table
from rlnas.hardware.endtoend import NetworkTimer, NetworkTiming, table_for_host
from rlnas.hardware.fleet import FleetNetworkTimer
from rlnas.hardware.table import LatencyTable
from rlnas.hardware.timing import TimingConfig
from rlnas.model.arch import Architecture
from rlnas.model.baselines import get_baseline
from rlnas.model.layers import arch_layers
from rlnas.model.space import get_space
from rlnas.search.run_folder import MEASURED, MEASURED_COLUMNS, RunFolder, read_frame
from rlnas.search.sources import accuracy_kind, macs_model, params_model

# The baselines every image-space run is compared against (issue 6 / PRODUCT.md).
BASELINE_NAMES = ("mobilenetv2", "efficientnet_b0", "resnet18")
KEY_COLUMNS = ["name", "device", "precision"]
# The name of a baseline-relative run's a0 where it is not one of the named baselines.
A0 = "a0"


@dataclass(frozen=True)
class MeasureConfig:
    """What `measure_run` measures.

    Attributes:
        device: Device to measure on.
        precision: Precision; default the run's own.
        top: Best candidates to measure (by reward, feasible first).
        baselines: Also measure the baselines.
        threads: Intra-op threads for CPU backends.
        passes: Timing passes per network.
        timing: Harness settings.
        ray_address: A Ray cluster (or auto): the networks are timed on its node that
            offers the device as a resource (`rlnas.hardware.fleet`).
    """

    device: str = "cpu"
    precision: str | None = None
    top: int = 5
    baselines: bool = True
    threads: int = 1
    passes: int = 2
    timing: TimingConfig = field(default_factory=TimingConfig)
    ray_address: str | None = None

    def __post_init__(self) -> None:
        if self.top < 0:
            raise RlnasError(f"--top must be >= 0, got {self.top}")
        for name in ("threads", "passes"):
            if getattr(self, name) < 1:
                raise RlnasError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class _Entry:
    name: str
    kind: str  # candidate or baseline
    rank: int | None
    arch: Architecture
    score: float


def _baseline_scores(run: RunFolder, names: Sequence[str]) -> dict[str, float]:
    """Each baseline's accuracy score on the run's scale, as the run's accuracy source scores
    baselines (`AccuracyKind.score_baselines`): NaN where it cannot."""
    archs = {name: get_baseline(name).architecture() for name in names}
    return accuracy_kind(run.config).score_baselines(run.config, run.provenance.proxy, archs)


def measures_baselines(run: RunFolder, asked: bool) -> bool:
    """Whether the named baselines are measured with this run (where `asked`): they are
    ImageNet-style networks, compared with runs of image (macro) spaces only."""
    return asked and get_space(run.config.space).COMPARES_WITH_BASELINES


def a0_name(run: RunFolder, named: bool) -> str | None:
    """The name of a baseline-relative run's a0 among its measured rows: its baseline name
    where it is one of the `named` baselines measured, else `A0`; None without a0."""
    a0 = run.provenance.baseline
    if a0 is None:
        return None
    return a0.name if named and a0.name in BASELINE_NAMES else A0


def _entries(run: RunFolder, config: MeasureConfig) -> list[_Entry]:
    space = get_space(run.config.space)
    entries = []
    for _, row in run.ranked().head(config.top).iterrows():
        arch = Architecture.decode(row["arch"], space)
        entries.append(
            _Entry(f"rank{row['rank']}", "candidate", int(row["rank"]), arch, row["accuracy"])
        )
    a0 = run.provenance.baseline
    named = measures_baselines(run, config.baselines)
    if a0 is not None and a0_name(run, named) == A0:
        # The user's own baseline of a baseline-relative search, scored by the run's source.
        entries.append(
            _Entry(A0, "baseline", None, Architecture.decode(a0.arch, space), a0.accuracy)
        )
    if named:
        scores = _baseline_scores(run, BASELINE_NAMES)
        for name in BASELINE_NAMES:
            entries.append(
                _Entry(name, "baseline", None, get_baseline(name).architecture(), scores[name])
            )
    return entries


def _table_for(
    arch: Architecture,
    device: str,
    precision: str,
    resolution: int,
    run: RunFolder,
    loaded: dict[Path, LatencyTable],
) -> LatencyTable | None:
    """The table that predicts `arch` on this device, or None if there is none.

    `loaded` keeps the tables already read, so each is read once per call of `measure_run`.
    """
    run_table = run.provenance.table
    path: Path | None = None
    if (
        run_table is not None
        and run_table.meta.space_digest == arch.space.digest
        and run_table.meta.device == device
        and run_table.meta.precision == precision
        and run_table.path.is_file()
    ):
        path = run_table.path
    else:
        try:
            _, path = locate_table(device, precision, arch.space.name, resolution)
        except TableError:
            return None
    if path not in loaded:
        # Predicted as on this host: a table measured elsewhere is calibrated here first.
        loaded[path] = table_for_host(path).table
    table = loaded[path]
    return table if table.meta.space_digest == arch.space.digest else None


def measure_run(
    run_path: Path,
    config: MeasureConfig,
    progress: Callable[[int, int, str], None] | None = None,
) -> pd.DataFrame:
    """Measures a run's best candidates (and the baselines) end to end; writes the results.

    Args:
        run_path: The run folder.
        config: What to measure.
        progress: Called as `progress(done, total, name)` after each network.

    Returns:
        This call's rows of `<run>/measured.parquet`.
    """
    if config.top < 0:
        raise RlnasError(f"--top must be >= 0, got {config.top}")
    run = RunFolder.open(run_path)
    precision = config.precision or run.config.precision or "fp32"
    address = ray_address(config.ray_address)
    timer: NetworkTimer | FleetNetworkTimer = (
        FleetNetworkTimer(config.device, precision, config.threads, config.timing, address)
        if address
        else NetworkTimer(config.device, precision, config.threads, config.timing)
    )
    resolution = run.config.resolution or get_space(run.config.space).resolution
    entries = _entries(run, config)
    out = run.file(MEASURED)
    previous = (
        read_frame(out, MEASURED_COLUMNS, f"move {out} away to measure the run afresh")
        if out.is_file()
        else pd.DataFrame(columns=KEY_COLUMNS)
    )
    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    rows: list[dict[str, object]] = []
    tables: dict[Path, LatencyTable] = {}
    for done, entry in enumerate(entries, 1):
        arch = entry.arch
        table = _table_for(arch, config.device, precision, resolution, run, tables)
        timing = timer.time(arch, resolution, passes=config.passes)
        rows.append(_row(entry, timing, timer, table, config, precision, resolution))
        rows[-1]["created"] = created
        _write(previous, rows, out)
        if progress is not None:
            progress(done, len(entries), entry.name)
    from rlnas.results.report import write_report

    write_report(Path(run_path))
    return pd.DataFrame(rows)


def _row(
    entry: _Entry,
    timing: NetworkTiming,
    timer: NetworkTimer | FleetNetworkTimer,
    table: LatencyTable | None,
    config: MeasureConfig,
    precision: str,
    resolution: int,
) -> dict[str, object]:
    """One network's row of `measured.parquet`: what was measured, and what its table
    predicted (raw and calibrated; NaN where the table lacks one of its layers)."""
    arch = entry.arch
    raw = predicted = float("nan")
    if table is not None and not table.missing(arch_layers(arch, resolution)):
        raw = table.raw_predict_ms(arch)
        predicted = table.predict_ms(arch)
    return {
        "name": entry.name,
        "kind": entry.kind,
        "rank": entry.rank,
        "arch": str(arch),
        "space": arch.space.name,
        "device": config.device,
        "precision": precision,
        "backend": timer.backend_name,
        "backend_version": timer.backend_version,
        "host": timer.host,
        "threads": config.threads,
        "resolution": resolution,
        "score": float(entry.score),
        "params": round(params_model(arch.space).total(arch.choices)),
        "macs": round(macs_model(arch.space, resolution).total(arch.choices)),
        "predicted_ms": predicted,
        "raw_predicted_ms": raw,
        "measured_ms": timing.median_ms,
        "p10_ms": min(t.p10_ms for t in timing.passes),
        "p90_ms": max(t.p90_ms for t in timing.passes),
        "spread_pct": timing.spread_pct,
        "error_pct": (predicted / timing.median_ms - 1) * 100,
        "calibrated": bool(
            table is not None and (table.calibration is not None or table.meta.source == "fitted")
        ),
    }


def _write(previous: pd.DataFrame, rows: list[dict[str, object]], out: Path) -> None:
    """Replaces earlier rows of the same (name, device, precision); keeps the others."""
    new = pd.DataFrame(rows)
    keys = set(map(tuple, new[KEY_COLUMNS].itertuples(index=False)))
    kept = previous[[tuple(k) not in keys for k in previous[KEY_COLUMNS].itertuples(index=False)]]
    frame = pd.concat([kept, new], ignore_index=True) if len(kept) else new
    atomic_write_parquet(pa.Table.from_pandas(frame, preserve_index=False), out)
