"""The whole front in one run: PPO over a range of targets against evolution once per target.

Usage:
    python scripts/bench_front.py [--space nb201|nbmacro] [--budget 300] [--targets 5]
        [--seed-start 100] [--seeds 20] [--low 0.1 --high 0.5]

On measured data (NAS-Bench-201's three visible devices, or NAS-Bench-Macro with
the shipped cpu table's latency; see validate_search.py), with the latency range
from the `--low` to the `--high` quantile of each latency column:
- `ppo`: one run, `--latency-ms LO:HI`, the whole budget;
- `evolution`: `--targets` runs at targets evenly spaced from LO to HI, the
  budget split evenly between them (the same total).

Both are scored on every architecture they evaluated (true accuracy). For 100
targets evenly spaced over the range, the best true accuracy found within each
target is compared with the best in the whole benchmark:
- hypervolume: the area under the found front's best-within-target curve over
  the range, above the benchmark's median accuracy (the reference point: a
  typical random network), as a share of the true front's (1 = the true front);
- mean regret: the mean over the targets of the true best minus the found best
  within the target, in accuracy points.

Prints median [IQR] over the seeds per strategy and latency column.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from validate_search import SHARED, nbmacro_files

from rlnas.model.arch import Architecture
from rlnas.model.space import get_space
from rlnas.search.config import SearchConfig
from rlnas.search.run import build_evaluator
from rlnas.search.strategies import get_strategy

GRID = 100


def best_within(latency: np.ndarray, accuracy: np.ndarray, targets: np.ndarray, floor: float):
    """For each target, the best accuracy among points within it (`floor` where none is)."""
    order = np.argsort(latency)
    running = np.maximum.accumulate(accuracy[order])
    found = np.searchsorted(latency[order], targets, side="right")
    return np.maximum(np.where(found > 0, running[np.maximum(found - 1, 0)], floor), floor)


def search(config: SearchConfig, space, seed: int, targets=None) -> list[str]:
    evaluator, _ = build_evaluator(config, journal=None)
    strategy = get_strategy(config.strategy)(evaluator, space, seed, targets=targets)
    strategy.run()
    return [e.arch for e in evaluator.history]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="nb201", choices=["nb201", "nbmacro"])
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--targets", type=int, default=5)
    parser.add_argument("--seed-start", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--low", type=float, default=0.1)
    parser.add_argument("--high", type=float, default=0.5)
    args = parser.parse_args()

    space = get_space(args.space)
    if args.space == "nbmacro":
        accuracy_file, latency_file = nbmacro_files(Path(tempfile.mkdtemp(prefix="rlnas-")))
        column, columns, key = "mean_acc", ["cpu_ms"], "arch_str"
    else:
        accuracy_file = SHARED / "nb201_cifar10_accuracy.parquet"
        latency_file = SHARED / "nb201_latency.parquet"
        column, columns, key = (
            "cifar10_test_acc",
            ["titan_rtx_1_ms", "raspi4_ms", "pixel3_ms"],
            ("arch_index"),
        )
    accuracy = pd.read_parquet(accuracy_file).set_index(key)[column]
    print("| latency column | range ms | strategy | hypervolume share | mean regret (points) |")
    print("| --- | --- | --- | --- | --- |")
    for latency_column in columns:
        latency = pd.read_parquet(latency_file).set_index(key)[latency_column]
        low, high = (float(latency.quantile(q)) for q in (args.low, args.high))
        grid = np.linspace(low, high, GRID)
        floor = float(accuracy.median())
        true_best = best_within(
            latency.to_numpy(), accuracy.loc[latency.index].to_numpy(), grid, floor
        )
        true_area = float(np.mean(true_best - floor))
        common = {
            "space": args.space,
            "reward": "hard",
            "accuracy_file": accuracy_file,
            "accuracy_column": column,
            "latency_file": latency_file,
            "latency_column": latency_column,
        }
        results: dict[str, list[tuple[float, float]]] = {"ppo": [], "evolution": []}
        for seed in range(args.seed_start, args.seed_start + args.seeds):
            found = {
                "ppo": search(
                    SearchConfig(
                        latency_ms=high,
                        latency_min_ms=low,
                        budget=args.budget,
                        seed=seed,
                        **common,  # type: ignore[arg-type]
                    ),
                    space,
                    seed,
                    targets=(low, high),
                ),
                "evolution": [
                    arch
                    for target in np.linspace(low, high, args.targets)
                    for arch in search(
                        SearchConfig(
                            latency_ms=float(target),
                            strategy="evolution",
                            budget=args.budget // args.targets,
                            seed=seed,
                            **common,  # type: ignore[arg-type]
                        ),
                        space,
                        seed,
                    )
                ],
            }
            for strategy, archs in found.items():
                index = [_key(a, space, key) for a in set(archs)]
                best = best_within(
                    latency.loc[index].to_numpy(), accuracy.loc[index].to_numpy(), grid, floor
                )
                share = float(np.mean(best - floor)) / true_area
                regret = float(np.mean(true_best - best))
                results[strategy].append((share, regret))
        for strategy, rows in results.items():
            values = np.array(rows)
            cells = []
            for j in range(2):
                q1, median, q3 = np.percentile(values[:, j], [25, 50, 75])
                cells.append(f"{median:.3f} [{q1:.3f}, {q3:.3f}]")
            row = [latency_column, f"{low:.3f}:{high:.3f}", strategy, *cells]
            print("| " + " | ".join(row) + " |", flush=True)


def _key(arch: str, space, key: str):
    return arch if key == "arch_str" else Architecture.decode(arch, space).index


if __name__ == "__main__":
    main()
