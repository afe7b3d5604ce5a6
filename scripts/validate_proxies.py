"""Validation: rank correlation of each proxy with true accuracy on NAS-Bench-201 or -Macro.

Usage:
    python scripts/validate_proxies.py [--space nb201 | nbmacro] [--sample 1000 | --all]
        [--seed 0] [--workers 2] [--proxies synflow,zico,...]
        [--data ../shared/data/cifar10/cifar10_subset.npz | --no-data]
        [--cache out/proxy_scores_<space>.parquet] [--cached-only]

Scores a seeded sample of the benchmark's architectures with every proxy
(batch 64 from the data, 32 px, seed 0), caching raw values (a rerun computes
nothing, so an interrupted run resumes), and prints per proxy, against the
true accuracy (NAS-Bench-201: CIFAR-10 test accuracy; NAS-Bench-Macro: the
3-seed `mean_acc`): Spearman with a 95% bootstrap interval, Kendall, the share
of the true top 5% found in the proxy's top 5%, and seconds per architecture
(timed on 10 of them, one thread). Published NAS-Bench-201 Spearman figures
over all 15,625 cells (Abdelfattah et al. 2021) are shown beside ours.

Rank combinations: for each combination of 1-4 proxies, the sum over its
proxies of log(rank / n) within the sample (AZ-NAS's non-linear aggregation).
The combinations are chosen on a seeded random half of the sample and reported
on the other half, so the reported figure is not the one used to pick them
(architecture order would not do: it sorts by the first decisions, so halves
by order cover different accuracy ranges).
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from rlnas.accuracy.proxies import PROXIES, get_proxy
from rlnas.accuracy.scorer import ENSEMBLE, ProxyConfig, ProxyScorer
from rlnas.model.arch import Architecture
from rlnas.model.nbmacro import from_code
from rlnas.model.network import build_network

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PUBLISHED = {"synflow": 0.74, "jacob_cov": 0.73, "snip": 0.60, "grad_norm": 0.59}


def truth(space: str) -> tuple[list[Architecture], np.ndarray]:
    """Every architecture of the benchmark and its true accuracy (percent)."""
    if space == "nbmacro":
        frame = pd.read_parquet(SHARED / "nbmacro" / "nbmacro_cifar10.parquet")
        return [from_code(c) for c in frame["arch"]], frame["mean_acc"].to_numpy()
    frame = pd.read_parquet(SHARED / "nb201" / "nb201_cifar10_accuracy.parquet")
    archs = [Architecture.from_index(int(i), "nb201") for i in frame["arch_index"]]
    return archs, frame["cifar10_test_acc"].to_numpy()


def _score_chunk(
    args: tuple[str, ProxyConfig, list[str], list[str]],
) -> list[tuple[str, dict[str, float]]]:
    import torch

    torch.set_num_threads(1)
    space, config, proxies, archs = args
    scorer = ProxyScorer(space, ProxyConfig(**{**config.__dict__, "cache": None}))
    return [(a, scorer.raw(Architecture.decode(a, space), proxies)) for a in archs]


def seconds_per_arch(scorer: ProxyScorer, archs: list[Architecture], proxy: str) -> float:
    """Mean seconds of one proxy on these architectures, network build included."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    started = time.perf_counter()
    for arch in archs:
        net = build_network(arch, scorer.config.resolution, seed=scorer.config.seed)
        get_proxy(proxy).fn(net, scorer.batch)
    torch.set_num_threads(threads)
    return (time.perf_counter() - started) / len(archs)


def top_share(values: np.ndarray, accuracy: np.ndarray, share: float = 0.05) -> float:
    """The share of the true top `share` found in the top `share` by `values`."""
    k = max(1, round(len(values) * share))
    return len(set(np.argsort(-values)[:k]) & set(np.argsort(-accuracy)[:k])) / k


def rank_sum(columns: list[np.ndarray]) -> np.ndarray:
    """AZ-NAS's aggregation: sum of log(rank / n), rank 1 the worst."""
    n = len(columns[0])
    return np.sum([np.log(stats.rankdata(c) / n) for c in columns], axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", choices=("nb201", "nbmacro"), default="nb201")
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--all", action="store_true", help="every architecture")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--proxies", default=",".join(PROXIES))
    parser.add_argument("--data", type=Path, default=SHARED / "cifar10" / "cifar10_subset.npz")
    parser.add_argument(
        "--no-data",
        action="store_true",
        help="seeded noise images instead of --data (what a search without --data scores)",
    )
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument(
        "--cached-only",
        action="store_true",
        help="score nothing: report on the architectures whose values are all cached",
    )
    args = parser.parse_args()
    proxies = args.proxies.split(",")
    cache = args.cache or ROOT / "out" / f"proxy_scores_{args.space}.parquet"

    all_archs, all_accuracy = truth(args.space)
    rng = np.random.default_rng(args.seed)
    indices = (
        np.arange(len(all_archs))
        if args.all
        else np.sort(rng.choice(len(all_archs), args.sample, replace=False))
    )
    archs, accuracy = [all_archs[i] for i in indices], all_accuracy[indices]
    data = None if args.no_data else args.data
    config = ProxyConfig(proxy="ensemble", data=data, cache=cache)
    scorer = ProxyScorer(args.space, config)
    # The ensemble column only when its members are asked for (it needs all three).
    ensemble = all(p in proxies for p in ENSEMBLE)
    wanted = list(dict.fromkeys(proxies))
    todo = [
        str(a)
        for a in archs + scorer.reference_sample()
        if any(scorer.cache.get(scorer.key(a, p)) is None for p in wanted)
    ]
    todo = list(dict.fromkeys(todo))
    if args.cached_only:  # report on the architectures a (stopped) run has scored so far
        missing = set(todo)
        keep = [i for i, a in enumerate(archs) if str(a) not in missing]
        archs, accuracy, todo = [archs[i] for i in keep], accuracy[keep], []
    start = time.perf_counter()
    if todo:
        chunks = [todo[i : i + 10] for i in range(0, len(todo), 10)]
        context = multiprocessing.get_context("spawn")
        with context.Pool(args.workers) as pool:
            jobs = [(args.space, config, wanted, c) for c in chunks]
            for done, results in enumerate(pool.imap_unordered(_score_chunk, jobs), 1):
                for text, values in results:
                    arch = Architecture.decode(text, args.space)
                    for proxy, value in values.items():
                        scorer.cache.put(scorer.key(arch, proxy), value)
                if done % 10 == 0 or done == len(chunks):
                    scorer.flush()
                    print(
                        f"scored {min(done * 10, len(todo))}/{len(todo)} architectures "
                        f"({time.perf_counter() - start:.0f} s)",
                        flush=True,
                    )
    elapsed = time.perf_counter() - start

    rows = {p: np.array([scorer.raw(a, [p])[p] for a in archs]) for p in proxies}
    if ensemble:
        rows["ensemble"] = np.array([scorer.score(a) for a in archs])
    timing = {p: seconds_per_arch(scorer, archs[:10], p) for p in proxies}
    print(
        f"\n{args.space}: {len(archs)} architectures (seed {args.seed}"
        f"{', all' if args.all else ''}{', those cached' if args.cached_only else ''}); "
        f"scored now: {len(todo)} in {elapsed:.0f} s with "
        f"{args.workers} workers"
        + (f"; ensemble = mean normalised {' + '.join(ENSEMBLE)}" if ensemble else "")
        + "\n"
    )
    print(
        "| proxy | Spearman | 95% bootstrap interval | Kendall | top 5% found | s / arch "
        "| published Spearman (NB201, all cells) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    resamples = np.random.default_rng(args.seed).integers(0, len(archs), (1000, len(archs)))
    for proxy, values in rows.items():
        rho = stats.spearmanr(values, accuracy).statistic
        tau = stats.kendalltau(values, accuracy).statistic
        boot = [stats.spearmanr(values[i], accuracy[i]).statistic for i in resamples]
        low, high = np.percentile(boot, [2.5, 97.5])
        published = PUBLISHED.get(proxy) if args.space == "nb201" else None
        seconds = f"{timing[proxy]:.3f}" if proxy in timing else "-"
        print(
            f"| {proxy} | {rho:.3f} | [{low:.3f}, {high:.3f}] | {tau:.3f} | "
            f"{top_share(values, accuracy):.2f} | {seconds} | {published or '-'} |"
        )

    half = len(archs) // 2
    order = np.random.default_rng(args.seed).permutation(len(archs))
    tune, report = order[:half], order[half:]
    combos = [c for r in (1, 2, 3, 4) for c in itertools.combinations(proxies, r)]
    scored = [
        (stats.spearmanr(rank_sum([rows[p][tune] for p in c]), accuracy[tune]).statistic, c)
        for c in combos
    ]
    print(
        "\nSingle proxies and rank combinations (sum of log rank / n), the 8 best on a seeded "
        "random half:\n"
    )
    print("| combination | Spearman, half chosen on | Spearman, other half | Kendall |")
    print("| --- | --- | --- | --- |")
    for rho_tune, combo in sorted(scored, reverse=True)[:8]:
        combined = rank_sum([rows[p][report] for p in combo])
        rho = stats.spearmanr(combined, accuracy[report]).statistic
        tau = stats.kendalltau(combined, accuracy[report]).statistic
        print(f"| {' + '.join(combo)} | {rho_tune:.3f} | {rho:.3f} | {tau:.3f} |")


if __name__ == "__main__":
    main()
