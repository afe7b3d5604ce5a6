"""Where accuracy and latency come from: one registry of sources each, chosen by configuration.

The environment and the strategies see only the small interfaces below, so a
benchmark file of measured values (NAS-Bench-201 accuracies, measured device
latencies) can replace the proxy or the lookup table. A source is added with
its class and one entry in `ACCURACY_SOURCES` or `LATENCY_SOURCES`: a function
that makes it from the search's settings.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from rlnas.accuracy.score_cache import default_cache_path
from rlnas.accuracy.scorer import ProxyConfig, ProxyScorer
from rlnas.errors import EstimatedTableWarning, RlnasError, did_you_mean, unknown
from rlnas.hardware.catalog import locate_table
from rlnas.hardware.table import LatencyTable, load_table
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


class TableLatency:
    """Latency predicted from a lookup table."""

    def __init__(self, table: LatencyTable, space: Space):
        self.table: LatencyTable | None = table
        self.model = table.cost_model(space)
        self.description = f"table {table.path or table.meta.name}"

    def latency_ms(self, arch: Architecture) -> float:
        return self.model.total(arch.choices)

    def increment_ms(self, position: int, choices: list[int]) -> float:
        return self.model.increment(position, choices)


def _read_frame(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise RlnasError(f"benchmark file {path} does not exist")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    raise RlnasError(f"benchmark file {path} must be .parquet or .csv")


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
            keys = [int(i) for i in frame["arch_index"]]
        elif "arch_str" in frame.columns:
            self.key = "arch_str"
            keys = list(frame["arch_str"])
        else:
            raise RlnasError(f"benchmark file {path} needs an 'arch_index' or 'arch_str' column")
        self.values: dict[int | str, float] = dict(
            zip(keys, frame[column].astype(float), strict=True)
        )
        self.path, self.column = path, column

    def value(self, arch: Architecture) -> float:
        value = self.values.get(arch.index if self.key == "arch_index" else str(arch))
        if value is None or not np.isfinite(value):
            raise RlnasError(f"benchmark file {self.path} has no '{self.column}' for {arch}")
        return float(value)


class BenchmarkAccuracy:
    """Accuracy from a benchmark file; percentages are divided by 100."""

    proxy: ProxyConfig | None = None

    def __init__(self, path: Path, column: str):
        self.column = _BenchmarkColumn(path, column)
        self.description = f"benchmark {path}:{column}"

    def accuracy(self, arch: Architecture) -> float:
        value = self.column.value(arch)
        return value / 100.0 if value > 1.0 else value


class BenchmarkLatency:
    """Measured end-to-end latency from a benchmark file (no per-decision breakdown)."""

    table: LatencyTable | None = None

    def __init__(self, path: Path, column: str):
        self.column = _BenchmarkColumn(path, column)
        self.description = f"benchmark {path}:{column}"

    def latency_ms(self, arch: Architecture) -> float:
        return self.column.value(arch)

    def increment_ms(self, position: int, choices: list[int]) -> float:
        return 0.0


# Factories: the source of a (resolved) search config and its space.


def _proxy_accuracy(config: SearchConfig, space: Space) -> AccuracySource:
    return ProxyAccuracy(ProxyScorer(space, proxy_config(config)))


def _benchmark_accuracy(config: SearchConfig, space: Space) -> AccuracySource:
    if config.accuracy_file is None:
        raise RlnasError("the benchmark accuracy source needs --accuracy-file (.parquet/.csv)")
    return BenchmarkAccuracy(config.accuracy_file, config.accuracy_column)


def _table_latency(config: SearchConfig, space: Space) -> LatencySource:
    if config.table is not None:
        path = config.table
    else:
        resolution = config.resolution or space.resolution
        precision = config.precision or "fp32"
        _, path = locate_table(config.device, precision, space.name, resolution)
    table = load_table(path)
    if table.meta.source != "measured":
        warnings.warn(
            f"latencies come from the {table.meta.source} table {path.name} "
            f"({table.meta.host}); run `rlnas profile --device {table.meta.device}` on the "
            "device for measured ones",
            EstimatedTableWarning,
            stacklevel=3,
        )
    return TableLatency(table, space)


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
