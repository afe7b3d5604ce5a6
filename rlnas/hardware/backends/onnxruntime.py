"""ONNX Runtime, CPU execution provider: fp32, and int8 through static QDQ quantization."""

from __future__ import annotations

import time

import onnxruntime as ort

from rlnas.hardware.backends import Workload, check_precision
from rlnas.hardware.backends.quantize import quantize_qdq


class _Compiled:
    def __init__(self, session: ort.InferenceSession, binding: ort.IOBinding):
        self.session = session
        self.binding = binding

    def run_timed(self) -> float:
        start = time.perf_counter_ns()
        self.session.run_with_iobinding(self.binding)
        return (time.perf_counter_ns() - start) / 1e6


class OnnxRuntimeBackend:
    """ONNX Runtime on the CPU with a fixed number of intra-op threads.

    Inputs are bound once (IO binding), so a timed call is the session's run
    and output allocation, as in a deployed C++ or Python server.
    """

    name: str = "onnxruntime"

    def __init__(self, threads: int = 1):
        self.threads = threads

    def version(self) -> str:
        return str(ort.__version__)

    def compile(self, workload: Workload, precision: str) -> _Compiled:
        check_precision(self, precision)
        model = workload.onnx
        if precision == "int8":
            model = quantize_qdq(model, workload.calibration())
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        binding = session.io_binding()
        for meta, array in zip(session.get_inputs(), workload.inputs, strict=True):
            binding.bind_cpu_input(meta.name, array)
        for meta in session.get_outputs():
            binding.bind_output(meta.name, "cpu")
        return _Compiled(session, binding)
