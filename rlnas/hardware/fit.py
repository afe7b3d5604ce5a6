"""Per-layer latencies from whole-network timings: the one fit behind `rlnas tables fit` and
the calibration of a table on a new host (`rlnas.hardware.endtoend.calibrate_table`).

Whole networks are explained as a fixed cost plus one latency per layer key, as a
table predicts them:

    latency(network) = fixed + sum over its layers of t(layer)

The layers outnumber the timed networks, so each t is pulled toward a prior t0 built
from what is known of the layer, its features:

- its latency in each prior table: the shipped tables, the user's, fitted tables of
  other devices, all of the same space and resolution (a table that lacks some
  layers is completed from its own ratio to the layers' work, below);
- the first prior table's latency split by layer kind (`layer_kind`: op, SE or not);
- its work: MACs, operators (its primitive operations: convolutions with their BN,
  standalone activations, SE, pooling, the residual sum) and the elements they write;
- its memory: weight and activation bytes, and with a host's caches (a CPU
  fingerprint) the bytes of its working set beyond the L2 and beyond the L3.

A prior model is a set of features, combined with weights w >= 0 fitted (NNLS) on the
timings' relative error: `scale` (the first prior table alone: the affine
calibration), `kinds` (a scale per layer kind: the per-kind calibration), `tables`
(every prior table), `work` (no table: MACs, operators, elements) and `all`. Then a
ridge toward t0 = features @ w:

    minimise sum over networks ((prediction - latency) / latency)^2
             + lambda * sum over layers and the fixed cost ((t - t0) / typical latency)^2

Both terms are shares of a network's latency, so lambda has no units. It is solved in
closed form through the networks' Gram matrix (one eigendecomposition per fold
serves every model and every lambda), and negative latencies are set to 0.
lambda = inf keeps the prior model as it is, so the affine and per-kind calibrations
are special cases. The model and lambda are chosen together by 5-fold
cross-validation (mean absolute percentage error); the cross-validated errors at the
choice are what the table's metadata reports. Layers no timed network contains keep
their t0.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from scipy.optimize import nnls
from torch import nn

from rlnas.errors import ArchitectureError, RlnasError, TableError
from rlnas.hardware.calibration import layer_kind
from rlnas.hardware.catalog import find_tables, resolve_table
from rlnas.hardware.table import LatencyTable, TableMeta, figure_rows, load_table, save_table
from rlnas.model.arch import Architecture
from rlnas.model.layers import arch_layers, enumerate_layers
from rlnas.model.ops import (
    LayerKey,
    get_op,
    input_shapes,
    layer_macs,
    layer_params,
    layer_primitives,
)
from rlnas.model.space import Space

LAMBDAS = (*(10.0 ** (e / 2) for e in range(-8, 9)), math.inf)
FOLDS = 5
MIN_NETWORKS = 5
MODELS = ("scale", "kinds", "tables", "work", "all")
TIE = 1e-6  # cross-validated MAPEs closer than this (as a fraction) are a tie
BYTES_PER_ELEMENT = 4  # fp32 activations and weights: the working set a CPU's caches see


@dataclass(frozen=True)
class PriorTable:
    """One known table as a prior: its name and each layer's latency inside a network."""

    name: str
    latency: Mapping[LayerKey, float]

    @classmethod
    def of(cls, table: LatencyTable) -> PriorTable:
        return cls(
            table.meta.name,
            {k: float(table.net_latency[row]) for k, row in table.index.items()},
        )


@dataclass(frozen=True)
class FitResult:
    """Per-layer latencies fitted to whole-network timings.

    Attributes:
        latency: Each layer key of the space: its fitted latency in ms inside a network.
        fixed_ms: The fixed cost of a network (the call, input and output).
        networks: How many timed networks it was fitted on.
        priors: The prior tables, by name (none: the layers' work alone).
        model: The prior model chosen (`scale`, `kinds`, `tables`, `work` or `all`).
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


@functools.cache
def operators(key: LayerKey) -> tuple[int, int]:
    """(operators, elements) of one layer: its primitive operations (`layer_primitives`:
    convolutions with their BN, standalone activations, SE, pooling, shuffles, the residual
    sum) and the elements they write. Ops the primitives do not cover (NAS-Bench-201's) are
    counted on their torch module instead, run on the meta device: its modules other than
    identities plus its residual sum, and what they write."""
    if get_op(key.op).primitives is not None and key.h == key.w:
        ops = layer_primitives(key)
        return len(ops), sum(op.out_elems or op.macs for op in ops)
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


def cache_sizes(caches: str) -> dict[str, int]:
    """Bytes per cache level of a fingerprint's `caches` ('L1d 48K, L2 2048K, L3 107520K')."""
    sizes: dict[str, int] = {}
    for level, number, unit in re.findall(r"(L\d)[di]?\s+(\d+)\s*([KMG]?)", caches):
        scale = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[unit]
        sizes[level] = max(sizes.get(level, 0), int(number) * scale)
    return sizes


def _work(keys: Sequence[LayerKey]) -> np.ndarray:
    macs = [float(layer_macs(k)) for k in keys]
    ops, elements = np.array([operators(k) for k in keys], dtype=np.float64).reshape(-1, 2).T
    return np.column_stack([macs, ops, elements])


def _memory(keys: Sequence[LayerKey], caches: str) -> tuple[list[str], np.ndarray]:
    weights = np.array([layer_params(k) for k in keys], dtype=np.float64) * BYTES_PER_ELEMENT
    inputs = [sum(int(np.prod(s)) for s in input_shapes(k)) for k in keys]
    written = np.array([operators(k)[1] for k in keys], dtype=np.float64)
    activations = (np.array(inputs, dtype=np.float64) + written) * BYTES_PER_ELEMENT
    names, columns = ["weight_bytes", "activation_bytes"], [weights, activations]
    working_set = weights + activations
    for level, size in sorted(cache_sizes(caches).items()):
        if level in ("L2", "L3"):
            names.append(f"bytes_beyond_{level}")
            columns.append(np.maximum(working_set - size, 0.0))
    return names, np.column_stack(columns)


def _complete(prior: PriorTable, keys: Sequence[LayerKey], work: np.ndarray) -> np.ndarray | None:
    """The prior's latency of each key; keys it lacks get its own fitted ratio to their work
    (None where it shares fewer than 3 layers with `keys`)."""
    known = np.array([k in prior.latency for k in keys])
    column = np.array([prior.latency.get(k, 0.0) for k in keys])
    if known.all():
        return column
    if known.sum() < 3:
        return None
    norm = work[known].max(axis=0)
    norm[norm == 0] = 1.0
    ratio, _ = nnls(work[known] / norm, column[known])
    column[~known] = work[~known] / norm @ ratio
    return column


def feature_models(
    keys: Sequence[LayerKey], priors: Sequence[PriorTable] = (), caches: str = ""
) -> dict[str, tuple[list[str], np.ndarray]]:
    """Each prior model's features: names, and one row per key (see the module docstring)."""
    work = _work(keys)
    usable = [(p.name, c) for p in priors if (c := _complete(p, keys, work)) is not None]
    models: dict[str, tuple[list[str], np.ndarray]] = {}
    if usable:
        first_name, first = usable[0]
        models["scale"] = ([first_name], first[:, None])
        kinds = sorted({layer_kind(k) for k in keys})
        if len(kinds) > 1:
            of_kind = np.array([[layer_kind(k) == kind for kind in kinds] for k in keys])
            models["kinds"] = ([f"{first_name}[{k}]" for k in kinds], first[:, None] * of_kind)
        if len(usable) > 1:
            models["tables"] = ([n for n, _ in usable], np.column_stack([c for _, c in usable]))
    work_names = ["macs", "operators", "elements"]
    models["work"] = (work_names, work)
    memory_names, memory = _memory(keys, caches)
    models["all"] = (
        [n for n, _ in usable] + work_names + memory_names,
        np.column_stack([c for _, c in usable] + [work, memory]),
    )
    return models


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
        models: The prior models to choose among.
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
    # Among the choices within a hair of the best, the first model and the strongest pull.
    best = min(scores.values())
    tied = [c for c in scores if scores[c] <= best + TIE]
    model, at = min(tied, key=lambda c: (MODELS.index(c[0]), -LAMBDAS[c[1]]))
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


def prior_tables(
    names: Sequence[str], space: Space, resolution: int, exclude: Sequence[Path] = ()
) -> list[PriorTable]:
    """The prior tables of a fit: `macs` (none), `auto` (every known table of the space at
    this resolution, the user's and the shipped), or tables by name or file.

    Raises:
        TableError: A named table is of another space or resolution, or unreadable.
    """
    priors: list[PriorTable] = []
    skip = {Path(p).resolve() for p in exclude}
    for name in names:
        if name == "macs":
            continue
        if name == "auto":
            for _, path in find_tables():
                if path.resolve() in skip:
                    continue
                try:
                    table = load_table(path)
                    table.check_space(space, resolution)
                except TableError:
                    continue  # another space, resolution or a broken file: not a prior
                priors.append(PriorTable.of(table))
            continue
        table = load_table(resolve_table(name))
        try:
            table.check_space(space, resolution)
        except TableError:
            raise TableError(
                f"prior table {table.path} is for space '{table.meta.space}' at "
                f"{table.meta.resolution}px, not '{space.name}' at {resolution}px; give a table "
                "of the timings' space and resolution, or --prior auto"
            ) from None
        priors.append(PriorTable.of(table))
    unique = {p.name: p for p in priors}  # a user's table hides a shipped one of its name
    return list(unique.values())


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
