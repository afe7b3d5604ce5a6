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


def unknown(kind: str, name: str, allowed: Iterable[str]) -> str:
    """The message for a name missing from a registry: the allowed names and the closest."""
    allowed = list(allowed)
    hint = did_you_mean(name, allowed)
    return f"{kind} '{name}' doesn't exist; allowed: {', '.join(allowed)}.{hint}"


def did_you_mean(value: str, allowed: Iterable[str]) -> str:
    """Returns " Did you mean 'x'?" for the closest allowed value, or "" if none is close."""
    close = difflib.get_close_matches(value, list(allowed), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""
