"""Per-layer latencies from whole-network timings: the one fit behind `rlnas tables fit` and
the calibration of a table on a new host (`rlnas.hardware.endtoend.calibrate_table`).

Whole networks are explained as a fixed cost plus one latency per layer key, as a
table predicts them:

    latency(network) = fixed + sum over its layers of t(layer)

The layers outnumber the timed networks, so each t is pulled toward a prior t0 built
from what is known of the layer (`rlnas.hardware.features`): its latency in known
tables, its work and its memory.

A prior model is a set of features, combined with weights w >= 0 fitted (NNLS) on the
timings' relative error: `scale` (the first prior table alone: the affine
calibration), `kinds` (a scale per layer kind: the per-kind calibration), `work` (no
table: MACs, operators, elements) and `all` (every feature). Then a
ridge toward t0 = features @ w:

    minimise sum over networks ((prediction - latency) / latency)^2
             + lambda * sum over layers and the fixed cost ((t - t0) / typical latency)^2

Both terms are shares of a network's latency, so lambda has no units. It is solved in
closed form through the networks' Gram matrix (one eigendecomposition per fold
serves every model and every lambda), and negative latencies are set to 0.
lambda = inf keeps the prior model as it is, so the affine and per-kind calibrations
are special cases. Model and lambda are chosen by 5-fold cross-validation (mean
absolute percentage error): each model at its best lambda, then the first model in an
order of preference (`MODELS`: the work alone first, so a table must earn its place;
`ADAPTATION_MODELS`: the measured table scaled first) whose error is within one
standard error of the best. The cross-validated errors at the choice are what the
table's metadata reports. Layers no timed network contains keep their t0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.optimize import nnls

from rlnas.errors import ArchitectureError, RlnasError
from rlnas.hardware.features import PriorTable, feature_models
from rlnas.hardware.table import figure_rows, save_table
from rlnas.hardware.table_meta import TableMeta
from rlnas.model.arch import Architecture
from rlnas.model.layers import arch_layers, enumerate_layers
from rlnas.model.ops import (
    LayerKey,
)
from rlnas.model.space import Space

LAMBDAS = (*(10.0 ** (e / 2) for e in range(-8, 9)), math.inf)
FOLDS = 5
MIN_NETWORKS = 5
# The prior models in order of preference: `tables fit` keeps the layers' work unless a table
# earns its place; a host adaptation starts from the measured table.
MODELS = ("work", "all")
ADAPTATION_MODELS = ("scale", "kinds", "all")
TIE = 1e-6  # cross-validated MAPEs closer than this (as a fraction) are a tie


@dataclass(frozen=True)
class FitResult:
    """Per-layer latencies fitted to whole-network timings.

    Attributes:
        latency: Each layer key of the space: its fitted latency in ms inside a network.
        fixed_ms: The fixed cost of a network (the call, input and output).
        networks: How many timed networks it was fitted on.
        priors: The prior tables, by name (none: the layers' work alone).
        model: The prior model chosen (`scale`, `kinds`, `work` or `all`).
        weights: The chosen model's feature weights (ms per unit of each feature).
        lam: The ridge weight chosen by cross-validation (inf: the prior model as is).
        cv_mape: Cross-validated mean absolute percentage error (%) at that choice.
        cv_within10: Cross-validated share of networks predicted within +-10%.
        cv_models: Each model's best cross-validated MAPE (%).
    """

    latency: dict[LayerKey, float]
    fixed_ms: float
    networks: int
    priors: tuple[str, ...]
    model: str
    weights: dict[str, float]
    lam: float
    cv_mape: float
    cv_within10: float
    cv_models: dict[str, float] = field(default_factory=dict)

    def predict_ms(self, arch: Architecture, resolution: int) -> float:
        return self.fixed_ms + sum(self.latency[k] for k in arch_layers(arch, resolution))

    def describe(self) -> str:
        priors = ", ".join(self.priors) if self.priors else "none (the layers' work alone)"
        models = ", ".join(f"{m} {e:.1f}%" for m, e in self.cv_models.items())
        pull = "none (the prior model as is)" if math.isinf(self.lam) else f"{self.lam:g}"
        return (
            f"fitted on {self.networks} whole-network timings; prior tables: {priors}; "
            f"prior model '{self.model}', ridge lambda {pull}, chosen by {FOLDS}-fold "
            f"cross-validation: MAPE {self.cv_mape:.1f}%, {100 * self.cv_within10:.0f}% "
            f"within +-10% (each model's MAPE: {models})"
        )


def layer_counts(
    archs: Sequence[Architecture], keys: Sequence[LayerKey], resolution: int
) -> np.ndarray:
    """How often each key occurs in each network (networks x keys)."""
    column = {k: i for i, k in enumerate(keys)}
    counts = np.zeros((len(archs), len(keys)))
    for row, arch in enumerate(archs):
        for key in arch_layers(arch, resolution):
            counts[row, column[key]] += 1
    return counts


def check_timings(archs: Sequence[Architecture], latency_ms: Sequence[float] | np.ndarray) -> None:
    """Raises RlnasError for too few timings, or one that is not a positive number."""
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
            f"latency {y[first]} ms of network {archs[first]} (row {first + 1}) is not a "
            "positive number; remove that row or time the network again"
        )


def fit_latencies(
    archs: Sequence[Architecture],
    latency_ms: Sequence[float] | np.ndarray,
    resolution: int,
    priors: Sequence[PriorTable] = (),
    caches: str = "",
    models: Sequence[str] = MODELS,
    progress: Callable[[int, int], None] | None = None,
) -> FitResult:
    """Fits per-layer latencies to the networks' timings (see the module docstring).

    Args:
        archs: The timed networks, all of one space.
        latency_ms: Their latencies.
        resolution: Their input resolution.
        priors: Known tables of the space at this resolution; the first is the one a
            calibration scales.
        caches: A CPU host's caches (its fingerprint's `caches`), for the memory features.
        models: The prior models to choose among, in order of preference: a later one is
            chosen only where its cross-validated error is lower than every earlier one's by
            more than one standard error.
        progress: Called with (folds done, folds).

    Raises:
        RlnasError: Too few networks, or a timing that is not a positive number.
    """
    check_timings(archs, latency_ms)
    y = np.asarray(latency_ms, dtype=np.float64)
    keys = enumerate_layers(archs[0].space, resolution)
    counts = layer_counts(archs, keys, resolution)
    candidates = {m: f for m, f in feature_models(keys, priors, caches).items() if m in models}
    folds = np.arange(len(y)) % min(FOLDS, len(y))
    np.random.default_rng(0).shuffle(folds)
    predicted = {m: np.empty((len(LAMBDAS), len(y))) for m in candidates}
    for fold in range(folds.max() + 1):
        train = folds != fold
        ridge = _Ridge(counts[train], y[train])
        for model, (_, features) in candidates.items():
            thetas = ridge.solve(*_prior(counts[train], y[train], features)[:2])
            predicted[model][:, ~train] = (thetas[0] + counts[~train] @ thetas[1:]).T
        if progress is not None:
            progress(fold + 1, folds.max() + 1)
    errors = {m: np.abs(p / y - 1) for m, p in predicted.items()}
    scores = {(m, i): float(e[i].mean()) for m, e in errors.items() for i in range(len(LAMBDAS))}
    # Each model at its best lambda (the strongest pull among near ties); then the first
    # model, in `models`' order, within one standard error of the best of all.
    at_best = {}
    for m in candidates:
        low = min(scores[(m, i)] for i in range(len(LAMBDAS)))
        at_best[m] = max(i for i in range(len(LAMBDAS)) if scores[(m, i)] <= low + TIE)
    leader = min(candidates, key=lambda m: scores[(m, at_best[m])])
    spread = errors[leader][at_best[leader]]
    margin = float(spread.std(ddof=1) / np.sqrt(len(y))) if len(y) > 1 else 0.0
    limit = scores[(leader, at_best[leader])] + max(margin, TIE)
    model = next(m for m in models if m in candidates and scores[(m, at_best[m])] <= limit)
    at = at_best[model]
    names, features = candidates[model]
    fixed0, t0, weights = _prior(counts, y, features)
    theta = _Ridge(counts, y).solve(fixed0, t0, (LAMBDAS[at],))[:, 0]
    return FitResult(
        latency=dict(zip(keys, theta[1:].tolist(), strict=True)),
        fixed_ms=float(theta[0]),
        networks=len(y),
        priors=tuple(p.name for p in priors),
        model=model,
        weights=dict(zip(names, weights.tolist(), strict=True)),
        lam=LAMBDAS[at],
        cv_mape=100 * scores[(model, at)],
        cv_within10=float((errors[model][at] <= 0.10).mean()),
        cv_models={m: 100 * min(scores[(m, i)] for i in range(len(LAMBDAS))) for m in candidates},
    )


def _prior(
    counts: np.ndarray, y: np.ndarray, features: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """(fixed cost, per-layer prior, feature weights): y ~ fixed + counts @ features @ w, all
    >= 0, by least squares of the relative error."""
    basis = np.column_stack([np.ones(len(y)), counts @ features])
    norm = basis.max(axis=0)
    norm[norm <= 0] = 1.0
    solution, _ = nnls(basis / norm / y[:, None], np.ones(len(y)))
    solution = solution / norm
    return float(solution[0]), features @ solution[1:], solution[1:]


class _Ridge:
    """The ridge toward a prior on fixed networks, for any prior and lambda.

    With A = [1, counts] / y (rows as shares of each network's latency) and theta = (fixed,
    t), the minimiser of |A theta - 1|^2 + mu |theta - theta0|^2 is
    theta0 + A^T (A A^T + mu I)^-1 (1 - A theta0): one eigendecomposition of the networks'
    Gram matrix A A^T serves every mu.
    """

    def __init__(self, counts: np.ndarray, y: np.ndarray):
        self.design = np.column_stack([np.ones(len(y)), counts]) / y[:, None]
        self.eigenvalues, self.eigenvectors = np.linalg.eigh(self.design @ self.design.T)
        self.scale = float(np.median(y))

    def solve(self, fixed0: float, t0: np.ndarray, lams: Sequence[float] = LAMBDAS) -> np.ndarray:
        """theta (fixed, then t), one column per lambda, every entry at least 0."""
        theta0 = np.concatenate([[fixed0], t0])
        residual = self.eigenvectors.T @ (1.0 - self.design @ theta0)
        mu = np.array([lam / self.scale**2 for lam in lams])
        with np.errstate(divide="ignore"):
            inverse = np.where(np.isinf(mu), 0.0, 1.0 / (self.eigenvalues[:, None] + mu[None, :]))
        step = self.design.T @ (self.eigenvectors @ (residual[:, None] * inverse))
        return np.maximum(theta0[:, None] + step, 0.0)


def read_timings(
    path: Path, space: Space, duplicates: str = "refuse"
) -> tuple[list[Architecture], np.ndarray]:
    """The architectures and latencies of a CSV or Parquet file of timed networks.

    It holds one row per network: `arch` (the canonical string in `space`) and
    `latency_ms`.

    Raises:
        RlnasError: The file is missing or unreadable, lacks a column, a row holds an
            architecture of another space (each named with its row), or a network is
            timed twice with different results (unless `duplicates` is `median`).
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
    return decode_timings(frame, space, str(path), duplicates)


def decode_timings(
    frame: pd.DataFrame, space: Space, where: str, duplicates: str = "refuse"
) -> tuple[list[Architecture], np.ndarray]:
    """The architectures and latencies of a frame of timed networks (`arch`, `latency_ms`):
    one per network; repeated rows of one network must agree, or with `duplicates='median'`
    give their median."""
    if duplicates not in ("refuse", "median"):
        raise RlnasError(f"--duplicates '{duplicates}' is not one of: refuse, median")
    missing = [c for c in ("arch", "latency_ms") if c not in frame.columns]
    if missing:
        raise RlnasError(
            f"timings {where} lack column(s) {', '.join(missing)}; they need 'arch' (canonical "
            "string) and 'latency_ms', one row per timed network"
        )
    archs: dict[Architecture, list[float]] = {}
    rows: dict[Architecture, list[int]] = {}
    latency = pd.to_numeric(frame["latency_ms"], errors="coerce").to_numpy(dtype=np.float64)
    for row, (text, ms) in enumerate(zip(frame["arch"], latency, strict=True), start=1):
        try:
            arch = Architecture.decode(str(text), space)
        except ArchitectureError as exc:
            raise ArchitectureError(f"{where} row {row}: {exc}") from None
        if not (np.isfinite(ms) and ms > 0):
            raise RlnasError(
                f"{where} row {row}: latency {frame['latency_ms'].iloc[row - 1]} ms is not a "
                "positive number; remove that row or time the network again"
            )
        archs.setdefault(arch, []).append(float(ms))
        rows.setdefault(arch, []).append(row)
    for arch, values in archs.items():
        if len(set(values)) > 1 and duplicates != "median":
            raise RlnasError(
                f"{where} rows {', '.join(map(str, rows[arch]))} time the same network {arch} "
                f"differently ({', '.join(f'{v:g}' for v in values)} ms); keep one row, or "
                "pass --duplicates median to take their median"
            )
    return list(archs), np.array([float(np.median(v)) for v in archs.values()])


def write_fitted_table(
    result: FitResult,
    space: Space,
    resolution: int,
    device: str,
    precision: str,
    host: str,
    out: Path,
    threads: int = 0,
    host_fingerprint: str = "",
    backend: str = "end-to-end timings",
    backend_version: str = "none (fitted)",
    batch: int = 1,
    method: str | None = None,
) -> None:
    """Writes a fit as a table (`source = fitted`, the fit in `method`): one figure per layer,
    no spread and no timed runs, the fixed cost as the table's overhead."""
    frame = figure_rows(result.latency)
    meta = TableMeta(
        device=device,
        backend=backend,
        backend_version=backend_version,
        precision=precision,
        space=space.name,
        space_digest=space.digest,
        resolution=resolution,
        batch=batch,
        threads=threads,
        host=host,
        source="fitted",
        method=method or result.describe(),
        overhead_ms=result.fixed_ms,
        host_fingerprint=host_fingerprint,
    )
    save_table(meta, frame, out)
