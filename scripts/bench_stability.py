"""Benchmark: profile the same layers twice and compare their medians.

Usage:
    python scripts/bench_stability.py [--device cpu] [--precision fp32] [--entries 50] [--seed 0]
        [--min-runs 15] [--min-time-ms 60]

A seeded sample of the default space's unique layers (224x224, batch 1,
1 thread) is timed in one pass, then all again in a second pass, with the
profiler's own harness and settings. Reports the share of layers whose two
medians are within 5% (target >= 90%) and within 10%.
"""

from __future__ import annotations

import argparse

import numpy as np

from rlnas.hardware.backends import Workload, get_backend
from rlnas.hardware.devices import get_device
from rlnas.hardware.layer_timer import time_workload
from rlnas.hardware.timing import TimingConfig
from rlnas.model.layers import enumerate_layers
from rlnas.model.ops import build_layer, input_shapes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-runs", type=int, default=TimingConfig.min_runs)
    parser.add_argument("--min-time-ms", type=float, default=TimingConfig.min_time_ms)
    args = parser.parse_args()

    keys = enumerate_layers("mobilenet", 224)
    rng = np.random.default_rng(args.seed)
    sample = [keys[i] for i in rng.choice(len(keys), args.entries, replace=False)]
    backend = get_backend(get_device(args.device).backend, threads=1)
    config = TimingConfig(min_runs=args.min_runs, min_time_ms=args.min_time_ms)
    passes = []
    for _ in range(2):
        medians = []
        for key in sample:
            workload = Workload.random(build_layer(key), input_shapes(key))
            medians.append(time_workload(backend, workload, args.precision, config).median_ms)
        passes.append(np.array(medians))
    ratio = np.abs(passes[1] / passes[0] - 1)
    print(
        f"| {args.device} {args.precision} | {args.min_runs} runs, {args.min_time_ms:g} ms "
        f"| {args.entries} | {np.mean(ratio <= 0.05):.0%} "
        f"| {np.mean(ratio <= 0.10):.0%} | {np.median(ratio):.1%} | {ratio.max():.1%} "
        f"| {np.median(passes[1] / passes[0] - 1):+.1%} |"
    )


if __name__ == "__main__":
    main()
