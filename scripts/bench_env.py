"""Benchmark: table latency of one architecture (microseconds) and environment decisions/s.

Usage:
    python scripts/bench_env.py [--archs 20000] [--episodes 3000] [--seed 0]

Table latency: the shipped cpu fp32 mobilenet table, through the per-decision
cost model the environment uses, and through `LatencyTable.predict_ms` (layer
keys and dictionary lookups) for comparison. Environment: ArchBuilderEnv on
mobilenet with latency from that table and the closed-form `params` proxy as
accuracy (no network is built), random masked actions, every architecture
evaluated (budget unlimited).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rlnas.accuracy.scorer import ProxyConfig, ProxyScorer
from rlnas.envs.arch_builder import ArchBuilderEnv
from rlnas.hardware.catalog import locate_table
from rlnas.hardware.devices import cpu_name
from rlnas.hardware.table import load_table
from rlnas.model.arch import Architecture
from rlnas.model.space import get_space
from rlnas.search.evaluate import Evaluator
from rlnas.search.rewards import RewardConfig
from rlnas.search.sources import ProxyAccuracy, TableLatency, params_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=20000)
    parser.add_argument("--episodes", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    space = get_space("mobilenet")
    table = load_table(locate_table("cpu", "fp32", "mobilenet", 224)[1])
    latency = TableLatency(table, space)
    rng = np.random.default_rng(args.seed)
    archs = [Architecture.sample(rng, space) for _ in range(args.archs)]
    start = time.perf_counter()
    for arch in archs:
        latency.latency_ms(arch)
    model_us = (time.perf_counter() - start) / len(archs) * 1e6
    start = time.perf_counter()
    for arch in archs[:2000]:
        table.predict_ms(arch)
    keys_us = (time.perf_counter() - start) / 2000 * 1e6

    scorer = ProxyScorer(space, ProxyConfig(proxy="params"))
    evaluator = Evaluator(
        ProxyAccuracy(scorer), latency, params_model(space), RewardConfig("mnas", 5.0), budget=10**9
    )
    env = ArchBuilderEnv(evaluator, space)
    env.action_space.seed(args.seed)
    scorer.normalizer("params")  # fitted once per search, before the first step
    steps = 0
    start = time.perf_counter()
    for _ in range(args.episodes):
        env.reset()
        done = False
        while not done:
            _, _, done, _, _ = env.step(env.action_space.sample())
            steps += 1
    elapsed = time.perf_counter() - start
    print(f"machine: {cpu_name()}")
    print("| measure | value |")
    print("| --- | --- |")
    print(f"| table latency per architecture, cost model | {model_us:.1f} us |")
    print(f"| table latency per architecture, predict_ms (layer keys) | {keys_us:.1f} us |")
    print(
        f"| environment decisions/s (mobilenet, {args.episodes} episodes, "
        f"{len(evaluator.history)} unique) | {steps / elapsed:,.0f} |"
    )


if __name__ == "__main__":
    main()
