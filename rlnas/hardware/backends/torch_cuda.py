"""PyTorch on CUDA for GPUs without TensorRT: fp32 and fp16, eager or CUDA-graph replay."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch

from rlnas.errors import DeviceError
from rlnas.hardware.backends import Workload, check_precision, warm_up


class _Compiled:
    def __init__(self, run: Callable[[], object], keep: object):
        self.run = run
        self.keep = keep  # module, inputs and graph must outlive the replays
        self.start = torch.cuda.Event(enable_timing=True)
        self.end = torch.cuda.Event(enable_timing=True)

    def run_timed(self) -> float:
        with torch.inference_mode():
            self.start.record()
            self.run()
            self.end.record()
        self.end.synchronize()
        return float(self.start.elapsed_time(self.end))


class TorchCudaBackend:
    """The torch module itself on the GPU, timed with CUDA events.

    Args:
        threads: Unused (GPU); kept for the common backend signature.
        cuda_graphs: Capture the forward pass once and time graph replays, which
            removes Python and launch overhead; False times eager execution.
    """

    name: str = "torch-cuda"

    def __init__(self, threads: int = 1, cuda_graphs: bool = True):
        if not torch.cuda.is_available():
            raise DeviceError(
                "backend 'torch-cuda' needs an NVIDIA GPU and a CUDA build of PyTorch; "
                f"this torch ({torch.__version__}) sees none. Use a shipped table instead"
            )
        self.threads = threads
        self.cuda_graphs = cuda_graphs

    def version(self) -> str:
        mode = "cuda-graphs" if self.cuda_graphs else "eager"
        return f"torch {torch.__version__} CUDA {torch.version.cuda} ({mode})"

    def compile(self, workload: Workload, precision: str) -> _Compiled:
        check_precision(self, precision)
        dtype = torch.float16 if precision == "fp16" else torch.float32
        module = copy.deepcopy(workload.module).to("cuda", dtype).eval()
        inputs = [torch.from_numpy(x).to("cuda", dtype) for x in workload.inputs]
        with torch.inference_mode():
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    module(*inputs)
            torch.cuda.current_stream().wait_stream(side)
            if not self.cuda_graphs:
                compiled = _Compiled(lambda: module(*inputs), (module, inputs))
            else:
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    module(*inputs)
                compiled = _Compiled(graph.replay, (module, inputs, graph))
        warm_up(compiled.run_timed)  # the GPU's clocks rise with load, as trtexec warms up
        return compiled
