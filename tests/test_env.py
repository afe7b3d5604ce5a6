from __future__ import annotations

import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import rlnas.envs  # noqa: F401  (registers the environments)
from rlnas.accuracy.scorer import ProxyConfig, ProxyScorer
from rlnas.errors import RlnasError
from rlnas.hardware.catalog import locate_table
from rlnas.hardware.table import load_table
from rlnas.model.arch import Architecture
from rlnas.model.space import get_space
from rlnas.search.evaluate import Evaluator
from rlnas.search.rewards import RewardConfig
from rlnas.search.sources import (
    BenchmarkAccuracy,
    BenchmarkLatency,
    ProxyAccuracy,
    TableLatency,
    params_model,
)


def make_evaluator(space_name: str, shared: Path | None, budget: int = 10_000) -> Evaluator:
    space = get_space(space_name)
    if space_name == "nb201":
        assert shared is not None
        folder = shared / "nb201"
        accuracy = BenchmarkAccuracy(folder / "nb201_cifar10_accuracy.parquet", "cifar10_test_acc")
        latency = BenchmarkLatency(folder / "nb201_latency.parquet", "pixel3_ms")
        target = 6.44
    else:
        scorer = ProxyScorer(space, ProxyConfig(reference_size=4))
        accuracy = ProxyAccuracy(scorer)
        latency = TableLatency(load_table(locate_table("cpu", "fp32", space_name, 224)[1]), space)
        target = 5.0
    return Evaluator(accuracy, latency, params_model(space), RewardConfig("hard", target), budget)


@pytest.fixture(params=["nb201", "mobilenet"])
def evaluator(request, shared_data):
    return make_evaluator(request.param, shared_data)


def test_env_checkers_pass_without_warnings(evaluator):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make("rlnas/ArchBuilder-v0", evaluator=evaluator).unwrapped
        gymnasium_check_env(env)
        sb3_check_env(env)


def rollout(env, episodes: int, seed: int):
    env.action_space.seed(seed)
    trace = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        done = False
        while not done:
            mask = env.action_masks()
            action = env.action_space.sample()
            assert mask[action], "sample() must respect the mask"
            obs, reward, done, _, info = env.step(action)
            trace.append((obs.tobytes(), reward))
        trace.append(info["evaluation"].arch)
    return trace


def test_masked_rollouts_give_members_of_the_space(evaluator):
    env = gym.make("rlnas/ArchBuilder-v0", evaluator=evaluator).unwrapped
    for arch in [t for t in rollout(env, 5, seed=0) if isinstance(t, str)]:
        Architecture.decode(arch, env.space)  # raises on anything outside the space


def test_masks_match_choice_counts(evaluator):
    env = gym.make("rlnas/ArchBuilder-v0", evaluator=evaluator).unwrapped
    env.reset(seed=0)
    for count in env.space.choice_counts:
        mask = env.action_masks()
        assert mask.sum() == count and mask[:count].all()
        env.step(count - 1)


def test_invalid_action_is_refused_not_punished(shared_data):
    env = gym.make("rlnas/ArchBuilder-v0", evaluator=make_evaluator("mobilenet", None)).unwrapped
    env.reset(seed=0)
    with pytest.raises(RlnasError, match=r"action 5 is masked at position 0 \(act, 2 choices\)"):
        env.step(5)


def test_same_seed_same_episodes(evaluator):
    first = rollout(gym.make("rlnas/ArchBuilder-v0", evaluator=evaluator).unwrapped, 4, 11)
    second = rollout(gym.make("rlnas/ArchBuilder-v0", evaluator=evaluator).unwrapped, 4, 11)
    other = rollout(gym.make("rlnas/ArchBuilder-v0", evaluator=evaluator).unwrapped, 4, 12)
    assert first == second
    assert first != other


def test_latency_so_far_ends_at_table_latency():
    evaluator = make_evaluator("mobilenet", None)
    env = gym.make("rlnas/ArchBuilder-v0", evaluator=evaluator).unwrapped
    env.reset(seed=0)
    arch = Architecture.sample(np.random.default_rng(5), "mobilenet")
    for choice in arch.choices:
        obs, _, _, _, info = env.step(choice)
    table = load_table(locate_table("cpu", "fp32", "mobilenet", 224)[1])
    expected = min(table.predict_ms(arch) / 5.0, 4.0) / 4.0
    assert obs[-1] == pytest.approx(expected, rel=1e-5)
    assert info["evaluation"].latency_ms == pytest.approx(table.predict_ms(arch))
    assert obs.min() >= 0.0 and obs.max() <= 1.0


def test_observation_never_holds_raw_proxy_values():
    evaluator = make_evaluator("mobilenet", None)
    env = gym.make("rlnas/ArchBuilder-v0", evaluator=evaluator).unwrapped
    env.reset(seed=0)
    done = False
    while not done:
        obs, reward, done, _, info = env.step(env.action_space.sample())
        assert np.abs(obs).max() <= 1.0
    assert 0.0 < info["evaluation"].accuracy < 1.0  # normalised, not synflow's 1e30
    assert abs(reward) < 10
