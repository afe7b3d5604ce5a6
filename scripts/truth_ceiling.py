"""What the few-shot predictor allows on NAS-Bench-Macro, whatever the search: the
baseline-relative rule applied to every network of the space, checked against the truth.

Usage:
    python scripts/truth_ceiling.py [--seeds 100 ... 119] [--k 50] [--drop 0.01]
        [--a0s ir_k3_e3 ir_k5_e6 median] [--z 0 0.25 0.5 1 2] [--work runs/bench-truth]
        [--model forest --proxies naswot --proxy-cache FILE] [--trainings M]

For each a0 and seed, the predictor of `scripts/bench_truth.py` (Bayesian ridge on the
encoding, params and MACs, fitted on K networks drawn with that seed) predicts all
6,561 networks. The rule picks the fastest network (the shipped cpu table, calibrated
for this host) within a0's latency whose predicted mean minus z x its predicted
standard deviation reaches (1 - drop) x a0's predicted mean: with z = 0, the pick a
perfect search would make on the predictor's word (the search's own rule); z > 0 asks
for a margin of the predictor's own uncertainty. The pick is then judged as `rlnas
verify --truth nbmacro` judges a run's: does it keep the real floor, and is its latency
within 5% of the fastest network that does. A rule that misses the goals here misses
them with any search.

`--trainings M` adds what M trainings beyond the K would give (a refit loop; the
benchmark's accuracy stands in for each training, as `verify --truth` does): a0 is
trained, so the floor is its true one; then, M times, the fastest network not yet
known that promises the most is trained, and the predictor is refitted with it: the
network of the greatest expected gain, its probability of keeping the floor (the
predicted mean and standard deviation, read as a normal) times how much faster it is
than the fastest known keeper (constrained expected improvement). Where no network
promises any gain, the loop stops early. The pick is the fastest known network that
keeps the floor (a0 at worst), so it always keeps it; what M buys is closeness to the
fastest keeper. Rows of `ceiling.csv` get the number of trainings (0: the rule alone;
z is empty for the loop's rows).

`--model` and `--proxies` change the predictor (`rlnas predictor fit --model ... --proxy
...`): the proxies' raw values come from a score cache of `validate_proxies.py --space
nbmacro --all` (`--proxy-cache`), which must hold every network.

Writes `ceiling.csv` under `--work` (one row per a0, seed and z) and prints, per a0 and
z, the share of seeds whose pick keeps the real floor, the share within 5% of the
fastest keeper, the median latency over the fastest keeper, and the seeds where no
network qualifies (counted as missed).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from bench_truth import a0_of
from validate_predictor import cached_proxies
from validate_search import NBMACRO, nbmacro_files

from rlnas.accuracy.predictor import MODELS, Predictor
from rlnas.model.arch import Architecture
from rlnas.model.space import get_space
from rlnas.search.acquisition import expected_gain
from rlnas.search.sources.predictor import known_from_file

ROOT = Path(__file__).resolve().parents[1]


def pick(ms: np.ndarray, ok: np.ndarray) -> int | None:
    """The fastest network where `ok`; None where no network is."""
    if not ok.any():
        return None
    candidates = np.flatnonzero(ok)
    return int(candidates[np.argmin(ms[candidates])])


def refit_loop(
    fit: Callable[[list[int]], tuple[np.ndarray, np.ndarray]],
    known: list[int],
    mean: np.ndarray,
    std: np.ndarray,
    ms: np.ndarray,
    truth: np.ndarray,
    within: np.ndarray,
    floor: float,
    a0: int,
    trainings: int,
) -> int:
    """The fastest known keeper of the floor after `trainings` rounds of training the network
    of the greatest expected gain and refitting (see the module docstring)."""
    known = [*known, a0]
    for _ in range(trainings):
        best = min(ms[i] for i in known if within[i] and truth[i] >= floor)
        gain = np.where(within, expected_gain(mean, std, floor, ms, best), 0.0)
        gain[known] = 0.0
        if gain.max() <= 0:
            break
        known.append(int(np.argmax(gain)))
        mean, std = fit(known)
    return min((i for i in known if within[i] and truth[i] >= floor), key=lambda i: ms[i])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(100, 120)))
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--drop", type=float, default=0.01)
    parser.add_argument("--a0s", nargs="+", default=["ir_k3_e3", "ir_k5_e6", "median"])
    parser.add_argument("--z", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0, 2.0])
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-truth")
    parser.add_argument("--model", choices=MODELS, default="ridge")
    parser.add_argument("--proxies", default="", help="comma-separated; needs --proxy-cache")
    parser.add_argument("--proxy-cache", type=Path, default=None)
    parser.add_argument("--trainings", type=int, default=0)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    accuracy_file, latency_file = nbmacro_files(args.work)
    space = get_space("nbmacro")
    frame = pd.read_parquet(accuracy_file).merge(pd.read_parquet(latency_file), on="arch_str")
    archs = [Architecture.decode(s, space) for s in frame["arch_str"]]
    index = {s: i for i, s in enumerate(frame["arch_str"])}
    ms, truth = frame["cpu_ms"].to_numpy(), frame["mean_acc"].to_numpy()
    bench = pd.read_parquet(NBMACRO)
    proxies: dict[str, list[float]] = {}
    if args.proxies:
        names = args.proxies.split(",")
        found, proxies = cached_proxies("nbmacro", archs, names, args.proxy_cache)
        if len(found) != len(archs):
            raise SystemExit(f"{args.proxy_cache} scores {len(found)} of {len(archs)} networks")
    rows = []
    for a0 in args.a0s:
        a = index[a0_of(a0, bench)]
        within = ms <= ms[a]
        floor = (1 - args.drop) * truth[a]
        fastest = ms[within & (truth >= floor)].min()
        for seed in args.seeds:
            known, _ = known_from_file(space, accuracy_file, "mean_acc", "percent", args.k, seed)
            rows_known = [index[str(a)] for a in known]

            def fit(rows: list[int]) -> tuple[np.ndarray, np.ndarray]:
                chosen = {p: [v[i] for i in rows] for p, v in proxies.items()}
                fitted = Predictor([archs[i] for i in rows], truth[rows], chosen, args.model)
                return fitted.predict(archs, proxies)

            mean, std = fit(rows_known)
            for z in args.z:
                if args.trainings and z == args.z[0]:
                    i = refit_loop(
                        fit, rows_known, mean, std, ms, truth, within, floor, a, args.trainings
                    )
                    rows.append(
                        {
                            "a0_kind": a0,
                            "seed": seed,
                            "z": np.nan,
                            "trainings": args.trainings,
                            "a0_error": np.nan,
                            "none": False,
                            "held": bool(truth[i] >= floor),
                            "over_fastest": ms[i] / fastest,
                        }
                    )
                i = pick(ms, within & (mean - z * std >= (1 - args.drop) * mean[a]))
                rows.append(
                    {
                        "a0_kind": a0,
                        "seed": seed,
                        "z": z,
                        "trainings": 0,
                        "a0_error": mean[a] - truth[a],
                        "none": i is None,
                        "held": i is not None and bool(truth[i] >= floor),
                        "over_fastest": np.nan if i is None else ms[i] / fastest,
                    }
                )
    results = pd.DataFrame(rows)
    results.to_csv(args.work / "ceiling.csv", index=False)
    results["close"] = results["held"] & (results["over_fastest"] <= 1.05)
    print(
        "| a0 | z | trainings | seeds | pick keeps the real floor | within 5% of the fastest "
        "keeper | median latency / fastest keeper | seeds where no network qualifies |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    groups = results.groupby(["a0_kind", "z", "trainings"], sort=False, dropna=False)
    for (a0, z, m), runs in groups:
        print(
            f"| {a0} | {z:g} | {m} | {len(runs)} | {100 * runs['held'].mean():.0f}% | "
            f"{100 * runs['close'].mean():.0f}% | {runs['over_fastest'].median():.3f} | "
            f"{int(runs['none'].sum())} |"
        )


if __name__ == "__main__":
    main()
