"""The `benchmark` sources: accuracy or latency read from a benchmark file.

A file (.parquet or .csv) holds one row per architecture, keyed by `arch_index`
or `arch_str`, and one numeric column per value (NAS-Bench-201's accuracies,
measured device latencies).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pandas as pd

from rlnas.errors import DataError, RlnasError, did_you_mean, unknown
from rlnas.model.arch import Architecture
from rlnas.model.space import Space
from rlnas.search.sources.base import (
    AccuracyKind,
    AccuracySource,
    LatencyKind,
    LatencySource,
    unscored,
)

if TYPE_CHECKING:
    from rlnas.accuracy.scorer import ProxyConfig
    from rlnas.hardware.table import LatencyTable
    from rlnas.search.config import SearchConfig


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

    def prefetch(self, archs: object, pool: object) -> None:
        """Nothing to compute: the file holds every value."""

    def columns(self, archs: object) -> dict[str, list[float]]:
        return {}

    def flush(self) -> None:
        """Nothing kept."""


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

    def fastest_ms(self) -> float | None:
        values = np.array(list(self.column.values.values()), dtype=float)
        return float(np.nanmin(values)) if np.isfinite(values).any() else None


@dataclass(frozen=True)
class BenchmarkSettings:
    """The benchmark sources' settings: files of measured values.

    Attributes:
        accuracy_file: Benchmark file of the benchmark accuracy source (arch_index or
            arch_str keyed, .parquet or .csv).
        accuracy_column: Its column.
        accuracy_unit: Unit of that column: percent, fraction, or auto (percent when
            any value exceeds 1; decided once for the whole column).
        latency_file: Benchmark file of the benchmark latency source.
        latency_column: Its column.
    """

    INLINE: ClassVar[bool] = True

    accuracy_file: Path | None = None
    accuracy_column: str = "cifar10_test_acc"
    accuracy_unit: str = "auto"
    latency_file: Path | None = None
    latency_column: str | None = None

    def __post_init__(self) -> None:
        if self.accuracy_unit not in ACCURACY_UNITS:
            raise RlnasError(unknown("accuracy unit", self.accuracy_unit, ACCURACY_UNITS))


def _accuracy(config: SearchConfig, space: Space) -> AccuracySource:
    own = config.sources.benchmark
    if own.accuracy_file is None:
        raise RlnasError("the benchmark accuracy source needs --accuracy-file (.parquet/.csv)")
    return BenchmarkAccuracy(own.accuracy_file, own.accuracy_column, own.accuracy_unit)


def _latency(config: SearchConfig, space: Space) -> LatencySource:
    own = config.sources.benchmark
    if own.latency_file is None or not own.latency_column:
        raise RlnasError(
            "the benchmark latency source needs --latency-file and --latency-column "
            "(e.g. pixel3_ms)"
        )
    return BenchmarkLatency(own.latency_file, own.latency_column)


def _score_name(config: SearchConfig) -> str:
    own = config.sources.benchmark
    return f"accuracy ({Path(str(own.accuracy_file)).name}:{own.accuracy_column})"


ACCURACY = AccuracyKind(
    name="benchmark",
    make=_accuracy,
    score_name=_score_name,
    is_accuracy=True,
    score_baselines=unscored,
    picked_by=lambda config: config.sources.benchmark.accuracy_file is not None,
)
LATENCY = LatencyKind(
    name="benchmark",
    make=_latency,
    picked_by=lambda config: config.sources.benchmark.latency_file is not None,
)
