"""Search strategies: one interface, one budget (unique architectures evaluated).

A strategy proposes architectures and hands them to an `Evaluator`, which
serves repeats from its cache for free and stops new evaluations once the
budget is spent. The base class is in `base`, the settings in `settings`; the
registry maps names to "module:Class" strings so that stable-baselines3 is
imported only for `ppo`. A strategy says what it can do by class attributes
(`settings_field`, `accepts_target_range`, `logs_training`), never by its name.
"""

from __future__ import annotations

import importlib

from rlnas.errors import RlnasError, unknown
from rlnas.search.strategies.base import Progress, Strategy, mutate
from rlnas.search.strategies.settings import (
    PPO_ENVS,
    EvolutionSettings,
    PPOSettings,
    check_tournament,
)

__all__ = [
    "PPO_ENVS",
    "STRATEGIES",
    "EvolutionSettings",
    "PPOSettings",
    "Progress",
    "Strategy",
    "check_tournament",
    "get_strategy",
    "mutate",
]

STRATEGIES: dict[str, str] = {
    "random": "rlnas.search.strategies.random_search:RandomSearch",
    "evolution": "rlnas.search.strategies.evolution:RegularizedEvolution",
    "ppo": "rlnas.search.strategies.ppo:PPOController",
}


def get_strategy(name: str) -> type[Strategy]:
    if name not in STRATEGIES:
        raise RlnasError(unknown("strategy", name, STRATEGIES))
    module_name, class_name = STRATEGIES[name].split(":")
    cls: type[Strategy] = getattr(importlib.import_module(module_name), class_name)
    return cls
