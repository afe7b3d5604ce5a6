"""The `proxy` accuracy source: a normalised zero-cost proxy score (the default)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch

from rlnas.accuracy.score_cache import default_cache_path
from rlnas.accuracy.scorer import ProxyConfig, ProxyScorer
from rlnas.cluster import TaskPool
from rlnas.model.arch import Architecture
from rlnas.model.space import Space
from rlnas.search.sources.base import AccuracyKind, AccuracySource

if TYPE_CHECKING:
    from rlnas.search.config import SearchConfig


@dataclass(frozen=True)
class ProxySettings:
    """The proxy source's settings (its images are the search's `data`).

    Attributes:
        proxy: Accuracy proxy (or ensemble) of the proxy accuracy source.
    """

    INLINE: ClassVar[bool] = True

    proxy: str = "naswot"  # rlnas.accuracy.scorer.DEFAULT_PROXY


def proxy_config(config: SearchConfig) -> ProxyConfig:
    """The proxy settings of a search: candidates and baselines are scored by this alone."""
    proxy = config.sources.proxy.proxy
    return ProxyConfig(proxy=proxy, data=config.data, cache=default_cache_path())


class ProxyAccuracy:
    """Normalised zero-cost proxy score (see `rlnas.accuracy.scorer`)."""

    def __init__(self, scorer: ProxyScorer):
        self.scorer = scorer
        self.proxy: ProxyConfig | None = scorer.config
        self.description = f"proxy {scorer.config.proxy} ({scorer.config.resolution}px)"

    def accuracy(self, arch: Architecture) -> float:
        return self.scorer.score(arch)

    def columns(self, archs: Sequence[Architecture]) -> dict[str, list[float]]:
        """The raw value of each member proxy (`proxy_<name>`), for plots and re-ranking."""
        raw = [self.scorer.raw(a) for a in archs]
        return {f"proxy_{p}": [r[p] for r in raw] for p in self.scorer.members}

    def flush(self) -> None:
        self.scorer.flush()

    def prefetch(self, archs: Sequence[Architecture], pool: TaskPool) -> None:
        """Computes the raw proxy values of `archs` (and of the normalisers' reference sample)
        that are not cached yet as parallel tasks, and caches them: the scores `accuracy`
        then gives are those it would compute itself."""
        scorer = self.scorer
        wanted = [*scorer.reference_sample(), *archs]
        todo = list(
            {
                str(a): a
                for a in wanted
                if any(scorer.cache.get(scorer.key(a, p)) is None for p in scorer.members)
            }.values()
        )
        if not todo:
            return
        config = dataclasses.replace(scorer.config, cache=None)
        threads = torch.get_num_threads()
        chunks = [todo[i::PREFETCH_CHUNKS] for i in range(min(PREFETCH_CHUNKS, len(todo)))]
        arguments = [(scorer.space, config, [str(a) for a in c], threads) for c in chunks]
        for index, values in pool(raw_values, arguments):
            for arch, raw in zip(chunks[index], values, strict=True):
                for proxy, value in raw.items():
                    scorer.cache.put(scorer.key(arch, proxy), value)
        scorer.flush()


# Tasks a batch of proxy scoring is split into (a few per worker of a small cluster).
PREFETCH_CHUNKS = 8


def raw_values(
    space: Space, config: ProxyConfig, archs: list[str], threads: int
) -> list[dict[str, float]]:
    """Raw proxy values of architectures, computed where this task runs (no cache)."""
    torch.set_num_threads(threads)
    key = (space.digest, config)
    if key not in _WORKER_SCORERS:  # one per worker process: the data is read once
        _WORKER_SCORERS[key] = ProxyScorer(space, config)
    scorer = _WORKER_SCORERS[key]
    return [scorer.raw(Architecture.decode(text, space)) for text in archs]


_WORKER_SCORERS: dict[tuple[str, ProxyConfig], ProxyScorer] = {}


def score_baselines(
    config: SearchConfig, proxy: ProxyConfig | None, archs: Mapping[str, Architecture]
) -> dict[str, float]:
    """Each baseline's proxy score on the run's scale (its normalisers)."""
    scorer = ProxyScorer(config.space, proxy or proxy_config(config))
    scores = {}
    for name, arch in archs.items():
        if arch.space == scorer.space:
            scores[name] = scorer.score(arch)
        else:
            # Raw proxy values are a property of the network and the batch, so a network
            # of another space is placed on this run's scale by this run's normalisers.
            own = ProxyScorer(arch.space, scorer.config)
            scores[name] = scorer.score_raw(own.raw(arch))
            own.flush()
    scorer.flush()
    return scores


def _make(config: SearchConfig, space: Space) -> AccuracySource:
    return ProxyAccuracy(ProxyScorer(space, proxy_config(config)))


KIND = AccuracyKind(
    name="proxy",
    make=_make,
    score_name=lambda c: f"proxy score ({c.sources.proxy.proxy}, percentile; not an accuracy)",
    is_accuracy=False,
    score_baselines=score_baselines,
)
