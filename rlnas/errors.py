"""Errors raised for users: each names the bad value, what is allowed, and the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RlnasError(Exception):
    """Base class of every error rlnas raises for bad input or a missing resource."""


class SpaceError(RlnasError):
    """A search space name or space file is unknown or invalid."""


class ArchitectureError(RlnasError):
    """An architecture string or choice vector is not a member of its space."""


class LayerError(RlnasError):
    """A layer configuration cannot be built or is outside what rlnas supports."""


class DeviceError(RlnasError):
    """A device is unknown, absent, or its backend is not installed."""


def did_you_mean(value: str, allowed: Iterable[str]) -> str:
    """Returns " Did you mean 'x'?" for the closest allowed value, or "" if none is close."""
    close = difflib.get_close_matches(value, list(allowed), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""
