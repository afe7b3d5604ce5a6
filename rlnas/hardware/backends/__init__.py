"""Device backends behind one small interface, imported only when used.

A backend compiles a `Workload` (a model with fixed inputs) at a precision
and returns a `Compiled` whose `run_timed()` runs one inference and returns
its milliseconds. Which class implements a backend, the packages it needs and
the precisions it offers are facts of the device records
(`rlnas.hardware.devices`), so TensorRT or OpenVINO is imported only when asked for.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from torch import nn

from rlnas.errors import DeviceError, did_you_mean
from rlnas.hardware.devices import ANALYTIC, DEVICES, backend_devices, backend_precisions
from rlnas.model.network import export_onnx


@dataclass(frozen=True, eq=False)
class Workload:
    """One model to compile and time, with the fixed inputs it runs on.

    Attributes:
        module: The torch module (eval mode); the source of the ONNX graph.
        inputs: Float32 NCHW arrays, one per model input.
        seed: Seed of the calibration batches for int8.
    """

    module: nn.Module
    inputs: tuple[np.ndarray, ...]
    seed: int = 0
    _onnx: list[bytes] = field(default_factory=list, repr=False)

    @classmethod
    def random(
        cls, module: nn.Module, shapes: Sequence[tuple[int, ...]], seed: int = 0
    ) -> Workload:
        """A workload on seeded standard-normal inputs of the given shapes."""
        rng = np.random.default_rng(seed)
        inputs = tuple(rng.standard_normal(s).astype(np.float32) for s in shapes)
        return cls(module.eval(), inputs, seed)

    @property
    def onnx(self) -> bytes:
        """The module as ONNX bytes, exported once on first use."""
        if not self._onnx:
            self._onnx.append(export_onnx(self.module, [x.shape for x in self.inputs]))
        return self._onnx[0]

    def calibration(self, batches: int = 4) -> list[tuple[np.ndarray, ...]]:
        """Seeded input batches for post-training quantization."""
        rng = np.random.default_rng(self.seed + 1)
        return [
            tuple(rng.standard_normal(x.shape).astype(np.float32) for x in self.inputs)
            for _ in range(batches)
        ]


# GPU backends run a compiled model this long before it is timed, as trtexec does by default:
# after a multi-second engine build a GPU's clocks take time to rise.
WARMUP_MS = 200.0


def warm_up(run: Callable[[], float], ms: float = WARMUP_MS) -> None:
    """Calls `run()` (which returns its milliseconds) until `ms` have passed, at least 5 times."""
    spent, count = 0.0, 0
    while count < 5 or spent < ms:
        spent += run()
        count += 1


class Compiled(Protocol):
    """A model compiled for a device, bound to its inputs."""

    def run_timed(self) -> float:
        """Runs one inference; returns its elapsed milliseconds by the backend's clock."""
        ...


class Backend(Protocol):
    """Compiles workloads for one kind of device."""

    name: str

    def version(self) -> str:
        """The vendor runtime's version string."""
        ...

    def compile(self, workload: Workload, precision: str) -> Compiled:
        """Compiles the workload at `precision` (one of `precisions`)."""
        ...


def get_backend(name: str, threads: int = 1) -> Backend:
    """Imports and instantiates a backend.

    Raises:
        DeviceError: The name is unknown or its vendor package is not installed.
    """
    backend_devices(name)
    if name == ANALYTIC:
        raise DeviceError(
            "the analytic backend has nothing to time; write an analytic table with "
            "`rlnas tables estimate --device systolic --array 128x128`"
        )
    return _backend_class(name)(threads=threads)


def backend_names() -> list[str]:
    """Every backend that times a registered device (analytic devices have none)."""
    return list(dict.fromkeys(d.backend for d in DEVICES.values() if d.backend != ANALYTIC))


@functools.cache
def _backend_class(name: str) -> type:
    device = backend_devices(name)[0]
    module_name, class_name = device.backend_class.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise DeviceError(
            f"backend '{name}' needs the Python package '{', '.join(device.packages)}', which "
            f"cannot be imported ({exc}); install it, or search with a shipped table "
            "(rlnas tables list)"
        ) from None
    cls: type = getattr(module, class_name)
    return cls


def check_precision(backend: Backend, precision: str) -> None:
    """Raises DeviceError unless some device of this backend offers `precision`."""
    allowed = backend_precisions(backend.name)
    if precision not in allowed:
        raise DeviceError(
            f"precision '{precision}' is not offered by backend '{backend.name}'; allowed: "
            f"{', '.join(allowed)}.{did_you_mean(precision, allowed)}"
        )
