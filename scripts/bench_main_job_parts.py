"""Where the main job's time goes: start-up, calibration, proxy scoring (by network size),
the editor's look at neighbours, PPO updates, and the rest.

Usage:
    python scripts/bench_main_job_parts.py [--latency-ms 6 20] [--seed 0] [--budget 1000]
        [--home DIR]

Each target runs `rlnas train-controller --device cpu --latency-ms T` in this process
as a new user would: a fresh user folder (`RLNAS_HOME`, so the table is calibrated for
this host and the score cache is empty) unless `--home` names one to reuse. Each part is
timed by wrapping the function that does it; start-up is the time `rlnas --help` takes in
a new process (imports). Prints a markdown table per target.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(owner: object, name: str, parts: dict[str, float], key=None) -> None:
    """Wraps `owner.name` so that its time adds to parts[key(args) or name]."""
    inner = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            label = key(*args) if key is not None else name
            parts[label] += time.perf_counter() - start

    setattr(owner, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[6.0, 20.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--home", type=Path, default=None)
    args = parser.parse_args()

    start = time.perf_counter()
    rlnas = Path(sys.executable).parent / "rlnas"
    subprocess.run([str(rlnas), "--help"], check=True, capture_output=True)
    startup = time.perf_counter() - start

    from sb3_contrib import MaskablePPO

    from rlnas.accuracy.scorer import ProxyScorer
    from rlnas.envs.arch_editor import ArchEditorEnv
    from rlnas.hardware import endtoend
    from rlnas.model.space import get_space
    from rlnas.search.config import SearchConfig
    from rlnas.search.run import run_search
    from rlnas.search.sources import params_model

    params = params_model(get_space("mobilenet"))

    def size(scorer, arch, *rest) -> str:
        millions = params.total(arch.choices) / 1e6
        bucket = "<1M" if millions < 1 else "1-3M" if millions < 3 else ">=3M"
        return f"proxy scoring, networks {bucket} params"

    parts: dict[str, float] = collections.defaultdict(float)
    calls: dict[str, int] = collections.Counter()
    timed(endtoend, "adapt", parts, lambda *a: "calibration")
    timed(ProxyScorer, "raw", parts, size)
    timed(ArchEditorEnv, "_near_of", parts, lambda *a: "editor: neighbours' costs")
    timed(MaskablePPO, "train", parts, lambda *a: "PPO updates")
    inner_raw = ProxyScorer.raw

    def counted(scorer, arch, *rest):
        calls[size(scorer, arch)] += 1
        return inner_raw(scorer, arch, *rest)

    ProxyScorer.raw = counted
    for target in args.latency_ms:
        with tempfile.TemporaryDirectory() as fresh:
            os.environ["RLNAS_HOME"] = str(args.home or fresh)
            parts.clear()
            calls.clear()
            config = SearchConfig(latency_ms=target, budget=args.budget, seed=args.seed)
            start = time.perf_counter()
            result = run_search(config, Path(fresh) / "run")
            total = time.perf_counter() - start
            within = bool(result.best["latency_ms"] <= target)
        print(
            f"\n{target:g} ms, seed {args.seed}: {total + startup:.0f} s in all; best within "
            f"target: {within}\n"
        )
        print("| part | s | share |")
        print("| --- | --- | --- |")
        print(
            f"| start-up (`rlnas --help` in a new process) | {startup:.1f} | "
            f"{startup / (total + startup):.0%} |"
        )
        for name, seconds in sorted(parts.items()):
            extra = f" ({calls[name]} calls)" if name in calls else ""
            print(f"| {name}{extra} | {seconds:.1f} | {seconds / (total + startup):.0%} |")
        rest = total - sum(parts.values())
        print(
            f"| the rest (environment, policy, evaluator, writing the run) | {rest:.1f} | "
            f"{rest / (total + startup):.0%} |"
        )


if __name__ == "__main__":
    main()
