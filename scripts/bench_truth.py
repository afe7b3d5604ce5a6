"""The baseline-relative search with a few-shot predictor, checked against NAS-Bench-Macro's
full-training accuracies (`rlnas verify RUN --truth nbmacro`).

Usage:
    python scripts/bench_truth.py [--seeds 100 ... 119] [--k 50] [--budget 300]
        [--drop 0.01] [--a0s ir_k3_e3 ir_k5_e6 median] [--work runs/bench-truth]
        [--proxies] [--model ridge | forest | auto]

For each a0 and seed: a predictor is fitted on K networks of the benchmark drawn with
that seed (`rlnas predictor fit --sample K --seed S`; encoding, params and MACs as
features, plus naswot and swap on noise images with `--proxies`; the model of
`--model`, the ridge unless given), then `rlnas
train-controller --space nbmacro --baseline a0 --accuracy-drop 1% --predictor ...`
(the default PPO, the shipped cpu table for this host, budget 300), then the truth
check. a0 is every layer `ir_k3_e3`, every layer `ir_k5_e6`, or the network of median
true accuracy. Run folders under `--work` are kept, so a rerun resumes; `results.csv`
there has one row per run (the fields of `truth.json`).

Prints per a0: seeds whose pick kept the real floor, seeds whose pick is within 5% of
the fastest network that keeps it, and the median speed-up over a0.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
from validate_search import NBMACRO, nbmacro_files

from rlnas.model.arch import Architecture
from rlnas.model.nbmacro import from_code
from rlnas.model.space import get_space
from rlnas.results.truth import check_truth
from rlnas.search.config import SearchConfig
from rlnas.search.run import run_search
from rlnas.search.run_folder import RunFolder
from rlnas.search.sources.predictor import fit_predictor, known_from_file

ROOT = Path(__file__).resolve().parents[1]


def a0_of(name: str, bench: pd.DataFrame) -> str:
    """a0's canonical string: every layer of one op, or the median network."""
    space = get_space("nbmacro")
    if name == "median":
        ordered = bench.sort_values("mean_acc").reset_index(drop=True)
        return str(from_code(ordered.iloc[(len(ordered) - 1) // 2]["arch"]))
    choices = tuple(d.tokens.index(name) if name in d.tokens else 0 for d in space.decisions)
    return str(Architecture(space, choices))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(100, 120)))
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--drop", type=float, default=0.01)
    parser.add_argument("--a0s", nargs="+", default=["ir_k3_e3", "ir_k5_e6", "median"])
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-truth")
    parser.add_argument("--proxies", action="store_true")
    parser.add_argument("--model", choices=("ridge", "forest", "auto"), default="ridge")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    accuracy_file = args.work / "nbmacro_accuracy.parquet"
    if not accuracy_file.exists():
        nbmacro_files(args.work)
    bench = pd.read_parquet(NBMACRO)
    space = get_space("nbmacro")
    proxies = ["naswot", "swap"] if args.proxies else []
    rows = []
    for a0 in args.a0s:
        for seed in args.seeds:
            out = args.work / a0 / f"s{seed}"
            predictor = args.work / a0 / f"predictor-s{seed}.parquet"
            if not predictor.exists():
                predictor.parent.mkdir(parents=True, exist_ok=True)
                archs, accuracy = known_from_file(
                    space, accuracy_file, "mean_acc", "percent", args.k, seed
                )
                fitted, _ = fit_predictor("nbmacro", archs, accuracy, proxies, None, args.model)
                fitted.save(predictor)
            config = SearchConfig.of(
                space="nbmacro",
                baseline=a0_of(a0, bench),
                accuracy_drop=args.drop,
                predictor=predictor,
                budget=args.budget,
                seed=seed,
            )
            run_search(config, out)
            check = check_truth(RunFolder.open(out), "nbmacro", NBMACRO)
            rows.append({"a0_kind": a0, "seed": seed, **dataclasses.asdict(check)})
            print(f"{a0} seed {seed}: " + " | ".join(check.lines()[1:]), flush=True)
    results = pd.DataFrame(rows)
    results.to_csv(args.work / "results.csv", index=False)
    print(
        "\n| a0 | seeds | kept the real floor | within 5% of the fastest that keeps it "
        "| median speed-up over a0 | median latency / fastest |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for a0, runs in results.groupby("a0_kind", sort=False):
        close = runs["held"] & (runs["over_fastest"] <= 1.05)
        print(
            f"| {a0} | {len(runs)} | {int(runs['held'].sum())} | {int(close.sum())} | "
            f"{np.median(runs['speedup']):.2f}x | {np.median(runs['over_fastest']):.3f} |"
        )


if __name__ == "__main__":
    main()
