"""Shared fixtures: reference data location, hypothesis settings."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

# No wall-clock deadlines: this machine is shared and noisy.
settings.register_profile("rlnas", deadline=None, max_examples=50)
settings.load_profile("rlnas")

# `../shared/data` beside the repository; RLNAS_SHARED_DATA names it elsewhere (on a lent GPU
# machine, where only the repository travels).
SHARED_DATA = Path(
    os.environ.get("RLNAS_SHARED_DATA")
    or Path(__file__).resolve().parents[1].parent / "shared" / "data"
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data`; tests that need it skip where it is absent (it is present in CI)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def session_calibrations(tmp_path_factory) -> Path:
    """One folder of host adaptations for the whole session: a shipped table measured on
    another host is adapted here once (at most 60 s), not once per test."""
    return tmp_path_factory.mktemp("calibrations")


@pytest.fixture(scope="session", autouse=True)
def session_rlnas_home(tmp_path_factory, session_calibrations):
    """Module- and session-scoped fixtures run before the per-test folder below is set: they
    get a user folder of the session's, never the user's own ~/.rlnas."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RLNAS_HOME", str(tmp_path_factory.mktemp("session_rlnas_home")))
        patch.setenv("RLNAS_CALIBRATIONS", str(session_calibrations))
        yield


@pytest.fixture(autouse=True)
def private_rlnas_home(tmp_path_factory, monkeypatch, session_calibrations):
    """Tests never read or write the user's own ~/.rlnas."""
    monkeypatch.setenv("RLNAS_HOME", str(tmp_path_factory.mktemp("rlnas_home")))
    monkeypatch.setenv("RLNAS_CALIBRATIONS", str(session_calibrations))


def small_images(folder: Path, shared: Path) -> Path:
    """600 training and 200 test images of the shared CIFAR-10 subset (a seeded sample)."""
    source = np.load(shared / "cifar10" / "cifar10_subset.npz")
    rng = np.random.default_rng(0)
    train = rng.choice(len(source["y_train"]), 600, replace=False)
    test = rng.choice(len(source["y_test"]), 200, replace=False)
    data = folder / "small.npz"
    np.savez(
        data,
        x_train=source["x_train"][train],
        y_train=source["y_train"][train],
        x_test=source["x_test"][test],
        y_test=source["y_test"][test],
    )
    return data


def tiny_space(folder: Path, widths: tuple[int, ...] = (8, 16, 24)) -> Path:
    """A space file of one stem and one stage of one basic block: len(widths) architectures."""
    path = folder / "tiny.toml"
    path.write_text(
        f"""
name = "tiny"
kind = "macro"
description = "a stem and one stage, for tests"
resolution = 32
num_classes = 10
activations = ["relu"]

[stem]
kernel = 3
stride = 1
width = 8
maxpool = false

[head]
width = 0

[blocks.basic]
kernel = [3]
expand = [1]
se = [false]

[[stages]]
stride = 2
widths = {list(widths)}
slots = 1
"""
    )
    return path


def nb201_config(shared: Path, strategy: str, budget: int = 40, seed: int = 0):
    """A search on NAS-Bench-201's measured data (CIFAR-10 accuracy, pixel3 latency)."""
    from rlnas.search.config import SearchConfig

    folder = shared / "nb201"
    return SearchConfig.of(
        latency_ms=6.44,
        strategy=strategy,
        space="nb201",
        reward="hard",
        budget=budget,
        seed=seed,
        accuracy_file=folder / "nb201_cifar10_accuracy.parquet",
        latency_file=folder / "nb201_latency.parquet",
        latency_column="pixel3_ms",
    )


def count_evaluate_calls(evaluator) -> list[int]:
    """Wraps `evaluator.evaluate` to count its calls (new and repeated); returns the counter,
    a one-element list."""
    calls = [0]
    evaluate = evaluator.evaluate

    def counted(arch):
        calls[0] += 1
        return evaluate(arch)

    evaluator.evaluate = counted
    return calls
