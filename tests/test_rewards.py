from __future__ import annotations

import pytest

from rlnas.errors import RlnasError
from rlnas.search.rewards import RewardConfig


def test_mnas():
    config = RewardConfig("mnas", target_ms=10.0)
    assert config.reward(0.8, 10.0) == pytest.approx(0.8)
    assert config.reward(0.8, 20.0) == pytest.approx(0.8 * 2**-0.07)
    assert config.reward(0.8, 5.0) == pytest.approx(0.8 * 0.5**-0.07)
    assert config.reward(0.8, 5.0) > config.reward(0.8, 10.0) > config.reward(0.8, 20.0)


def test_tunas():
    config = RewardConfig("tunas", target_ms=10.0)
    assert config.reward(0.8, 10.0) == pytest.approx(0.8)
    assert config.reward(0.8, 15.0) == pytest.approx(0.8 - 0.07 * 0.5)
    assert config.reward(0.8, 5.0) == pytest.approx(0.8 - 0.07 * 0.5)  # symmetric around T


def test_hard():
    config = RewardConfig("hard", target_ms=10.0)
    assert config.reward(0.8, 9.0) == 0.8
    assert config.reward(0.8, 10.0) == 0.8
    assert config.reward(0.8, 12.0) == pytest.approx(0.8 - 1 - 0.2)
    # any infeasible scores below any feasible; the penalty grows with the violation
    assert config.reward(0.99, 10.5) < config.reward(0.01, 9.0)
    assert config.reward(0.8, 15.0) < config.reward(0.8, 12.0)
    assert config.feasible(9.0, 0) and not config.feasible(12.0, 0)


def test_memory_limit_in_every_mode():
    for mode in ("mnas", "tunas", "hard"):
        config = RewardConfig(mode, target_ms=10.0, memory_bytes=1000.0)
        assert config.feasible(5.0, 900)
        assert not config.feasible(5.0, 1100)
        assert config.reward(0.9, 5.0, 1100) < config.reward(0.1, 5.0, 900)
        assert config.reward(0.9, 5.0, 2000) < config.reward(0.9, 5.0, 1100)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "soft"}, "reward mode 'soft' doesn't exist"),
        ({"target_ms": 0.0}, "must be > 0 ms, got 0.0"),
        ({"memory_bytes": -1.0}, "must be > 0 bytes"),
    ],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(RlnasError, match=message):
        RewardConfig(**kwargs)


def test_positive_exponent_warns():
    with pytest.warns(UserWarning, match="rewards slower networks"):
        RewardConfig("mnas", w=0.07)
