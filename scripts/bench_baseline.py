"""The baseline-relative search on NAS-Bench-Macro: the network found against the true fastest.

Usage:
    python scripts/bench_baseline.py [--seeds 10] [--seed-start 0] [--budget 300]
        [--strategies ppo evolution random] [--quantile 0.5] [--drop 0.01]
        [--out docs/benchmarks/baseline_nbmacro.csv]

a0 is the benchmark network at `--quantile` of NAS-Bench-Macro's 3-seed mean
accuracy (0.5: the middle of the range). Accuracy is the benchmark's (true,
after full training), latency the shipped cpu table's prediction for this host
(`scripts/validate_search.py`'s files). Each strategy searches with
`--baseline a0 --accuracy-drop drop` (latency limit: a0's own latency) for
`--seeds` seeds. The oracle is the fastest of all 6,561 networks whose true
accuracy keeps (1 - drop) x a0's: every search's find is compared with it
(latency found / oracle latency; 1.00 = the true optimum). Nothing is tuned
here: the strategies run with their defaults.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from validate_search import nbmacro_files

from rlnas.search.config import SearchConfig
from rlnas.search.run import run_search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--seed-start", type=int, default=0)
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--strategies", nargs="+", default=["ppo", "evolution", "random"])
    parser.add_argument("--quantile", type=float, default=0.5)
    parser.add_argument("--drop", type=float, default=0.01)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/baseline_nbmacro.csv"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        accuracy_file, latency_file = nbmacro_files(Path(folder))
        truth = pd.read_parquet(accuracy_file).merge(pd.read_parquet(latency_file), on="arch_str")
        ordered = truth.sort_values("mean_acc").reset_index(drop=True)
        a0 = ordered.iloc[int(args.quantile * (len(ordered) - 1))]
        floor = (1 - args.drop) * a0["mean_acc"]
        keeps = truth[(truth["mean_acc"] >= floor) & (truth["cpu_ms"] <= a0["cpu_ms"])]
        oracle = keeps.sort_values("cpu_ms").iloc[0]
        print(
            f"a0 {a0['arch_str']}: {a0['mean_acc']:.2f}%, {a0['cpu_ms']:.3f} ms; floor "
            f"{floor:.2f}%; {len(keeps)} of {len(truth)} networks keep it; the fastest: "
            f"{oracle['cpu_ms']:.3f} ms ({a0['cpu_ms'] / oracle['cpu_ms']:.2f}x faster than a0)",
            flush=True,
        )
        rows = []
        for strategy in args.strategies:
            for seed in range(args.seed_start, args.seed_start + args.seeds):
                config = SearchConfig.of(
                    space="nbmacro",
                    strategy=strategy,
                    accuracy_file=accuracy_file,
                    accuracy_column="mean_acc",
                    baseline=str(a0["arch_str"]),
                    accuracy_drop=args.drop,
                    budget=args.budget,
                    seed=seed,
                )
                result = run_search(config, Path(folder) / f"{strategy}-{seed}")
                best = result.best
                found = float(best["latency_ms"]) if best["feasible"] else np.nan
                rows.append(
                    {
                        "strategy": strategy,
                        "seed": seed,
                        "budget": args.budget,
                        "a0": a0["arch_str"],
                        "a0_ms": a0["cpu_ms"],
                        "oracle_ms": oracle["cpu_ms"],
                        "found_ms": found,
                        "found_accuracy": float(best["accuracy"]) * 100,
                        "found_arch": best["arch"],
                        "ratio_to_oracle": found / oracle["cpu_ms"],
                        "speedup_over_a0": a0["cpu_ms"] / found,
                    }
                )
                print(
                    f"{strategy} seed {seed}: {found:.3f} ms "
                    f"({found / oracle['cpu_ms']:.3f}x the oracle)",
                    flush=True,
                )
        frame = pd.DataFrame(rows)
        frame.to_csv(args.out, index=False)
    print()
    print("| strategy | found / fastest true (median, IQR) | optimum found | speed-up over a0 |")
    print("| --- | --- | --- | --- |")
    for strategy, part in frame.groupby("strategy", sort=False):
        ratio = part["ratio_to_oracle"]
        q1, q3 = ratio.quantile([0.25, 0.75])
        print(
            f"| {strategy} | {ratio.median():.3f} ({q1:.3f}-{q3:.3f}) | "
            f"{(ratio <= 1 + 1e-9).sum()} of {len(part)} | "
            f"{part['speedup_over_a0'].median():.2f}x |"
        )


if __name__ == "__main__":
    main()
