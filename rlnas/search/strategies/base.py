"""The interface of a search strategy: it proposes architectures until the budget is spent."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rlnas.errors import RlnasError
from rlnas.model.arch import Architecture
from rlnas.model.space import Space

if TYPE_CHECKING:
    from rlnas.search.evaluate import Evaluator

Progress = Callable[[int, int], None]

# Proposals in a row without a new architecture after which a search stops.
PATIENCE = 1000

# Edits of `Strategy.start` for the other members of a starting population (at most).
START_EDITS = 3


class Strategy(ABC):
    """Proposes architectures until the evaluator's budget is spent.

    Args:
        evaluator: Evaluates (and caches, and counts) architectures.
        space: The space to search.
        seed: The strategy's only source of randomness.
        settings: The strategy's own settings (its `StrategySettings` field `settings_field`).
        checkpoint: Where a strategy with a learned state saves it.
        tensorboard: Where a strategy that `logs_training` logs it for TensorBoard (None:
            nowhere).
        start: Where the search starts (a baseline-relative search's a0), or None: anywhere.
        targets: A range of latency targets (low, high) ms, for a strategy that
            `accepts_target_range` and learns them all at once; None: the evaluator's one.

    Raises:
        RlnasError: `tensorboard` or `targets` given to a strategy that cannot use them.
    """

    name: str = ""
    # The `StrategySettings` field that holds this strategy's settings, if it has any.
    settings_field: str | None = None
    # Learns one policy for a range of latency targets (`--latency-ms LO:HI`).
    accepts_target_range: bool = False
    # Has a training to log (`--tensorboard`).
    logs_training: bool = False

    def __init__(
        self,
        evaluator: Evaluator,
        space: Space,
        seed: int = 0,
        settings: Any = None,
        checkpoint: Path | None = None,
        *,
        tensorboard: Path | None = None,
        start: Architecture | None = None,
        targets: tuple[float, float] | None = None,
    ):
        if tensorboard is not None:
            self.check_logs_training()
        if targets is not None:
            self.check_target_range(targets)
        self.evaluator = evaluator
        self.space = space
        self.seed = seed
        self.settings = settings
        self.checkpoint = checkpoint
        self.tensorboard = tensorboard
        self.targets = targets
        self.start = start
        # Repeats are free, so a strategy that keeps proposing known architectures would
        # never spend its budget: it stops after `patience` proposals in a row that bring
        # nothing new, and in any case after `max_proposals`.
        self.patience = PATIENCE
        self.max_proposals = 50 * evaluator.budget + 1000

    @classmethod
    def check_logs_training(cls) -> None:
        """Raises unless this strategy has a training to log to TensorBoard."""
        if not cls.logs_training:
            raise RlnasError(
                f"--tensorboard logs the PPO controller's training (a strategy that learns); the "
                f"{cls.name} strategy has none: drop --tensorboard, or use --strategy ppo"
            )

    @classmethod
    def check_target_range(cls, targets: tuple[float, float]) -> None:
        """Raises unless this strategy learns a whole range of targets in one run."""
        if not cls.accepts_target_range:
            low, high = targets
            raise RlnasError(
                f"a latency range ({low:g}:{high:g} ms) trains one controller for every "
                f"target; the {cls.name} strategy has one target per run: run it once per "
                "target, or use --strategy ppo"
            )

    @property
    def stalled(self) -> bool:
        """`patience` proposals in a row brought no new architecture."""
        return self.evaluator.repeats >= self.patience

    @property
    def done(self) -> bool:
        """The budget is spent or the search has stalled."""
        return self.evaluator.exhausted or self.stalled

    def stop_reason(self) -> str | None:
        """Why the search ended before spending its budget, or None if it spent it."""
        if self.evaluator.exhausted:
            return None
        if self.stalled:
            return (
                f"{self.patience} proposals in a row brought no new architecture (the "
                f"{self.name} search converged)"
            )
        return f"{self.max_proposals} proposals reached"

    @abstractmethod
    def run(self, progress: Progress | None = None) -> None:
        """Searches until `done` (or `max_proposals` is reached)."""

    def initial(self, rng: np.random.Generator, number: int) -> Architecture:
        """The `number`-th member (0-based) of a starting population: uniformly random; with
        `start`, `start` itself and then `start` with 1..START_EDITS random edits."""
        if self.start is None:
            return Architecture.sample(rng, self.space)
        arch = self.start
        for _ in range(int(rng.integers(1, START_EDITS + 1)) if number else 0):
            arch = mutate(arch, rng)
        return arch

    def _report(self, progress: Progress | None) -> None:
        if progress is not None:
            progress(len(self.evaluator.history), self.evaluator.budget)


def mutate(arch: Architecture, rng: np.random.Generator) -> Architecture:
    """`arch` with one decision set to another choice (uniformly: decision, then choice)."""
    counts = arch.space.choice_counts
    positions = [p for p, c in enumerate(counts) if c > 1]
    position = int(rng.choice(positions))
    choices = list(arch.choices)
    other = int(rng.integers(counts[position] - 1))
    choices[position] = other if other < choices[position] else other + 1
    return Architecture(arch.space, tuple(choices))
