"""Random search: uniform random architectures (one uniform choice per decision)."""

from __future__ import annotations

import numpy as np

from rlnas.model.arch import Architecture
from rlnas.search.strategies.base import Progress, Strategy

# Proposals per batch.
BATCH = 32


class RandomSearch(Strategy):
    name = "random"

    def run(self, progress: Progress | None = None) -> None:
        rng = np.random.default_rng(self.seed)
        proposed = 0
        while proposed < self.max_proposals:
            # Proposals come in batches (scored in parallel on a cluster); the sequence is
            # the same at any batch size.
            size = min(BATCH, self.max_proposals - proposed, self.evaluator.budget)
            batch = [Architecture.sample(rng, self.space) for _ in range(size)]
            proposed += size
            self.evaluator.prefetch(batch)
            for arch in batch:
                if self.done:
                    return
                self.evaluator.evaluate(arch)
                self._report(progress)
