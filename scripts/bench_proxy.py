"""Benchmark: seconds to score one architecture with a proxy, cache off.

Usage:
    python scripts/bench_proxy.py [--proxy synflow] [--archs 30] [--seed 0] [--threads 2]

Per architecture: build the network at the proxy resolution and compute the
raw proxy value (what a cache miss costs), for seeded random architectures of
the default space and of nb201, at the scorer's default settings.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from rlnas.accuracy.scorer import PROXY_RESOLUTION, ProxyConfig, ProxyScorer
from rlnas.hardware.devices import cpu_name
from rlnas.model.arch import Architecture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxy", default="synflow")
    parser.add_argument("--archs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", default=None, help="an .npz for data-dependent proxies")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    print(
        f"machine: {cpu_name()}, torch threads {args.threads}, proxy resolution "
        f"{PROXY_RESOLUTION}px, proxy {args.proxy}"
    )
    print("\n| space | archs | median s | p90 s |")
    print("| --- | --- | --- | --- |")
    for space in ("mobilenet", "nb201"):
        scorer = ProxyScorer(space, ProxyConfig(proxy=args.proxy, data=args.data))
        rng = np.random.default_rng(args.seed)
        archs = [Architecture.sample(rng, space) for _ in range(args.archs)]
        scorer.raw(archs[0])  # warm-up: first call pays one-off initialisation
        seconds = []
        for arch in archs[1:]:
            start = time.perf_counter()
            scorer.raw(arch)
            seconds.append(time.perf_counter() - start)
        p90 = float(np.percentile(seconds, 90))
        print(f"| {space} | {len(seconds)} | {statistics.median(seconds):.3f} | {p90:.3f} |")


if __name__ == "__main__":
    main()
