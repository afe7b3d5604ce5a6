"""A calibration stored in a table's metadata (`rlnas.calibration`), and layer kinds.

Tables calibrated by earlier releases carry an affine correction of their raw
prediction, `scale * raw + offset_ms`, possibly with one scale per layer kind;
`LatencyTable.predict_ms` and the cost model still apply it. Calibrations are no
longer fitted this way: a table is now adapted to a host by a fitted table
(`rlnas.hardware.fit`, `rlnas.hardware.endtoend.calibrate_table`), of which a
common scale and a scale per `layer_kind` are two of the prior models.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass, field

from rlnas.errors import CalibrationError
from rlnas.model.ops import LayerKey


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
        default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
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
