"""The refit loop through real searches on NAS-Bench-Macro: search, `rlnas predictor next`,
"train" the networks it names (the benchmark's full-training accuracy stands in), refit,
search again.

Usage:
    python scripts/bench_refit.py [--seeds 100 ... 119] [--k 50] [--rounds 4] [--count 5]
        [--budget 300] [--strategy evolution] [--a0s ir_k3_e3 ir_k5_e6 median]
        [--work runs/bench-refit]

Per a0 and seed: the predictor of `scripts/bench_truth.py` (the ridge on the encoding,
K networks drawn with the seed), with a0 trained (its true accuracy added, so the floor
is its real one). Then `--rounds` times: a baseline-relative search (`--accuracy-drop
1%`, the shipped cpu table calibrated for this host), `next_to_train(run, --count)`,
their true accuracies added to the predictor. The pick is the fastest trained network
within a0's latency that keeps the real floor (a0 at worst), judged as `scripts/
truth_ceiling.py --trainings` judges its own: within 5% of the fastest network of the
space that keeps the floor? The last search's own rank 1 is judged beside it. Run folders
stay under `--work` (a rerun resumes each search); `results.csv` there has one row per
a0 and seed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from bench_truth import a0_of
from validate_search import NBMACRO, nbmacro_files

from rlnas.accuracy.predictor import Predictor
from rlnas.model.arch import Architecture
from rlnas.model.space import get_space
from rlnas.search.acquisition import next_to_train
from rlnas.search.config import SearchConfig
from rlnas.search.run import run_search
from rlnas.search.run_folder import RunFolder
from rlnas.search.sources.predictor import known_from_file

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(100, 120)))
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--count", type=int, default=5)
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--strategy", default="evolution")
    parser.add_argument("--drop", type=float, default=0.01)
    parser.add_argument("--a0s", nargs="+", default=["ir_k3_e3", "ir_k5_e6", "median"])
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-refit")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    accuracy_file, latency_file = nbmacro_files(args.work)
    space = get_space("nbmacro")
    frame = pd.read_parquet(accuracy_file).merge(pd.read_parquet(latency_file), on="arch_str")
    truth = dict(zip(frame["arch_str"], frame["mean_acc"], strict=True))
    ms = dict(zip(frame["arch_str"], frame["cpu_ms"], strict=True))
    bench = pd.read_parquet(NBMACRO)
    rows = []
    for a0_kind in args.a0s:
        a0 = a0_of(a0_kind, bench)
        floor = (1 - args.drop) * truth[a0]
        keepers = frame[(frame["cpu_ms"] <= ms[a0]) & (frame["mean_acc"] >= floor)]
        fastest = float(keepers["cpu_ms"].min())
        for seed in args.seeds:
            known, accuracy = known_from_file(
                space, accuracy_file, "mean_acc", "percent", args.k, seed
            )
            predictor = Predictor([*known, Architecture.decode(a0, space)], [*accuracy, truth[a0]])
            folder = args.work / a0_kind / f"s{seed}"
            trainings = 0
            for round_ in range(args.rounds):
                path = folder / f"predictor-r{round_}.parquet"
                path.parent.mkdir(parents=True, exist_ok=True)
                predictor.save(path)
                config = SearchConfig.of(
                    space="nbmacro",
                    strategy=args.strategy,
                    baseline=a0,
                    accuracy_drop=args.drop,
                    predictor=path,
                    budget=args.budget,
                    seed=seed,
                )
                run_search(config, folder / f"run-r{round_}")
                run = RunFolder.open(folder / f"run-r{round_}")
                table = next_to_train(run, args.count).table
                if table.empty:
                    break
                archs = [Architecture.decode(a, space) for a in table["arch"]]
                predictor = predictor.with_known(archs, [truth[a] for a in table["arch"]])
                trainings += len(archs)
            trained = [str(a) for a in predictor.archs]
            kept = [a for a in trained if ms[a] <= ms[a0] and truth[a] >= floor]
            pick = min(kept, key=lambda a: ms[a])
            own = str(run.ranked().iloc[0]["arch"])
            rows.append(
                {
                    "a0_kind": a0_kind,
                    "seed": seed,
                    "trainings": trainings,
                    "rounds": round_ + 1,
                    "over_fastest": ms[pick] / fastest,
                    "search_pick_held": truth[own] >= floor,
                    "search_pick_over_fastest": ms[own] / fastest,
                }
            )
            print(
                f"{a0_kind} seed {seed}: {trainings} trainings, pick {ms[pick] / fastest:.3f}x "
                f"the fastest keeper; the last search's own pick "
                f"{'keeps' if truth[own] >= floor else 'misses'} the floor",
                flush=True,
            )
    results = pd.DataFrame(rows)
    results.to_csv(args.work / "results.csv", index=False)
    print(
        "\n| a0 | seeds | median trainings | pick within 5% of the fastest keeper | median "
        "latency / fastest keeper | last search's own pick keeps the floor | its within 5% |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for a0_kind, runs in results.groupby("a0_kind", sort=False):
        own_close = runs["search_pick_held"] & (runs["search_pick_over_fastest"] <= 1.05)
        print(
            f"| {a0_kind} | {len(runs)} | {np.median(runs['trainings']):.0f} | "
            f"{100 * (runs['over_fastest'] <= 1.05).mean():.0f}% | "
            f"{runs['over_fastest'].median():.3f} | {100 * runs['search_pick_held'].mean():.0f}% | "
            f"{100 * own_close.mean():.0f}% |"
        )


if __name__ == "__main__":
    main()
