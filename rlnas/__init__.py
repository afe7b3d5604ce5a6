"""rlnas: hardware-aware neural architecture search with per-device latency tables."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rlnas")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
