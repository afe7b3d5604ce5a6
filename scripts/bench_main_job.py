"""The README's main job, PPO against evolution: the best score within the target, the
share of feasible proposals late in the run, and the wall time.

Usage:
    python scripts/bench_main_job.py [--seeds 100 101 102 103 104] [--latency-ms 6]
        [--budget 1000] [--strategies ppo evolution] [--work runs/bench-main-job]

Each run is `rlnas train-controller --device cpu --latency-ms 6` (or `rlnas search
--strategy evolution` with the same settings): the default space, the shipped cpu
fp32 table (calibrated for this host), the default proxy and reward, budget
1,000. Runs are run folders under `--work`; a rerun resumes them (a finished run
replays from its journal in seconds). The proxy score cache is shared, so only
the first run of an architecture pays for its score: measure the cold wall time
of a new user with `RLNAS_HOME=$(mktemp -d) rlnas train-controller --device cpu
--latency-ms 6` instead.

Prints a markdown table: per run, the best score within the target, the share of
the last 20% of proposals within it, and the wall time of this invocation; then
the median over seeds per strategy.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from rlnas.search.config import SearchConfig
from rlnas.search.run import run_search

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102, 103, 104])
    parser.add_argument("--latency-ms", type=float, default=6.0)
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--strategies", nargs="+", default=["ppo", "evolution"])
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-main-job")
    args = parser.parse_args()

    print("| strategy | seed | best score within target | feasible, last 20% | wall s |")
    print("| --- | --- | --- | --- | --- |")
    summary: dict[str, list[tuple[float, float]]] = {s: [] for s in args.strategies}
    for seed in args.seeds:
        for strategy in args.strategies:
            config = SearchConfig(
                latency_ms=args.latency_ms, strategy=strategy, budget=args.budget, seed=seed
            )
            start = time.perf_counter()
            result = run_search(config, args.work / f"{strategy}-s{seed}")
            seconds = time.perf_counter() - start
            frame = result.evaluations
            feasible = frame[frame["feasible"]]
            best = float(feasible["accuracy"].max()) if len(feasible) else float("nan")
            late = float(frame["feasible"].iloc[int(0.8 * len(frame)) :].mean())
            summary[strategy].append((best, late))
            print(
                f"| {strategy} | {seed} | {best:.4f} | {100 * late:.1f}% | {seconds:.0f} |",
                flush=True,
            )
    print("\n| strategy | median best within target | median feasible, last 20% | min |")
    print("| --- | --- | --- | --- |")
    for strategy, rows in summary.items():
        values = np.array(rows)
        print(
            f"| {strategy} | {np.median(values[:, 0]):.4f} | {100 * np.median(values[:, 1]):.1f}% "
            f"| {100 * values[:, 1].min():.1f}% |"
        )


if __name__ == "__main__":
    main()
