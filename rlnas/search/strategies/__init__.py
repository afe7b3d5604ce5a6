"""Search strategies: one interface, one budget (unique architectures evaluated).

A strategy proposes architectures and hands them to an `Evaluator`, which
serves repeats from its cache for free and stops new evaluations once the
budget is spent. The base class is in `base`; the registry (names to
"module:Class" strings, so that stable-baselines3 is imported only for `ppo`)
and the settings are in `settings`. A strategy says what it can do by class
attributes (`settings_field`, `accepts_target_range`, `logs_training`), never by
its name.
"""

from __future__ import annotations

import importlib

from rlnas.errors import RlnasError, unknown
from rlnas.search.strategies.base import Progress, Strategy, mutate
from rlnas.search.strategies.settings import (
    PPO_ENVS,
    STRATEGIES,
    EvolutionSettings,
    PPOSettings,
    StrategySettings,
    check_tournament,
)

__all__ = [
    "PPO_ENVS",
    "STRATEGIES",
    "EvolutionSettings",
    "PPOSettings",
    "Progress",
    "Strategy",
    "StrategySettings",
    "check_tournament",
    "get_strategy",
    "mutate",
]


def get_strategy(name: str) -> type[Strategy]:
    if name not in STRATEGIES:
        raise RlnasError(unknown("strategy", name, STRATEGIES))
    module_name, class_name = STRATEGIES[name].split(":")
    cls: type[Strategy] = getattr(importlib.import_module(module_name), class_name)
    return cls
