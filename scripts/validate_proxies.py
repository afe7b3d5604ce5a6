"""Validation: rank correlation of each proxy with NAS-Bench-201's true CIFAR-10 accuracy.

Usage:
    python scripts/validate_proxies.py [--sample 1000 | --all] [--seed 0] [--workers 2]
        [--data ../shared/data/cifar10/cifar10_subset.npz]
        [--accuracy ../shared/data/nb201/nb201_cifar10_accuracy.parquet]
        [--cache out/proxy_scores_nb201.parquet]

Scores a seeded sample of nb201 cells with every proxy (batch 64 from the
data, 32 px, seed 0), caching raw values (a rerun computes nothing), and
prints Spearman and Kendall correlations with the true accuracy beside the
published Spearman figures over all 15,625 cells (Abdelfattah et al. 2021).
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from rlnas.accuracy.proxies import PROXIES
from rlnas.accuracy.scorer import ENSEMBLE, ProxyConfig, ProxyScorer
from rlnas.model.arch import Architecture

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PUBLISHED = {"synflow": 0.74, "jacob_cov": 0.73, "snip": 0.60, "grad_norm": 0.59}


def _score_chunk(args: tuple[ProxyConfig, list[str]]) -> list[tuple[str, dict[str, float]]]:
    import torch

    torch.set_num_threads(1)
    config, archs = args
    scorer = ProxyScorer("nb201", ProxyConfig(**{**config.__dict__, "cache": None}))
    return [(a, scorer.raw(Architecture.decode(a, "nb201"), list(PROXIES))) for a in archs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--all", action="store_true", help="all 15,625 cells")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data", type=Path, default=SHARED / "cifar10" / "cifar10_subset.npz")
    parser.add_argument(
        "--accuracy", type=Path, default=SHARED / "nb201" / "nb201_cifar10_accuracy.parquet"
    )
    parser.add_argument("--cache", type=Path, default=ROOT / "out" / "proxy_scores_nb201.parquet")
    args = parser.parse_args()

    truth = pd.read_parquet(args.accuracy).set_index("arch_index")
    indices = (
        np.arange(len(truth))
        if args.all
        else np.sort(
            np.random.default_rng(args.seed).choice(len(truth), args.sample, replace=False)
        )
    )
    config = ProxyConfig(proxy="ensemble", data=args.data, cache=args.cache)
    scorer = ProxyScorer("nb201", config)
    archs = [Architecture.from_index(int(i), "nb201") for i in indices]
    todo = [
        str(a)
        for a in archs + scorer.reference_sample()
        if any(scorer.cache.get(scorer.key(a, p)) is None for p in PROXIES)
    ]
    todo = list(dict.fromkeys(todo))
    start = time.perf_counter()
    if todo:
        chunks = [todo[i : i + 10] for i in range(0, len(todo), 10)]
        context = multiprocessing.get_context("spawn")
        with context.Pool(args.workers) as pool:
            for done, results in enumerate(
                pool.imap_unordered(_score_chunk, [(config, c) for c in chunks]), 1
            ):
                for text, values in results:
                    arch = Architecture.decode(text, "nb201")
                    for proxy, value in values.items():
                        scorer.cache.put(scorer.key(arch, proxy), value)
                if done % 10 == 0 or done == len(chunks):
                    scorer.flush()
                    print(
                        f"scored {min(done * 10, len(todo))}/{len(todo)} cells "
                        f"({time.perf_counter() - start:.0f} s)",
                        flush=True,
                    )
    elapsed = time.perf_counter() - start

    accuracy = truth.loc[indices, "cifar10_test_acc"].to_numpy()
    rows = {p: [scorer.raw(a, [p])[p] for a in archs] for p in PROXIES}
    rows["ensemble"] = [scorer.score(a) for a in archs]
    print(
        f"\ncells: {len(archs)} (seed {args.seed}{', all' if args.all else ''}); "
        f"scored now: {len(todo)} in {elapsed:.0f} s with {args.workers} workers; "
        f"ensemble = mean normalised {' + '.join(ENSEMBLE)}\n"
    )
    print(
        "| proxy | Spearman | 95% bootstrap interval | Kendall | published Spearman (all cells) |"
    )
    print("| --- | --- | --- | --- | --- |")
    resamples = np.random.default_rng(args.seed).integers(0, len(archs), (1000, len(archs)))
    for proxy, values in rows.items():
        values = np.asarray(values)
        rho = stats.spearmanr(values, accuracy).statistic
        tau = stats.kendalltau(values, accuracy).statistic
        boot = [stats.spearmanr(values[i], accuracy[i]).statistic for i in resamples]
        low, high = np.percentile(boot, [2.5, 97.5])
        published = PUBLISHED.get(proxy)
        print(
            f"| {proxy} | {rho:.3f} | [{low:.3f}, {high:.3f}] | {tau:.3f} "
            f"| {published if published else '-'} |"
        )


if __name__ == "__main__":
    main()
