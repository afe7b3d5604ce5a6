from __future__ import annotations

import itertools

from rlnas.hardware.timing import TimingConfig, measure


def clock(values):
    """A run_timed that reports the given milliseconds in turn (cycling)."""
    source = itertools.cycle(values)
    return lambda: next(source)


def test_min_runs_and_min_time():
    config = TimingConfig(warmup=0, min_runs=10, min_time_ms=50.0)
    fast = measure(clock([1.0]), config)
    assert fast.runs == 50  # 50 x 1 ms to reach 50 ms
    slow = measure(clock([20.0]), config)
    assert slow.runs == 10  # min_runs dominates
    assert slow.median_ms == 20.0
    assert slow.total_ms == 200.0


def test_statistics():
    config = TimingConfig(warmup=0, min_runs=10, min_time_ms=0.0, max_spread=10.0)
    timing = measure(clock([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]), config)
    assert timing.median_ms == 5.5
    assert timing.mean_ms == 5.5
    assert timing.p10_ms < timing.median_ms < timing.p90_ms
    assert not timing.unstable


def test_wide_spread_is_retimed_then_flagged():
    calls = []

    def run():
        calls.append(1)
        return 1.0 if len(calls) % 2 else 3.0

    config = TimingConfig(warmup=0, min_runs=10, min_time_ms=0.0, max_spread=0.25, retries=2)
    timing = measure(run, config)
    assert timing.unstable
    assert len(calls) == 30  # first try and two retries


def test_narrow_spread_is_not_retimed():
    calls = []

    def run():
        calls.append(1)
        return 1.0

    timing = measure(run, TimingConfig(warmup=3, min_runs=10, min_time_ms=0.0, retries=2))
    assert not timing.unstable
    assert len(calls) == 13
