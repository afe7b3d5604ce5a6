"""Rewards of a finished architecture from its accuracy score A, latency L and target T.

What each trades:

- `hard` (the default; the constrained form): A if L <= T, else
  A - 1 - penalty * (L / T - 1). Every infeasible architecture scores below every
  feasible one, the more so the larger the violation, and among equal
  violations the more accurate is still preferred. It never trades the target
  for accuracy: the user's limit is kept, and the controller's editor repairs
  any edit that breaks it before it is evaluated (`rlnas.envs.arch_editor`).
- `mnas` (Tan et al., MnasNet, CVPR 2019, soft constraint): A * (L / T) ** w,
  w = -0.07. It trades latency for accuracy at a fixed rate: running 2x over
  the target costs 4.7% of the reward, 10% under it earns 0.7%. MnasNet chose
  w for ImageNet accuracies in a narrow band (about 70-80%), where +5% of A is
  a large gain; a proxy score is a 0-1 percentile whose random networks spread
  over the whole range, so under `mnas` the controller runs far over the
  target whenever that buys a higher score (on the default space it settled at
  13-15 ms for a 6 ms target). Use it only with accuracies, as a trade-off.
- `tunas` (Bender et al., TuNAS, CVPR 2020, absolute reward): A + beta * |L / T - 1|,
  beta = -0.07. It aims at the target from both sides (a network 10% under it
  loses as much as one 10% over); 2x over costs 0.07 of A, so the same caveat
  holds for percentile scores.

With an accuracy floor (`rlnas search --baseline A0`, the baseline-relative
search of Deci's AutoNAC: min latency subject to A >= (1 - drop) * A(a0)), the
roles swap: latency is the objective and accuracy the constraint. A feasible
architecture (A >= floor, L <= T, where T defaults to a0's own latency) scores
1 - L / T, in [0, 1): the faster, the better, linearly. An infeasible one scores
-1 - penalty * (shortfall + excess), with shortfall = 1 - A / floor and
excess = L / T - 1 (each where positive): below every feasible one, and the
closer to the limits, the higher.

An optional memory limit on parameter bytes is a hard constraint in every mode,
with the same penalty on its relative violation.

On an accelerator with a utilization model (a `systolic` table), two more
options work in every mode (U-Boost's loss is classification + lambda * latency
- beta * utilization):
- `utilization_weight` (beta >= 0) adds beta * U to the reward of a network
  within the hard limits (all networks under mnas and tunas), U its
  MAC-weighted utilization in [0, 1]: at beta = 0.1, +10 points of utilization
  are worth +0.01 of accuracy score (or of 1 - L / T in a baseline-relative
  search).
- `min_utilization` is a hard limit like the memory limit: below it the reward
  falls under every feasible one, by penalty * (1 - U / min_utilization).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from rlnas.errors import RlnasError, unknown

REWARD_MODES = ("mnas", "tunas", "hard")


@dataclass(frozen=True)
class RewardConfig:
    """How accuracy and latency combine into a reward.

    Attributes:
        mode: `mnas`, `tunas` or `hard`.
        target_ms: Latency target T in milliseconds.
        w: MnasNet exponent (negative).
        beta: TuNAS coefficient (negative).
        penalty: Slope of the hard penalty per unit of relative violation.
        memory_bytes: Limit on parameter bytes, or None.
        accuracy_floor: The least accuracy score allowed (the baseline-relative search:
            minimise latency above it; needs mode `hard`), or None.
        utilization_weight: beta of the utilization term (0: none).
        min_utilization: The least utilization allowed, in (0, 1], or None.
    """

    mode: str = "mnas"
    target_ms: float = 10.0
    w: float = -0.07
    beta: float = -0.07
    penalty: float = 1.0
    memory_bytes: float | None = None
    accuracy_floor: float | None = None
    utilization_weight: float = 0.0
    min_utilization: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in REWARD_MODES:
            raise RlnasError(unknown("reward mode", self.mode, REWARD_MODES))
        if not self.target_ms > 0:
            raise RlnasError(f"the latency target must be > 0 ms, got {self.target_ms}")
        if self.memory_bytes is not None and not self.memory_bytes > 0:
            raise RlnasError(f"the memory limit must be > 0 bytes, got {self.memory_bytes}")
        if self.accuracy_floor is not None and self.mode != "hard":
            raise RlnasError(
                f"an accuracy floor minimises latency under hard limits; reward mode "
                f"'{self.mode}' trades one for the other: use mode hard"
            )
        if self.accuracy_floor is not None and not self.accuracy_floor > 0:
            raise RlnasError(f"the accuracy floor must be > 0, got {self.accuracy_floor}")
        if not self.utilization_weight >= 0:
            raise RlnasError(f"the utilization weight must be >= 0, got {self.utilization_weight}")
        if self.min_utilization is not None and not 0 < self.min_utilization <= 1:
            raise RlnasError(
                f"the least utilization must be in (0, 1], got {self.min_utilization}; "
                "e.g. --min-utilization 0.3"
            )
        if self.w > 0 or self.beta > 0:
            warnings.warn(
                f"w={self.w}, beta={self.beta}: a positive value rewards slower networks",
                stacklevel=2,
            )

    @property
    def uses_utilization(self) -> bool:
        return self.utilization_weight > 0 or self.min_utilization is not None

    def feasible(
        self,
        latency_ms: float,
        params_bytes: float,
        accuracy: float | None = None,
        utilization: float | None = None,
    ) -> bool:
        """Within every hard limit (the accuracy floor and least utilization only where
        `accuracy` and `utilization` are given)."""
        if not self._utilization_ok(utilization):
            return False
        memory_ok = self.memory_bytes is None or params_bytes <= self.memory_bytes
        accuracy_ok = (
            self.accuracy_floor is None or accuracy is None or accuracy >= self.accuracy_floor
        )
        return memory_ok and accuracy_ok and (self.mode != "hard" or latency_ms <= self.target_ms)

    def _utilization_ok(self, utilization: float | None) -> bool:
        return (
            self.min_utilization is None
            or utilization is None
            or utilization >= self.min_utilization
        )

    def reward(
        self,
        accuracy: float,
        latency_ms: float,
        params_bytes: float = 0.0,
        utilization: float | None = None,
    ) -> float:
        """The reward (see module docstring); `utilization` is needed when the settings use it.

        Raises:
            RlnasError: The settings use utilization and none is given.
        """
        if self.uses_utilization and utilization is None:
            raise RlnasError(
                "the utilization term or --min-utilization needs a table with utilization "
                "(`rlnas tables estimate --device systolic`)"
            )
        ratio = latency_ms / self.target_ms
        lowest = accuracy - 1.0  # what any architecture outside a hard limit scores at most
        within = True  # inside the hard latency (and accuracy) limits of the mode
        if self.accuracy_floor is not None:
            shortfall = max(0.0, 1.0 - accuracy / self.accuracy_floor)
            excess = max(0.0, ratio - 1.0)
            lowest = -1.0
            within = shortfall == excess == 0.0
            value = 1.0 - ratio if within else -1.0 - self.penalty * (shortfall + excess)
        elif self.mode == "mnas":
            value = accuracy * ratio**self.w
        elif self.mode == "tunas":
            value = accuracy + self.beta * abs(ratio - 1.0)
        else:
            within = ratio <= 1.0
            value = accuracy if within else accuracy - 1.0 - self.penalty * (ratio - 1.0)
        if utilization is not None and within:
            # Only inside the limits, so that no utilization lifts a network over them.
            value += self.utilization_weight * utilization
        if self.memory_bytes is not None and params_bytes > self.memory_bytes:
            value = min(value, lowest) - self.penalty * (params_bytes / self.memory_bytes - 1.0)
        if not self._utilization_ok(utilization):
            assert self.min_utilization is not None and utilization is not None
            shortfall = 1.0 - utilization / self.min_utilization
            value = min(value, lowest) - self.penalty * shortfall
        return float(value)
