"""The settings of one search (`rlnas search` / `rlnas train-controller`), checked on creation.

A bad strategy, reward or budget fails here, before any run folder is written.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from rlnas.errors import RlnasError, unknown
from rlnas.hardware.catalog import default_precision
from rlnas.model.space import DEFAULT_SPACE, get_space
from rlnas.search.rewards import REWARD_MODES
from rlnas.search.strategies import STRATEGIES, EvolutionSettings, PPOSettings


@dataclass(frozen=True)
class SearchConfig:
    """One search.

    Attributes:
        latency_ms: Latency target T in milliseconds.
        strategy: ppo (the controller), random or evolution.
        device: Target device; picks the lookup table with `precision`.
        precision: Precision of the table; None picks the first of the device's
            precisions that has a table (so `--device xavier-nx` finds the shipped fp16 one).
        space: Space name or space file.
        resolution: Deployment resolution (default: the space's).
        reward: mnas, tunas or hard.
        proxy: Accuracy proxy (or ensemble) of the proxy accuracy source.
        data: Images for data-dependent proxies (.npz or folder).
        budget: Unique architectures evaluated.
        seed: Seed of the strategy.
        memory_mb: Limit on parameter megabytes (10^6 bytes) at `precision`, or None.
        table: A table file to use instead of the device's default one.
        accuracy: Accuracy source: proxy or benchmark (default: benchmark if an
            accuracy file is given, else proxy).
        accuracy_file: Benchmark file of the benchmark accuracy source (arch_index or
            arch_str keyed, .parquet or .csv).
        accuracy_column: Its column.
        latency: Latency source: table or benchmark (default: benchmark if a latency
            file is given, else table).
        latency_file: Benchmark file of the benchmark latency source.
        latency_column: Its column.
        evolution: Settings of the evolution strategy.
        ppo: Settings of the PPO controller.
    """

    latency_ms: float
    strategy: str = "ppo"
    device: str = "cpu"
    precision: str | None = None
    space: str = DEFAULT_SPACE
    resolution: int | None = None
    reward: str = "mnas"
    proxy: str = "synflow"
    data: Path | None = None
    budget: int = 1000
    seed: int = 0
    memory_mb: float | None = None
    table: Path | None = None
    accuracy: str | None = None
    accuracy_file: Path | None = None
    accuracy_column: str = "cifar10_test_acc"
    latency: str | None = None
    latency_file: Path | None = None
    latency_column: str | None = None
    evolution: EvolutionSettings = field(default_factory=EvolutionSettings)
    ppo: PPOSettings = field(default_factory=PPOSettings)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise RlnasError(unknown("strategy", self.strategy, STRATEGIES))
        if self.reward not in REWARD_MODES:
            raise RlnasError(unknown("reward mode", self.reward, REWARD_MODES))
        if self.budget < 1:
            raise RlnasError(f"budget must be >= 1 architecture, got {self.budget}")

    def resolved(self) -> SearchConfig:
        """These settings with `precision`, `accuracy` and `latency` filled in."""
        accuracy = self.accuracy or ("benchmark" if self.accuracy_file else "proxy")
        latency = self.latency or ("benchmark" if self.latency_file else "table")
        precision = self.precision
        if precision is None:
            space = get_space(self.space)
            resolution = self.resolution or space.resolution
            precision = default_precision(self.device, space.name, resolution)
        return dataclasses.replace(self, precision=precision, accuracy=accuracy, latency=latency)

    def default_out(self) -> Path:
        return Path("runs") / (
            f"{self.strategy}-{self.device}-{self.precision}-{Path(self.space).stem}"
            f"-{self.latency_ms:g}ms-s{self.seed}"
        )
