"""Validation: the few-shot accuracy predictor against true accuracies on held-out architectures.

Usage:
    python scripts/validate_predictor.py [--ks 10,20,50,100] [--seeds 5-24]
    python scripts/validate_predictor.py --proxies naswot,swap --space nbmacro
        [--cache out/proxy_scores_nbmacro.parquet] [--model forest]

For NAS-Bench-Macro (all 6,561, `mean_acc`) and NAS-Bench-201 (all 15,625,
`cifar10_test_acc`): per K and split seed, fit `rlnas.accuracy.predictor` on K
architectures drawn by the seed and score every other architecture of the
benchmark; prints the median [min, max] over seeds of Spearman and Kendall,
and the share of held-out architectures whose true accuracy lies within the
predicted mean +- 2 std (the calibration of the uncertainty). The model was
chosen on split seeds 0-4; report seeds are 5 and up.
Features: the encoding and closed-form parameters and MACs (no proxies).
`--model` picks the predictor's model (`ridge`, the default, `forest`, `blend`, or
`auto`: chosen per split by cross-validation on its K, as `rlnas predictor fit` does).

With `--proxies`, the raw values of those proxies join the features. Only the
architectures whose values `scripts/validate_proxies.py` cached are used (its
seeded sample), so K architectures of that sample train the predictor and the
rest of the sample is held out; the same splits are scored without proxies
beside them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from rlnas.accuracy.predictor import MODELS, Predictor, choose_model
from rlnas.accuracy.scorer import ProxyConfig, ProxyScorer
from rlnas.model.arch import Architecture
from rlnas.model.nbmacro import from_code
from rlnas.model.space import get_space

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
NAMES = {"nbmacro": "NAS-Bench-Macro", "nb201": "NAS-Bench-201"}


def benchmarks() -> dict[str, tuple[list[Architecture], np.ndarray]]:
    macro = pd.read_parquet(SHARED / "nbmacro" / "nbmacro_cifar10.parquet")
    cells = pd.read_parquet(SHARED / "nb201" / "nb201_cifar10_accuracy.parquet")
    space = get_space("nb201")
    return {
        "NAS-Bench-Macro": ([from_code(c) for c in macro["arch"]], macro["mean_acc"].to_numpy()),
        "NAS-Bench-201": (
            [Architecture.from_index(int(i), space) for i in cells["arch_index"]],
            cells["cifar10_test_acc"].to_numpy(),
        ),
    }


def seeds(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def cached_proxies(
    space: str, archs: list[Architecture], proxies: list[str], cache: Path
) -> tuple[np.ndarray, dict[str, list[float]]]:
    """Indices of the architectures with every proxy cached, and their raw values."""
    scorer = ProxyScorer(
        space,
        ProxyConfig(proxy="ensemble", data=SHARED / "cifar10" / "cifar10_subset.npz", cache=cache),
    )
    rows, values = [], {p: [] for p in proxies}
    for i, arch in enumerate(archs):
        found = [scorer.cache.get(scorer.key(arch, p)) for p in proxies]
        if all(v is not None for v in found):
            rows.append(i)
            for p, v in zip(proxies, found, strict=True):
                values[p].append(float(v))
    return np.array(rows), values


def score(
    archs: list[Architecture],
    accuracy: np.ndarray,
    k: int,
    split_seeds: list[int],
    proxies: dict[str, list[float]] | None = None,
    model: str = "ridge",
) -> str:
    rho, tau, covered = [], [], []
    for seed in split_seeds:
        order = np.random.default_rng(seed).permutation(len(archs))
        train, test = order[:k], order[k:]

        def pick(idx: np.ndarray) -> dict[str, list[float]] | None:
            return {p: [v[i] for i in idx] for p, v in proxies.items()} if proxies else None

        known = [archs[i] for i in train]
        chosen = choose_model(known, accuracy[train], pick(train))[0] if model == "auto" else model
        predictor = Predictor(known, accuracy[train], pick(train), chosen)
        mean, std = predictor.predict([archs[i] for i in test], pick(test))
        truth = accuracy[test]
        rho.append(stats.spearmanr(mean, truth).statistic)
        tau.append(stats.kendalltau(mean, truth).statistic)
        covered.append(float(np.mean(np.abs(mean - truth) <= 2 * std)))

    def cell(v: list[float]) -> str:
        return f"{np.median(v):.3f} [{min(v):.3f}, {max(v):.3f}]"

    return f"{cell(rho)} | {cell(tau)} | {np.median(covered):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", default="10,20,50,100")
    parser.add_argument("--seeds", default="5-24")
    parser.add_argument("--proxies", default="")
    parser.add_argument("--space", choices=tuple(NAMES), default="nbmacro")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--model", choices=(*MODELS, "auto"), default="ridge")
    args = parser.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    print(f"model: {args.model}\n")
    split_seeds = seeds(args.seeds)
    print("| benchmark | K | features | Spearman | Kendall | within 2 std |")
    print("| --- | --- | --- | --- | --- | --- |")
    if args.proxies:
        proxies = args.proxies.split(",")
        archs, accuracy = benchmarks()[NAMES[args.space]]
        cache = args.cache or ROOT / "out" / f"proxy_scores_{args.space}.parquet"
        rows, values = cached_proxies(args.space, archs, proxies, cache)
        sample, truth = [archs[i] for i in rows], accuracy[rows]
        name = f"{NAMES[args.space]} ({len(rows)} cached)"
        for k in ks:
            for label, extra in (("encoding", None), ("+ " + " + ".join(proxies), values)):
                cells = score(sample, truth, k, split_seeds, extra, args.model)
                print(f"| {name} | {k} | {label} | {cells} |")
        return
    for name, (archs, accuracy) in benchmarks().items():
        for k in ks:
            cells = score(archs, accuracy, k, split_seeds, None, args.model)
            print(f"| {name} | {k} | encoding | {cells} |")


if __name__ == "__main__":
    main()
