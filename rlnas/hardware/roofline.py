"""A roofline cost model of one layer on a GPU, for devices this project cannot measure.

An operation takes `fixed_ms * kernel launches + max(2 * macs / (peak * efficiency[kind]),
bytes / (bandwidth * memory_efficiency))`: the per-precision peak compute and
the memory bandwidth come from the device's public specification; the
efficiency of each kind of operation, the memory efficiency and the fixed
per-operation cost are free parameters, fitted by `rlnas.hardware.estimate` on
published end-to-end latencies. A layer of a space (a `LayerKey`) is the sum
of its primitive operations (`rlnas.model.ops.layer_primitives`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlnas.errors import RlnasError, unknown
from rlnas.hardware.devices import get_precision
from rlnas.model.ops import LayerKey, layer_primitives
from rlnas.model.zoo import KINDS, Op


@dataclass(frozen=True)
class GpuSpec:
    """A device's public peak figures.

    Attributes:
        name: Device name (as in `rlnas devices`).
        title: What it is, in words.
        peak_tflops: Dense peak tera-operations per second by precision.
        bandwidth_gbs: Peak memory bandwidth, GB/s.
        source: Where the figures come from.
    """

    name: str
    title: str
    peak_tflops: dict[str, float]
    bandwidth_gbs: float
    source: str


SPECS: dict[str, GpuSpec] = {
    "t4": GpuSpec(
        "t4",
        "NVIDIA T4 (TensorRT)",
        {"fp32": 8.1, "fp16": 65.0, "int8": 130.0},
        320.0,
        "NVIDIA T4 datasheet: 8.1 TFLOPS fp32, 65 TFLOPS fp16 and 130 TOPS int8 (tensor "
        "cores), 320 GB/s GDDR6",
    ),
    "xavier-nx": GpuSpec(
        "xavier-nx",
        "NVIDIA Jetson Xavier NX GPU (TensorRT)",
        {"fp32": 0.845, "fp16": 6.76, "int8": 13.5},
        59.7,
        "Jetson Xavier NX module datasheet: 384 CUDA cores and 48 tensor cores at up to "
        "1100 MHz (fp32 384 x 2 x 1.1 GHz; fp16 48 tensor cores x 64 FMA x 2 x 1.1 GHz; "
        "int8 twice fp16; the DLAs are not counted), 128-bit LPDDR4x at 59.7 GB/s",
    ),
}

# Starting point and prior of the fit: efficiencies seen on GPUs for each kind of operation
# (dense convolutions reach a good share of peak; depthwise, SE, pooling and elementwise
# operations are memory bound), and a few microseconds per kernel.
PRIOR_EFFICIENCY = {
    "conv1x1": 0.4,
    "conv": 0.4,
    "depthwise": 0.05,
    "grouped": 0.15,
    "se": 0.05,
    "pool": 0.1,
    "elementwise": 0.1,
}
PRIOR_MEMORY_EFFICIENCY = 0.6
PRIOR_FIXED_MS = 0.005
PARAMETERS = (*KINDS, "memory", "fixed_ms")


def get_spec(device: str) -> GpuSpec:
    if device not in SPECS:
        raise RlnasError(unknown("device with a cost model", device, SPECS))
    return SPECS[device]


@dataclass(frozen=True)
class OpArrays:
    """Ops of one network as arrays, so a prediction is a few vector operations."""

    kind: np.ndarray  # index into KINDS
    macs: np.ndarray
    elems: np.ndarray  # activation elements read and written
    weights: np.ndarray
    launches: np.ndarray

    @classmethod
    def of(cls, ops: list[Op]) -> OpArrays:
        return cls(
            np.array([KINDS.index(o.kind) for o in ops], dtype=np.int64),
            np.array([o.macs for o in ops], dtype=np.float64),
            np.array([o.in_elems + o.out_elems for o in ops], dtype=np.float64),
            np.array([o.weights for o in ops], dtype=np.float64),
            np.array([o.launches for o in ops], dtype=np.float64),
        )


@dataclass(frozen=True)
class CostModel:
    """Roofline latency of operations on one device.

    Attributes:
        spec: The device's peak figures.
        efficiency: Share of peak compute reached, per kind of operation.
        memory_efficiency: Share of peak bandwidth reached.
        fixed_ms: Fixed cost per operation (kernel launch, scheduling).
    """

    spec: GpuSpec
    efficiency: dict[str, float]
    memory_efficiency: float
    fixed_ms: float

    @classmethod
    def prior(cls, spec: GpuSpec) -> CostModel:
        return cls(spec, dict(PRIOR_EFFICIENCY), PRIOR_MEMORY_EFFICIENCY, PRIOR_FIXED_MS)

    @classmethod
    def from_vector(cls, spec: GpuSpec, log_values: np.ndarray) -> CostModel:
        values = np.exp(log_values)
        return cls(
            spec, dict(zip(KINDS, values[: len(KINDS)], strict=True)), values[-2], values[-1]
        )

    def vector(self) -> np.ndarray:
        """Log of the parameters, in `PARAMETERS` order."""
        values = [self.efficiency[k] for k in KINDS] + [self.memory_efficiency, self.fixed_ms]
        return np.log(np.array(values, dtype=np.float64))

    def op_ms(self, ops: OpArrays, precision: str) -> np.ndarray:
        """Latency of each operation at `precision`, in milliseconds."""
        efficiency = np.array([self.efficiency[k] for k in KINDS])[ops.kind]
        compute_ms = 2 * ops.macs / (self.spec.peak_tflops[precision] * 1e9 * efficiency)
        moved = (ops.elems + ops.weights) * get_precision(precision).bytes_per_element
        memory_ms = moved / (self.spec.bandwidth_gbs * 1e6 * self.memory_efficiency)
        result: np.ndarray = self.fixed_ms * ops.launches + np.maximum(compute_ms, memory_ms)
        return result

    def network_ms(self, ops: OpArrays, precision: str) -> float:
        return float(self.op_ms(ops, precision).sum())

    def best_ms(self, ops: OpArrays, precisions: tuple[str, ...] = ("fp16", "int8")) -> float:
        """The better of several precisions (how the published figures were taken)."""
        return min(self.network_ms(ops, p) for p in precisions)

    def layer_ms(self, key: LayerKey, precision: str, fused_activations: bool = False) -> float:
        return self.network_ms(OpArrays.of(layer_primitives(key, fused_activations)), precision)
