"""TensorRT: fp32, fp16 and int8 engines built from ONNX, timed with CUDA events.

Written against the TensorRT 8.5 (JetPack 5) and 10.x Python APIs: both have
name-based I/O tensors and `execute_async_v3`; 8.x parses ONNX only into a
network created with the explicit-batch flag, which 10.x no longer has (it has
no implicit batch). TensorRT 11 drops the FP16/INT8 builder flags, so it is
refused. Device buffers and the stream come from PyTorch, so no other CUDA
binding is needed. INT8 uses explicit quantization: the ONNX graph is first
quantized to a symmetric QDQ form TensorRT accepts
(`rlnas.hardware.backends.quantize`), which it builds as an INT8 engine
(implicit calibrators are deprecated in TensorRT 10). Each engine is warmed up
for `rlnas.hardware.backends.WARMUP_MS` of runs before it is timed, as trtexec does: a GPU's clocks
take time to rise after a multi-second build.
"""

from __future__ import annotations

import numpy as np
import tensorrt as trt
import torch

from rlnas.errors import DeviceError
from rlnas.hardware.backends import Workload, check_precision, warm_up
from rlnas.hardware.backends.quantize import quantize_qdq

WORKSPACE_BYTES = 1 << 30
SUPPORTED = (8, 10)  # major versions, 8.5 onwards


def major_version(version: str) -> int:
    """TensorRT's major version; raises DeviceError outside 8.5-10.x."""
    parts = [int(p) for p in version.split(".")[:2] if p.isdigit()]
    major, minor = [*parts, 0, 0][:2]
    if not (SUPPORTED[0] <= major <= SUPPORTED[1]) or (major == 8 and minor < 5) or major == 9:
        raise DeviceError(
            f"TensorRT {version} is not supported (8.5 to 10.x); install one of those, e.g. "
            "`pip install 'tensorrt-cu12<11'`, or JetPack 5.1's TensorRT 8.5"
        )
    return major


def network_flags(major: int) -> int:
    """The `create_network` flags: explicit batch on 8.x (0 would mean implicit batch,
    which the ONNX parser refuses); 10.x is always explicit."""
    if major < 10:
        return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    return 0


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
        self.major = major_version(str(trt.__version__))
        if not torch.cuda.is_available():
            raise DeviceError(
                f"TensorRT needs a CUDA GPU and PyTorch with CUDA; this torch ({torch.__version__})"
                " sees none. Search with a shipped table instead"
            )
        self.threads = threads
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)

    def version(self) -> str:
        return str(trt.__version__)

    def compile(self, workload: Workload, precision: str) -> _Compiled:
        check_precision(self, precision)
        model = workload.onnx
        if precision == "int8":
            model = quantize_qdq(model, workload.calibration(), for_tensorrt=True)
        builder = trt.Builder(self.logger)
        network = builder.create_network(network_flags(self.major))
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
        compiled = _Compiled(engine, workload.inputs)
        warm_up(compiled.run_timed)
        return compiled
