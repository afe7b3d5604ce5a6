"""Accuracy scores of architectures: a proxy (or the ensemble) on one fixed batch, cached,
normalised onto (0, 1).

Defaults and why:
- proxy `naswot`: of the proxies validated here it ranks best where it matters
  (BENCHMARKS.md): Spearman 0.90 against NAS-Bench-Macro's true accuracies (a
  MobileNetV2-style space like the default one; synflow 0.71), 0.81 on NAS-Bench-201
  (synflow 0.80), and it ranks the default space's short-trained networks no worse than
  synflow. One forward pass; on seeded noise images (no data) it still ranks
  NAS-Bench-Macro at 0.92 on a 150-network check.
- resolution 32 px for every space: the proxy's cost grows with pixels; synflow on a
  default-space network takes 0.32 s at 224 px and 0.12 s at 32 px on the project's 2-core
  CPU (BENCHMARKS.md), against a budget of 0.2 s; naswot takes 0.14 s at 32 px (0.09 s
  channels-last). 32 px is CIFAR-10's native size, so the shipped data needs no
  upsampling. Deployment latency always uses the table's own resolution; this setting
  only changes the accuracy proxy.
- batch 64 images, seed 0: the batch size of Abdelfattah et al.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rlnas.accuracy.data import load_data, make_batch
from rlnas.accuracy.normalize import Normalizer
from rlnas.accuracy.proxies import PROXIES, get_proxy
from rlnas.accuracy.score_cache import ScoreCache, ScoreKey
from rlnas.errors import ProxyError, unknown
from rlnas.model.arch import Architecture
from rlnas.model.costs import AdditiveCost
from rlnas.model.network import build_network
from rlnas.model.ops import layer_macs, layer_params
from rlnas.model.space import Space, get_space

DEFAULT_PROXY = "naswot"
# Networks and images are scored in channels-last (NHWC) memory: oneDNN's CPU convolutions
# run about 1.7x faster on it than on NCHW for the default space (BENCHMARKS.md, "Where the
# main job's time goes"); the scores differ from NCHW's only in float rounding.
CHANNELS_LAST = torch.channels_last
PROXY_RESOLUTION = 32
# Ensemble members: the three proxies with the best published NAS-Bench-201 correlations
# that measure different things (signal flow, input-Jacobian diversity, activation-pattern
# diversity); the ensemble averages their normalised scores (a rank average against the
# fixed reference sample). Validated in BENCHMARKS.md.
ENSEMBLE = ("synflow", "jacob_cov", "naswot")


def proxy_names() -> list[str]:
    return [*PROXIES, "ensemble"]


@dataclass(frozen=True)
class ProxyConfig:
    """How architectures are scored.

    Attributes:
        proxy: A registered proxy or `ensemble`.
        data: An .npz or image folder; None runs data-free (noise images).
        batch_size: Images in the proxy batch.
        resolution: Proxy input resolution (default 32, see the module docstring).
        seed: Seed of the batch (which images, or the noise) and of network weights.
        reference_size: Architectures in the normalisation reference sample.
        reference_seed: Seed of that sample.
        cache: Score cache file; None keeps scores in memory only.
    """

    proxy: str = DEFAULT_PROXY
    data: Path | None = None
    batch_size: int = 64
    resolution: int = PROXY_RESOLUTION
    seed: int = 0
    reference_size: int = 50
    reference_seed: int = 1234
    cache: Path | None = None


class ProxyScorer:
    """Scores architectures of one space under one `ProxyConfig`."""

    def __init__(self, space: str | Path | Space, config: ProxyConfig | None = None):
        self.space = get_space(space)
        self.config = config = config or ProxyConfig()
        if config.proxy not in proxy_names():
            raise ProxyError(unknown("proxy", config.proxy, proxy_names()))
        self.members = ENSEMBLE if config.proxy == "ensemble" else (config.proxy,)
        data = load_data(config.data) if config.data is not None else None
        if data is None and any(get_proxy(m).needs_data for m in self.members):
            warnings.warn(
                f"proxy '{config.proxy}' scores seeded noise images without data; real images "
                "rank architectures better: pass data (an .npz or image folder)",
                stacklevel=2,
            )
        self.data_id = data.data_id if data is not None else "none"
        batch = make_batch(
            data, config.batch_size, config.resolution, config.seed, self.space.num_classes
        )
        self.batch = dataclasses.replace(batch, x=batch.x.contiguous(memory_format=CHANNELS_LAST))
        self.cache = ScoreCache(config.cache)
        self.computed = 0
        self._normalizers: dict[str, Normalizer] = {}
        # params and flops have closed forms per layer: no network needs to be built.
        self._closed_forms = {
            "params": AdditiveCost(self.space, self.space.resolution, layer_params),
            "flops": AdditiveCost(self.space, config.resolution, layer_macs),
        }

    def key(self, arch: Architecture, proxy: str) -> ScoreKey:
        """The cache key of one raw score."""
        c = self.config
        name = PROXIES[proxy].cache_name if proxy in PROXIES else proxy
        return ScoreKey(
            self.space.digest, str(arch), name, self.data_id, c.resolution, c.batch_size, c.seed
        )

    def raw(self, arch: Architecture, proxies: Sequence[str] | None = None) -> dict[str, float]:
        """Raw values of the given proxies (default: this scorer's members), cached."""
        proxies = list(proxies or self.members)
        values: dict[str, float | None] = {
            p: self._closed_forms[p].total(arch.choices)
            if p in self._closed_forms
            else self.cache.get(self.key(arch, p))
            for p in proxies
        }
        missing = [p for p, v in values.items() if v is None]
        if missing:
            net = build_network(arch, self.config.resolution, seed=self.config.seed)
            net = net.to(memory_format=CHANNELS_LAST)  # type: ignore[call-overload]
            for proxy in missing:
                value = get_proxy(proxy).fn(net, self.batch)
                self.cache.put(self.key(arch, proxy), value)
                values[proxy] = value
            self.computed += 1
        return {p: float(v) for p, v in values.items() if v is not None}

    def reference_sample(self) -> list[Architecture]:
        """The seeded architectures the normalisers are fitted on."""
        rng = np.random.default_rng(self.config.reference_seed)
        return [Architecture.sample(rng, self.space) for _ in range(self.config.reference_size)]

    def normalizer(self, proxy: str) -> Normalizer:
        """The fixed normaliser of `proxy`, fitted on the seeded reference sample."""
        if proxy not in self._normalizers:
            raw = [self.raw(arch, [proxy])[proxy] for arch in self.reference_sample()]
            self._normalizers[proxy] = Normalizer.fit(raw)
            self.cache.flush()
        return self._normalizers[proxy]

    def score(self, arch: Architecture) -> float:
        """Accuracy score in (0, 1): the normalised proxy, or the mean over ensemble members."""
        if arch.space != self.space:
            raise ProxyError(
                f"architecture of space '{arch.space.name}' given to a scorer of "
                f"space '{self.space.name}'"
            )
        return self.score_raw(self.raw(arch))

    def score_raw(self, raw: dict[str, float]) -> float:
        """The score of raw proxy values (the members' keys), on this scorer's scale."""
        return float(np.mean([self.normalizer(p)(raw[p]) for p in self.members]))

    def flush(self) -> None:
        self.cache.flush()
