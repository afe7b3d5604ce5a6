"""What the few-shot predictor allows on NAS-Bench-Macro, whatever the search: the
baseline-relative rule applied to every network of the space, checked against the truth.

Usage:
    python scripts/truth_ceiling.py [--seeds 100 ... 119] [--k 50] [--drop 0.01]
        [--a0s ir_k3_e3 ir_k5_e6 median] [--z 0 0.25 0.5 1 2] [--work runs/bench-truth]
        [--model forest --proxies naswot --proxy-cache FILE]

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
from pathlib import Path

import numpy as np
import pandas as pd
from bench_truth import a0_of
from validate_predictor import cached_proxies
from validate_search import NBMACRO, nbmacro_files

from rlnas.accuracy.predictor import MODELS, Predictor
from rlnas.model.arch import Architecture
from rlnas.model.space import get_space
from rlnas.search.sources.predictor import known_from_file

ROOT = Path(__file__).resolve().parents[1]


def pick(ms: np.ndarray, ok: np.ndarray) -> int | None:
    """The fastest network where `ok`; None where no network is."""
    if not ok.any():
        return None
    candidates = np.flatnonzero(ok)
    return int(candidates[np.argmin(ms[candidates])])


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
            known, accuracy = known_from_file(
                space, accuracy_file, "mean_acc", "percent", args.k, seed
            )
            rows_known = [index[str(a)] for a in known]
            fitted = Predictor(
                known,
                accuracy,
                {p: [v[i] for i in rows_known] for p, v in proxies.items()},
                args.model,
            )
            mean, std = fitted.predict(archs, proxies)
            for z in args.z:
                i = pick(ms, within & (mean - z * std >= (1 - args.drop) * mean[a]))
                rows.append(
                    {
                        "a0_kind": a0,
                        "seed": seed,
                        "z": z,
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
        "| a0 | z | seeds | pick keeps the real floor | within 5% of the fastest keeper "
        "| median latency / fastest keeper | seeds where no network qualifies |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for (a0, z), runs in results.groupby(["a0_kind", "z"], sort=False):
        print(
            f"| {a0} | {z:g} | {len(runs)} | {100 * runs['held'].mean():.0f}% | "
            f"{100 * runs['close'].mean():.0f}% | {runs['over_fastest'].median():.3f} | "
            f"{int(runs['none'].sum())} |"
        )


if __name__ == "__main__":
    main()
