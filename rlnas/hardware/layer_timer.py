"""Timing one layer on this machine: a profile run's settings, and the timer that a local
run (`rlnas.hardware.profile`) and a fleet worker (`rlnas.hardware.fleet`) share."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from rlnas.errors import RlnasError
from rlnas.hardware.backends import Backend, Workload, check_precision, get_backend
from rlnas.hardware.devices import (
    ANALYTIC,
    Device,
    get_device,
    measuring_host,
    resolve_precision,
)
from rlnas.hardware.host import fingerprint
from rlnas.hardware.timing import Timing, TimingConfig, measure
from rlnas.model.network import seeded
from rlnas.model.ops import LayerKey, build_layer, input_shapes
from rlnas.model.space import DEFAULT_SPACE, get_space


@dataclass(frozen=True)
class ProfileConfig:
    """What to profile and how.

    Attributes:
        device: Target device name (see `rlnas devices`).
        precision: Precision; default the device's first (fp32).
        space: Space name or space file.
        resolution: Input resolution; default the space's.
        batch: Batch size.
        threads: Intra-op threads for CPU backends (recorded in the table).
        out: Output table; default `<user tables dir>/<table name>.parquet`.
        limit: Measure at most this many new layers in this run.
        allow_other_device: Measure a GPU device's table on a different GPU;
            the table then records the GPU that really measured it.
        timing: Timing harness settings.
        checkpoint_every: Fold the journal into the Parquet file this often.
        seed: Seed of the random layer inputs.
        ray_address: A Ray cluster (or "auto") whose node with the device as a custom
            resource times the layers; None: this machine (or RAY_ADDRESS where set).
    """

    device: str = "cpu"
    precision: str | None = None
    space: str = DEFAULT_SPACE
    resolution: int | None = None
    batch: int = 1
    threads: int = 1
    out: Path | None = None
    limit: int | None = None
    allow_other_device: bool = False
    timing: TimingConfig = field(default_factory=TimingConfig)
    checkpoint_every: int = 100
    seed: int = 0
    ray_address: str | None = None

    def __post_init__(self) -> None:
        for name in ("batch", "threads", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise RlnasError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.limit is not None and self.limit < 1:
            raise RlnasError(f"limit must be >= 1 layer, got {self.limit}")
        if self.seed < 0:
            raise RlnasError(f"seed must be >= 0, got {self.seed}; e.g. --seed 0")
        resolve_precision(get_device(self.device), self.precision)
        get_space(self.space).check_resolution(self.resolution)


class _Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def resolve_device(config: ProfileConfig) -> tuple[Device, str]:
    """The device to profile and its precision; raises where it cannot be profiled."""
    device = get_device(config.device)
    if device.backend == ANALYTIC:
        measuring_host(device, action="profile")  # says how to write its table instead
    return device, resolve_precision(device, config.precision)


def time_workload(
    backend: Backend, workload: Workload, precision: str, timing: TimingConfig
) -> Timing:
    """Compiles and times one workload with the shared harness."""
    compiled = backend.compile(workload, precision)
    return measure(compiled.run_timed, timing)


class LayerTimer:
    """Times layers of a profile run on this machine: its backend, host and overheads.

    Raises:
        DeviceError: The device cannot be measured here.
    """

    def __init__(self, config: ProfileConfig):
        device, self.precision = resolve_device(config)
        self.config = config
        self.host = measuring_host(device, config.allow_other_device, "profile")
        self.backend = get_backend(device.backend, threads=config.threads)
        check_precision(self.backend, self.precision)
        self.version = self.backend.version()
        self.fingerprint = json.dumps(fingerprint(device.gpu), sort_keys=True)
        # The empty graph is timed in fp32: quantizing an identity is meaningless.
        self.overhead_precision = "fp32" if "fp32" in device.precisions else self.precision
        self.overheads: dict[tuple[int, ...], float] = {}

    def overhead_ms(self, shape: tuple[int, ...]) -> float:
        """Per-call overhead of an empty graph on an input of `shape`."""
        if shape not in self.overheads:
            workload = Workload.random(_Identity(), [shape], self.config.seed)
            timed = time_workload(
                self.backend, workload, self.overhead_precision, self.config.timing
            )
            self.overheads[shape] = timed.median_ms
        return self.overheads[shape]

    def time(self, key: LayerKey) -> tuple[dict, float]:
        """One layer's table row, and the seconds spent inside timed runs."""
        config = self.config
        shapes = input_shapes(key, config.batch)
        layer = seeded(functools.partial(build_layer, key), config.seed)
        workload = Workload.random(layer, shapes, config.seed)
        timing = time_workload(self.backend, workload, self.precision, config.timing)
        record = {
            **key.as_dict(),
            "latency_ms": timing.median_ms,
            "p10_ms": timing.p10_ms,
            "p90_ms": timing.p90_ms,
            "mean_ms": timing.mean_ms,
            "std_ms": timing.std_ms,
            "runs": timing.runs,
            "overhead_ms": self.overhead_ms(shapes[0]),
            "unstable": timing.unstable,
        }
        return record, timing.total_ms / 1000

    def describe(self, network_input: tuple[int, ...]) -> dict:
        """What the table's metadata says about the measuring machine."""
        return {
            "backend": self.backend.name,
            "backend_version": self.version,
            "host": self.host,
            "host_fingerprint": self.fingerprint,
            "overhead_ms": self.overhead_ms(network_input),
        }

    def measure(self, keys: list[LayerKey]) -> Iterator[tuple[LayerKey, dict, float]]:
        for key in keys:
            yield (key, *self.time(key))
