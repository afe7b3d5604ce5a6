"""What a source of accuracy or latency offers the search, and the record that registers it.

The environment and the strategies see only the two interfaces below, so a
benchmark file of measured values (NAS-Bench-201 accuracies, measured device
latencies) can replace the proxy or the lookup table. A source is registered
by a record (`AccuracyKind`, `LatencyKind`) in `rlnas.search.sources`: how it is
made from the search's settings, what its score is called, and how it scores
the baselines a run is compared with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from rlnas.model.arch import Architecture
from rlnas.model.space import Space

if TYPE_CHECKING:
    from rlnas.accuracy.scorer import ProxyConfig
    from rlnas.cluster import TaskPool
    from rlnas.hardware.table import LatencyTable
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

    def prefetch(self, archs: Sequence[Architecture], pool: TaskPool) -> None:
        """Scores `archs` as parallel tasks of `pool` and keeps the results, so that
        `accuracy` then returns them at once (the same values); may do nothing."""
        ...

    def columns(self, archs: Sequence[Architecture]) -> dict[str, list[float]]:
        """Columns the run's evaluations table gets besides the score (raw proxy values)."""
        ...

    def flush(self) -> None:
        """Writes what the source keeps in memory (its cache) to disk."""
        ...


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

    def fastest_ms(self) -> float | None:
        """The least latency of any network of the space, or None where it cannot tell."""
        ...


# The baselines of a run, by name, scored on the run's scale (NaN where the source cannot):
# (the run's settings, the proxy the run scored with or None, the baselines) -> scores.
BaselineScorer = Callable[
    ["SearchConfig", "ProxyConfig | None", Mapping[str, Architecture]], dict[str, float]
]


# The standard deviation of a source's score for one architecture (score units).
Spread = Callable[["SearchConfig", Architecture], float]


@dataclass(frozen=True)
class AccuracyKind:
    """An accuracy source, as the search, `measure` and the reports know it.

    Attributes:
        name: Its `--accuracy` value.
        make: The source of a resolved search's settings and space.
        score_name: What its score is called, in words, for a search's settings.
        is_accuracy: Whether its score is an accuracy (a proxy's percentile is not, so a
            baseline's accuracy floor cannot be built on it, and reports say so).
        score_baselines: How the named baselines a run is measured against are scored on
            the run's scale.
        picked_by: Whether a search's settings pick this source where `--accuracy` is not
            given (a predictor file, an accuracy file is set), or None.
        spread: The standard deviation of its score for an architecture, where the source
            knows its own error (a predictor's), else None.
    """

    name: str
    make: Callable[[SearchConfig, Space], AccuracySource]
    score_name: Callable[[SearchConfig], str]
    is_accuracy: bool
    score_baselines: BaselineScorer
    picked_by: Callable[[SearchConfig], bool] | None = None
    spread: Spread | None = None


@dataclass(frozen=True)
class LatencyKind:
    """A latency source: its `--latency` value, its factory, and whether a search's settings
    pick it where `--latency` is not given (or None)."""

    name: str
    make: Callable[[SearchConfig, Space], LatencySource]
    picked_by: Callable[[SearchConfig], bool] | None = None


def unscored(
    config: SearchConfig, proxy: ProxyConfig | None, archs: Mapping[str, Architecture]
) -> dict[str, float]:
    """NaN for every baseline: the source holds no score for them (a benchmark file holds
    only its own space's networks)."""
    return {name: float("nan") for name in archs}
