"""The PPO controller: sb3-contrib's MaskablePPO acting in ArchBuilderEnv.

One episode builds one architecture; its reward is the terminal reward of the
environment. Training stops when the evaluator's budget is spent. PPO is
customised only through its keyword arguments (never forked).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sb3_contrib import MaskablePPO
from stable_baselines3.common.callbacks import BaseCallback

from rlnas.envs.arch_builder import ArchBuilderEnv
from rlnas.errors import RlnasError
from rlnas.model.space import Space
from rlnas.search.evaluate import Evaluator
from rlnas.search.strategies import Progress, Strategy


@dataclass(frozen=True)
class PPOSettings:
    """MaskablePPO settings (see stable-baselines3's PPO for each).

    Defaults were chosen on NAS-Bench-201 (scripts/validate_search.py, BENCHMARKS.md):
    Monte-Carlo returns (gae_lambda 1) suit a reward that comes only at the end of an
    episode, and a strong entropy bonus keeps the controller from settling early.

    Attributes:
        episodes_per_update: Architectures built per PPO update (n_steps = this x the
            number of decisions, so updates hold whole episodes).
        minibatches: Minibatches per epoch.
        n_epochs: Passes over each rollout.
        learning_rate: Adam step size.
        gamma: Discount; 1.0 since the only reward is terminal.
        gae_lambda: GAE parameter.
        ent_coef: Entropy bonus, keeps exploring.
        clip_range: PPO clipping.
        net_arch: Hidden layer sizes of the policy and value networks.
    """

    episodes_per_update: int = 10
    minibatches: int = 1
    n_epochs: int = 10
    learning_rate: float = 1e-3
    gamma: float = 1.0
    gae_lambda: float = 1.0
    ent_coef: float = 0.05
    clip_range: float = 0.2
    net_arch: tuple[int, ...] = field(default=(64, 64))

    def kwargs(self, episode_length: int) -> dict[str, Any]:
        """Keyword arguments of MaskablePPO for episodes of `episode_length` steps."""
        values = asdict(self)
        n_steps = values.pop("episodes_per_update") * episode_length
        minibatches = values.pop("minibatches")
        if n_steps % minibatches:
            raise RlnasError(
                f"n_steps must split into minibatches, got n_steps={n_steps}, "
                f"minibatches={minibatches}"
            )
        net_arch = list(values.pop("net_arch"))
        return {
            **values,
            "n_steps": n_steps,
            "batch_size": n_steps // minibatches,
            "policy_kwargs": {"net_arch": net_arch},
        }


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
        return not (
            self.strategy.evaluator.exhausted or self.episodes >= self.strategy.max_proposals
        )


class PPOController(Strategy):
    """MaskablePPO controller.

    Args:
        settings: PPO settings.
        checkpoint: Where to save the trained controller (a stable-baselines3 .zip).
    """

    name = "ppo"

    def __init__(
        self,
        evaluator: Evaluator,
        space: Space,
        seed: int = 0,
        settings: PPOSettings | None = None,
        checkpoint: Path | None = None,
    ):
        super().__init__(evaluator, space, seed)
        self.settings = settings or PPOSettings()
        self.checkpoint = checkpoint
        self.model: MaskablePPO | None = None

    def run(self, progress: Progress | None = None) -> None:
        env = ArchBuilderEnv(self.evaluator, self.space)
        self.model = MaskablePPO(
            "MlpPolicy",
            env,
            seed=self.seed,
            device="cpu",
            verbose=0,
            **self.settings.kwargs(self.space.num_decisions),
        )
        steps = self.max_proposals * self.space.num_decisions
        self.model.learn(total_timesteps=steps, callback=_StopOnBudget(self, progress))
        if self.checkpoint is not None:
            self.model.save(self.checkpoint)
