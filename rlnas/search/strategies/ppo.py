"""The PPO controller: sb3-contrib's MaskablePPO acting in ArchEditorEnv (or ArchBuilderEnv).

By default one episode edits one architecture of a population (started with
`population_size` random ones); with `env="builder"` one episode builds one
architecture from scratch. The reward is the environment's terminal reward.
Training stops when the evaluator's budget is spent. PPO is customised only
through its keyword arguments (never forked).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from sb3_contrib import MaskablePPO
from stable_baselines3.common.callbacks import BaseCallback

from rlnas.envs.arch_builder import ArchBuilderEnv
from rlnas.envs.arch_editor import ArchEditorEnv
from rlnas.files import atomic_write
from rlnas.model.space import Space
from rlnas.search.evaluate import Evaluator
from rlnas.search.strategies import PPOSettings, Progress, Strategy


class _StopOnBudget(BaseCallback):
    def __init__(self, strategy: PPOController, progress: Progress | None):
        super().__init__()
        self.strategy = strategy
        self.progress = progress
        self.episodes = 0

    def _on_step(self) -> bool:
        dones = self.locals.get("dones")
        if dones is not None and bool(dones[0]):
            self.episodes += 1
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

    def __init__(
        self,
        evaluator: Evaluator,
        space: Space,
        seed: int = 0,
        settings: PPOSettings | None = None,
        checkpoint: Path | None = None,
    ):
        super().__init__(evaluator, space, seed, settings, checkpoint)
        self.settings: PPOSettings = settings or PPOSettings()
        self.model: MaskablePPO | None = None

    def run(self, progress: Progress | None = None) -> None:
        settings = self.settings
        with private_random_state():
            env: ArchBuilderEnv | ArchEditorEnv
            if settings.env == "builder":
                env = ArchBuilderEnv(self.evaluator, self.space)
            else:
                env = self._editor(progress)
            episode_length = settings.episode_length(self.space)
            self.model = MaskablePPO(
                "MlpPolicy",
                env,
                seed=self.seed,
                device="cpu",
                verbose=0,
                tensorboard_log=str(self.tensorboard) if self.tensorboard else None,
                **settings.kwargs(episode_length),
            )
            if not self.done:
                steps = self.max_proposals * episode_length
                self.model.learn(total_timesteps=steps, callback=_StopOnBudget(self, progress))
        if self.checkpoint is not None:
            model = self.model
            atomic_write(self.checkpoint, lambda tmp: model.save(tmp))

    def _editor(self, progress: Progress | None) -> ArchEditorEnv:
        """The editing environment, its population started with random architectures (or with
        `start` and its near neighbours)."""
        settings = self.settings
        env = ArchEditorEnv(
            self.evaluator,
            self.space,
            settings.population_size,
            settings.sample_size,
            self.targets,
        )
        rng = np.random.default_rng(self.seed)
        for _ in range(self.max_proposals):
            if self.done or len(env.population) >= settings.population_size:
                break
            arch = self.initial(rng, len(env.population))
            env.add(arch, self.evaluator.evaluate(arch))
            self._report(progress)
        return env


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
