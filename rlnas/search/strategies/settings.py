"""The strategies' names and settings: light to import, so that configs and the CLI can name
them.

Adding a strategy is its module (a `Strategy` subclass), its line in `STRATEGIES` and, if it
has settings, their dataclass here and one field of `StrategySettings`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from rlnas.errors import RlnasError, unknown
from rlnas.model.space import Space

PPO_ENVS = ("editor", "builder")

# Name -> "module:Class", so that stable-baselines3 is imported only for `ppo`.
STRATEGIES: dict[str, str] = {
    "random": "rlnas.search.strategies.random_search:RandomSearch",
    "evolution": "rlnas.search.strategies.evolution:RegularizedEvolution",
    "ppo": "rlnas.search.strategies.ppo:PPOController",
}


def check_tournament(sample_size: int, population_size: int, owner: str) -> None:
    """Raises unless a tournament of `sample_size` fits a population of `population_size`."""
    if not 1 <= sample_size <= population_size:
        raise RlnasError(
            f"{owner} sample_size must be in 1..population_size, got sample_size="
            f"{sample_size}, population_size={population_size}"
        )


@dataclass(frozen=True)
class EvolutionSettings:
    """Regularized evolution's settings (Real et al. 2019).

    Attributes:
        population_size: Members kept (the initial ones are random).
        sample_size: Tournament size.
        parallel_children: Children bred at once, each by its own tournament in the
            population as it stands, and scored as one batch (in parallel on a Ray
            cluster); 1 is Real et al.'s sequential evolution. The same value gives the
            same evaluations with or without a cluster.
    """

    population_size: int = 20
    sample_size: int = 5
    parallel_children: int = 1

    def __post_init__(self) -> None:
        check_tournament(self.sample_size, self.population_size, "evolution")
        if not 1 <= self.parallel_children <= self.population_size:
            raise RlnasError(
                f"evolution parallel_children must be in 1..population_size, got "
                f"{self.parallel_children}: change --evolution-parallel-children"
            )

    def check(self, space: Space, target_range: bool = False) -> None:
        """Nothing to check against a space: the tournament was checked on creation."""


@dataclass(frozen=True)
class PPOSettings:
    """MaskablePPO settings (see stable-baselines3's PPO for each).

    Defaults were tuned on seeds 0-19 of NAS-Bench-201's three visible devices and
    of `nbmacro` (scripts/validate_search.py; reported on seeds 100-119 in
    BENCHMARKS.md). Monte-Carlo returns (gamma and gae_lambda 1) suit a reward that
    comes only at the end of an episode.

    Attributes:
        env: `editor` (default: each episode edits a member of the population, see
            `rlnas.envs.arch_editor`) or `builder` (each episode builds an
            architecture from scratch, one decision per step; MnasNet's design).
        population_size: Architectures the editor keeps (the most recent).
        sample_size: Tournament size of the editor's parent.
        penalty_scale: The editor ranks and rewards architectures outside the hard
            limits with the reward's penalty times this (and the reward's -1 offset
            lifted by the share of the budget left), so that it descends to them by
            the edits that cost the least score (1: by those that shed the most;
            tuned at 0.4x-0.8x MobileNetV2, BENCHMARKS.md, issue 34).
        episodes_per_update: Episodes per PPO update (n_steps = this x the episode
            length: 1 step for the editor, the number of decisions for the builder).
        parallel_episodes: Episodes played at once, in as many environments (the
            editor's share one population); their proposals are scored as one batch,
            in parallel on a Ray cluster. Each episode sees the population as the
            episodes before its step left it, so this changes the search: the same
            value gives the same evaluations with or without a cluster. Divides
            episodes_per_update.
        minibatches: Minibatches per epoch.
        n_epochs: Passes over each rollout.
        learning_rate: Adam step size.
        gamma: Discount; 1.0 since the only reward is terminal.
        gae_lambda: GAE parameter.
        ent_coef: Entropy bonus, keeps exploring.
        clip_range: PPO clipping.
        net_arch: Hidden layer sizes of the policy and value networks.
    """

    env: str = "editor"
    population_size: int = 20
    sample_size: int = 10
    penalty_scale: float = 0.3
    episodes_per_update: int = 10
    parallel_episodes: int = 1
    minibatches: int = 1
    n_epochs: int = 4
    learning_rate: float = 1e-3
    gamma: float = 1.0
    gae_lambda: float = 1.0
    ent_coef: float = 0.05
    clip_range: float = 0.2
    net_arch: tuple[int, ...] = field(default=(64, 64))

    def __post_init__(self) -> None:
        if self.env not in PPO_ENVS:
            raise RlnasError(unknown("PPO environment", self.env, PPO_ENVS))
        check_tournament(self.sample_size, self.population_size, "ppo")
        if not 0 < self.penalty_scale < float("inf"):
            raise RlnasError(
                f"ppo penalty_scale must be > 0, got {self.penalty_scale}: change "
                "--ppo-penalty-scale"
            )

    def check(self, space: Space, target_range: bool = False) -> None:
        """Raises if these settings cannot search `space` (with a range of targets)."""
        self.kwargs(self.episode_length(space))  # raises if the rollout does not split
        if target_range and self.env != "editor":
            raise RlnasError("a latency range needs the editor environment (--ppo-env editor)")

    def episode_length(self, space: Space) -> int:
        """Steps per episode (the editor's second step, a repair, is not counted)."""
        return 1 if self.env == "editor" else space.num_decisions

    def kwargs(self, episode_length: int) -> dict[str, Any]:
        """Keyword arguments of MaskablePPO for episodes of `episode_length` steps."""
        values = asdict(self)
        for own in ("env", "population_size", "sample_size", "penalty_scale"):
            values.pop(own)
        episodes, parallel = values.pop("episodes_per_update"), values.pop("parallel_episodes")
        if parallel < 1 or episodes % parallel:
            raise RlnasError(
                f"parallel_episodes must divide episodes_per_update, got parallel_episodes="
                f"{parallel}, episodes_per_update={episodes}: change --ppo-parallel-episodes "
                "or --ppo-episodes-per-update"
            )
        # A rollout holds `episodes` episodes in all; n_steps is per environment.
        steps = episodes * episode_length
        minibatches = values.pop("minibatches")
        if steps % minibatches:
            raise RlnasError(
                f"a rollout's steps must split into minibatches, got {steps} steps, "
                f"minibatches={minibatches}"
            )
        net_arch = list(values.pop("net_arch"))
        return {
            **values,
            "n_steps": steps // parallel,
            "batch_size": steps // minibatches,
            "policy_kwargs": {"net_arch": net_arch},
        }


@dataclass(frozen=True)
class StrategySettings:
    """The settings of the strategies that have any, one field per strategy (its
    `settings_field`; a group: its options keep their prefix, `--ppo-learning-rate`).

    Attributes:
        evolution: Settings of the evolution strategy.
        ppo: Settings of the PPO controller.
    """

    INLINE: ClassVar[bool] = True

    evolution: EvolutionSettings = field(default_factory=EvolutionSettings)
    ppo: PPOSettings = field(default_factory=PPOSettings)
