"""A few-shot accuracy predictor: a regression on an encoding of the architecture.

It learns from K architectures of one space with known accuracy (trained, or
from a benchmark file) and predicts the accuracy of any other, in percent,
with a standard deviation.

Features (`encode`): one indicator per choice of every decision that has more
than one choice (the first choice is the reference, so it has none); the log
of the parameters and of the multiply-accumulates at 32 px (closed forms);
and, optionally, the raw values of zero-cost proxies (signed log; a value that
is not finite, as naswot's for a degenerate network, is set below the lowest
finite one and flagged in an indicator column of its own). Each
feature is standardised on the training architectures.

Three models (`MODELS`):
- `ridge`: scikit-learn's `BayesianRidge` (evidence-maximised
  priors, so there is nothing to tune per K); its predictive standard
  deviation is the uncertainty. Chosen on the encoding alone, on NAS-Bench-Macro
  and NAS-Bench-201 with split seeds 0-4, against ridge, a random forest and
  Gaussian processes.
- `forest`: scikit-learn's `RandomForestRegressor` (300 trees, seed 0), which
  combines proxies where a linear model cannot (NAS-Bench-201 with four
  proxies: 0.926 against the ridge's 0.806). Its standard deviation is the
  spread of its trees' predictions together with the forest's out-of-bag error
  (the trees' spread alone is too narrow at small K).
- `blend`: the mean of the two; its standard deviation is that of an equal
  mixture of their normals.
None wins everywhere: on NAS-Bench-Macro with naswot the blend ranks best
(0.959; the ridge 0.945, the forest 0.922), on NAS-Bench-201 with four proxies
the forest does (0.926; the ridge 0.806). `choose_model` picks one for a
training set by 5-fold cross-validation on it (Spearman; the simpler model on a
tie, the ridge below `MIN_CHOOSE` networks), which is what `rlnas predictor fit`
does by default (BENCHMARKS.md, "Ridge, forest or blend, chosen per training
set").

Stored without pickle: a predictor file is the Parquet table of its training
architectures and accuracies, with the space digest and feature settings in
its metadata; loading refits the regression, which is deterministic (a forest
takes about 0.4 s at K = 50).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.stats import spearmanr
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import BayesianRidge
from sklearn.model_selection import KFold

from rlnas.errors import RlnasError, RunError
from rlnas.files import atomic_write_parquet
from rlnas.model.arch import Architecture
from rlnas.model.costs import AdditiveCost
from rlnas.model.ops import layer_macs, layer_params
from rlnas.model.space import Space, get_space

FEATURE_VERSION = 1
RESOLUTION = 32
MODELS = ("ridge", "forest", "blend")
BLENDED = {"blend": ("ridge", "forest")}
TREES = 300
FOLDS = 5
MIN_CHOOSE = 10  # fewer known networks than this: the ridge, unchosen


@functools.lru_cache(maxsize=8)
def _cost_models(space: Space) -> tuple[AdditiveCost, AdditiveCost]:
    """Parameters and MACs per decision (built once per space: 30 ms in the default space)."""
    return AdditiveCost(space, space.resolution, layer_params), AdditiveCost(
        space, RESOLUTION, layer_macs
    )


def encode(
    archs: Sequence[Architecture],
    proxies: Mapping[str, Sequence[float]] | None = None,
    floors: Mapping[str, float] | None = None,
) -> np.ndarray:
    """The feature matrix of architectures of one space (see the module docstring).

    A proxy that is not finite for a degenerate network (naswot's log-determinant of a
    singular kernel is -inf) gets `floors[proxy]` (default: one below the lowest finite
    value given) and a 1 in that proxy's indicator column of such networks."""
    if not archs:
        return np.zeros((0, 0))
    space = archs[0].space
    choices = np.array([a.choices for a in archs])
    columns = [
        (choices[:, i] == c).astype(float)
        for i, decision in enumerate(space.decisions)
        for c in range(1, len(decision.tokens))
    ]
    params, macs = _cost_models(space)
    columns.append(np.log1p([params.total(a.choices) for a in archs]))
    columns.append(np.log1p([macs.total(a.choices) for a in archs]))
    for name, values in (proxies or {}).items():
        logged = signed_log(values)
        finite = np.isfinite(logged)
        floor = (floors or {}).get(name, lowest_floor(logged))
        columns.append(np.where(finite, logged, floor))
        columns.append((~finite).astype(float))
    return np.stack(columns, axis=1)


def signed_log(values: Sequence[float]) -> np.ndarray:
    """sign(v) * log(1 + |v|), elementwise (not finite where v is not)."""
    v = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.sign(v) * np.log1p(np.abs(v))


def lowest_floor(logged: np.ndarray) -> float:
    """One below the lowest finite value (0 where none is finite)."""
    finite = logged[np.isfinite(logged)]
    return float(finite.min() - 1) if len(finite) else 0.0


class Predictor:
    """Accuracy (percent) of architectures of one space, learnt from known ones.

    Args:
        archs: The training architectures (at least 3).
        accuracy: Their accuracies in percent.
        proxies: Optional raw proxy values per proxy name, aligned with `archs`.
        model: One of `MODELS` (see the module docstring).
    """

    def __init__(
        self,
        archs: Sequence[Architecture],
        accuracy: Sequence[float],
        proxies: Mapping[str, Sequence[float]] | None = None,
        model: str = "ridge",
    ):
        if model not in MODELS:
            raise RlnasError(
                f"unknown predictor model '{model}'; choose one of {', '.join(MODELS)}"
            )
        if len(archs) < 3 or len(archs) != len(accuracy):
            raise RlnasError(
                f"the predictor needs at least 3 architectures with one accuracy each, got "
                f"{len(archs)} architectures and {len(accuracy)} accuracies"
            )
        spaces = {a.space.digest for a in archs}
        if len(spaces) != 1:
            raise RlnasError("the predictor learns one space at a time; got several")
        y = np.asarray(accuracy, dtype=float)
        if not np.isfinite(y).all():
            raise RlnasError("the predictor's accuracies must be finite numbers (percent)")
        self.space: Space = archs[0].space
        self.archs, self.accuracy = list(archs), y
        self.proxies = {k: list(v) for k, v in (proxies or {}).items()}
        self.floors = {k: lowest_floor(signed_log(v)) for k, v in self.proxies.items()}
        x = encode(self.archs, self.proxies, self.floors)
        self.mean, self.scale = x.mean(axis=0), x.std(axis=0)
        self.scale[self.scale == 0] = 1.0
        self.kind = model
        z = (x - self.mean) / self.scale
        self.models = [_fit(kind, z, y) for kind in BLENDED.get(model, (model,))]

    def predict(
        self, archs: Sequence[Architecture], proxies: Mapping[str, Sequence[float]] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Predicted accuracy (percent) and its standard deviation, per architecture."""
        if set(proxies or {}) != set(self.proxies):
            raise RlnasError(
                f"the predictor was fitted with proxies {sorted(self.proxies)}; give the same"
            )
        if any(a.space.digest != self.space.digest for a in archs):
            raise RlnasError(f"the predictor knows space '{self.space.name}' only")
        ordered = {k: (proxies or {})[k] for k in self.proxies}
        x = (encode(archs, ordered, self.floors) - self.mean) / self.scale
        parts = [_predict(fitted, noise, x) for fitted, noise in self.models]
        if len(parts) == 1:
            return parts[0]
        # The blend: an equal mixture of the models' normals.
        means, stds = np.stack([m for m, _ in parts]), np.stack([s for _, s in parts])
        mean = means.mean(axis=0)
        return mean, np.sqrt((stds**2 + (means - mean) ** 2).mean(axis=0))

    def with_known(
        self,
        archs: Sequence[Architecture],
        accuracy: Sequence[float],
        proxies: Mapping[str, Sequence[float]] | None = None,
    ) -> Predictor:
        """A predictor refitted with these architectures added (e.g. as trainings finish)."""
        extra = proxies or {}
        merged = {k: [*v, *extra.get(k, [])] for k, v in self.proxies.items()}
        return Predictor([*self.archs, *archs], [*self.accuracy, *accuracy], merged, self.kind)

    def save(self, path: Path) -> None:
        """Writes the training set (the predictor's only state) as Parquet."""
        columns: dict[str, list[object]] = {
            "arch": [str(a) for a in self.archs],
            "accuracy": list(self.accuracy),
        }
        columns.update({f"proxy_{k}": list(v) for k, v in self.proxies.items()})
        meta = {
            "space": self.space.name,
            "space_digest": self.space.digest,
            "feature_version": FEATURE_VERSION,
            "proxies": list(self.proxies),
            "model": self.kind,
        }
        table = pa.table(columns).replace_schema_metadata({"rlnas_predictor": json.dumps(meta)})
        atomic_write_parquet(table, Path(path))

    @classmethod
    def load(cls, path: Path, space: str | Path | Space | None = None) -> Predictor:
        """Reads a predictor file and refits it."""
        if not Path(path).is_file():
            raise RunError(
                f"predictor file {path} not found; give its path, or fit one with "
                "`rlnas predictor fit`"
            )
        try:
            table = pq.read_table(path)
            meta = json.loads((table.schema.metadata or {})[b"rlnas_predictor"])
        except (OSError, pa.ArrowInvalid, KeyError, json.JSONDecodeError):
            raise RunError(f"{path} is not a predictor file; fit one again") from None
        if meta["feature_version"] != FEATURE_VERSION:
            raise RunError(f"{path} holds features of another rlnas version; fit it again")
        resolved = get_space(space or meta["space"])
        if resolved.digest != meta["space_digest"]:
            raise RunError(
                f"{path} was fitted on another version of space '{meta['space']}'; fit it again"
            )
        frame = table.to_pandas()
        archs = [Architecture.decode(a, resolved) for a in frame["arch"]]
        proxies = {p: list(frame[f"proxy_{p}"]) for p in meta["proxies"]}
        model = meta.get("model", "ridge")  # files written before the forest: ridge
        if model not in MODELS:
            raise RunError(
                f"{path} holds a '{model}' predictor, unknown to this rlnas; fit it again"
            )
        return cls(archs, list(frame["accuracy"]), proxies, model)


def choose_model(
    archs: Sequence[Architecture],
    accuracy: Sequence[float],
    proxies: Mapping[str, Sequence[float]] | None = None,
) -> tuple[str, dict[str, float]]:
    """The model of `MODELS` that ranks held-out folds of these networks best, and each
    model's cross-validated Spearman (empty below `MIN_CHOOSE` networks: the ridge)."""
    if len(archs) < MIN_CHOOSE:
        return "ridge", {}
    y = np.asarray(accuracy, dtype=float)
    folds = list(KFold(FOLDS, shuffle=True, random_state=0).split(y))
    # A blend's fold predictions are the mean of its models' (the fits are deterministic).
    predicted = {m: np.zeros(len(y)) for m in MODELS if m not in BLENDED}
    for train, test in folds:
        for model, into in predicted.items():
            fitted = Predictor([archs[i] for i in train], y[train], _rows(proxies, train), model)
            into[test] = fitted.predict([archs[i] for i in test], _rows(proxies, test))[0]
    for blend, parts in BLENDED.items():
        predicted[blend] = np.mean([predicted[m] for m in parts], axis=0)
    scores = {}
    for model in MODELS:
        rho = spearmanr(predicted[model], y).statistic
        scores[model] = float(rho) if np.isfinite(rho) else -1.0
    best = max(MODELS, key=lambda m: (scores[m], -MODELS.index(m)))
    return best, scores


def _rows(
    proxies: Mapping[str, Sequence[float]] | None, rows: np.ndarray
) -> dict[str, list[float]]:
    return {k: [v[i] for i in rows] for k, v in (proxies or {}).items()}


def _predict(
    fitted: BayesianRidge | RandomForestRegressor, noise: float, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(fitted, RandomForestRegressor):
        # Each tree's leaf value, as `tree.predict` gives it, without its per-call input
        # checks: 300 trees in 2 ms instead of 30 (the search asks one network at a time).
        rows = np.ascontiguousarray(x, dtype=np.float32)
        per_tree = np.stack([t.tree_.value[t.tree_.apply(rows), 0, 0] for t in fitted.estimators_])
        return per_tree.mean(axis=0), np.sqrt(per_tree.var(axis=0) + noise)
    mean, std = fitted.predict(x, return_std=True)
    return np.asarray(mean), np.asarray(std)


def _fit(
    model: str, x: np.ndarray, y: np.ndarray
) -> tuple[BayesianRidge | RandomForestRegressor, float]:
    """The fitted model, and the variance its trees' spread leaves out (0 for the ridge)."""
    if model == "ridge":
        return BayesianRidge().fit(x, y), 0.0
    # With 300 trees every row is out of the bag of some tree (K >= 3).
    forest = RandomForestRegressor(TREES, oob_score=True, random_state=0).fit(x, y)
    return forest, float(np.mean((forest.oob_prediction_ - y) ** 2))
