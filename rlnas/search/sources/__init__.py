"""Where accuracy and latency come from: one registry of records each, chosen by settings.

Each source is one module of this package with its record (`base.AccuracyKind` or
`base.LatencyKind`): how it is made from a search's settings, what its score is
called, whether it is an accuracy, how it scores the baselines, and its settings
dataclass if it has one. Adding a source is that module, one line in
`ACCURACY_SOURCES` or `LATENCY_SOURCES` (and one field of `SourceSettings` for its
settings), and a test. Where `--accuracy` (`--latency`) is not given, the first
record whose `picked_by` holds is chosen, else the default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from rlnas.errors import RlnasError, unknown
from rlnas.search.sources import benchmark, predictor, proxy, table, trained
from rlnas.search.sources.base import AccuracyKind, AccuracySource, LatencyKind, LatencySource
from rlnas.search.sources.benchmark import (
    ACCURACY_UNITS,
    BenchmarkAccuracy,
    BenchmarkLatency,
    BenchmarkSettings,
)
from rlnas.search.sources.counts import macs_model, params_model
from rlnas.search.sources.predictor import PredictorSettings
from rlnas.search.sources.proxy import PREFETCH_CHUNKS, ProxyAccuracy, ProxySettings, proxy_config
from rlnas.search.sources.table import TableLatency, TableSettings, host_table, table_path

if TYPE_CHECKING:
    from rlnas.model.space import Space
    from rlnas.search.config import SearchConfig

__all__ = [
    "ACCURACY_SOURCES",
    "ACCURACY_UNITS",
    "LATENCY_SOURCES",
    "PREFETCH_CHUNKS",
    "AccuracyKind",
    "AccuracySource",
    "BenchmarkAccuracy",
    "BenchmarkLatency",
    "BenchmarkSettings",
    "LatencyKind",
    "LatencySource",
    "PredictorSettings",
    "ProxyAccuracy",
    "ProxySettings",
    "SourceSettings",
    "TableLatency",
    "TableSettings",
    "accuracy_kind",
    "accuracy_source",
    "host_table",
    "latency_kind",
    "latency_source",
    "macs_model",
    "params_model",
    "proxy_config",
    "table_path",
]

# In the order in which `picked_by` is tried.
ACCURACY_SOURCES: dict[str, AccuracyKind] = {
    kind.name: kind for kind in (predictor.KIND, benchmark.ACCURACY, trained.KIND, proxy.KIND)
}
LATENCY_SOURCES: dict[str, LatencyKind] = {
    kind.name: kind for kind in (benchmark.LATENCY, table.KIND)
}
DEFAULT_ACCURACY = "proxy"
DEFAULT_LATENCY = "table"


@dataclass(frozen=True)
class SourceSettings:
    """The settings of the sources that have any, one field per source (a group: on the
    command line and in `config.json` each keeps its own names, `--proxy`, `--accuracy-file`).

    Attributes:
        proxy: The proxy source's.
        benchmark: The benchmark sources'.
        predictor: The predictor source's.
        table: The table source's.
    """

    INLINE: ClassVar[bool] = True

    proxy: ProxySettings = field(default_factory=ProxySettings)
    benchmark: BenchmarkSettings = field(default_factory=BenchmarkSettings)
    predictor: PredictorSettings = field(default_factory=PredictorSettings)
    table: TableSettings = field(default_factory=TableSettings)


def accuracy_kind(config: SearchConfig) -> AccuracyKind:
    """The record of a search's accuracy source (`--accuracy`, else picked by its files)."""
    name = config.accuracy or next(
        (k.name for k in ACCURACY_SOURCES.values() if k.picked_by and k.picked_by(config)),
        DEFAULT_ACCURACY,
    )
    if name not in ACCURACY_SOURCES:
        raise RlnasError(unknown("accuracy source", name, ACCURACY_SOURCES))
    return ACCURACY_SOURCES[name]


def latency_kind(config: SearchConfig) -> LatencyKind:
    """The record of a search's latency source (`--latency`, else picked by its file)."""
    name = config.latency or next(
        (k.name for k in LATENCY_SOURCES.values() if k.picked_by and k.picked_by(config)),
        DEFAULT_LATENCY,
    )
    if name not in LATENCY_SOURCES:
        raise RlnasError(unknown("latency source", name, LATENCY_SOURCES))
    return LATENCY_SOURCES[name]


def accuracy_source(config: SearchConfig, space: Space) -> AccuracySource:
    """The accuracy source of a resolved search."""
    return accuracy_kind(config).make(config, space)


def latency_source(config: SearchConfig, space: Space) -> LatencySource:
    """The latency source of a resolved search."""
    return latency_kind(config).make(config, space)
