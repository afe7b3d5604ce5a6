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
measured end to end. It
is stored in the table's metadata (`rlnas.calibration`, JSON), and applied by
`LatencyTable.predict_ms` and the environment's cost model alike (an affine map
of a sum is a per-layer scale plus a constant).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass, field

import numpy as np

from rlnas.errors import CalibrationError


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

    def apply(self, raw_ms: float) -> float:
        return self.scale * raw_ms + self.offset_ms

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
        return (
            f"measured = {self.scale:.3f} x raw {self.offset_ms:+.3f} ms, fitted on "
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


def fit_calibration(
    raw_ms: list[float] | np.ndarray,
    measured_ms: list[float] | np.ndarray,
    backend_version: str = "",
    host: str = "",
) -> Calibration:
    """Fits `scale` and `offset_ms` on paired raw predictions and measurements.

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
    loo = []
    for i in range(len(raw)):
        keep = np.arange(len(raw)) != i
        s, o = _fit(raw[keep], measured[keep])
        loo.append(abs((s * raw[i] + o) / measured[i] - 1))
    return Calibration(
        scale=scale,
        offset_ms=offset,
        archs=len(raw),
        mape_raw_pct=float(np.mean(np.abs(raw / measured - 1)) * 100),
        mape_loo_pct=float(np.mean(loo) * 100),
        backend_version=backend_version,
        host=host,
    )
