"""Determinism as a property of the product.

The same seed and settings give the same evaluations: with a cold or a warm
score cache, uninterrupted or killed with SIGKILL and resumed, for every
strategy. No library call leaves the global random state changed, and a search
whose proposals stop bringing new architectures stops instead of spinning.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import count_evaluate_calls, nb201_config, tiny_space

from rlnas.files import atomic_write_text
from rlnas.search.config import SearchConfig
from rlnas.search.run import build_evaluator, run_search
from rlnas.search.strategies import STRATEGIES, PPOSettings, get_strategy

COLUMNS = ["step", "arch", "accuracy", "latency_ms", "params", "reward", "feasible"]
# The installed command (not `python -c`, which would import the source tree in the
# working directory instead of the installed package).
CLI = [str(Path(sys.executable).parent / "rlnas")]


@pytest.mark.slow
@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_same_seed_with_cold_and_warm_score_cache(strategy, tmp_path, monkeypatch):
    config = SearchConfig.of(
        latency_ms=20,
        strategy=strategy,
        budget=8,
        seed=3,
        space="resnet",
        ppo=PPOSettings(episodes_per_update=4),
    )
    monkeypatch.setenv("RLNAS_HOME", str(tmp_path / "home"))
    cold = run_search(config, tmp_path / "cold").evaluations
    warm = run_search(config, tmp_path / "warm").evaluations  # every score now cached
    pd.testing.assert_frame_equal(cold[COLUMNS], warm[COLUMNS])
    assert cold["arch"].nunique() == 8


def global_states() -> tuple[object, ...]:
    return (random.getstate(), np.random.get_state()[1].tobytes(), torch.get_rng_state())


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_a_search_leaves_the_global_random_state_alone(strategy, shared_data, tmp_path):
    random.seed(11)
    np.random.seed(11)
    torch.manual_seed(11)
    before = global_states()
    run_search(nb201_config(shared_data, strategy, 30, seed=5), tmp_path / "run")
    after = global_states()
    assert before[0] == after[0] and before[1] == after[1]
    assert torch.equal(before[2], after[2])


def nb201_args(shared: Path, strategy: str, budget: int, out: Path) -> list[str]:
    folder = shared / "nb201"
    return [
        "search",
        "--strategy",
        strategy,
        "--space",
        "nb201",
        "--reward",
        "hard",
        "--latency-ms",
        "6.44",
        "--budget",
        str(budget),
        "--seed",
        "5",
        "--accuracy-file",
        str(folder / "nb201_cifar10_accuracy.parquet"),
        "--latency-file",
        str(folder / "nb201_latency.parquet"),
        "--latency-column",
        "pixel3_ms",
        "--out",
        str(out),
    ]


def journal_lines(out: Path) -> int:
    journal = out / "evaluations.jsonl"
    return journal.read_bytes().count(b"\n") if journal.exists() else 0


def kill_when(args: list[str], out: Path, lines: int, env: dict[str, str]) -> bool:
    """Starts the command and SIGKILLs it once the journal has `lines` lines; False if it
    finished first."""
    process = subprocess.Popen(
        [*CLI, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    while process.poll() is None:
        if journal_lines(out) >= lines:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.005)
    assert process.returncode == 0, process.stderr.read().decode() if process.stderr else ""
    return False


@pytest.mark.slow
@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_kill_9_then_resume_equals_uninterrupted(strategy, shared_data, tmp_path):
    budget = 60
    env = {**os.environ, "RLNAS_HOME": str(tmp_path / "home")}
    whole = tmp_path / "whole"
    subprocess.run([*CLI, *nb201_args(shared_data, strategy, budget, whole)], env=env, check=True)
    expected = pd.read_parquet(whole / "evaluations.parquet")[COLUMNS]

    rng = np.random.default_rng(list(STRATEGIES).index(strategy))
    # Three kills in one run at random moments (the last may land in the final writes).
    cut = tmp_path / "cut"
    moments = sorted(int(k) for k in rng.integers(1, budget + 1, size=3))
    kills = [
        kill_when(nb201_args(shared_data, strategy, budget, cut), cut, k, env) for k in moments
    ]
    subprocess.run([*CLI, *nb201_args(shared_data, strategy, budget, cut)], env=env, check=True)
    resumed = pd.read_parquet(cut / "evaluations.parquet")[COLUMNS]
    pd.testing.assert_frame_equal(resumed, expected, obj=f"kills at journal lines {moments}")
    assert any(kills), f"no kill landed before the run finished (moments {moments})"


def test_stale_temporary_files_are_removed(tmp_path):
    target = tmp_path / "table.parquet"
    leftover = tmp_path / ".table.parquet.abc123.tmp"
    fresh = tmp_path / ".table.parquet.def456.tmp"  # another process may be writing it
    leftover.write_bytes(b"")
    fresh.write_bytes(b"")
    old = time.time() - 3600
    os.utime(leftover, (old, old))
    atomic_write_text("x", target)
    assert target.read_text() == "x"
    assert not leftover.exists()
    assert fresh.exists()


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_a_search_that_finds_nothing_new_stops(strategy, tmp_path):
    """A budget larger than the space: the strategy stops after `patience` repeats in a row."""
    space = tiny_space(tmp_path)
    data = tmp_path / "bench.csv"
    pd.DataFrame({"arch_index": [0, 1, 2], "acc": [0.5, 0.6, 0.7], "ms": [1.0, 2.0, 3.0]}).to_csv(
        data, index=False
    )
    config = SearchConfig.of(
        latency_ms=2.5,
        strategy=strategy,
        space=str(space),
        budget=10,
        accuracy_file=data,
        accuracy_column="acc",
        latency_file=data,
        latency_column="ms",
        ppo=PPOSettings(episodes_per_update=2),
    )
    evaluator, _ = build_evaluator(config, None)
    strategy_cls = get_strategy(strategy)
    field = strategy_cls.settings_field
    settings = getattr(config.strategies, field) if field else None
    runner = strategy_cls(evaluator, evaluator.params.space, 0, settings=settings)
    runner.patience = 40
    calls = count_evaluate_calls(evaluator)
    runner.run()
    assert len(evaluator.history) == 3
    assert calls[0] <= 3 + 40 + 2  # at most patience repeats past the last new one (+ a rollout)
    reason = runner.stop_reason()
    assert reason is not None and "no new architecture" in reason


def test_profiling_and_building_leave_the_global_random_state_alone(tmp_path):
    from rlnas.hardware.profile import ProfileConfig, profile
    from rlnas.model.arch import Architecture
    from rlnas.model.network import build_network

    torch.manual_seed(11)
    before = global_states()
    profile(ProfileConfig(space="nb201", limit=2, out=tmp_path / "t.parquet"))
    first = build_network(Architecture.from_index(7, "nb201"))
    second = build_network(Architecture.from_index(7, "nb201"))
    after = global_states()
    assert before[0] == after[0] and before[1] == after[1]
    assert torch.equal(before[2], after[2])
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)
