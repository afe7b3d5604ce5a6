"""Validation: one rank combination of proxies for both benchmarks, chosen on half of each.

Usage:
    python scripts/combine_proxies.py [--proxies synflow,jacob_cov,naswot,swap,meco,zico,params]
        [--seed 0]

Reads the raw proxy values that `scripts/validate_proxies.py` cached for its
1,000-architecture samples of NAS-Bench-201 and NAS-Bench-Macro (seed 0), on
the architectures where every listed proxy is cached in both. Each benchmark's
sample is split into seeded random halves. A combination (1-4 proxies; the
score is the sum of log(rank / n), AZ-NAS's aggregation) is chosen by the
worse of its two Spearman figures on the first halves, and reported on the
second halves, which took no part in the choice.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
from pathlib import Path

import numpy as np
from scipy import stats

from rlnas.accuracy.scorer import ProxyConfig, ProxyScorer

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("validate", ROOT / "scripts" / "validate_proxies.py")
assert _spec is not None and _spec.loader is not None
validate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(validate)


def cached(space: str, proxies: list[str], seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    archs, accuracy = validate.truth(space)
    sample = np.sort(np.random.default_rng(seed).choice(len(archs), 1000, replace=False))
    scorer = ProxyScorer(
        space,
        ProxyConfig(
            proxy="params",
            data=validate.SHARED / "cifar10" / "cifar10_subset.npz",
            cache=ROOT / "out" / f"proxy_scores_{space}.parquet",
        ),
    )
    rows, values = [], {p: [] for p in proxies}
    for i in sample:
        found = [scorer.cache.get(scorer.key(archs[i], p)) for p in proxies]
        if all(v is not None for v in found):
            rows.append(i)
            for p, v in zip(proxies, found, strict=True):
                values[p].append(v)
    return {p: np.array(v) for p, v in values.items()}, accuracy[rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxies", default="synflow,jacob_cov,naswot,swap,meco,zico,params")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    proxies = args.proxies.split(",")
    data = {space: cached(space, proxies, args.seed) for space in ("nb201", "nbmacro")}
    halves = {}
    for space, (_, accuracy) in data.items():
        order = np.random.default_rng(args.seed).permutation(len(accuracy))
        halves[space] = (order[: len(order) // 2], order[len(order) // 2 :])

    def rho(combo: tuple[str, ...], space: str, half: int) -> float:
        values, accuracy = data[space]
        rows = halves[space][half]
        score = validate.rank_sum([values[p][rows] for p in combo])
        return float(stats.spearmanr(score, accuracy[rows]).statistic)

    combos = [c for r in (1, 2, 3, 4) for c in itertools.combinations(proxies, r)]
    chosen = sorted(combos, key=lambda c: -min(rho(c, s, 0) for s in data))
    sizes = {s: len(a) for s, (_, a) in data.items()}
    print(f"architectures with every proxy cached: {sizes}\n")
    print(
        "| combination | NB201, half chosen on | NB201, other half | NB-Macro, half chosen on "
        "| NB-Macro, other half |"
    )
    print("| --- | --- | --- | --- | --- |")
    for combo in chosen[:8]:
        figures = " | ".join(f"{rho(combo, s, h):.3f}" for s in data for h in (0, 1))
        print(f"| {' + '.join(combo)} | {figures} |")


if __name__ == "__main__":
    main()
