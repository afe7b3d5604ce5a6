"""Shared fixtures: reference data location, hypothesis settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

# No wall-clock deadlines: this machine is shared and noisy.
settings.register_profile("rlnas", deadline=None, max_examples=50)
settings.load_profile("rlnas")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data`; tests that need it skip where it is absent (it is present in CI)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def private_rlnas_home(tmp_path_factory, monkeypatch):
    """Tests never read or write the user's own ~/.rlnas."""
    monkeypatch.setenv("RLNAS_HOME", str(tmp_path_factory.mktemp("rlnas_home")))
