"""The timing harness shared by layer profiling and whole-network measurement.

A compiled model exposes `run_timed()`: one inference on inputs bound at
compile time, returning its elapsed milliseconds by the backend's own clock
(wall clock on CPUs, CUDA events on GPUs). The harness warms up, then times
until it has at least `min_runs` runs and at least `min_time_ms` of timed
work, and summarises the runs. An entry whose spread is too wide is timed
again; if it stays wide it is flagged `unstable`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class TimingConfig:
    """How to time one model.

    Attributes:
        warmup: Untimed runs first (caches, lazy allocation, JIT).
        min_runs: Timed runs at least.
        min_time_ms: Total timed milliseconds at least.
        max_runs: Timed runs at most, whatever `min_time_ms` asks.
        max_spread: (p90 - p10) / median above which a measurement is repeated.
        retries: How many times a too-wide measurement is repeated.
    """

    warmup: int = 5
    min_runs: int = 15
    min_time_ms: float = 60.0
    max_runs: int = 5000
    max_spread: float = 0.25
    retries: int = 2

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self).items())


@dataclass(frozen=True)
class Timing:
    """Summary of the timed runs of one model, in milliseconds.

    Attributes:
        median_ms: Median latency; the figure a table uses.
        p10_ms: 10th percentile.
        p90_ms: 90th percentile.
        mean_ms: Mean.
        std_ms: Standard deviation.
        runs: Number of timed runs summarised.
        total_ms: Sum of the timed runs (time spent inside timed work).
        unstable: The spread stayed above `max_spread` after every retry.
    """

    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    std_ms: float
    runs: int
    total_ms: float
    unstable: bool = False

    @property
    def spread(self) -> float:
        return (self.p90_ms - self.p10_ms) / self.median_ms if self.median_ms > 0 else 0.0


def _summarise(samples: list[float], unstable: bool = False) -> Timing:
    values = np.asarray(samples)
    p10, median, p90 = np.percentile(values, [10, 50, 90])
    return Timing(
        median_ms=float(median),
        p10_ms=float(p10),
        p90_ms=float(p90),
        mean_ms=float(values.mean()),
        std_ms=float(values.std()),
        runs=len(samples),
        total_ms=float(values.sum()),
        unstable=unstable,
    )


def _once(run_timed: Callable[[], float], config: TimingConfig) -> Timing:
    for _ in range(config.warmup):
        run_timed()
    samples: list[float] = []
    total = 0.0
    while len(samples) < config.max_runs and (
        len(samples) < config.min_runs or total < config.min_time_ms
    ):
        elapsed = run_timed()
        samples.append(elapsed)
        total += elapsed
    return _summarise(samples)


def measure(run_timed: Callable[[], float], config: TimingConfig | None = None) -> Timing:
    """Times `run_timed` per `config`; returns the least spread of up to 1 + retries tries.

    Args:
        run_timed: Runs one inference and returns its elapsed milliseconds.
        config: Harness settings; defaults to `TimingConfig()`.
    """
    config = config or TimingConfig()
    best = _once(run_timed, config)
    tries = 0
    while best.spread > config.max_spread and tries < config.retries:
        again = _once(run_timed, config)
        best = again if again.spread < best.spread else best
        tries += 1
    if best.spread > config.max_spread:
        best = Timing(**{**asdict(best), "unstable": True})
    return best
