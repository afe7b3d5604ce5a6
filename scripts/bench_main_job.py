"""The README's main job, PPO against evolution: the best score within the target, the
share of feasible proposals late in the run, and the wall time.

Usage:
    python scripts/bench_main_job.py [--seeds 100 ... 109]
        [--targets 6 0.4x:mobilenetv2 ...] [--budget 1000] [--strategies ppo evolution]
        [--work runs/bench-main-job] [--threads N] [--shard I/N] [--summary-only]
        [--ppo KEY=VALUE ...] [--table ADAPTED.parquet]

Each run is `rlnas train-controller --device cpu --latency-ms TARGET` (or `rlnas
search --strategy evolution` with the same settings): the default space, the shipped
cpu fp32 table (calibrated for this host), the default proxy and reward, budget
1,000. A target is in ms (`6`) or relative to a baseline on this host's calibrated
table (`0.4x:mobilenetv2`). Runs are run folders under `--work`; a rerun resumes
them (a finished run replays from its journal in seconds), so the grid may be
stopped and started again at will. The proxy score cache is shared, so only the first
run of an architecture pays for its score: measure the cold wall time of a new user
with `RLNAS_HOME=$(mktemp -d) rlnas train-controller --device cpu --latency-ms 6`
instead. Give the grid its own `RLNAS_HOME` so every run reads one calibration.

`--shard I/N` runs every N-th run of the grid from the I-th (0-based), so N processes
(`--threads 1` each) share the cores; start the first alone until it has calibrated.
`--summary-only` reads the finished run folders and runs nothing. `--ppo
sample_size=5` changes a PPO setting (give the variant its own `--work`). `--table`
pins the latencies to one host's adaptation of the table (a file of a user folder's
`calibrations/`, read with `--no-calibrate`), so that grids run on different VMs search
the same landscape; `docs/benchmarks/tight_targets/` keeps one.

Writes `results.csv` under `--work` (one row per finished run: target, resolved ms,
strategy, seed, best score within the target, share of the last 20% of proposals
within it) and prints a markdown table per target: the median over seeds per
strategy, and on how many seeds PPO's best is at least evolution's.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from validate_search import ppo_settings

from rlnas.search.config import SearchConfig
from rlnas.search.run import run_search
from rlnas.search.run_folder import EVALUATIONS, RunFolder

ROOT = Path(__file__).resolve().parents[1]


def target_settings(text: str) -> dict[str, object]:
    """`6` -> latency_ms; `0.4x:mobilenetv2` -> a factor of that baseline."""
    factor, _, reference = text.partition("x:")
    if reference:
        return {"latency_ms": None, "latency_factor": float(factor), "latency_reference": reference}
    return {"latency_ms": float(text)}


def folder(work: Path, target: str, strategy: str, seed: int) -> Path:
    return work / target.replace(":", "-") / f"{strategy}-s{seed}"


def row(out: Path, target: str, strategy: str, seed: int) -> dict[str, object]:
    """The figures of one finished run folder."""
    run = RunFolder.open(out)
    frame = run.evaluations
    feasible = frame[frame["feasible"]]
    return {
        "target": target,
        "target_ms": run.config.target_ms,
        "strategy": strategy,
        "seed": seed,
        "evaluations": len(frame),
        "best_within_target": float(feasible["accuracy"].max()) if len(feasible) else np.nan,
        "feasible_last_20pct": float(frame["feasible"].iloc[int(0.8 * len(frame)) :].mean()),
    }


def summary(results: pd.DataFrame) -> None:
    for target, runs in results.groupby("target", sort=False):
        print(f"\n### {target} ({runs['target_ms'].iloc[0]:.3f} ms)\n")
        print("| strategy | seeds | median best within target | median feasible, last 20% | min |")
        print("| --- | --- | --- | --- | --- |")
        for strategy, rows in runs.groupby("strategy", sort=False):
            print(
                f"| {strategy} | {len(rows)} | {rows['best_within_target'].median():.4f} | "
                f"{100 * rows['feasible_last_20pct'].median():.1f}% | "
                f"{100 * rows['feasible_last_20pct'].min():.1f}% |"
            )
        wide = runs.pivot(index="seed", columns="strategy", values="best_within_target")
        if {"ppo", "evolution"} <= set(wide.columns):
            both = wide.dropna()
            wins = int((both["ppo"] >= both["evolution"]).sum())
            print(f"\nPPO's best >= evolution's on {wins} of {len(both)} seeds run by both.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102, 103, 104])
    parser.add_argument("--targets", nargs="+", default=["6"])
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--strategies", nargs="+", default=["ppo", "evolution"])
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-main-job")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per run")
    parser.add_argument("--shard", default="0/1", help="I/N: run every N-th run from the I-th")
    parser.add_argument("--summary-only", action="store_true")
    parser.add_argument("--ppo", nargs="*", default=[], help="PPO settings, KEY=VALUE")
    parser.add_argument("--table", type=Path, default=None, help="a pinned, adapted table")
    args = parser.parse_args()
    pinned = {"table": args.table, "calibrate": False} if args.table is not None else {}
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    index, count = (int(v) for v in args.shard.split("/"))

    # Seed by seed, so that a grid stopped early has every target on its first seeds.
    grid = [
        (target, seed, strategy)
        for seed in args.seeds
        for target in args.targets
        for strategy in args.strategies
    ]
    if not args.summary_only:
        for target, seed, strategy in grid[index::count]:
            out = folder(args.work, target, strategy, seed)
            config = SearchConfig.of(
                strategy=strategy,
                budget=args.budget,
                seed=seed,
                ppo=ppo_settings(args.ppo),
                **pinned,
                **target_settings(target),
            )
            start = time.perf_counter()
            run_search(config, out)
            seconds = time.perf_counter() - start
            print(f"{target} {strategy} seed {seed}: {seconds:.0f} s", flush=True)
    rows = []
    for target, seed, strategy in grid:
        out = folder(args.work, target, strategy, seed)
        if (out / EVALUATIONS).exists():
            rows.append(row(out, target, strategy, seed))
    if rows:
        results = pd.DataFrame(rows)
        results.to_csv(args.work / "results.csv", index=False)
        summary(results)


if __name__ == "__main__":
    main()
