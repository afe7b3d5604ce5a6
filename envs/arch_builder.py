"""ArchBuilderEnv: one episode builds one architecture, one step takes one decision.

Actions are choice indices of the current decision; the action space is
`Discrete(max choices)` and `action_masks()` (read by sb3-contrib's
MaskablePPO) marks which are valid at the current position. A masked action is
never taken by a masked agent; the action space's own `sample()` also draws only
valid ones, and a step with an invalid action raises instead of being punished.

Observation (float32, all in [0, 1]): the one-hot choices taken so far, the
one-hot position, and the latency accumulated so far relative to the target
(L / T, capped at 4, divided by 4). The terminal reward comes from an
`Evaluator` (accuracy score, latency, parameters, reward mode); intermediate
rewards are 0.
"""

from __future__ import annotations

import weakref
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlnas.errors import RlnasError
from rlnas.model.arch import Architecture
from rlnas.model.space import Space, get_space
from rlnas.search.evaluate import Evaluator

LATENCY_CAP = 4.0


class _Masked(Protocol):
    def action_masks(self) -> np.ndarray: ...


class _ChoiceSpace(spaces.Discrete):
    """Discrete actions whose default `sample()` respects the environment's current mask
    (shared with the editor environment)."""

    def __init__(self, n: int, env: _Masked):
        super().__init__(n)
        self._env = weakref.ref(env)

    def __reduce__(self) -> tuple[Any, ...]:
        # Saved (e.g. in a controller checkpoint) as the plain Discrete space it extends.
        return (spaces.Discrete, (int(self.n),))

    def sample(self, mask: Any = None, probability: Any = None) -> np.int64:
        env = self._env()
        if mask is None and probability is None and env is not None:
            mask = env.action_masks().astype(np.int8)
        return super().sample(mask=mask, probability=probability)


class ArchBuilderEnv(gym.Env[np.ndarray, np.int64]):
    """Builds architectures of a space decision by decision.

    Args:
        evaluator: Scores finished architectures (and holds the latency target).
        space: The space; default the evaluator's latency model's space.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium API)

    def __init__(self, evaluator: Evaluator, space: str | Space | None = None):
        super().__init__()
        self.evaluator = evaluator
        self.space = get_space(space) if space is not None else evaluator.params.space
        counts = self.space.choice_counts
        self.counts = np.asarray(counts)
        self.max_choices = int(self.counts.max())
        self.offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        n = self.space.num_decisions
        self._position_offset = int(sum(counts))
        self._latency_index = self._position_offset + n + 1
        self.observation_space = spaces.Box(0.0, 1.0, (self._latency_index + 1,), np.float32)
        self.action_space = _ChoiceSpace(self.max_choices, self)
        self._target = evaluator.reward.target_ms
        self._masks = np.arange(self.max_choices)[None, :] < self.counts[:, None]
        self._obs = np.zeros(self.observation_space.shape, np.float32)
        self._choices: list[int] = []
        self._latency = 0.0

    def action_masks(self) -> np.ndarray:
        position = min(len(self._choices), self.space.num_decisions - 1)
        return self._masks[position]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._choices = []
        self._latency = 0.0
        self._obs[:] = 0.0
        self._obs[self._position_offset] = 1.0
        return self._obs.copy(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        position = len(self._choices)
        if position >= self.space.num_decisions:
            raise RlnasError("step() after the architecture is complete; call reset()")
        choice = int(action)
        if not 0 <= choice < self.counts[position]:
            decision = self.space.decisions[position]
            raise RlnasError(
                f"action {choice} is masked at position {position} ({decision.name}, "
                f"{self.counts[position]} choices); act on action_masks()"
            )
        self._choices.append(choice)
        obs = self._obs
        obs[self.offsets[position] + choice] = 1.0
        obs[self._position_offset + position] = 0.0
        obs[self._position_offset + position + 1] = 1.0
        self._latency += self.evaluator.latency.increment_ms(position, self._choices)
        obs[self._latency_index] = min(self._latency / self._target, LATENCY_CAP) / LATENCY_CAP
        if len(self._choices) < self.space.num_decisions:
            return obs.copy(), 0.0, False, False, {}
        arch = Architecture(self.space, tuple(self._choices))
        if not self.evaluator.affordable(arch):
            # Another environment stepped at the same time spent the last of the budget.
            return obs.copy(), 0.0, True, False, {"evaluation": None}
        result = self.evaluator.evaluate(arch)
        return obs.copy(), result.reward, True, False, {"evaluation": result}

    def proposal(self, action: Any) -> Architecture | None:
        """The architecture `step(action)` will evaluate, or None (not the last decision)."""
        if len(self._choices) != self.space.num_decisions - 1:
            return None
        return Architecture(self.space, (*self._choices, int(action)))
