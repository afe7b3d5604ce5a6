"""The `predictor` accuracy source, and fitting a predictor from known accuracies.

Known accuracies come from a benchmark file (a seeded sample of K rows, or all
of them) or from finished trainings (`rlnas train` folders, or the trained
source's cache): each training folder's architecture and validation top-1.
The source scores an architecture by the predicted accuracy (percent / 100),
computing the proxies the predictor was fitted with; `add` refits it with a
newly trained architecture.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from rlnas.accuracy.predictor import Predictor, choose_model
from rlnas.accuracy.score_cache import default_cache_path
from rlnas.accuracy.scorer import ProxyConfig, ProxyScorer
from rlnas.accuracy.trained import default_trained_dir
from rlnas.accuracy.training import RECIPE, read_result
from rlnas.errors import RlnasError
from rlnas.model.arch import Architecture
from rlnas.model.space import Space, get_space
from rlnas.search.sources.base import AccuracyKind, AccuracySource
from rlnas.search.sources.benchmark import BenchmarkAccuracy

if TYPE_CHECKING:
    from rlnas.cluster import TaskPool
    from rlnas.search.config import SearchConfig


def _scorers(space: Space, proxies: list[str], data: Path | None) -> dict[str, ProxyScorer]:
    cache = default_cache_path()
    return {p: ProxyScorer(space, ProxyConfig(proxy=p, data=data, cache=cache)) for p in proxies}


def proxy_values(
    scorers: dict[str, ProxyScorer], archs: list[Architecture], flush_every: int = 1
) -> dict[str, list[float]]:
    """Raw proxy values; a scorer's cache is written once it holds `flush_every` new ones."""
    values = {p: [s.raw(a, [p])[p] for a in archs] for p, s in scorers.items()}
    for scorer in scorers.values():
        if scorer.cache.pending >= flush_every:
            scorer.flush()
    return values


def known_from_file(
    space: Space, path: Path, column: str, unit: str, sample: int | None, seed: int
) -> tuple[list[Architecture], list[float]]:
    """Architectures and accuracies (percent) of a benchmark file, or a seeded sample of K."""
    source = BenchmarkAccuracy(path, column, unit)
    keys = [k for k, v in source.column.values.items() if np.isfinite(v)]
    if sample is not None:
        if not 3 <= sample <= len(keys):
            raise RlnasError(f"--sample must be 3..{len(keys)} (rows of {path}), got {sample}")
        keys = [keys[i] for i in np.random.default_rng(seed).permutation(len(keys))[:sample]]
    by_index = source.column.key == "arch_index"
    archs = [
        Architecture.from_index(int(k), space) if by_index else Architecture.decode(str(k), space)
        for k in keys
    ]
    return archs, [source.accuracy(a) * 100 for a in archs]


def known_from_trainings(
    space: Space, folder: Path | None
) -> tuple[list[Architecture], list[float]]:
    """Finished training folders of `space` under `folder` (default: the trained cache)."""
    root = Path(folder) if folder is not None else default_trained_dir()
    archs, accuracy = [], []
    for recipe in sorted(root.glob(f"**/{RECIPE}")):
        stored = json.loads(recipe.read_text())
        result = read_result(recipe.parent)
        if result is None or stored.get("space_digest") != space.digest:
            continue
        archs.append(Architecture.decode(stored["arch"], space))
        accuracy.append(result["val_top1"] * 100)
    if len(archs) < 3:
        raise RlnasError(
            f"{root} holds {len(archs)} finished trainings of space '{space.name}'; the "
            "predictor needs at least 3 (train some with `rlnas train`)"
        )
    return archs, accuracy


def fit_predictor(
    space: str | Path,
    archs: list[Architecture],
    accuracy: list[float],
    proxies: list[str],
    data: Path | None,
    model: str = "auto",
) -> tuple[Predictor, dict[str, float]]:
    """A predictor of `space` from known accuracies, with the given proxies as features;
    `model` "auto" picks the model by cross-validation on them (`choose_model`). Also
    returns each model's cross-validated Spearman where it chose (else empty)."""
    resolved = get_space(space)
    values = proxy_values(_scorers(resolved, proxies, data), archs)
    scores: dict[str, float] = {}
    if model == "auto":
        model, scores = choose_model(archs, accuracy, values)
    return Predictor(archs, accuracy, values, model), scores


class PredictorAccuracy:
    """Predicted accuracy (percent / 100, clipped to 0..1) of a fitted predictor."""

    proxy: ProxyConfig | None = None

    def __init__(self, path: Path, space: Space, data: Path | None):
        self.predictor = Predictor.load(path, space)
        self.scorers = _scorers(space, list(self.predictor.proxies), data)
        self.description = (
            f"{self.predictor.kind} predictor {path} (K = {len(self.predictor.archs)}"
            + (f", proxies {', '.join(self.predictor.proxies)})" if self.scorers else ")")
        )

    def accuracy(self, arch: Architecture) -> float:
        # One evaluation must not rewrite the whole score cache: every 100 new values.
        values = proxy_values(self.scorers, [arch], flush_every=100)
        mean, _ = self.predictor.predict([arch], values)
        return float(np.clip(mean[0] / 100, 0.0, 1.0))

    def prefetch(self, archs: Sequence[Architecture], pool: TaskPool) -> None:
        """Nothing in parallel: a prediction costs the proxies of one network."""

    def columns(self, archs: Sequence[Architecture]) -> dict[str, list[float]]:
        return {}

    def flush(self) -> None:
        for scorer in self.scorers.values():
            scorer.flush()

    def add(self, arch: Architecture, accuracy_percent: float) -> None:
        """Refits the predictor with a newly known architecture."""
        values = proxy_values(self.scorers, [arch])
        self.predictor = self.predictor.with_known([arch], [accuracy_percent], values)


@dataclass(frozen=True)
class PredictorSettings:
    """The predictor source's settings (its proxies' images are the search's `data`).

    Attributes:
        predictor: A predictor file (`rlnas predictor fit`) for the predictor source.
    """

    INLINE: ClassVar[bool] = True

    predictor: Path | None = None


def predictor_file(config: SearchConfig) -> Path:
    """The search's predictor file; RlnasError where none is given."""
    path = config.sources.predictor.predictor
    if path is None:
        raise RlnasError(
            "the predictor accuracy source needs --predictor FILE (make one with "
            "`rlnas predictor fit`)"
        )
    return path


def _make(config: SearchConfig, space: Space) -> AccuracySource:
    return PredictorAccuracy(predictor_file(config), space, config.data)


def score_baselines(
    config: SearchConfig, proxy: ProxyConfig | None, archs: Mapping[str, Architecture]
) -> dict[str, float]:
    """The predictor's accuracy for baselines of its space; NaN for the others."""
    if config.sources.predictor.predictor is None:
        return {name: float("nan") for name in archs}
    space = get_space(config.space)
    predicted = PredictorAccuracy(predictor_file(config), space, config.data)
    scores = {
        name: predicted.accuracy(arch) if arch.space == space else float("nan")
        for name, arch in archs.items()
    }
    predicted.flush()
    return scores


def score_spread(config: SearchConfig, arch: Architecture) -> float:
    """The predictor's standard deviation for `arch` (a fraction, as its scores)."""
    source = PredictorAccuracy(predictor_file(config), arch.space, config.data)
    _, std = source.predictor.predict([arch], proxy_values(source.scorers, [arch]))
    source.flush()
    return float(std[0]) / 100


KIND = AccuracyKind(
    name="predictor",
    make=_make,
    score_name=lambda config: f"predicted accuracy ({predictor_file(config).name})",
    is_accuracy=True,
    score_baselines=score_baselines,
    picked_by=lambda config: config.sources.predictor.predictor is not None,
    spread=score_spread,
)
