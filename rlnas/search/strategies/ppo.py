"""The PPO controller: sb3-contrib's MaskablePPO acting in ArchEditorEnv (or ArchBuilderEnv).

By default one episode edits one architecture of a population (started with
`population_size` random ones); with `env="builder"` one episode builds one
architecture from scratch. The reward is the environment's terminal reward.
Training stops when the evaluator's budget is spent. PPO is customised only
through its keyword arguments (never forked).

With `parallel_episodes` n, n environments (the editor's sharing one
population) play in step, in a stable-baselines3 DummyVecEnv: before each step
the architectures it will evaluate are handed to the evaluator as one batch
(`Evaluator.prefetch`, parallel tasks on a Ray cluster), then the environments
step one after the other as without a cluster.
"""

from __future__ import annotations

import contextlib
import functools
import random
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from sb3_contrib import MaskablePPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from rlnas.envs.arch_builder import ArchBuilderEnv
from rlnas.envs.arch_editor import ArchEditorEnv
from rlnas.files import atomic_write
from rlnas.search.evaluate import Evaluator
from rlnas.search.strategies.base import Progress, Strategy
from rlnas.search.strategies.settings import PPOSettings


class _StopOnBudget(BaseCallback):
    def __init__(self, strategy: PPOController, progress: Progress | None):
        super().__init__()
        self.strategy = strategy
        self.progress = progress
        self.episodes = 0

    def _on_step(self) -> bool:
        dones = self.locals.get("dones")
        if dones is not None and dones.any():
            self.episodes += int(dones.sum())
            self.strategy._report(self.progress)
        return not (self.strategy.done or self.episodes >= self.strategy.max_proposals)


class PPOController(Strategy):
    """MaskablePPO controller.

    Args:
        settings: PPO settings.
        checkpoint: Where to save the trained controller (a stable-baselines3 .zip).
    """

    name = "ppo"
    settings_field = "ppo"
    accepts_target_range = True
    logs_training = True

    model: MaskablePPO | None = None

    def run(self, progress: Progress | None = None) -> None:
        settings: PPOSettings = self.settings or PPOSettings()
        with private_random_state():
            envs: list[ArchBuilderEnv] | list[ArchEditorEnv]
            if settings.env == "builder":
                envs = [
                    ArchBuilderEnv(self.evaluator, self.space)
                    for _ in range(settings.parallel_episodes)
                ]
            else:
                envs = self._editors(progress)
            episode_length = settings.episode_length(self.space)
            self.model = MaskablePPO(
                "MlpPolicy",
                _BatchedEnvs(envs, self.evaluator),
                seed=self.seed,
                device="cpu",
                verbose=0,
                tensorboard_log=str(self.tensorboard) if self.tensorboard else None,
                **settings.kwargs(episode_length),
            )
            if self.tensorboard is None:
                # stable-baselines3's default logger makes an empty SB3-<time> folder in the
                # system temp folder on every run: this one writes nowhere.
                self.model.set_logger(Logger(folder=None, output_formats=[]))
            if not self.done:
                steps = self.max_proposals * episode_length
                self.model.learn(total_timesteps=steps, callback=_StopOnBudget(self, progress))
        if self.checkpoint is not None:
            model = self.model
            atomic_write(self.checkpoint, lambda tmp: model.save(tmp))

    def _editors(self, progress: Progress | None) -> list[ArchEditorEnv]:
        """The editing environments, their one population started with random architectures
        (or with `start` and its near neighbours), scored as one batch."""
        settings: PPOSettings = self.settings or PPOSettings()
        envs = [
            ArchEditorEnv(
                self.evaluator,
                self.space,
                settings.population_size,
                settings.sample_size,
                self.targets,
                settings.penalty_scale,
            )
            for _ in range(settings.parallel_episodes)
        ]
        for other in envs[1:]:
            other.population = envs[0].population
        rng = np.random.default_rng(self.seed)
        first = [self.initial(rng, n) for n in range(settings.population_size)]
        self.evaluator.prefetch(first)
        for arch in first[: self.max_proposals]:
            if self.done:
                break
            envs[0].add(arch, self.evaluator.evaluate(arch))
            self._report(progress)
        return envs


class _BatchedEnvs(DummyVecEnv):
    """Environments stepped one after the other (stable-baselines3's DummyVecEnv, each
    behind the Monitor it would add itself), whose proposals of a step are first handed to
    the evaluator as one batch."""

    def __init__(self, envs: Sequence[ArchBuilderEnv | ArchEditorEnv], evaluator: Evaluator):
        super().__init__([functools.partial(Monitor, env) for env in envs])
        self.inner = list(envs)
        self.evaluator = evaluator

    def step_wait(self) -> VecEnvStepReturn:
        proposals = [
            env.proposal(action) for env, action in zip(self.inner, self.actions, strict=True)
        ]
        self.evaluator.prefetch([p for p in proposals if p is not None])
        return super().step_wait()


@contextlib.contextmanager
def private_random_state() -> Iterator[None]:
    """Gives stable-baselines3 the global random state and restores it afterwards.

    stable-baselines3 seeds and samples from the global `random`, NumPy and torch
    generators; inside this block they belong to the controller alone (whatever
    else runs there restores what it draws, e.g. `build_network(seed=)`), and the
    caller's state is as it was once the block ends.
    """
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
