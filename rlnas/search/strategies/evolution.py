"""Regularized (aging) evolution, Real et al., AAAI 2019.

A population of the most recent `population_size` evaluated architectures;
each cycle samples `sample_size` of them, mutates the one with the best reward
(one decision changed to another choice, uniformly), evaluates the child,
adds it, and removes the oldest member.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from rlnas.errors import RlnasError
from rlnas.model.arch import Architecture
from rlnas.model.space import Space
from rlnas.search.evaluate import Evaluation, Evaluator
from rlnas.search.strategies import Progress, Strategy


class RegularizedEvolution(Strategy):
    """Aging evolution.

    Args:
        population_size: Members kept (the initial ones are random).
        sample_size: Tournament size.
    """

    name = "evolution"

    def __init__(
        self,
        evaluator: Evaluator,
        space: Space,
        seed: int = 0,
        population_size: int = 20,
        sample_size: int = 5,
    ):
        super().__init__(evaluator, space, seed)
        if not 1 <= sample_size <= population_size:
            raise RlnasError(
                f"sample_size must be in 1..population_size, got sample_size={sample_size}, "
                f"population_size={population_size}"
            )
        self.population_size = population_size
        self.sample_size = sample_size

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        counts = self.space.choice_counts
        positions = [p for p, c in enumerate(counts) if c > 1]
        position = int(rng.choice(positions))
        choices = list(arch.choices)
        other = int(rng.integers(counts[position] - 1))
        choices[position] = other if other < choices[position] else other + 1
        return Architecture(self.space, tuple(choices))

    def run(self, progress: Progress | None = None) -> None:
        rng = np.random.default_rng(self.seed)
        population: deque[tuple[Architecture, Evaluation]] = deque()
        for _ in range(self.max_proposals):
            if self.evaluator.exhausted:
                return
            if len(population) < self.population_size:
                child = Architecture.sample(rng, self.space)
            else:
                picks = rng.choice(len(population), self.sample_size, replace=False)
                parent = max((population[i] for i in picks), key=lambda m: m[1].reward)[0]
                child = self.mutate(parent, rng)
            population.append((child, self.evaluator.evaluate(child)))
            if len(population) > self.population_size:
                population.popleft()
            self._report(progress)
