"""Where accuracy and latency come from: a proxy or a table, or a benchmark file.

The environment and the strategies see only these small interfaces, so a
benchmark file of measured values (NAS-Bench-201 accuracies, measured device
latencies) can replace the proxy or the lookup table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from rlnas.accuracy.scorer import ProxyScorer
from rlnas.errors import RlnasError, did_you_mean
from rlnas.hardware.table import LatencyTable
from rlnas.model.arch import Architecture
from rlnas.model.costs import AdditiveCost
from rlnas.model.ops import layer_macs, layer_params
from rlnas.model.space import Space


class AccuracySource(Protocol):
    """An accuracy score in [0, 1] per architecture (higher is better)."""

    description: str

    def accuracy(self, arch: Architecture) -> float: ...


class LatencySource(Protocol):
    """Latency in milliseconds per architecture, and as it accumulates per decision."""

    description: str

    def latency_ms(self, arch: Architecture) -> float: ...

    def increment_ms(self, position: int, choices: list[int]) -> float:
        """Latency added by the decision at `position` (0 where the source cannot tell)."""
        ...


class ProxyAccuracy:
    """Normalised zero-cost proxy score (see `rlnas.accuracy.scorer`)."""

    def __init__(self, scorer: ProxyScorer):
        self.scorer = scorer
        self.description = f"proxy {scorer.config.proxy} ({scorer.config.resolution}px)"

    def accuracy(self, arch: Architecture) -> float:
        return self.scorer.score(arch)


class TableLatency:
    """Latency predicted from a lookup table."""

    def __init__(self, table: LatencyTable, space: Space):
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

    def __init__(self, path: Path, column: str):
        self.column = _BenchmarkColumn(path, column)
        self.description = f"benchmark {path}:{column}"

    def accuracy(self, arch: Architecture) -> float:
        value = self.column.value(arch)
        return value / 100.0 if value > 1.0 else value


class BenchmarkLatency:
    """Measured end-to-end latency from a benchmark file (no per-decision breakdown)."""

    def __init__(self, path: Path, column: str):
        self.column = _BenchmarkColumn(path, column)
        self.description = f"benchmark {path}:{column}"

    def latency_ms(self, arch: Architecture) -> float:
        return self.column.value(arch)

    def increment_ms(self, position: int, choices: list[int]) -> float:
        return 0.0


def params_model(space: Space) -> AdditiveCost:
    """Parameter count of architectures, per decision."""
    return AdditiveCost(space, space.resolution, layer_params)


def macs_model(space: Space, resolution: int) -> AdditiveCost:
    """Multiply-accumulates of architectures at `resolution` ("FLOPs" in most papers)."""
    return AdditiveCost(space, resolution, layer_macs)
