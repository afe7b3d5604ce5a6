"""Regularized (aging) evolution, Real et al., AAAI 2019.

A population of the most recent `population_size` evaluated architectures;
each cycle samples `sample_size` of them, mutates the one with the best reward
(one decision changed to another choice, uniformly), evaluates the child,
adds it, and removes the oldest member. With `parallel_children` k, a cycle
breeds k children from the population as it stands (as Real et al.'s workers
do, asynchronously), evaluates them as one batch and adds them in order. The
first members are random, or, from a start (a baseline-relative search's a0),
that start and its near neighbours.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from rlnas.model.arch import Architecture
from rlnas.search.evaluate import Evaluation
from rlnas.search.strategies.base import Progress, Strategy, mutate
from rlnas.search.strategies.settings import EvolutionSettings


class RegularizedEvolution(Strategy):
    """Aging evolution.

    Args:
        settings: Population and tournament sizes.
    """

    name = "evolution"
    settings_field = "evolution"

    def run(self, progress: Progress | None = None) -> None:
        settings: EvolutionSettings = self.settings or EvolutionSettings()
        rng = np.random.default_rng(self.seed)
        population: deque[tuple[Architecture, Evaluation]] = deque()
        # The first population is one batch (scored in parallel on a cluster), and so are
        # the `parallel_children` children bred from the population as it stands.
        batch = [self.initial(rng, n) for n in range(settings.population_size)]
        proposals = 0
        while proposals < self.max_proposals and not self.done:
            self.evaluator.prefetch(batch)
            for child in batch[: self.max_proposals - proposals]:
                if self.done:
                    return
                population.append((child, self.evaluator.evaluate(child)))
                if len(population) > settings.population_size:
                    population.popleft()
                proposals += 1
                self._report(progress)
            batch = [
                self._child(population, rng, settings.sample_size)
                for _ in range(settings.parallel_children)
            ]

    def _child(
        self,
        population: deque[tuple[Architecture, Evaluation]],
        rng: np.random.Generator,
        sample_size: int,
    ) -> Architecture:
        """The best of a tournament in the population, mutated."""
        picks = rng.choice(len(population), sample_size, replace=False)
        parent = max((population[i] for i in picks), key=lambda m: m[1].reward)[0]
        return mutate(parent, rng)
