"""Benchmark: the T4 / Xavier NX estimates with the model chosen on held-out networks only.

Usage:
    python scripts/bench_estimate.py [--weights 0.03,0.1,0.3,1]

`rlnas tables estimate` keeps, of its two activation variants (swish fused or
separate kernels), the one with the lower leave-one-out error, so its reported
error saw every network in that choice. Here the choice is nested: for each
published network, the variant and the prior weight are chosen by the
leave-one-out error on the other networks alone, the model is fitted on those
others with that choice and then predicts the held-out network. The errors are
those of a network the whole procedure never saw.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
from scipy.stats import kendalltau

from rlnas.hardware.estimate import fit_model, load_published
from rlnas.hardware.roofline import OpArrays, get_spec
from rlnas.model.zoo import network_ops


def loo_errors(spec, networks, published, weight) -> np.ndarray:
    """Percentage errors of each network predicted by a model fitted without it."""
    errors = []
    for name, ms in published.items():
        others = {n: v for n, v in published.items() if n != name}
        predicted = fit_model(spec, networks, others, weight).best_ms(networks[name])
        errors.append((predicted / ms - 1) * 100)
    return np.array(errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="0.03,0.1,0.3,1")
    args = parser.parse_args()
    weights = [float(w) for w in args.weights.split(",")]
    print("| device | networks | choice | median abs error | worst abs error | Kendall tau |")
    print("| --- | --- | --- | --- | --- | --- |")
    for device in ("t4", "xavier-nx"):
        spec, published = get_spec(device), load_published(device)
        variants = {
            fused: {n: OpArrays.of(network_ops(n, fused)) for n in published}
            for fused in (False, True)
        }
        nested, picks = {}, []
        for name, ms in published.items():
            others = {n: v for n, v in published.items() if n != name}
            inner = {
                (fused, w): float(np.median(np.abs(loo_errors(spec, variants[fused], others, w))))
                for fused, w in itertools.product(variants, weights)
            }
            fused, weight = min(inner, key=inner.__getitem__)
            picks.append((fused, weight))
            model = fit_model(spec, variants[fused], others, weight)
            nested[name] = (model.best_ms(variants[fused][name]), ms)
        errors = np.array([(p / m - 1) * 100 for p, m in nested.values()])
        tau = kendalltau([p for p, _ in nested.values()], [m for _, m in nested.values()])[0]
        chosen = ", ".join(
            f"{'fused' if f else 'separate'}/{w:g} x{picks.count((f, w))}" for f, w in set(picks)
        )
        print(
            f"| {device} | {len(published)} | nested: {chosen} | "
            f"{np.median(np.abs(errors)):.1f}% | {np.abs(errors).max():.1f}% | {tau:.2f} |"
        )
        for fused, w in itertools.product(variants, weights):
            e = loo_errors(spec, variants[fused], published, w)
            tau = kendalltau(
                [published[n] * (1 + x / 100) for n, x in zip(published, e, strict=True)],
                list(published.values()),
            )[0]
            print(
                f"| {device} | {len(published)} | fixed {'fused' if fused else 'separate'}, "
                f"prior weight {w:g} (plain leave-one-out) | {np.median(np.abs(e)):.1f}% | "
                f"{np.abs(e).max():.1f}% | {tau:.2f} |"
            )
        worst = max(nested, key=lambda n: abs(nested[n][0] / nested[n][1] - 1))
        print(f"| {device} | | worst network (nested): {worst} | | | |")


if __name__ == "__main__":
    main()
