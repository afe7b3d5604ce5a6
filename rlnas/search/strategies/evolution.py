"""Regularized (aging) evolution, Real et al., AAAI 2019.

A population of the most recent `population_size` evaluated architectures;
each cycle samples `sample_size` of them, mutates the one with the best reward
(one decision changed to another choice, uniformly), evaluates the child,
adds it, and removes the oldest member. The first members are random, or, from a
start (a baseline-relative search's a0), that start and its near neighbours.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np

from rlnas.model.arch import Architecture
from rlnas.model.space import Space
from rlnas.search.evaluate import Evaluation, Evaluator
from rlnas.search.strategies import EvolutionSettings, Progress, Strategy, mutate


class RegularizedEvolution(Strategy):
    """Aging evolution.

    Args:
        settings: Population and tournament sizes.
    """

    name = "evolution"
    settings_field = "evolution"

    def __init__(
        self,
        evaluator: Evaluator,
        space: Space,
        seed: int = 0,
        settings: EvolutionSettings | None = None,
        checkpoint: Path | None = None,
    ):
        super().__init__(evaluator, space, seed, settings, checkpoint)
        settings = settings or EvolutionSettings()
        self.population_size = settings.population_size
        self.sample_size = settings.sample_size

    def run(self, progress: Progress | None = None) -> None:
        rng = np.random.default_rng(self.seed)
        population: deque[tuple[Architecture, Evaluation]] = deque()
        # The first population is one batch (scored in parallel on a cluster); each later
        # child depends on the evaluations before it.
        first = [self.initial(rng, n) for n in range(self.population_size)]
        self.evaluator.prefetch(first)
        for _ in range(self.max_proposals):
            if self.done:
                return
            if len(population) < self.population_size:
                child = first[len(population)]
            else:
                picks = rng.choice(len(population), self.sample_size, replace=False)
                parent = max((population[i] for i in picks), key=lambda m: m[1].reward)[0]
                child = mutate(parent, rng)
            population.append((child, self.evaluator.evaluate(child)))
            if len(population) > self.population_size:
                population.popleft()
            self._report(progress)
