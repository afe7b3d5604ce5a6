"""Random search: uniform random architectures (one uniform choice per decision)."""

from __future__ import annotations

import numpy as np

from rlnas.model.arch import Architecture
from rlnas.search.strategies import Progress, Strategy


class RandomSearch(Strategy):
    name = "random"

    def run(self, progress: Progress | None = None) -> None:
        rng = np.random.default_rng(self.seed)
        for _ in range(self.max_proposals):
            if self.done:
                return
            self.evaluator.evaluate(Architecture.sample(rng, self.space))
            self._report(progress)
