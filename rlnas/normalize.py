"""Normalisation of raw proxy values onto a bounded scale that is stable across a search.

Raw proxy values span dozens of orders of magnitude (synflow 1e30 to 1e60) and
may be negative (jacob_cov). A `Normalizer` is fitted once, on a fixed,
seeded reference sample of architectures of the space, and maps a raw value to
its position in that sample:

    z = sign(v) * log10(1 + |v|)          (monotone, tames the magnitude)
    score = interp(z, sorted reference z, levels 1/(n+1) ... n/(n+1))

The map is monotone non-decreasing, bounded in [1/(n+1), n/(n+1)], and fixed
for the whole search, so scores of architectures seen early and late compare;
a score reads as "better than this share of random architectures". The
environment and the rewards only ever see these scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rlnas.errors import RlnasError


def signed_log(values: np.ndarray | float) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return np.sign(values) * np.log10(1.0 + np.abs(values))


@dataclass(frozen=True)
class Normalizer:
    """Monotone map of raw values onto (0, 1), fitted on a reference sample.

    Attributes:
        reference: Sorted signed-log values of the reference sample.
    """

    reference: tuple[float, ...]

    @classmethod
    def fit(cls, raw: Sequence[float]) -> Normalizer:
        values = np.asarray(raw, dtype=np.float64)
        values = values[np.isfinite(values)]
        if len(values) < 2:
            raise RlnasError(
                f"a normaliser needs at least 2 finite reference values, got {len(values)}"
            )
        return cls(tuple(float(v) for v in np.sort(signed_log(values))))

    def __call__(self, raw: np.ndarray | float) -> np.ndarray:
        """Scores in (0, 1); non-finite raw values (overflow, dead nets) map to the bounds."""
        raw = np.asarray(raw, dtype=np.float64)
        n = len(self.reference)
        levels = np.arange(1, n + 1) / (n + 1)
        z = signed_log(np.nan_to_num(raw, nan=-np.inf))
        z = np.clip(z, -1e300, 1e300)
        return np.interp(z, np.asarray(self.reference), levels)
