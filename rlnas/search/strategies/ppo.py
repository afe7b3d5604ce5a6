"""The PPO controller: sb3-contrib's MaskablePPO acting in ArchEditorEnv (or ArchBuilderEnv).

By default one episode edits one architecture of a population (started with
`population_size` random ones, and started again every `restart_every`
evaluations); with `env="builder"` one episode builds one architecture from
scratch. The reward is the environment's terminal reward.
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
from collections.abc import Callable, Iterator, Sequence

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
    # The editor's source of starting architectures, and the evaluations spent at which its
    # population starts again.
    _rng: np.random.Generator
    _restart_at: int

    def run(self, progress: Progress | None = None) -> None:
        settings: PPOSettings = self.settings or PPOSettings()
        with private_random_state():
            envs: list[ArchBuilderEnv] | list[ArchEditorEnv]
            restart = None
            if settings.env == "builder":
                envs = [
                    ArchBuilderEnv(self.evaluator, self.space)
                    for _ in range(settings.parallel_episodes)
                ]
            else:
                envs = self._editors(progress)
                restart = functools.partial(self._restart, envs[0], progress)
            episode_length = settings.episode_length(self.space)
            self.model = MaskablePPO(
                "MlpPolicy",
                _BatchedEnvs(envs, self.evaluator, restart),
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
        (or with `start` and its near neighbours)."""
        settings: PPOSettings = self.settings or PPOSettings()
        envs = [
            ArchEditorEnv(
                self.evaluator,
                self.space,
                settings.population_size,
                settings.sample_size,
                self.targets,
            )
            for _ in range(settings.parallel_episodes)
        ]
        for other in envs[1:]:
            other.population = envs[0].population
        self._rng = np.random.default_rng(self.seed)
        self._restart_at = settings.restart_every
        self._populate(envs[0], progress)
        return envs

    def _populate(self, editor: ArchEditorEnv, progress: Progress | None) -> None:
        """Fills the (shared) population with `population_size` starting architectures,
        scored as one batch."""
        first = [self.initial(self._rng, n) for n in range(editor.population_size)]
        self.evaluator.prefetch(first)
        for arch in first[: self.max_proposals]:
            if self.done:
                break
            editor.add(arch, self.evaluator.evaluate(arch))
            self._report(progress)

    def _restart(self, editor: ArchEditorEnv, progress: Progress | None) -> bool:
        """Starts the population again once `restart_every` evaluations have been spent since
        it started, while at least as many remain; whether it did."""
        settings: PPOSettings = self.settings or PPOSettings()
        every, spent = settings.restart_every, len(self.evaluator.history)
        if not every or spent < self._restart_at or self.evaluator.budget - spent < every:
            return False
        self._restart_at = spent + every
        editor.population.clear()
        self._populate(editor, progress)
        return True


class _BatchedEnvs(DummyVecEnv):
    """Environments stepped one after the other (stable-baselines3's DummyVecEnv, each
    behind the Monitor it would add itself), whose proposals of a step are first handed to
    the evaluator as one batch. After a step that ended every episode, `restart()` may start
    the population again (it says whether it did): the next episodes then draw their
    parents from the new one."""

    def __init__(
        self,
        envs: Sequence[ArchBuilderEnv | ArchEditorEnv],
        evaluator: Evaluator,
        restart: Callable[[], bool] | None = None,
    ):
        super().__init__([functools.partial(Monitor, env) for env in envs])
        self.inner = list(envs)
        self.evaluator = evaluator
        self.restart = restart

    def step_wait(self) -> VecEnvStepReturn:
        proposals = [
            env.proposal(action) for env, action in zip(self.inner, self.actions, strict=True)
        ]
        self.evaluator.prefetch([p for p in proposals if p is not None])
        obs, rewards, dones, infos = super().step_wait()
        if dones.all() and self.restart is not None and self.restart():
            # Each next episode was reset on the old population: reset it on the new one.
            for index, env in enumerate(self.envs):
                first, self.reset_infos[index] = env.reset()
                self._save_obs(index, first)
            obs = self._obs_from_buf()
        return obs, rewards, dones, infos


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
