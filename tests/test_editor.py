"""The editing environment of the PPO controller (`rlnas/ArchEditor-v0`)."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from test_env import make_evaluator

import rlnas.envs  # noqa: F401  (registers the environments)
from rlnas.errors import RlnasError
from rlnas.model.arch import Architecture


def editor(evaluator, population: int = 20, seed: int = 0, within: bool | None = None, **settings):
    """An editor whose population is `population` random architectures: any, or only
    those within the target (`within=True`) or outside it (`within=False`)."""
    env = gym.make("rlnas/ArchEditor-v0", evaluator=evaluator, **settings).unwrapped
    rng = np.random.default_rng(seed)
    added = 0
    while added < population:
        arch = Architecture.sample(rng, env.space)
        inside = evaluator.latency.latency_ms(arch) <= evaluator.reward.target_ms
        if within is None or inside == within:
            env.add(arch, evaluator.evaluate(arch))
            added += 1
    return env


@pytest.fixture(params=["nb201", "mobilenet"])
def evaluator(request, shared_data):
    return make_evaluator(request.param, shared_data)


def test_sb3_env_checker_passes_without_warnings(evaluator):
    """(Gymnasium's checker also asks that a reset with the same seed replays the same
    steps; this environment's population grows with every step, by design.)"""
    env = editor(evaluator)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(env)


def run_episodes(env, evaluations: int, seed: int) -> list:
    """The evaluations of random episodes (a dead end evaluates nothing)."""
    env.action_space.seed(seed)
    env.reset(seed=seed)
    found = []
    while len(found) < evaluations:
        env.reset()
        done = False
        while not done:
            _, _, done, _, info = env.step(env.action_space.sample())
        if info["evaluation"] is not None:
            found.append(info["evaluation"])
    return found


def test_every_proposal_is_new_and_within_the_target(shared_data):
    """Past the random population, the children of random edits are never repeats and keep
    the hard target whenever a repair can (the target is pixel3's 25th percentile)."""
    evaluator = make_evaluator("nb201", shared_data)
    env = editor(evaluator)
    found = run_episodes(env, 150, seed=3)
    assert evaluator.repeats == 0
    assert len({e.arch for e in found}) == 150
    assert np.mean([e.feasible for e in found]) >= 0.95
    # Random architectures of this space keep the target about a quarter of the time.
    assert np.mean([e.feasible for e in evaluator.history[:20]]) < 0.6


def test_an_edit_outside_the_target_is_repaired_before_it_is_evaluated(shared_data):
    evaluator = make_evaluator("mobilenet", shared_data)
    env = editor(evaluator, population=5, within=True)
    env.reset(seed=0)
    assert env._state.feasible
    target = evaluator.reward.target_ms
    spent = len(evaluator.history)
    for index in np.flatnonzero(env.action_masks()):
        child = env._child(env._state.arch, index)
        if evaluator.latency.latency_ms(child) > target and env._repairs(child).any():
            break
    else:
        pytest.skip("no edit of this parent breaks the target and can be repaired")
    observation, reward, done, _, _ = env.step(index)
    assert not done and reward == 0.0 and observation[-1] == 1.0
    assert len(evaluator.history) == spent  # nothing evaluated yet
    _, _, done, _, info = env.step(env.action_space.sample())
    assert done and len(evaluator.history) == spent + 1
    assert info["evaluation"].latency_ms <= target


def test_a_parent_outside_the_target_is_not_repaired_but_brought_closer(shared_data):
    """From the random start outside the target, the child is evaluated as it is (no
    repair), and it is closer to the target than its parent."""
    evaluator = make_evaluator("mobilenet", shared_data)
    env = editor(evaluator, population=5, within=False)
    env.action_space.seed(1)
    for episode in range(10):
        env.reset(seed=episode)
        parent = env._state.latency_ms
        spent = len(evaluator.history)
        _, _, done, _, info = env.step(env.action_space.sample())
        assert done and len(evaluator.history) == spent + 1
        assert info["evaluation"].latency_ms < parent


def test_outside_the_target_the_editor_ranks_by_a_gentler_penalty_and_a_lifted_offset(
    shared_data,
):
    """With `penalty_scale` 0.1 an architecture outside the target is ranked and rewarded
    by score - (1 - left) - 0.1 x its violation, where `left` is the share of the budget
    left: so a better score outweighs a little more latency, and at first a network
    outside the target can outrank one within it; once the budget is spent, none can.
    Within the target the editor's reward is the run's."""
    evaluator = make_evaluator("nb201", shared_data, budget=1000)
    env = editor(evaluator, population=40, penalty_scale=0.1)
    target = evaluator.reward.target_ms
    outside = [e for _, e in env.population if not e.feasible]
    within = [e for _, e in env.population if e.feasible]
    assert outside and within
    left = 1 - 40 / 1000
    for e in outside:
        expected = e.accuracy - (1 - left) - 0.1 * (e.latency_ms / target - 1)
        assert env._reward(e) == pytest.approx(expected)
    assert all(env._reward(e) == e.reward for e in within)
    # Some better-scoring but slower architecture that the run's reward ranks below
    # another, the editor ranks above it; and some outside outranks some within.
    pairs = [(a, b) for a in outside for b in outside if a.accuracy > b.accuracy]
    assert any(a.reward < b.reward and env._reward(a) > env._reward(b) for a, b in pairs)
    assert max(env._reward(e) for e in outside) > min(env._reward(e) for e in within)
    # With the budget spent, the offset is whole again: within outranks outside.
    rng = np.random.default_rng(1)
    while not evaluator.exhausted:
        evaluator.evaluate(Architecture.sample(rng, env.space))
    assert env._lift() == 0.0
    assert max(env._reward(e) for e in outside) < min(env._reward(e) for e in within)
    with pytest.raises(RlnasError, match="penalty_scale"):
        editor(evaluator, population=1, penalty_scale=0.0)


def test_same_seed_same_episodes(shared_data):
    first = run_episodes(editor(make_evaluator("nb201", shared_data)), 30, seed=5)
    second = run_episodes(editor(make_evaluator("nb201", shared_data)), 30, seed=5)
    other = run_episodes(editor(make_evaluator("nb201", shared_data)), 30, seed=6)
    assert [e.arch for e in first] == [e.arch for e in second]
    assert [e.arch for e in first] != [e.arch for e in other]


def test_masked_action_and_empty_population_are_refused(shared_data):
    evaluator = make_evaluator("nb201", shared_data)
    env = gym.make("rlnas/ArchEditor-v0", evaluator=evaluator).unwrapped
    with pytest.raises(RlnasError, match="population is empty"):
        env.reset()
    env = editor(evaluator)
    env.reset(seed=0)
    masked = int(np.flatnonzero(~env.action_masks())[0])
    with pytest.raises(RlnasError, match="masked"):
        env.step(masked)


def test_a_range_of_targets_draws_one_per_episode(shared_data):
    evaluator = make_evaluator("nb201", shared_data)
    env = gym.make("rlnas/ArchEditor-v0", evaluator=evaluator, targets=(4.0, 12.0)).unwrapped
    rng = np.random.default_rng(0)
    for _ in range(20):
        arch = Architecture.sample(rng, env.space)
        env.add(arch, evaluator.evaluate(arch))
    env.reset(seed=1)
    drawn, positions = [], []
    for _ in range(40):
        observation, _ = env.reset()
        drawn.append(env.reward.target_ms)
        positions.append(observation[-5])
        latency = observation[-4] * 4 * env.reward.target_ms
        assert latency == pytest.approx(env._state.latency_ms, rel=1e-5)
    assert 4.0 <= min(drawn) < 6.0 and 8.0 < max(drawn) <= 12.0
    assert np.argsort(drawn).tolist() == np.argsort(positions).tolist()
