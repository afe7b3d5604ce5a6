from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from conftest import count_evaluate_calls, nb201_config
from typer.testing import CliRunner

from rlnas.cli import app
from rlnas.errors import BudgetExhausted, RlnasError
from rlnas.model.arch import Architecture
from rlnas.model.space import get_space
from rlnas.search.run import build_evaluator, pareto_front, run_search
from rlnas.search.strategies import (
    PPO_ENVS,
    STRATEGIES,
    EvolutionSettings,
    PPOSettings,
    StrategySettings,
    get_strategy,
)


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_budget_and_determinism(strategy, shared_data):
    histories = []
    for seed in (0, 0, 1):
        evaluator, _ = build_evaluator(nb201_config(shared_data, strategy, seed=seed), None)
        get_strategy(strategy)(evaluator, get_space("nb201"), seed).run()
        assert len(evaluator.history) == 40
        assert len({e.arch for e in evaluator.history}) == 40  # repeats are not counted
        histories.append([e.arch for e in evaluator.history])
    assert histories[0] == histories[1]
    assert histories[0] != histories[2]


def test_repeats_are_free_and_budget_is_enforced(shared_data):
    evaluator, _ = build_evaluator(nb201_config(shared_data, "random", budget=2), None)
    a, b, c = (Architecture.from_index(i, "nb201") for i in (1, 2, 3))
    first = evaluator.evaluate(a)
    assert evaluator.evaluate(a) is first
    evaluator.evaluate(b)
    assert evaluator.exhausted
    assert evaluator.evaluate(b).arch == str(b)  # cached after the budget: still served
    with pytest.raises(BudgetExhausted):
        evaluator.evaluate(c)


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_resume_after_interruption_equals_uninterrupted(strategy, shared_data, tmp_path):
    config = nb201_config(shared_data, strategy, budget=60)
    whole = run_search(config, tmp_path / "whole")

    def stop_at(done: int, total: int) -> None:
        if done >= 25:
            raise Interrupt

    with pytest.raises(Interrupt):
        run_search(config, tmp_path / "cut", progress=stop_at)
    assert not (tmp_path / "cut" / "evaluations.parquet").exists()
    resumed = run_search(config, tmp_path / "cut")
    assert resumed.replayed >= 25
    columns = ["step", "arch", "accuracy", "latency_ms", "reward", "feasible"]
    pd.testing.assert_frame_equal(resumed.evaluations[columns], whole.evaluations[columns])
    pd.testing.assert_frame_equal(resumed.pareto[columns], whole.pareto[columns])


def test_run_folder_contents(shared_data, tmp_path):
    result = run_search(nb201_config(shared_data, "ppo", budget=30), tmp_path / "run")
    names = {p.name for p in result.out.iterdir()}
    assert {
        "config.json",
        "evaluations.jsonl",
        "evaluations.parquet",
        "pareto.parquet",
        "pareto.png",
        "controller.zip",
    } <= names
    frame = pd.read_parquet(result.out / "evaluations.parquet")
    assert {"arch", "accuracy", "latency_ms", "params", "macs", "reward", "feasible"} <= set(
        frame.columns
    )
    assert (frame["params"] > 0).all() and (frame["macs"] > 0).all()
    from sb3_contrib import MaskablePPO

    assert MaskablePPO.load(result.out / "controller.zip", device="cpu").policy is not None


def test_other_settings_in_same_folder_refused(shared_data, tmp_path):
    run_search(nb201_config(shared_data, "random", budget=10), tmp_path / "run")
    with pytest.raises(RlnasError, match="holds a run with other settings \\(budget\\)"):
        run_search(nb201_config(shared_data, "random", budget=20), tmp_path / "run")


def test_pareto_front():
    frame = pd.DataFrame(
        {"latency_ms": [1.0, 2.0, 3.0, 2.5, 0.5], "accuracy": [0.5, 0.7, 0.9, 0.6, 0.4]}
    )
    front = pareto_front(frame)
    assert list(front["latency_ms"]) == [0.5, 1.0, 2.0, 3.0]


def test_unknown_strategy():
    with pytest.raises(RlnasError, match="Did you mean 'evolution'"):
        get_strategy("evolutoin")


def test_train_controller_cli_on_shipped_table(tmp_path):
    result = CliRunner().invoke(
        app,
        ["train-controller", "--latency-ms", "5", "--budget", "12", "--out", str(tmp_path / "run")],
    )
    assert result.exit_code == 0, result.output
    assert "12 architectures evaluated" in result.output
    assert (tmp_path / "run" / "pareto.png").exists()


def test_search_cli_unknown_device_one_line(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "search",
            "--latency-ms",
            "5",
            "--device",
            "t4",
            "--precision",
            "fp16",
            "--space",
            "resnet",  # no t4 table ships for this space
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "rlnas profile --device t4" in result.stderr


def test_benchmark_file_for_a_huge_space(tmp_path):
    """arch_index-keyed files work for spaces far too large to enumerate (mobilenet)."""
    from rlnas.search.sources import BenchmarkAccuracy

    space = get_space("mobilenet")
    arch = Architecture.sample(__import__("numpy").random.default_rng(0), space)
    path = tmp_path / "acc.csv"
    pd.DataFrame({"arch_index": [arch.index], "top1": [76.5]}).to_csv(path, index=False)
    source = BenchmarkAccuracy(path, "top1")
    assert source.accuracy(arch) == pytest.approx(0.765)
    with pytest.raises(RlnasError, match="has no 'top1'"):
        source.accuracy(Architecture.from_index(0, space))


def test_tensorboard_logs_the_controller_and_changes_nothing(shared_data, tmp_path):
    config = nb201_config(shared_data, "ppo", budget=40)
    plain = run_search(config, tmp_path / "plain")
    logged = run_search(config, tmp_path / "logged", tensorboard=tmp_path / "tb")
    events = list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    assert plain.evaluations["arch"].tolist() == logged.evaluations["arch"].tolist()


def test_tensorboard_is_refused_for_a_strategy_without_training(shared_data, tmp_path):
    with pytest.raises(RlnasError, match="--tensorboard logs the PPO controller"):
        run_search(nb201_config(shared_data, "evolution"), tmp_path / "r", tensorboard=tmp_path)
    assert not (tmp_path / "r").exists()


def test_the_controller_proposes_only_new_architectures(shared_data):
    """Every proposal of the PPO controller is a new architecture until the budget is spent,
    and once it has found networks within the latency target (pixel3's 25th percentile; a
    random network keeps it a quarter of the time) its proposals keep it too."""
    evaluator, _ = build_evaluator(nb201_config(shared_data, "ppo", budget=150), None)
    calls = count_evaluate_calls(evaluator)
    get_strategy("ppo")(evaluator, get_space("nb201"), 0).run()
    assert calls[0] == len(evaluator.history) == 150
    late = [e.feasible for e in evaluator.history[75:]]
    assert sum(late) >= 0.95 * len(late)


def test_a_latency_range_on_the_command_line(shared_data, tmp_path):
    folder = shared_data / "nb201"
    common = [
        "--space", "nb201", "--budget", "30",
        "--accuracy-file", str(folder / "nb201_cifar10_accuracy.parquet"),
        "--latency-file", str(folder / "nb201_latency.parquet"),
        "--latency-column", "pixel3_ms",
    ]  # fmt: skip
    result = CliRunner().invoke(
        app, ["train-controller", "--latency-ms", "4:12", "--out", str(tmp_path / "r"), *common]
    )
    assert result.exit_code == 0, result.output
    assert "30 architectures evaluated" in result.output
    settings = (tmp_path / "r" / "config.json").read_text()
    assert '"latency_min_ms": 4.0' in settings and '"latency_ms": 12.0' in settings
    refused = CliRunner().invoke(
        app, ["search", "--strategy", "random", "--latency-ms", "12:4", *common]
    )
    assert refused.exit_code == 2
    assert "0 < low < high" in refused.stderr


@pytest.mark.parametrize("env", PPO_ENVS)
def test_parallel_episodes_hand_their_proposals_over_as_one_batch(env, shared_data):
    """With `parallel_episodes` 4 the controller's environments step together, and what
    each step will evaluate reaches the evaluator as one batch first (on a cluster, one
    batch of parallel tasks)."""
    settings = PPOSettings(env=env, parallel_episodes=4, episodes_per_update=8)
    base = nb201_config(shared_data, "ppo", budget=60)
    config = dataclasses.replace(base, strategies=StrategySettings(ppo=settings))
    evaluator, _ = build_evaluator(config, None)
    batches: list[list[str]] = []
    evaluator.prefetch = lambda archs: batches.append([str(a) for a in archs])
    get_strategy("ppo")(evaluator, get_space("nb201"), 0, settings=settings).run()
    assert len(evaluator.history) == 60
    steps = batches[1:] if env == "editor" else batches  # the editor's first population
    sizes = [len(b) for b in steps if b]  # a step of repairs or unfinished networks: none
    assert max(sizes) == 4
    assert sum(sizes) / len(sizes) >= 2  # the editor's repairs put its episodes out of step
    proposed = {a for b in batches for a in b}
    assert {e.arch for e in evaluator.history} <= proposed


def test_evolution_breeds_parallel_children_as_one_batch(shared_data):
    settings = EvolutionSettings(parallel_children=4)
    config = nb201_config(shared_data, "evolution", budget=60)
    evaluator, _ = build_evaluator(config, None)
    batches: list[tuple[int, bool]] = []
    evaluator.prefetch = lambda archs: batches.append((len(archs), evaluator.exhausted))
    get_strategy("evolution")(evaluator, get_space("nb201"), 0, settings=settings).run()
    assert len(evaluator.history) == 60
    assert batches[0] == (EvolutionSettings().population_size, False)
    assert set(batches[1:]) == {(4, False)}  # none bred once the budget is spent
    with pytest.raises(RlnasError, match="--evolution-parallel-children"):
        EvolutionSettings(parallel_children=0)
    with pytest.raises(RlnasError, match="--ppo-penalty-scale"):
        PPOSettings(penalty_scale=0.0)


def test_a_ppo_run_leaves_nothing_in_the_temp_folder(shared_data, tmp_path, monkeypatch):
    import tempfile

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.delenv("SB3_LOGDIR", raising=False)
    run_search(nb201_config(shared_data, "ppo"), tmp_path / "run")
    # torch makes one cache folder per user (torchinductor_<user>) when Adam first imports
    # torch._dynamo; it is torch's, reused by every run, so it is not counted.
    left = [p.name for p in temp.iterdir() if not p.name.startswith("torchinductor_")]
    assert left == []
