"""The `trained` accuracy source: validation top-1 after a short training, cached
(the training itself is `rlnas.accuracy.trained`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from rlnas.accuracy import trained
from rlnas.accuracy.trained import TrainedAccuracy
from rlnas.model.arch import Architecture
from rlnas.model.space import Space
from rlnas.search.sources.base import AccuracyKind, AccuracySource

if TYPE_CHECKING:
    from rlnas.accuracy.scorer import ProxyConfig
    from rlnas.search.config import SearchConfig


def _make(config: SearchConfig, space: Space) -> AccuracySource:
    # The recipe is read when the source is made, so that it can be swapped (tests do).
    return TrainedAccuracy(config.data, trained.SHORT_RECIPE)


def score_baselines(
    config: SearchConfig, proxy: ProxyConfig | None, archs: Mapping[str, Architecture]
) -> dict[str, float]:
    """Each baseline trained once with the run's recipe (cached), whatever its space."""
    source = TrainedAccuracy(config.data, trained.SHORT_RECIPE)
    return {name: source.accuracy(arch) for name, arch in archs.items()}


KIND = AccuracyKind(
    name="trained",
    make=_make,
    score_name=lambda config: "validation top-1 after short training",
    is_accuracy=True,
    score_baselines=score_baselines,
)
