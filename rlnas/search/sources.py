"""Where accuracy and latency come from: one registry of sources each, chosen by configuration.

The environment and the strategies see only the small interfaces below, so a
benchmark file of measured values (NAS-Bench-201 accuracies, measured device
latencies) can replace the proxy or the lookup table. A source is added with
its class and one entry in `ACCURACY_SOURCES` or `LATENCY_SOURCES`: a function
that makes it from the search's settings.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import torch

from rlnas.accuracy.score_cache import default_cache_path
from rlnas.accuracy.scorer import ProxyConfig, ProxyScorer
from rlnas.cluster import TaskPool
from rlnas.errors import DataError, EstimatedTableWarning, RlnasError, did_you_mean, unknown
from rlnas.hardware.catalog import locate_table
from rlnas.hardware.endtoend import HostTable, table_for_host
from rlnas.hardware.table import LatencyTable, read_meta
from rlnas.hardware.utilization import Utilization
from rlnas.model.arch import Architecture
from rlnas.model.costs import AdditiveCost
from rlnas.model.ops import layer_macs, layer_params
from rlnas.model.space import Space
from rlnas.search.config import SearchConfig


class AccuracySource(Protocol):
    """An accuracy score in [0, 1] per architecture (higher is better).

    Attributes:
        description: What it is, for run folders and reports.
        proxy: The proxy configuration where the score is a proxy's, else None.
    """

    description: str
    proxy: ProxyConfig | None

    def accuracy(self, arch: Architecture) -> float: ...


class LatencySource(Protocol):
    """Latency in milliseconds per architecture, and as it accumulates per decision.

    Attributes:
        description: What it is, for run folders and reports.
        table: The lookup table it reads, or None.
    """

    description: str
    table: LatencyTable | None

    def latency_ms(self, arch: Architecture) -> float: ...

    def utilization(self, arch: Architecture) -> float | None:
        """MAC-weighted utilization of the accelerator, or None where there is no model."""
        ...

    def increment_ms(self, position: int, choices: list[int]) -> float:
        """Latency added by the decision at `position` (0 where the source cannot tell)."""
        ...


def proxy_config(config: SearchConfig) -> ProxyConfig:
    """The proxy settings of a search: candidates and baselines are scored by this alone."""
    return ProxyConfig(proxy=config.proxy, data=config.data, cache=default_cache_path())


class ProxyAccuracy:
    """Normalised zero-cost proxy score (see `rlnas.accuracy.scorer`)."""

    table: LatencyTable | None = None

    def __init__(self, scorer: ProxyScorer):
        self.scorer = scorer
        self.proxy: ProxyConfig | None = scorer.config
        self.description = f"proxy {scorer.config.proxy} ({scorer.config.resolution}px)"

    def accuracy(self, arch: Architecture) -> float:
        return self.scorer.score(arch)

    def prefetch(self, archs: Sequence[Architecture], pool: TaskPool) -> None:
        """Computes the raw proxy values of `archs` (and of the normalisers' reference sample)
        that are not cached yet as parallel tasks, and caches them: the scores `accuracy`
        then gives are those it would compute itself."""
        scorer = self.scorer
        wanted = [*scorer.reference_sample(), *archs]
        todo = list(
            {
                str(a): a
                for a in wanted
                if any(scorer.cache.get(scorer.key(a, p)) is None for p in scorer.members)
            }.values()
        )
        if not todo:
            return
        config = dataclasses.replace(scorer.config, cache=None)
        threads = torch.get_num_threads()
        chunks = [todo[i::PREFETCH_CHUNKS] for i in range(min(PREFETCH_CHUNKS, len(todo)))]
        arguments = [(scorer.space, config, [str(a) for a in c], threads) for c in chunks]
        for index, values in pool(_raw_values, arguments):
            for arch, raw in zip(chunks[index], values, strict=True):
                for proxy, value in raw.items():
                    scorer.cache.put(scorer.key(arch, proxy), value)
        scorer.flush()


# Tasks a batch of proxy scoring is split into (a few per worker of a small cluster).
PREFETCH_CHUNKS = 8


def _raw_values(
    space: Space, config: ProxyConfig, archs: list[str], threads: int
) -> list[dict[str, float]]:
    """Raw proxy values of architectures, computed where this task runs (no cache)."""
    torch.set_num_threads(threads)
    key = (space.digest, config)
    if key not in _WORKER_SCORERS:  # one per worker process: the data is read once
        _WORKER_SCORERS[key] = ProxyScorer(space, config)
    scorer = _WORKER_SCORERS[key]
    return [scorer.raw(Architecture.decode(text, space)) for text in archs]


_WORKER_SCORERS: dict[tuple[str, ProxyConfig], ProxyScorer] = {}


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


def _read_frame(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"benchmark file {path} does not exist; give a .parquet or .csv file")
    if path.suffix not in (".parquet", ".csv"):
        raise DataError(f"benchmark file {path} must be .parquet or .csv")
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:  # pandas and pyarrow raise many types for unreadable files
        kind = "Parquet" if path.suffix == ".parquet" else "CSV"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"benchmark file {path} is not a readable {kind} table ({reason}); give a file with "
            "an arch_index or arch_str column and one numeric column per value"
        ) from None


def _whole(value: object) -> int:
    """A whole number from a file cell (ints of any size, "123", 123.0); else ValueError."""
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise ValueError(repr(value))


class _BenchmarkColumn:
    """One numeric column of a benchmark file, keyed by `arch_index` or `arch_str`."""

    def __init__(self, path: Path, column: str):
        frame = _read_frame(Path(path))
        if column not in frame.columns:
            raise RlnasError(
                f"benchmark file {path} has no column '{column}'; columns: "
                f"{', '.join(frame.columns)}.{did_you_mean(column, frame.columns)}"
            )
        if "arch_index" in frame.columns:
            self.key = "arch_index"
            try:
                keys: list[int | str] = [_whole(i) for i in frame["arch_index"]]
            except ValueError as exc:
                raise DataError(
                    f"benchmark file {path}: arch_index must hold whole numbers, not {exc}; "
                    "fix the file"
                ) from None
        elif "arch_str" in frame.columns:
            self.key = "arch_str"
            keys = [str(k) for k in frame["arch_str"]]
        else:
            raise RlnasError(f"benchmark file {path} needs an 'arch_index' or 'arch_str' column")
        values = pd.to_numeric(frame[column], errors="coerce")
        if values.isna().all():
            raise DataError(
                f"benchmark file {path}: column '{column}' holds no numbers; name a numeric column"
            )
        if pd.Series(keys).duplicated().any():
            raise DataError(
                f"benchmark file {path} has repeated {self.key} values; keep one row per "
                "architecture"
            )
        self.values: dict[int | str, float] = dict(zip(keys, values.astype(float), strict=True))
        self.path, self.column = path, column

    def value(self, arch: Architecture) -> float:
        value = self.values.get(arch.index if self.key == "arch_index" else str(arch))
        if value is None or not np.isfinite(value):
            raise RlnasError(f"benchmark file {self.path} has no '{self.column}' for {arch}")
        return float(value)


ACCURACY_UNITS = ("auto", "percent", "fraction")


class BenchmarkAccuracy:
    """Accuracy from a benchmark file, as a fraction.

    The unit is decided once for the whole column, never per value: `percent`
    divides every value by 100, `fraction` takes them as they are, and `auto`
    says percent when any value exceeds 1 (a column of fractions never does).
    Deciding per value would read a network trained to 0.9% (chance level on
    100 classes) as 90%.

    Raises:
        DataError: A value outside 0..100 (percent) or 0..1 (fraction).
    """

    proxy: ProxyConfig | None = None

    def __init__(self, path: Path, column: str, unit: str = "auto"):
        if unit not in ACCURACY_UNITS:
            raise RlnasError(unknown("accuracy unit", unit, ACCURACY_UNITS))
        self.column = _BenchmarkColumn(path, column)
        values = np.array([v for v in self.column.values.values() if np.isfinite(v)])
        if unit == "auto":
            unit = "percent" if values.size and values.max() > 1.0 else "fraction"
        self.unit = unit
        self.scale = 0.01 if unit == "percent" else 1.0
        top = 100.0 if unit == "percent" else 1.0
        if values.size and (values.min() < 0 or values.max() > top):
            raise DataError(
                f"benchmark file {path}: column '{column}' holds values outside 0..{top:g} "
                f"({values.min():g}..{values.max():g}), so it is not an accuracy in {unit}; "
                "name an accuracy column or set --accuracy-unit"
            )
        self.description = f"benchmark {path}:{column} ({unit})"

    def accuracy(self, arch: Architecture) -> float:
        return self.column.value(arch) * self.scale


class BenchmarkLatency:
    """Measured end-to-end latency from a benchmark file (no per-decision breakdown)."""

    table: LatencyTable | None = None

    def __init__(self, path: Path, column: str):
        self.column = _BenchmarkColumn(path, column)
        values = np.array(list(self.column.values.values()))
        if (values[np.isfinite(values)] < 0).any() or np.isinf(values).any():
            raise DataError(
                f"benchmark file {path}: column '{column}' holds negative or infinite "
                "latencies; name a latency column in ms"
            )
        self.description = f"benchmark {path}:{column}"

    def latency_ms(self, arch: Architecture) -> float:
        return self.column.value(arch)

    def utilization(self, arch: Architecture) -> float | None:
        return None

    def increment_ms(self, position: int, choices: list[int]) -> float:
        return 0.0


# Factories: the source of a (resolved) search config and its space.


def _proxy_accuracy(config: SearchConfig, space: Space) -> AccuracySource:
    return ProxyAccuracy(ProxyScorer(space, proxy_config(config)))


def _trained_accuracy(config: SearchConfig, space: Space) -> AccuracySource:
    from rlnas.accuracy import trained

    return trained.TrainedAccuracy(config.data, trained.SHORT_RECIPE)


def _predicted_accuracy(config: SearchConfig, space: Space) -> AccuracySource:
    from rlnas.search.predicted import PredictorAccuracy

    if config.predictor is None:
        raise RlnasError(
            "the predictor accuracy source needs --predictor FILE (make one with "
            "`rlnas predictor fit`)"
        )
    return PredictorAccuracy(config.predictor, space, config.data)


def _benchmark_accuracy(config: SearchConfig, space: Space) -> AccuracySource:
    if config.accuracy_file is None:
        raise RlnasError("the benchmark accuracy source needs --accuracy-file (.parquet/.csv)")
    return BenchmarkAccuracy(config.accuracy_file, config.accuracy_column, config.accuracy_unit)


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
    return table_for_host(
        table_path(config, space), config.calibrate, progress, config.calibration_seconds
    )


def _table_latency(config: SearchConfig, space: Space) -> LatencySource:
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


def _benchmark_latency(config: SearchConfig, space: Space) -> LatencySource:
    if config.latency_file is None or not config.latency_column:
        raise RlnasError(
            "the benchmark latency source needs --latency-file and --latency-column "
            "(e.g. pixel3_ms)"
        )
    return BenchmarkLatency(config.latency_file, config.latency_column)


ACCURACY_SOURCES: dict[str, Callable[[SearchConfig, Space], AccuracySource]] = {
    "proxy": _proxy_accuracy,
    "benchmark": _benchmark_accuracy,
    "trained": _trained_accuracy,
    "predictor": _predicted_accuracy,
}
LATENCY_SOURCES: dict[str, Callable[[SearchConfig, Space], LatencySource]] = {
    "table": _table_latency,
    "benchmark": _benchmark_latency,
}


def accuracy_source(config: SearchConfig, space: Space) -> AccuracySource:
    name = config.resolved().accuracy or "proxy"
    if name not in ACCURACY_SOURCES:
        raise RlnasError(unknown("accuracy source", name, ACCURACY_SOURCES))
    return ACCURACY_SOURCES[name](config, space)


def latency_source(config: SearchConfig, space: Space) -> LatencySource:
    name = config.resolved().latency or "table"
    if name not in LATENCY_SOURCES:
        raise RlnasError(unknown("latency source", name, LATENCY_SOURCES))
    return LATENCY_SOURCES[name](config, space)


def params_model(space: Space) -> AdditiveCost:
    """Parameter count of architectures, per decision."""
    return AdditiveCost(space, space.resolution, layer_params)


def macs_model(space: Space, resolution: int) -> AdditiveCost:
    """Multiply-accumulates of architectures at `resolution` ("FLOPs" in most papers)."""
    return AdditiveCost(space, resolution, layer_macs)
