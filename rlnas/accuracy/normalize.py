"""Normalisation of raw proxy values onto a bounded scale that is stable across a search.

Raw proxy values span dozens of orders of magnitude (synflow 1e30 to 1e60) and
may be negative (jacob_cov). A `Normalizer` is fitted once, on a fixed,
seeded reference sample of architectures of the space, and maps a raw value to
its position in that sample:

    z = sign(v) * log10(1 + |v|)          (monotone, tames the magnitude)
    score = interp(z, sorted reference z, levels 1/(n+1) ... n/(n+1))

Beyond the reference range the remaining 1/(n+1) at each end is approached
exponentially, `1/(n+1) * exp(-d / s)` from the bound, d the distance past the
reference extreme and s the reference's standard deviation of z: a search that
moves past every random architecture (it should) still sees which of its
architectures are better, instead of a flat top score.

The map is monotone, bounded in [0, 1], and fixed for the whole search, so
scores of architectures seen early and late compare; inside the reference range
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
        """Scores in [0, 1]; NaN (a failed score) maps to 0, +inf (overflow) to 1."""
        raw = np.asarray(raw, dtype=np.float64)
        reference = np.asarray(self.reference)
        n = len(reference)
        tail = 1.0 / (n + 1)
        scale = max(float(reference.std()), 1e-12)
        with np.errstate(invalid="ignore", over="ignore"):
            z = signed_log(np.nan_to_num(raw, nan=-np.inf, posinf=np.inf, neginf=-np.inf))
            inside = np.interp(z, reference, np.arange(1, n + 1) * tail)
            above = 1.0 - tail * np.exp(-(z - reference[-1]) / scale)
            below = tail * np.exp(-(reference[0] - z) / scale)
        return np.where(z > reference[-1], above, np.where(z < reference[0], below, inside))
