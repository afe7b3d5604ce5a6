"""Calibration of a table's predictions against end-to-end measurements.

A table's raw prediction (per-call overhead once + the sum of the layers'
latencies without their own call overhead) misses what only a whole network
shows. On the project's CPU (BENCHMARKS.md, "Fidelity") whole networks run a
roughly constant 10-20% slower than the sum of their layers timed alone, for
every kind of block alike, and the network's weight bytes explain almost none
of the rest: a layer timed alone in a loop runs with its code, weights and
activations hot in the caches, which a network's sequence of different layers
never has. Fusion across layer boundaries does not apply to these backends:
each table entry is a whole block, and nothing fuses between blocks.

The correction is affine, `scale * raw + offset_ms` with `offset_ms >= 0`,
fitted to minimise the relative error on a small set of random architectures
measured end to end. On another host than the one that measured the table the
ratio is not the same for every kind of block (a different CPU runs depthwise,
SE and dense convolutions at different relative speeds), so the fit is also
tried with one scale per layer kind (`layer_kind`: the op, and whether it has
SE), pulled toward the common scale (a ridge, which also settles kinds that
every network has, such as the stem), and kept where its leave-one-out error
is the lower. On a fresh AMD host, with a table measured on an Intel one, 30
networks calibrated per kind predicted 98% of 100 networks the design was not
chosen on within ±10% (as often as two timing passes agree there), where the
common scale gave 80% (BENCHMARKS.md, "Calibration per layer kind").
It is stored in the table's metadata (`rlnas.calibration`, JSON), and applied
by `LatencyTable.predict_ms` and the environment's cost model alike (a
per-layer scale plus a constant).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from rlnas.errors import CalibrationError
from rlnas.model.ops import LayerKey

# Pull of the per-kind scales toward the common one, in the relative-error least squares
# (each network's row is its share of latency per kind); chosen on the fresh-host
# benchmark's split seeds 0-19 among 0, 0.001 and 0.01.
KIND_RIDGE = 0.01


def layer_kind(key: LayerKey) -> str:
    """The kind of layer a per-kind scale applies to: its op, with `_se` if it has SE."""
    return key.op + ("_se" if key.se else "")


@dataclass(frozen=True)
class Calibration:
    """`measured ~ scale * raw_prediction + offset_ms`.

    Attributes:
        scale: Multiplies the raw prediction.
        offset_ms: Added after scaling.
        archs: End-to-end measurements it was fitted on.
        mape_raw_pct: Mean absolute percentage error of the raw predictions on them.
        mape_loo_pct: The calibrated predictions' error on them, each left out of
            its own fit (leave-one-out), so not flattered by the fit.
        backend_version: Runtime that measured the networks.
        host: Hardware that measured them.
        created: ISO 8601 time of the fit (UTC).
    """

    scale: float
    offset_ms: float
    archs: int
    mape_raw_pct: float
    mape_loo_pct: float
    backend_version: str = ""
    host: str = ""
    created: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    )
    kind_scales: dict[str, float] = field(default_factory=dict)

    def apply(self, raw_ms: float) -> float:
        """The calibrated latency of a raw prediction (a calibration without kind scales)."""
        if self.kind_scales:
            raise CalibrationError("a calibration per layer kind applies per layer: use scale_of")
        return self.scale * raw_ms + self.offset_ms

    def scale_of(self, key: LayerKey) -> float:
        """The scale of one layer's latency: its kind's, else the common one."""
        return self.kind_scales.get(layer_kind(key), self.scale)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Calibration | None:
        """The calibration in `text`, or None for an empty string (an uncalibrated table)."""
        if not text:
            return None
        try:
            values = json.loads(text)
            return cls(**values)
        except (json.JSONDecodeError, TypeError) as exc:
            raise CalibrationError(
                f"table calibration {text[:80]!r} is unreadable ({exc}); recalibrate with "
                "`rlnas tables calibrate TABLE`"
            ) from None

    def describe(self) -> str:
        scales = f"{self.scale:.3f} x raw"
        if self.kind_scales:
            kinds = ", ".join(f"{k} {v:.2f}" for k, v in sorted(self.kind_scales.items()))
            scales = f"a scale per layer kind x raw ({kinds})"
        return (
            f"measured = {scales} {self.offset_ms:+.3f} ms, fitted on "
            f"{self.archs} networks (error {self.mape_raw_pct:.1f}% raw -> "
            f"{self.mape_loo_pct:.1f}% leave-one-out)"
        )


def _fit(raw: np.ndarray, measured: np.ndarray) -> tuple[float, float]:
    """Least squares of the relative error: minimise sum ((s*raw + o) / measured - 1)^2, o >= 0.

    The offset is a cost per network, never negative: a negative one, fitted on
    mid-sized networks, predicts negative latencies for the smallest networks of a
    space (it did: -0.04 ms for NAS-Bench-Macro's all-identity network). Where the
    free fit's offset is negative, the scale alone is fitted.
    """
    design = np.column_stack([raw / measured, 1.0 / measured])
    (scale, offset), *_ = np.linalg.lstsq(design, np.ones_like(measured), rcond=None)
    if offset < 0:
        ratio = raw / measured
        scale, offset = float(ratio.sum() / (ratio**2).sum()), 0.0
    return float(scale), float(offset)


def _fit_kinds(
    parts: np.ndarray, measured: np.ndarray, overhead_ms: float, scale: float, offset: float
) -> tuple[np.ndarray, float] | None:
    """Per-kind scales and the offset, pulled toward (`scale`, `offset`): least squares of
    the relative error of `parts @ scales + scale * overhead_ms + offset`; None where a scale
    or the offset comes out negative."""
    kinds = parts.shape[1]
    design = np.column_stack([parts, np.ones(len(measured))]) / measured[:, None]
    prior = np.append(np.full(kinds, scale), scale * overhead_ms + offset)
    pull = np.sqrt(KIND_RIDGE) * np.eye(kinds + 1)
    solution, *_ = np.linalg.lstsq(
        np.vstack([design, pull]), np.concatenate([np.ones(len(measured)), pull @ prior]), None
    )
    kind_offset = float(solution[-1] - scale * overhead_ms)
    if (solution[:-1] <= 0).any() or kind_offset < 0:
        return None
    return solution[:-1], kind_offset


def fit_calibration(
    raw_ms: list[float] | np.ndarray,
    measured_ms: list[float] | np.ndarray,
    backend_version: str = "",
    host: str = "",
    parts: Sequence[Mapping[str, float]] | None = None,
    overhead_ms: float = 0.0,
) -> Calibration:
    """Fits `scale` and `offset_ms` on paired raw predictions and measurements; with `parts`
    (per network, its layers' latencies without call overhead summed per `layer_kind`;
    `raw = overhead_ms + their sum`), also a scale per kind, kept where its leave-one-out
    error is the lower.

    Raises:
        CalibrationError: Fewer than 3 pairs, or a non-positive value.
    """
    raw = np.asarray(raw_ms, dtype=np.float64)
    measured = np.asarray(measured_ms, dtype=np.float64)
    if len(raw) != len(measured) or len(raw) < 3:
        raise CalibrationError(
            f"a calibration needs at least 3 paired measurements, got {len(raw)} predictions "
            f"and {len(measured)} measurements"
        )
    if (raw <= 0).any() or (measured <= 0).any():
        raise CalibrationError("calibration latencies must be positive")
    scale, offset = _fit(raw, measured)
    loo, kind_loo = [], []
    names = sorted({k for p in parts or () for k in p})
    table = np.array([[p.get(k, 0.0) for k in names] for p in parts or ()])
    for i in range(len(raw)):
        keep = np.arange(len(raw)) != i
        s, o = _fit(raw[keep], measured[keep])
        loo.append(abs((s * raw[i] + o) / measured[i] - 1))
        if names:
            kinds = _fit_kinds(table[keep], measured[keep], overhead_ms, s, o)
            predicted = (
                np.inf if kinds is None else table[i] @ kinds[0] + s * overhead_ms + kinds[1]
            )
            kind_loo.append(abs(predicted / measured[i] - 1))
    kind_scales: dict[str, float] = {}
    if names and np.mean(kind_loo) < np.mean(loo):
        kinds = _fit_kinds(table, measured, overhead_ms, scale, offset)
        if kinds is not None:
            kind_scales = {k: float(v) for k, v in zip(names, kinds[0], strict=True)}
            offset, loo = kinds[1], kind_loo
    return Calibration(
        scale=scale,
        offset_ms=offset,
        archs=len(raw),
        mape_raw_pct=float(np.mean(np.abs(raw / measured - 1)) * 100),
        mape_loo_pct=float(np.mean(loo) * 100),
        backend_version=backend_version,
        host=host,
        kind_scales=kind_scales,
    )
