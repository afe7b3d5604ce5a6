"""Latency targets relative to a baseline measured here (`--latency-ms 0.6x:mobilenetv2`).

A target in milliseconds means different things on hosts of different speeds:
6 ms is 0.4x MobileNetV2 on a slow host and 0.9x on a fast one. A relative
target is resolved when the search starts, on the search's own latency source
(the table as calibrated on this host), so `0.6x:mobilenetv2` asks for the same
trade-off everywhere. What it resolved to (`RelativeTarget`) is printed and
kept in the run folder's config.json; the run's settings keep the factor.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from rlnas.errors import RlnasError
from rlnas.model.baselines import get_baseline
from rlnas.search.config import SearchConfig
from rlnas.search.sources.base import LatencySource


@dataclass(frozen=True)
class RelativeTarget:
    """A relative target and what it resolved to.

    Attributes:
        factor: The factor the user gave.
        reference: The baseline it is a factor of.
        reference_ms: The baseline's latency on the run's latency source.
        target_ms: factor x reference_ms: the run's target.
        fastest_ms: The least latency any network of the space has there (None where
            the source cannot tell).
    """

    factor: float
    reference: str
    reference_ms: float
    target_ms: float
    fastest_ms: float | None

    def describe(self) -> str:
        return (
            f"latency target {self.factor:g}x {self.reference} = {self.factor:g} x "
            f"{self.reference_ms:.3f} ms = {self.target_ms:.3f} ms on this run's table"
        )


def relative_target(config: SearchConfig, latency: LatencySource) -> RelativeTarget | None:
    """What `config`'s relative target resolves to on `latency`, or None for a target
    in ms.

    Raises:
        RlnasError: The target is below the fastest network the space can build there.
    """
    if config.latency_factor is None or config.latency_reference is None:
        return None
    reference = get_baseline(config.latency_reference).architecture()
    reference_ms = latency.latency_ms(reference)
    target_ms = config.latency_factor * reference_ms
    fastest = latency.fastest_ms()
    if fastest is not None and target_ms < fastest:
        least = math.ceil(fastest / reference_ms * 1000) / 1000
        raise RlnasError(
            f"latency target {config.latency_factor:g}x {config.latency_reference} is "
            f"{target_ms:.3f} ms here, below the fastest network of the space "
            f"({fastest:.3f} ms); give a factor of at least {least:g}"
        )
    return RelativeTarget(
        config.latency_factor, config.latency_reference, reference_ms, target_ms, fastest
    )


def with_relative(config: SearchConfig, target: RelativeTarget | None) -> SearchConfig:
    """`config` with the target its relative target resolved to filled in."""
    if target is None or config.latency_ms is not None:
        return config
    return dataclasses.replace(
        config, latency_ms=target.target_ms, latency_factor=None, latency_reference=None
    )
