"""Ray on this machine: per-task overhead, and the speed-up of proxy scoring and of short
training with 2 local workers against 1.

Usage:
    python scripts/bench_ray.py [--archs 48] [--proxy naswot] [--trainings 4] [--epochs 1]
        [--subset 2000] [--search 60]

Each measurement starts a real local cluster (`ray.cluster_utils.Cluster`): a
head with no CPUs for tasks and 1 or 2 worker nodes of 1 CPU each (worker
processes use 1 torch thread). Proxy scoring: `--proxy` on `--archs` seeded
random architectures of the default space at 32 px, as `Evaluator.prefetch`
sends them (8 tasks), against the same in this process with 1 thread.
Short training: `--trainings` NAS-Bench-Macro networks, `--epochs` of the
recipe on `--subset` CIFAR-10 images, one task each, against the same one after
another in this process with 1 thread. Overhead: 200 empty tasks, one at a time
and all at once. A PPO search (`--search` architectures, `--ppo-parallel-episodes
5`, the proxy on CIFAR-10 images, a cold score cache) with `--ray-address`
against the same search in this process: the evaluations must be the same.
Wall times exclude the cluster's start; the workers' first imports (torch, the
data), which a long search pays once, are in a first batch of other
architectures, timed apart (the search, last, runs on workers already warm).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import ray
import torch
from ray.cluster_utils import Cluster

from rlnas.accuracy.recipe import Recipe
from rlnas.accuracy.scorer import ProxyConfig, ProxyScorer
from rlnas.accuracy.training import Trainer
from rlnas.cluster import connect, run_tasks
from rlnas.model.arch import Architecture
from rlnas.search.config import SearchConfig
from rlnas.search.run import run_search
from rlnas.search.sources.proxy import PREFETCH_CHUNKS, raw_values
from rlnas.search.strategies import PPOSettings

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10" / "cifar10_subset.npz"


def _nothing() -> int:
    return 0


def _train(arch: str, recipe: Recipe, out: str) -> float:
    torch.set_num_threads(1)
    trainer = Trainer(Architecture.decode(arch, "nbmacro"), DATA, recipe, Path(out))
    return trainer.train()[-1].val_top1


def _cluster(workers: int) -> Cluster:
    local = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(workers):
        local.add_node(num_cpus=1)
    connect(local.address)
    ray.get([ray.remote(_nothing).remote() for _ in range(2 * workers)])  # workers started
    return local


def _search(config: SearchConfig, address: str | None) -> tuple[float, object]:
    """Seconds of a search from a cold score cache, and its evaluations."""
    with tempfile.TemporaryDirectory() as home:
        os.environ["RLNAS_HOME"] = home
        started = time.perf_counter()
        result = run_search(config, Path(home) / "run", ray_address=address)
        return time.perf_counter() - started, result.evaluations


def _stop(local: Cluster) -> None:
    ray.shutdown()
    local.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=48)
    parser.add_argument("--trainings", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--subset", type=int, default=2000)
    parser.add_argument("--proxy", default="naswot")
    parser.add_argument("--search", type=int, default=60, help="budget of the PPO search")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    archs = [Architecture.sample(rng) for _ in range(args.archs)]
    config = ProxyConfig(proxy=args.proxy, data=DATA)
    texts = [str(a) for a in archs]
    chunks = [texts[i::PREFETCH_CHUNKS] for i in range(PREFETCH_CHUNKS)]
    # A first batch of other architectures: the workers import torch and read the data.
    others = [str(Architecture.sample(rng)) for _ in range(PREFETCH_CHUNKS)]
    warm_up = [[a] for a in others]
    space = archs[0].space
    nets = [Architecture.sample(np.random.default_rng(s), "nbmacro") for s in range(100)]
    picks = [str(a) for a in nets[: args.trainings]]
    recipe = dataclasses.replace(Recipe(), epochs=args.epochs, subset=args.subset)

    torch.set_num_threads(1)
    started = time.perf_counter()
    scorer = ProxyScorer(space, config)
    for arch in archs:
        scorer.raw(arch)
    serial_proxy = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        for i, arch in enumerate(picks):
            _train(arch, recipe, f"{folder}/serial{i}")
        serial_train = max(time.perf_counter() - started, 1e-9)
    search = SearchConfig.of(
        latency_ms=6,
        strategy="ppo",
        proxy=args.proxy,
        data=DATA,
        budget=args.search,
        calibrate=False,
        ppo=PPOSettings(parallel_episodes=5),
    )
    serial_search, serial_frame = _search(search, None)
    print(
        f"in this process, 1 thread: proxies {serial_proxy:.1f} s, training {serial_train:.1f} s, "
        f"PPO search {serial_search:.1f} s"
    )

    for workers in (1, 2):
        local = _cluster(workers)
        try:
            handle = connect(local.address)
            started = time.perf_counter()
            for _ in range(200):
                next(run_tasks(handle, _nothing, [()]))
            one_by_one = (time.perf_counter() - started) / 200
            started = time.perf_counter()
            list(run_tasks(handle, _nothing, [()] * 200))
            batched = (time.perf_counter() - started) / 200
            started = time.perf_counter()
            list(run_tasks(handle, raw_values, [(space, config, c, 1) for c in warm_up]))
            cold = time.perf_counter() - started
            started = time.perf_counter()
            list(run_tasks(handle, raw_values, [(space, config, c, 1) for c in chunks]))
            proxy = time.perf_counter() - started
            with tempfile.TemporaryDirectory() as folder:
                started = time.perf_counter()
                jobs = [(a, recipe, f"{folder}/t{i}") for i, a in enumerate(picks)]
                list(run_tasks(handle, _train, jobs))
                train = max(time.perf_counter() - started, 1e-9)
            on_cluster, frame = _search(search, local.address)
            if not frame.equals(serial_frame):
                raise SystemExit("the search on the cluster evaluated otherwise than in process")
        finally:
            _stop(local)
        print(
            f"{workers} worker(s): task overhead {one_by_one * 1000:.1f} ms one at a time, "
            f"{batched * 1000:.2f} ms in a batch of 200; first batch of {len(others)} "
            f"{cold:.1f} s; proxies {proxy:.1f} s ({serial_proxy / proxy:.2f}x this process); "
            f"training {train:.1f} s ({serial_train / train:.2f}x); PPO search {on_cluster:.1f} s "
            f"({serial_search / on_cluster:.2f}x, the same evaluations)",
            flush=True,
        )


if __name__ == "__main__":
    main()
