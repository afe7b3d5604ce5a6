"""OpenVINO CPU plugin: fp32, bf16 where the CPU has it, int8 through NNCF (optional extra)."""

from __future__ import annotations

import time

import numpy as np
import openvino as ov

from rlnas.errors import DeviceError
from rlnas.hardware.backends import Workload, check_precision


class _Compiled:
    def __init__(self, request: ov.InferRequest):
        self.request = request

    def run_timed(self) -> float:
        start = time.perf_counter_ns()
        self.request.infer()
        return (time.perf_counter_ns() - start) / 1e6


class OpenVinoBackend:
    """OpenVINO on the CPU, latency mode, one stream, a fixed number of threads.

    The inference precision is always set explicitly: on CPUs with AMX or
    AVX-512 BF16 OpenVINO would otherwise run "fp32" models in bf16.
    """

    name: str = "openvino"

    def __init__(self, threads: int = 1):
        self.threads = threads
        self.core = ov.Core()

    def version(self) -> str:
        return str(ov.get_version())

    def compile(self, workload: Workload, precision: str) -> _Compiled:
        check_precision(self, precision)
        capabilities = self.core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        if precision == "bf16" and "BF16" not in capabilities:
            raise DeviceError(
                "precision 'bf16' needs a CPU with AVX-512 BF16 or AMX; this CPU offers "
                f"{', '.join(capabilities)}; use --precision fp32 or int8"
            )
        model = self.core.read_model(workload.onnx)
        if precision == "int8":
            model = _quantize_nncf(model, workload)
        config = {
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
            "INFERENCE_NUM_THREADS": self.threads,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
        }
        compiled = self.core.compile_model(model, "CPU", config)
        request = compiled.create_infer_request()
        for index, array in enumerate(workload.inputs):
            request.set_input_tensor(index, ov.Tensor(np.ascontiguousarray(array)))
        return _Compiled(request)


def _quantize_nncf(model: ov.Model, workload: Workload) -> ov.Model:
    try:
        import nncf
    except ImportError:
        raise DeviceError(
            "OpenVINO int8 needs NNCF, an optional extra (about 214 MB): "
            "pip install 'rlnas[int8]'; or use --precision fp32 / bf16"
        ) from None
    batches = workload.calibration()
    dataset = nncf.Dataset(batches, lambda batch: list(batch))
    return nncf.quantize(model, dataset, subset_size=len(batches))
