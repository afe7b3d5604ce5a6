"""TensorRT: fp32, fp16 and int8 engines built from ONNX, timed with CUDA events.

Written against the TensorRT 10 Python API (name-based I/O tensors,
`execute_async_v3`). Device buffers and the stream come from PyTorch, so no
other CUDA binding is needed. INT8 uses explicit quantization: the ONNX graph
is first quantized to QDQ form (`rlnas.hardware.backends.quantize`), which TensorRT
builds as an INT8 engine (implicit calibrators are deprecated in TensorRT 10).
"""

from __future__ import annotations

import numpy as np
import tensorrt as trt
import torch

from rlnas.errors import DeviceError
from rlnas.hardware.backends import Workload, check_precision
from rlnas.hardware.backends.quantize import quantize_qdq

WORKSPACE_BYTES = 1 << 30


class _Compiled:
    def __init__(self, engine: trt.ICudaEngine, inputs: tuple[np.ndarray, ...]):
        self.engine = engine
        self.context = engine.create_execution_context()
        self.stream = torch.cuda.Stream()
        self.buffers: list[torch.Tensor] = []
        feeds = iter(inputs)
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            shape = tuple(engine.get_tensor_shape(name))
            dtype = torch.from_numpy(np.empty(0, dtype=trt.nptype(engine.get_tensor_dtype(name))))
            buffer = torch.empty(shape, dtype=dtype.dtype, device="cuda")
            if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                buffer.copy_(torch.from_numpy(next(feeds)).to(buffer.dtype))
            self.context.set_tensor_address(name, buffer.data_ptr())
            self.buffers.append(buffer)
        self.start = torch.cuda.Event(enable_timing=True)
        self.end = torch.cuda.Event(enable_timing=True)

    def run_timed(self) -> float:
        self.start.record(self.stream)
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        self.end.record(self.stream)
        self.end.synchronize()
        return float(self.start.elapsed_time(self.end))


class TensorRtBackend:
    """TensorRT engines on the current CUDA device."""

    name: str = "tensorrt"

    def __init__(self, threads: int = 1):
        if not torch.cuda.is_available():
            raise DeviceError("TensorRT needs a CUDA GPU and PyTorch with CUDA; none is usable")
        self.threads = threads
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)

    def version(self) -> str:
        return str(trt.__version__)

    def compile(self, workload: Workload, precision: str) -> _Compiled:
        check_precision(self, precision)
        model = workload.onnx
        if precision == "int8":
            model = quantize_qdq(model, workload.calibration())
        builder = trt.Builder(self.logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(model):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"TensorRT could not parse the ONNX model: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
        if precision in ("fp16", "int8"):
            # INT8 engines keep non-quantized layers in FP16, as deployments do.
            config.set_flag(trt.BuilderFlag.FP16)
        if precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise RuntimeError("TensorRT failed to build an engine (see its log above)")
        engine = self.runtime.deserialize_cuda_engine(serialized)
        return _Compiled(engine, workload.inputs)
