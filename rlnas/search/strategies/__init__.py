"""Search strategies: one interface, one budget (unique architectures evaluated).

A strategy proposes architectures and hands them to an `Evaluator`, which
serves repeats from its cache for free and stops new evaluations once the
budget is spent. The registry maps names to "module:Class" strings so that
stable-baselines3 is imported only for `ppo`.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable

from rlnas.errors import RlnasError, unknown
from rlnas.model.space import Space
from rlnas.search.evaluate import Evaluator

STRATEGIES: dict[str, str] = {
    "random": "rlnas.search.strategies.random_search:RandomSearch",
    "evolution": "rlnas.search.strategies.evolution:RegularizedEvolution",
    "ppo": "rlnas.search.strategies.ppo:PPOController",
}

Progress = Callable[[int, int], None]


class Strategy(ABC):
    """Proposes architectures until the evaluator's budget is spent.

    Args:
        evaluator: Evaluates (and caches, and counts) architectures.
        space: The space to search.
        seed: The strategy's only source of randomness.
    """

    name: str = ""

    def __init__(self, evaluator: Evaluator, space: Space, seed: int = 0):
        self.evaluator = evaluator
        self.space = space
        self.seed = seed
        # Repeats are free, so a strategy that keeps proposing known architectures would
        # never spend its budget; it stops after this many proposals.
        self.max_proposals = 50 * evaluator.budget + 1000

    @abstractmethod
    def run(self, progress: Progress | None = None) -> None:
        """Searches until the budget is spent (or `max_proposals` is reached)."""

    def _report(self, progress: Progress | None) -> None:
        if progress is not None:
            progress(len(self.evaluator.history), self.evaluator.budget)


def get_strategy(name: str) -> type[Strategy]:
    if name not in STRATEGIES:
        raise RlnasError(unknown("strategy", name, STRATEGIES))
    module_name, class_name = STRATEGIES[name].split(":")
    cls: type[Strategy] = getattr(importlib.import_module(module_name), class_name)
    return cls
