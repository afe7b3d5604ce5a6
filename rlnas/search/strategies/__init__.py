"""Search strategies: one interface, one budget (unique architectures evaluated).

A strategy proposes architectures and hands them to an `Evaluator`, which
serves repeats from its cache for free and stops new evaluations once the
budget is spent. The registry maps names to "module:Class" strings so that
stable-baselines3 is imported only for `ppo`; the strategies' settings live
here, light to import, so that configs and the CLI can name them.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rlnas.errors import RlnasError, unknown
from rlnas.model.arch import Architecture
from rlnas.model.space import Space

if TYPE_CHECKING:
    from rlnas.search.evaluate import Evaluator

STRATEGIES: dict[str, str] = {
    "random": "rlnas.search.strategies.random_search:RandomSearch",
    "evolution": "rlnas.search.strategies.evolution:RegularizedEvolution",
    "ppo": "rlnas.search.strategies.ppo:PPOController",
}

Progress = Callable[[int, int], None]

PPO_ENVS = ("editor", "builder")

# Proposals in a row without a new architecture after which a search stops.
PATIENCE = 1000

# Edits of `Strategy.start` for the other members of a starting population (at most).
START_EDITS = 3


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

    def episode_length(self, space: Space) -> int:
        """Steps per episode (the editor's second step, a repair, is not counted)."""
        return 1 if self.env == "editor" else space.num_decisions

    def kwargs(self, episode_length: int) -> dict[str, Any]:
        """Keyword arguments of MaskablePPO for episodes of `episode_length` steps."""
        values = asdict(self)
        for own in ("env", "population_size", "sample_size"):
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


class Strategy(ABC):
    """Proposes architectures until the evaluator's budget is spent.

    Args:
        evaluator: Evaluates (and caches, and counts) architectures.
        space: The space to search.
        seed: The strategy's only source of randomness.
        settings: The strategy's own settings (its `SearchConfig` field `settings_field`).
        checkpoint: Where a strategy with a learned state saves it.
    """

    name: str = ""
    # The SearchConfig field that holds this strategy's settings, if it has any.
    settings_field: str | None = None

    def __init__(
        self,
        evaluator: Evaluator,
        space: Space,
        seed: int = 0,
        settings: Any = None,
        checkpoint: Path | None = None,
    ):
        self.evaluator = evaluator
        self.space = space
        self.seed = seed
        self.checkpoint = checkpoint
        # Where a learning strategy logs its training for TensorBoard (None: nowhere).
        self.tensorboard: Path | None = None
        # A range of latency targets (low, high) ms for a strategy that learns them all.
        self.targets: tuple[float, float] | None = None
        # Where the search starts (a baseline-relative search's a0), or None: anywhere.
        self.start: Architecture | None = None
        # Repeats are free, so a strategy that keeps proposing known architectures would
        # never spend its budget: it stops after `patience` proposals in a row that bring
        # nothing new, and in any case after `max_proposals`.
        self.patience = PATIENCE
        self.max_proposals = 50 * evaluator.budget + 1000

    @property
    def stalled(self) -> bool:
        """`patience` proposals in a row brought no new architecture."""
        return self.evaluator.repeats >= self.patience

    @property
    def done(self) -> bool:
        """The budget is spent or the search has stalled."""
        return self.evaluator.exhausted or self.stalled

    def stop_reason(self) -> str | None:
        """Why the search ended before spending its budget, or None if it spent it."""
        if self.evaluator.exhausted:
            return None
        if self.stalled:
            return (
                f"{self.patience} proposals in a row brought no new architecture (the "
                f"{self.name} search converged)"
            )
        return f"{self.max_proposals} proposals reached"

    @abstractmethod
    def run(self, progress: Progress | None = None) -> None:
        """Searches until `done` (or `max_proposals` is reached)."""

    def initial(self, rng: np.random.Generator, number: int) -> Architecture:
        """The `number`-th member (0-based) of a starting population: uniformly random; with
        `start`, `start` itself and then `start` with 1..START_EDITS random edits."""
        if self.start is None:
            return Architecture.sample(rng, self.space)
        arch = self.start
        for _ in range(int(rng.integers(1, START_EDITS + 1)) if number else 0):
            arch = mutate(arch, rng)
        return arch

    def _report(self, progress: Progress | None) -> None:
        if progress is not None:
            progress(len(self.evaluator.history), self.evaluator.budget)


def mutate(arch: Architecture, rng: np.random.Generator) -> Architecture:
    """`arch` with one decision set to another choice (uniformly: decision, then choice)."""
    counts = arch.space.choice_counts
    positions = [p for p, c in enumerate(counts) if c > 1]
    position = int(rng.choice(positions))
    choices = list(arch.choices)
    other = int(rng.integers(counts[position] - 1))
    choices[position] = other if other < choices[position] else other + 1
    return Architecture(arch.space, tuple(choices))


def get_strategy(name: str) -> type[Strategy]:
    if name not in STRATEGIES:
        raise RlnasError(unknown("strategy", name, STRATEGIES))
    module_name, class_name = STRATEGIES[name].split(":")
    cls: type[Strategy] = getattr(importlib.import_module(module_name), class_name)
    return cls
