"""Estimated lookup tables for devices this project cannot measure (T4, Jetson Xavier NX,
an analytic systolic array).

The roofline cost model (`rlnas.hardware.roofline`) is calibrated per device on
published batch-1 TensorRT latencies of well-known networks (Deci's white
paper "DeciNets: Automatic Discovery of Fast Neural Networks on Specific AI
Chips", tables 1 and 2, each figure the better of FP16 and INT8; a copy ships
as `rlnas/published/deci_whitepaper_latency.csv`). Each network is written out
as its primitive operations (`rlnas.model.zoo`) and predicted as the better of FP16
and INT8, like the published figure. The fit minimises the squared log error
plus a pull of every log-parameter towards its prior, so that kinds of
operations few networks use stay near sensible values. Leave-one-out
predictions (each network predicted by a model fitted without it) give the
error that the table's metadata reports.

A systolic-array table (`systolic_table`) needs no calibration: each layer's
cycles and utilization follow from U-Boost's formulas (`rlnas.hardware.systolic`);
it also carries the per-layer MACs and utilization columns.

An estimated table has the same keys as a measured one of the same space,
resolution and batch, `source = estimated` and the method in its metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import least_squares
from scipy.stats import kendalltau

from rlnas.errors import RlnasError, unknown
from rlnas.files import check_output
from rlnas.hardware.catalog import user_tables_dir
from rlnas.hardware.roofline import CostModel, GpuSpec, OpArrays, get_spec
from rlnas.hardware.systolic import SystolicArray, cycles_ms, layer_cost
from rlnas.hardware.table import figure_rows, save_table
from rlnas.hardware.table_meta import TableMeta, table_name
from rlnas.model.layers import enumerate_layers
from rlnas.model.space import DEFAULT_SPACE, get_space
from rlnas.model.zoo import NETWORKS, network_ops

# Weight of the pull towards the prior, per log-parameter, against one network's log error.
PRIOR_WEIGHT = 0.1


def published_path() -> Path:
    return Path(str(resources.files("rlnas") / "published" / "deci_whitepaper_latency.csv"))


def load_published(device: str, path: Path | None = None) -> dict[str, float]:
    """Published latency (ms) of the baseline networks we can write out, for one device."""
    path = Path(path) if path is not None else published_path()
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError) as exc:
        raise RlnasError(f"cannot read published latencies {path} ({exc})") from None
    missing = {"device", "model", "latency_ms", "notes"} - set(frame.columns)
    if missing:
        raise RlnasError(f"{path} lacks column(s) {', '.join(sorted(missing))}")
    rows = frame[(frame["device"] == device) & (frame["notes"] == "baseline")]
    known = rows[rows["model"].isin(list(NETWORKS))]
    if len(known) < 4:
        raise RlnasError(
            f"{path} has {len(known)} baseline latencies for device '{device}' that rlnas can "
            "write out; a calibration needs at least 4"
        )
    return dict(zip(known["model"], known["latency_ms"].astype(float), strict=True))


def fit_model(
    spec: GpuSpec,
    networks: dict[str, OpArrays],
    published: dict[str, float],
    prior_weight: float = PRIOR_WEIGHT,
) -> CostModel:
    """Fits the free parameters to the published latencies (see module docstring)."""
    prior = CostModel.prior(spec).vector()
    names = list(published)
    target = np.log(np.array([published[n] for n in names]))

    def residuals(theta: np.ndarray) -> np.ndarray:
        model = CostModel.from_vector(spec, theta)
        predicted = np.log([model.best_ms(networks[n]) for n in names])
        return np.concatenate([predicted - target, prior_weight * (theta - prior)])

    # Efficiencies stay in (0, 1]; the fixed cost between 0.1 us and 1 ms.
    lower = np.log(np.r_[np.full(len(prior) - 1, 1e-4), 1e-4])
    upper = np.log(np.r_[np.ones(len(prior) - 1), 1.0])
    fit = least_squares(residuals, np.clip(prior, lower, upper), bounds=(lower, upper))
    return CostModel.from_vector(spec, fit.x)


@dataclass(frozen=True)
class Calibrated:
    """A device's fitted cost model and how well it predicts unseen networks.

    Attributes:
        model: Fitted on every published network.
        errors: Per network: published_ms, fitted_ms (in sample), loo_ms (fitted
            without it), loo_error_pct.
        loo_mdape_pct: Median absolute leave-one-out percentage error.
        loo_kendall_tau: Kendall tau between leave-one-out predictions and published.
    """

    model: CostModel
    errors: pd.DataFrame
    loo_mdape_pct: float
    loo_kendall_tau: float
    fused_activations: bool

    def describe(self) -> str:
        fused = "fused" if self.fused_activations else "separate kernels"
        return (
            f"swish/hard-swish {fused}; leave-one-out median abs error "
            f"{self.loo_mdape_pct:.1f}%, Kendall tau {self.loo_kendall_tau:.2f} over "
            f"{len(self.errors)} published networks"
        )


def calibrate(device: str, published_file: Path | None = None) -> Calibrated:
    """Fits the device's cost model on the published latencies, with leave-one-out errors.

    Both activation variants are fitted (`rlnas.model.zoo`); the one with the lower
    leave-one-out error is kept.
    """
    spec = get_spec(device)
    published = load_published(device, published_file)
    fits = [_calibrate(spec, published, fused) for fused in (False, True)]
    return min(fits, key=lambda fit: fit.loo_mdape_pct)


def _calibrate(spec: GpuSpec, published: dict[str, float], fused: bool) -> Calibrated:
    networks = {name: OpArrays.of(network_ops(name, fused)) for name in published}
    model = fit_model(spec, networks, published)
    rows = []
    for name, ms in published.items():
        others = {n: v for n, v in published.items() if n != name}
        loo = fit_model(spec, networks, others).best_ms(networks[name])
        rows.append(
            {
                "network": name,
                "published_ms": ms,
                "fitted_ms": model.best_ms(networks[name]),
                "loo_ms": loo,
                "loo_error_pct": (loo / ms - 1) * 100,
            }
        )
    errors = pd.DataFrame(rows)
    tau = float(kendalltau(errors["loo_ms"], errors["published_ms"])[0])
    mdape = float(np.median(np.abs(errors["loo_error_pct"])))
    return Calibrated(model, errors, mdape, tau, fused)


def estimate_table(
    device: str,
    precision: str,
    space: str = DEFAULT_SPACE,
    resolution: int | None = None,
    batch: int = 1,
    out: Path | None = None,
    published_file: Path | None = None,
    force: bool = False,
) -> tuple[Path, Calibrated]:
    """Writes an estimated table for every layer of the space; returns it and the calibration.

    An existing `out` (default: the user's table of that name) is replaced only with `force`.
    """
    if batch != 1:
        raise RlnasError(f"estimates are calibrated on batch-1 latencies only; got --batch {batch}")
    if precision not in ("fp16", "int8"):
        raise RlnasError(
            f"estimated tables are for fp16 or int8 (the published figures are the better of "
            f"the two), got '{precision}'"
        )
    target = get_space(space)
    resolution = target.check_resolution(resolution)
    name = table_name(device, precision, target.name, resolution, batch)
    out = check_output(
        Path(out) if out is not None else user_tables_dir() / f"{name}.parquet", force
    )
    calibrated = calibrate(device, published_file)
    model = calibrated.model
    keys = enumerate_layers(target, resolution)
    fused = calibrated.fused_activations
    latency = [model.layer_ms(k, precision, fused) for k in keys]
    frame = figure_rows(dict(zip(keys, latency, strict=True)))
    spec = model.spec
    efficiencies = ", ".join(f"{k} {v:.3g}" for k, v in model.efficiency.items())
    meta = TableMeta(
        device=device,
        backend="tensorrt",
        backend_version="none (estimated)",
        precision=precision,
        space=target.name,
        space_digest=target.digest,
        resolution=resolution,
        batch=batch,
        threads=0,
        host=f"{spec.title}: estimated, not measured",
        source="estimated",
        method=(
            f"roofline cost model: per op fixed {model.fixed_ms * 1000:.2f} us + max(compute at "
            f"{spec.peak_tflops[precision]:g} T{precision} peak x efficiency per kind "
            f"[{efficiencies}], memory at {spec.bandwidth_gbs:g} GB/s x "
            f"{model.memory_efficiency:.3g}); peaks from {spec.source}; fitted on published "
            f"TensorRT batch-1 latencies (Deci white paper, better of fp16/int8): "
            f"{calibrated.describe()}"
        ),
        overhead_ms=0.0,
    )
    save_table(meta, frame, out)
    return out, calibrated


SYSTOLIC_METHODS = {
    "analytic": "analytic systolic (U-Boost): cycles = ceil(k1*k2*c/s1) * ceil(f/s2) * h*w*b "
    "per convolution, vector work ceil(elements/s2)",
    "flops": "FLOPs at full utilization: MACs / (s1*s2) cycles, vector work ceil(elements/s2)",
    "roofline": "roofline: max(MACs / (s1*s2), bytes / bandwidth) cycles, vector work at the "
    "larger of ceil(elements/s2) and its bytes / bandwidth",
}


def systolic_table(
    array: SystolicArray,
    precision: str = "int8",
    space: str = DEFAULT_SPACE,
    resolution: int | None = None,
    batch: int = 1,
    model: str = "analytic",
    out: Path | None = None,
    force: bool = False,
) -> Path:
    """Writes a systolic-array table of every layer of the space (latency, MACs, utilization
    under `model`, see `rlnas.hardware.systolic`); returns its path.

    An existing `out` (default: the user's table of that name) is replaced only with `force`.
    """
    if model not in SYSTOLIC_METHODS:
        raise RlnasError(unknown("cost model", model, SYSTOLIC_METHODS))
    target = get_space(space)
    resolution = target.check_resolution(resolution)
    name = table_name("systolic", precision, target.name, resolution, batch)
    out = check_output(
        Path(out) if out is not None else user_tables_dir() / f"{name}.parquet", force
    )
    keys = enumerate_layers(target, resolution)
    costs = [layer_cost(k, array, batch, model) for k in keys]
    frame = figure_rows({k: cycles_ms(c.cycles, array) for k, c in zip(keys, costs, strict=True)})
    frame["macs"] = [c.macs for c in costs]
    frame["utilization"] = [c.utilization for c in costs]
    meta = TableMeta(
        device="systolic",
        backend="analytic",
        backend_version="none (estimated)",
        precision=precision,
        space=target.name,
        space_digest=target.digest,
        resolution=resolution,
        batch=batch,
        threads=0,
        host=f"{array.describe()}: estimated, not measured",
        source="estimated",
        method=f"{SYSTOLIC_METHODS[model]}; {array.describe()}"
        + (f", {array.bandwidth_gbs:g} GB/s" if model == "roofline" else ""),
        overhead_ms=0.0,
    )
    save_table(meta, frame, out)
    return out
