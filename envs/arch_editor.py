"""ArchEditorEnv: one episode edits one architecture of the search's population.

The controller learns where to go next from what it has found, as local search
does (White et al., "Local search is state of the art for NAS benchmarks",
2020). The environment keeps a population: the most recent evaluated
architectures (aging, as regularized evolution). Each episode:

1. `reset()` draws a parent by tournament: the best reward of `sample_size`
   members drawn at random;
2. the agent sets one decision of the parent to another choice (actions are
   flattened (decision, choice) pairs);
3. if that edit takes a parent within the hard limits of the reward (the
   latency target in `hard` mode, the memory limit in every mode) outside them,
   the agent makes one more edit, a repair, which must bring the child back
   within the limits: so the search can cross a limit (e.g. switch to a slower
   activation and shrink a stage) without spending budget on networks the user
   cannot ship. Where no repair can, it is a dead end: nothing is evaluated,
   and the reward is the hard reward's floor, -1 - the relative violation;
4. the child is evaluated (one unit of budget), joins the population, and its
   reward is the episode's reward.

Under a uniform policy and a soft reward this is exactly regularized
evolution's mutation, so the controller starts as evolution and learns which
edits pay.

A parent outside the limits (the random start) is not repaired: its child,
which must be closer to the limits where any new one is, is evaluated as it
is. The tournament and the reward rank an architecture outside the limits by
the hard reward with its penalty scaled by `penalty_scale` and its -1 offset
lifted by the share of the budget left: score - (1 - left) - penalty_scale x
penalty x the violation. The mask makes every step come closer, and the
gentle slope makes the controller come closer by the edits that cost the
least score. Without the offset at first, a network just outside the limits
with a better score keeps its place against the first ones within them, so
the descent goes on from the best scores instead of from wherever it first
landed; as the budget is spent the offset comes back, and the networks within
the limits take the tournament, so the late proposals are within them (an
annealed penalty). (With the full slope and offset the violation outweighs
any score: the controller learned to cut the most latency per edit and landed
after 20-35 evaluations, by the edit that sheds the most, the first stage's
expansion, which at a tight target is worth more than any single edit can
later give back, and the first network to land took over the tournament
whatever its score, so every run stopped on the same plateau; BENCHMARKS.md,
issue 34.)

`action_masks()` (read by sb3-contrib's MaskablePPO) allows only edits that
change the architecture and lead to one not evaluated yet (so the controller
always proposes new architectures while the population has a new neighbour),
or, from a parent within the limits, outside them (to be repaired). Repairs
must lead to a new architecture within the limits. The limits are read from
the latency and parameter models, which cost no budget.

With a range of targets (`targets`), each episode draws its target
log-uniformly in the range; the parent's tournament, the limits and the reward
all follow it, and the target is in the observation: one policy for the whole
front.

Observation (float32, all in [0, 1]): the one-hot choices of the architecture
being edited; the episode's target's position in the range (log scale; 0 with
one target); its latency relative to the target (capped at 4, divided by 4);
whether it is within the limits; the parent's accuracy score; whether this
step is a repair.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlnas.envs.arch_builder import LATENCY_CAP, _ChoiceSpace
from rlnas.errors import RlnasError
from rlnas.model.arch import Architecture
from rlnas.model.space import Space, get_space
from rlnas.search.evaluate import Evaluation, Evaluator
from rlnas.search.strategies.settings import check_tournament

# Parents tried before an episode may propose an architecture already evaluated.
PARENT_TRIES = 20

# Architectures whose neighbours an editor keeps at hand (parents recur: a tournament picks
# the best of a small population again and again).
NEAR_KEPT = 256


class ArchEditorEnv(gym.Env[np.ndarray, np.int64]):
    """Edits architectures of a population, one decision per episode.

    Args:
        evaluator: Scores architectures (and holds the reward settings).
        space: The space; default the evaluator's parameter model's space.
        population_size: Members kept (the most recent evaluations).
        sample_size: Tournament size for the parent.
        targets: A range of latency targets (low, high) in ms: each episode draws its
            target log-uniformly in it, and the parent, limits and reward follow that
            target. None: the evaluator's target only.
        penalty_scale: Scales the reward's penalty for the tournament and the reward
            of architectures outside the hard limits (1: the run's own slope).
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium API)

    def __init__(
        self,
        evaluator: Evaluator,
        space: str | Space | None = None,
        population_size: int = 20,
        sample_size: int = 5,
        targets: tuple[float, float] | None = None,
        penalty_scale: float = 1.0,
    ):
        super().__init__()
        check_tournament(sample_size, population_size, "editor")
        if not 0 < penalty_scale < np.inf:
            raise RlnasError(f"the editor's penalty_scale must be > 0, got {penalty_scale}")
        self.evaluator = evaluator
        self.space = get_space(space) if space is not None else evaluator.params.space
        self.population_size = population_size
        self.sample_size = sample_size
        counts = np.asarray(self.space.choice_counts)
        self.offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.n_actions = int(counts.sum())
        # Flattened action -> (decision, choice).
        self.decision_of = np.repeat(np.arange(len(counts)), counts)
        self.choice_of = np.arange(self.n_actions) - self.offsets[self.decision_of]
        self.editable = counts[self.decision_of] > 1
        self.targets = targets
        # The editor's reward settings, and those of the current episode (its target).
        self.editor_reward = dataclasses.replace(
            evaluator.reward, penalty=evaluator.reward.penalty * penalty_scale
        )
        self.reward = self.editor_reward
        self.observation_space = spaces.Box(0.0, 1.0, (self.n_actions + 5,), np.float32)
        self.action_space = _ChoiceSpace(self.n_actions, self)
        self.population: deque[tuple[Architecture, Evaluation]] = deque()
        self._state: _State | None = None
        self._mask = np.ones(self.n_actions, bool)
        self._near: dict[tuple[int, ...], _Near] = {}

    def add(self, arch: Architecture, evaluation: Evaluation) -> None:
        """Adds an evaluated architecture to the population (the oldest leaves when full)."""
        self.population.append((arch, evaluation))
        if len(self.population) > self.population_size:
            self.population.popleft()

    def action_masks(self) -> np.ndarray:
        return self._mask

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if not self.population:
            raise RlnasError("the population is empty: add() evaluated architectures first")
        if self.targets is not None:
            low, high = np.log(self.targets)
            target = float(np.exp(self.np_random.uniform(low, high)))
            self.reward = dataclasses.replace(self.editor_reward, target_ms=target)
        for _ in range(PARENT_TRIES):
            parent, evaluation = self._tournament()
            self._mask = self._first_edits(parent, evaluation)
            if self._mask.any():
                break
        else:
            # Every neighbour of the parents tried is known: a repeat, served free.
            self._mask = self._changes(parent)
        feasible = self._violation(evaluation.latency_ms, evaluation.params_bytes) <= 0
        self._state = _State(parent, evaluation.latency_ms, feasible, evaluation)
        return self._observation(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        state = self._state
        if state is None:
            raise RlnasError("step() before reset()")
        index = int(action)
        if not (0 <= index < self.n_actions and self._mask[index]):
            raise RlnasError(f"action {index} is masked; act on action_masks()")
        child = self._child(state.arch, index)
        if state.feasible:
            latency, params_bytes = self._costs(child)
            violation = self._violation(latency, params_bytes)
            if violation > 0:
                # Outside the limits: one more edit must bring it back before it is evaluated.
                repairs = self._repairs(child)
                if repairs.any():
                    self._mask = repairs
                    self._state = _State(child, latency, False, state.parent, repairing=True)
                    return self._observation(), 0.0, False, False, {}
                # A dead end: nothing is evaluated, and the reward is the hard
                # reward's floor for this violation (no score can lift it).
                self.evaluator.nothing_new()
                self._state = None
                return self._observation(), -1.0 - violation, True, False, {"evaluation": None}
        if not self.evaluator.affordable(child):
            # Another environment stepped at the same time spent the last of the budget.
            self._state = None
            return self._observation(), 0.0, True, False, {"evaluation": None}
        evaluation = self.evaluator.evaluate(child)
        self.add(child, evaluation)
        self._state = None
        reward = self._reward(evaluation)
        return self._observation(), reward, True, False, {"evaluation": evaluation}

    def proposal(self, action: Any) -> Architecture | None:
        """The architecture `step(action)` will evaluate, or None where it evaluates none for
        sure (the edit leaves the limits: a repair or a dead end follows)."""
        state = self._state
        if state is None:
            return None
        child = self._child(state.arch, int(action))
        if not state.feasible or self._violation(*self._costs(child)) <= 0:
            return child
        return None

    def _tournament(self) -> tuple[Architecture, Evaluation]:
        size = min(self.sample_size, len(self.population))
        picks = self.np_random.choice(len(self.population), size, replace=False)
        return max((self.population[i] for i in picks), key=lambda m: self._reward(m[1]))

    def _reward(self, evaluation: Evaluation) -> float:
        """The editor's reward of an evaluated architecture at this episode's target: the
        run's reward with the penalty scaled and, outside the limits, `_lift()` added."""
        value = self.reward.reward(
            evaluation.accuracy,
            evaluation.latency_ms,
            evaluation.params_bytes,
            evaluation.utilization,
        )
        if self._violation(evaluation.latency_ms, evaluation.params_bytes) > 0:
            value += self._lift()
        return value

    def _lift(self) -> float:
        """How much of the hard reward's -1 offset outside the limits the editor drops now:
        all of it at the start of the search, none once the budget is spent."""
        return max(0.0, 1.0 - len(self.evaluator.history) / self.evaluator.budget)

    def _changes(self, arch: Architecture) -> np.ndarray:
        """The mask of edits that change `arch`."""
        return self.editable & (self.choice_of != np.asarray(arch.choices)[self.decision_of])

    def _child(self, parent: Architecture, index: int) -> Architecture:
        choices = list(parent.choices)
        choices[self.decision_of[index]] = int(self.choice_of[index])
        return Architecture(self.space, tuple(choices))

    def _costs(self, arch: Architecture) -> tuple[float, float]:
        """Latency (ms) and parameter bytes, from the models (no budget spent)."""
        params = self.evaluator.params.total(arch.choices)
        return self.evaluator.latency.latency_ms(arch), params * self.evaluator.bytes_per_param

    def _violation(self, latency_ms: float, params_bytes: float) -> float:
        """How far outside the reward's hard limits (<= 0: within them)."""
        reward = self.reward
        over = 0.0
        if reward.mode == "hard":
            over = max(over, latency_ms / reward.target_ms - 1.0)
        if reward.memory_bytes is not None:
            over = max(over, params_bytes / reward.memory_bytes - 1.0)
        return over

    def _neighbours(self, arch: Architecture) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per action: whether it changes `arch`, whether that child is already evaluated,
        and the child's violation of the limits (inf where it does not change `arch`)."""
        near = self._near_of(arch)
        changes = np.zeros(self.n_actions, bool)
        changes[near.actions] = True
        known = np.zeros(self.n_actions, bool)
        known[near.actions] = [name in self.evaluator.cache for name in near.names]
        violation = np.full(self.n_actions, np.inf)
        violation[near.actions] = [
            self._violation(latency, params)
            for latency, params in zip(near.latency_ms, near.params_bytes, strict=True)
        ]
        return changes, known, violation

    def _near_of(self, arch: Architecture) -> _Near:
        """The children of `arch` one edit away and their costs, kept for the last NEAR_KEPT
        architectures asked about (the costs never change within a search)."""
        near = self._near.get(arch.choices)
        if near is None:
            actions = np.flatnonzero(self._changes(arch))
            children = [self._child(arch, int(index)) for index in actions]
            costs = [self._costs(child) for child in children]
            near = _Near(
                actions,
                [str(child) for child in children],
                [latency for latency, _ in costs],
                [params for _, params in costs],
            )
            self._near[arch.choices] = near
            if len(self._near) > NEAR_KEPT:
                del self._near[next(iter(self._near))]
        return near

    def _first_edits(self, parent: Architecture, evaluation: Evaluation) -> np.ndarray:
        """Edits of a parent within the limits to a new architecture, or outside them
        (repaired next); of a parent outside them, edits to a new architecture closer to
        them (where any is)."""
        changes, known, after = self._neighbours(parent)
        before = self._violation(evaluation.latency_ms, evaluation.params_bytes)
        if before <= 0:
            return changes & (~known | (after > 0))
        new = changes & ~known
        closer = new & (after < before)
        return closer if closer.any() else new

    def _repairs(self, arch: Architecture) -> np.ndarray:
        """Edits of `arch` (outside the limits) to a new architecture within them."""
        changes, known, after = self._neighbours(arch)
        return changes & ~known & (after <= 0)

    def _observation(self) -> np.ndarray:
        obs = np.zeros(self.n_actions + 5, np.float32)
        state = self._state
        if state is None:
            return obs
        obs[self.offsets + np.asarray(state.arch.choices)] = 1.0
        target = self.reward.target_ms
        if self.targets is not None:
            low, high = np.log(self.targets)
            obs[-5] = (np.log(target) - low) / (high - low)
        obs[-4] = min(state.latency_ms / target, LATENCY_CAP) / LATENCY_CAP
        obs[-3] = float(state.feasible)
        obs[-2] = min(max(state.parent.accuracy, 0.0), 1.0)
        obs[-1] = float(state.repairing)
        return obs


@dataclass(frozen=True)
class _State:
    """The architecture being edited: the parent, or its edit outside the limits."""

    arch: Architecture
    latency_ms: float
    feasible: bool
    parent: Evaluation
    repairing: bool = False


@dataclass(frozen=True)
class _Near:
    """The children of an architecture one edit away.

    Attributes:
        actions: The actions that change it.
        names: Their children's canonical strings.
        latency_ms: Their children's latencies.
        params_bytes: Their children's parameter bytes.
    """

    actions: np.ndarray
    names: list[str]
    latency_ms: list[float]
    params_bytes: list[float]
