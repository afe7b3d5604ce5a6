"""Tables fitted from whole-network timings (`source = fitted`).

Some devices cannot be profiled layer by layer (TensorRT fuses across layers,
phones and NPUs are reachable only through the vendor's benchmark tool), but
whole networks can be timed. A fitted table explains those timings as a fixed
cost plus one latency per layer key, like a measured table predicts:

    latency(network) = fixed + sum over its layers of t(layer)

The layers outnumber the networks, so the fit is pulled toward a prior:

1. The prior gives each layer a cost p (its MACs, or its latency in another
   table of the same space and resolution, for instance another device's or a
   roofline estimate), n operators (its torch modules, the residual sum
   included: the kernels an eager runtime launches) and m elements written by
   them (memory traffic). A non-negative least-squares fit of the networks'
   latencies on (1, sum of p, sum of n, sum of m) gives t0 = a*p + b*n + c*m
   per layer and the fixed cost: the prior, in this device's milliseconds,
   with a cost per launched operator and per element besides the work.
2. Ridge toward t0: minimise, with every t and the fixed cost at least 0,
   sum over networks of ((prediction - latency) / latency)^2
   + lambda * sum over layers of ((t - t0) / typical network latency)^2.
   Both terms are shares of a network's latency, so lambda has no units. It is
   chosen by 5-fold cross-validation (mean absolute percentage error) from a
   fixed grid, and the cross-validated errors at that lambda are what the
   table's metadata reports. Layers no timed network contains keep their t0.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from scipy.optimize import lsq_linear, nnls
from torch import nn

from rlnas.errors import ArchitectureError, RlnasError
from rlnas.hardware.catalog import resolve_table
from rlnas.hardware.table import TableMeta, figure_rows, load_table, save_table
from rlnas.model.arch import Architecture
from rlnas.model.layers import arch_layers, enumerate_layers
from rlnas.model.ops import LayerKey, get_op, input_shapes, layer_macs
from rlnas.model.space import Space

LAMBDAS = tuple(10.0 ** (e / 2) for e in range(-8, 7))
FOLDS = 5
MIN_NETWORKS = 5


@dataclass(frozen=True)
class FitResult:
    """Per-layer latencies fitted to whole-network timings.

    Attributes:
        latency: Each layer key of the space: its fitted latency in ms inside a network.
        fixed_ms: The fixed cost of a network (the call, input and output).
        networks: How many timed networks it was fitted on.
        prior: What the prior was (`macs`, or the prior table's name).
        lam: The ridge weight chosen by cross-validation.
        cv_mape: Cross-validated mean absolute percentage error (%) at that weight.
        cv_within10: Cross-validated share of networks predicted within +-10%.
    """

    latency: dict[LayerKey, float]
    fixed_ms: float
    networks: int
    prior: str
    lam: float
    cv_mape: float
    cv_within10: float

    def predict_ms(self, arch: Architecture, resolution: int) -> float:
        return self.fixed_ms + sum(self.latency[k] for k in arch_layers(arch, resolution))

    def describe(self) -> str:
        return (
            f"ridge toward the {self.prior} prior (a*p + b*operators + c*elements per layer), "
            f"fitted on "
            f"{self.networks} whole-network timings, lambda {self.lam:g} by {FOLDS}-fold "
            f"cross-validation: MAPE {self.cv_mape:.1f}%, {100 * self.cv_within10:.0f}% "
            "within +-10%"
        )


def macs_prior(space: Space, resolution: int) -> dict[LayerKey, float]:
    """Each layer's multiply-accumulates, as a prior cost."""
    return {k: float(layer_macs(k)) for k in enumerate_layers(space, resolution)}


@functools.cache
def operators(key: LayerKey) -> tuple[int, int]:
    """(operators, elements) of one layer: its torch modules other than identities plus its
    residual sum if it has one, and the elements those operators write (run on the meta
    device: shapes only, no memory, no weights)."""
    with torch.device("meta"):
        module = get_op(key.op).build(key)
        leaves = [
            m for m in module.modules() if not list(m.children()) and not isinstance(m, nn.Identity)
        ]
        written: list[int] = []
        hooks = [m.register_forward_hook(lambda m, i, o: written.append(o.numel())) for m in leaves]
        output = module(*(torch.empty(shape) for shape in input_shapes(key)))
        for hook in hooks:
            hook.remove()
    residual = bool(getattr(module, "residual", False))
    return len(leaves) + residual, sum(written) + residual * output.numel()


def fit_latencies(
    archs: Sequence[Architecture],
    latency_ms: Sequence[float] | np.ndarray,
    resolution: int,
    prior: dict[LayerKey, float],
    prior_name: str = "macs",
    progress: Callable[[int, int], None] | None = None,
) -> FitResult:
    """Fits per-layer latencies to the networks' timings (see the module docstring).

    Raises:
        RlnasError: Too few networks, a timing that is not a positive number, or a
            layer the prior does not cover.
    """
    y = np.asarray(latency_ms, dtype=np.float64)
    if len(archs) != len(y):
        raise RlnasError(f"{len(archs)} architectures but {len(y)} latencies")
    if len(y) < MIN_NETWORKS:
        raise RlnasError(
            f"a fit needs at least {MIN_NETWORKS} timed networks, got {len(y)}; time more"
        )
    bad = ~(np.isfinite(y) & (y > 0))
    if bad.any():
        first = int(np.argmax(bad))
        raise RlnasError(
            f"latency {y[first]} ms of network {archs[first]} is not a positive number; "
            "remove that row or time the network again"
        )
    keys = list(prior)
    column = {k: i for i, k in enumerate(keys)}
    counts = np.zeros((len(y), len(keys)))
    for row, arch in enumerate(archs):
        for key in arch_layers(arch, resolution):
            if key not in column:
                raise RlnasError(
                    f"the prior has no cost for layer {key} of {arch}; "
                    "use a prior table that covers the space"
                )
            counts[row, column[key]] += 1
    p = np.array([prior[k] for k in keys], dtype=np.float64)
    n, e = np.array([operators(k) for k in keys], dtype=np.float64).T
    scores = {}
    folds = np.arange(len(y)) % FOLDS
    np.random.default_rng(0).shuffle(folds)
    total = len(LAMBDAS) * FOLDS
    for number, lam in enumerate(LAMBDAS):
        predicted = np.empty_like(y)
        for fold in range(FOLDS):
            train = folds != fold
            t, fixed = _fit(counts[train], y[train], p, n, e, lam)
            predicted[~train] = fixed + counts[~train] @ t
            if progress is not None:
                progress(number * FOLDS + fold + 1, total)
        error = np.abs(predicted - y) / y
        scores[lam] = (float(100 * error.mean()), float((error <= 0.10).mean()))
    lam = min(LAMBDAS, key=lambda candidate: (scores[candidate][0], -candidate))
    t, fixed = _fit(counts, y, p, n, e, lam)
    return FitResult(
        latency=dict(zip(keys, t.tolist(), strict=True)),
        fixed_ms=float(fixed),
        networks=len(y),
        prior=prior_name,
        lam=lam,
        cv_mape=scores[lam][0],
        cv_within10=scores[lam][1],
    )


def _fit(
    counts: np.ndarray, y: np.ndarray, p: np.ndarray, n: np.ndarray, e: np.ndarray, lam: float
) -> tuple[np.ndarray, float]:
    """(per-layer latencies, fixed cost) on these networks at ridge weight `lam`."""
    # 1. The prior in this device's units: y ~ fixed + a*sum(p) + b*sum(n) + c*sum(e), all >= 0.
    basis = np.column_stack([np.ones(len(y)), counts @ p, counts @ n, counts @ e])
    norm = basis.max(axis=0)
    norm[norm == 0] = 1.0
    weight = 1.0 / y
    coefficients, _ = nnls(basis / norm * weight[:, None], np.ones(len(y)))
    fixed0, a, b, c = coefficients / norm
    t0 = a * p + b * n + c * e
    # 2. Ridge toward it on the layers these networks contain; the others keep t0.
    seen = counts.sum(axis=0) > 0
    scale = float(np.median(y))
    design = np.column_stack([np.ones(len(y)), counts[:, seen]]) * weight[:, None]
    target = np.ones(len(y)) - (counts[:, ~seen] @ t0[~seen]) * weight
    root = np.sqrt(lam) / scale
    penalty = root * np.eye(1 + int(seen.sum()))
    anchor = root * np.concatenate([[fixed0], t0[seen]])
    solution = lsq_linear(
        np.vstack([design, penalty]), np.concatenate([target, anchor]), bounds=(0, np.inf)
    ).x
    t = t0.copy()
    t[seen] = solution[1:]
    return t, float(solution[0])


def read_timings(path: Path, space: Space) -> tuple[list[Architecture], np.ndarray]:
    """The architectures and latencies of a CSV or Parquet file of timed networks.

    It holds one row per network: `arch` (the canonical string in `space`) and
    `latency_ms`.

    Raises:
        RlnasError: The file is missing or unreadable, lacks a column, or a row holds an
            architecture of another space (each named with its row).
    """
    path = Path(path)
    if not path.is_file():
        raise RlnasError(f"timings file {path} does not exist")
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError, pa.ArrowInvalid) as exc:
        raise RlnasError(
            f"cannot read timings {path} ({exc}); give a CSV or Parquet file"
        ) from None
    return decode_timings(frame, space, str(path))


def decode_timings(
    frame: pd.DataFrame, space: Space, where: str
) -> tuple[list[Architecture], np.ndarray]:
    """The architectures and latencies of a frame of timed networks (`arch`, `latency_ms`)."""
    missing = [c for c in ("arch", "latency_ms") if c not in frame.columns]
    if missing:
        raise RlnasError(
            f"timings {where} lack column(s) {', '.join(missing)}; they need 'arch' (canonical "
            "string) and 'latency_ms', one row per timed network"
        )
    archs = []
    for row, text in enumerate(frame["arch"], start=1):
        try:
            archs.append(Architecture.decode(str(text), space))
        except ArchitectureError as exc:
            raise ArchitectureError(f"{where} row {row}: {exc}") from None
    latency = pd.to_numeric(frame["latency_ms"], errors="coerce").to_numpy(dtype=np.float64)
    return archs, latency


def prior_costs(prior: str, space: Space, resolution: int) -> tuple[dict[LayerKey, float], str]:
    """(per-layer prior cost, its name) for `macs` or a table (name or file) of the space."""
    if prior == "macs":
        return macs_prior(space, resolution), "macs"
    table = load_table(resolve_table(prior))
    table.check_space(space, resolution)
    keys = enumerate_layers(space, resolution)
    missing = table.missing(keys)
    if missing:
        raise table.missing_error(missing)
    return {k: float(table.net_latency[table.index[k]]) for k in keys}, table.meta.name


def write_fitted_table(
    result: FitResult,
    space: Space,
    resolution: int,
    device: str,
    precision: str,
    host: str,
    out: Path,
) -> None:
    """Writes a fit as a table (`source = fitted`, the fit in `method`): one figure per layer,
    no spread and no timed runs, the fixed cost as the table's overhead."""
    frame = figure_rows(result.latency)
    meta = TableMeta(
        device=device,
        backend="end-to-end timings",
        backend_version="none (fitted)",
        precision=precision,
        space=space.name,
        space_digest=space.digest,
        resolution=resolution,
        batch=1,
        threads=0,
        host=host,
        source="fitted",
        method=result.describe(),
        overhead_ms=result.fixed_ms,
    )
    save_table(meta, frame, out)
