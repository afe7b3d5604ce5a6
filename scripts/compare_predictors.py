"""Few-shot predictor models compared on NAS-Bench-201 or NAS-Bench-Macro (issue 31, part 4):
which model, on which encoding, ranks the held-out networks best from K known ones.

Usage:
    python scripts/compare_predictors.py [--space nb201 | nbmacro] [--k 50] [--splits 0 1 ... 9]
        [--proxy-cache FILE --proxies synflow,jacob_cov,naswot,meco]

Encodings: `enc` (the predictor's own: one indicator per non-reference choice, log
params, log MACs), `path` (White et al. 2020's path encoding: one indicator per
sequence of operations on each of the cell's four input-to-output paths; NAS-Bench-201
only: a macro space has no paths) and both.
Models: scikit-learn's Bayesian ridge (the shipped one), a random forest, extra
trees, gradient-boosted trees, and a GP (Matern 5/2 and a white-noise term). Per
split seed, K networks drawn at random train each model (features standardised on
them) and the others are held out (15,625 - K cells; 6,561 - K macro networks). Prints
the median and least Spearman over the split seeds. Choose on split seeds 0-9; report on 100-119.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.ensemble import ExtraTreesRegressor, GradientBoostingRegressor, RandomForestRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
from sklearn.linear_model import BayesianRidge

from rlnas.accuracy.predictor import encode
from rlnas.model.arch import Architecture
from rlnas.model.nbmacro import from_code
from rlnas.model.space import get_space

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
# Edges by decision index: 0->1, 0->2, 1->2, 0->3, 1->3, 2->3. The input-to-output paths.
PATHS = [(3,), (0, 4), (1, 5), (0, 2, 5)]

MODELS = {
    "bayesian ridge": lambda: BayesianRidge(),
    "random forest": lambda: RandomForestRegressor(300, random_state=0),
    "extra trees": lambda: ExtraTreesRegressor(300, random_state=0),
    "boosted trees": lambda: GradientBoostingRegressor(
        n_estimators=200, max_depth=3, learning_rate=0.05, subsample=0.8, random_state=0
    ),
    "GP": lambda: GaussianProcessRegressor(
        ConstantKernel() * Matern(3.0, nu=2.5) + WhiteKernel(), normalize_y=True, random_state=0
    ),
}


def path_encoding(choices: np.ndarray, ops: int) -> np.ndarray:
    columns = []
    for path in PATHS:
        code = np.zeros(len(choices), int)
        for edge in path:
            code = code * ops + choices[:, edge]
        columns.append(np.eye(ops ** len(path))[code])
    return np.hstack(columns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", choices=("nb201", "nbmacro"), default="nb201")
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--splits", type=int, nargs="+", default=list(range(10)))
    parser.add_argument(
        "--proxy-cache",
        type=Path,
        default=None,
        help="raw proxy values (validate_proxies.py --cache): only the cells scored by every "
        "--proxies take part, and the encodings get the proxies as features",
    )
    parser.add_argument("--proxies", default="synflow,jacob_cov,naswot,meco")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    if args.space == "nb201":
        space = get_space("nb201")
        bench = pd.read_parquet(SHARED / "nb201" / "nb201_cifar10_accuracy.parquet")
        archs = [Architecture.from_index(int(i), space) for i in bench["arch_index"]]
        truth = "cifar10_test_acc"
    else:
        bench = pd.read_parquet(SHARED / "nbmacro" / "nbmacro_cifar10.parquet")
        archs, truth = [from_code(c) for c in bench["arch"]], "mean_acc"
    proxies = None
    if args.proxy_cache is not None:
        names = args.proxies.split(",")
        cache = pd.read_parquet(args.proxy_cache)
        cache["proxy"] = cache["proxy"].str.split("@").str[0]  # synflow@v2: its version
        wide = cache[cache["proxy"].isin(names)].pivot_table(
            index="arch", columns="proxy", values="value", aggfunc="first"
        )
        wide = wide[names].dropna()
        keep = np.array([str(a) in wide.index for a in archs])
        bench, archs = bench[keep], [a for a, k in zip(archs, keep, strict=True) if k]
        proxies = {n: wide.loc[[str(a) for a in archs], n].to_numpy() for n in names}
        print(f"{len(archs)} networks scored by {', '.join(names)}\n")
    y = bench[truth].to_numpy()
    enc = encode(archs)
    encodings = {"enc": enc}
    if args.space == "nb201":
        choices = np.array([a.choices for a in archs])
        paths = path_encoding(choices, len(archs[0].space.decisions[0].tokens))
        encodings.update({"path": paths, "enc + path": np.hstack([enc, paths])})
    if proxies:
        with_proxies = encode(archs, proxies)
        encodings["enc + proxies"] = with_proxies
        if args.space == "nb201":
            encodings["enc + proxies + path"] = np.hstack([with_proxies, paths])
    print("| encoding | model | Spearman, median | least |")
    print("| --- | --- | --- | --- |")
    for name, x in encodings.items():
        for model, make in MODELS.items():
            scores = []
            for split in args.splits:
                order = np.random.default_rng(split).permutation(len(y))
                train, test = order[: args.k], order[args.k :]
                mean, scale = x[train].mean(0), x[train].std(0)
                scale[scale == 0] = 1
                fitted = make().fit((x[train] - mean) / scale, y[train])
                scores.append(spearmanr(fitted.predict((x[test] - mean) / scale), y[test])[0])
            print(f"| {name} | {model} | {np.median(scores):.3f} | {np.min(scores):.3f} |")


if __name__ == "__main__":
    main()
