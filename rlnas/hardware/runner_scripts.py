"""The runner scripts a bundle carries to the device (see `rlnas.hardware.runners` for what
they write and how it is read), and `write_runners`, which puts them into a bundle."""

from __future__ import annotations

from pathlib import Path

RUNNERS = ("run_trtexec.sh", "run_benchmark_app.sh", "run_python.py")

TRTEXEC = """#!/bin/sh
# Times every model of this bundle (models/*.onnx) with TensorRT's trtexec, each in its own
# run, on the device. PRECISION=fp32|fp16|int8 (this bundle's: @PRECISION@); TRTEXEC=path if
# trtexec is neither on PATH nor in JetPack's /usr/src/tensorrt/bin. Resumes: models with a
# result are skipped; a model that fails gets results/NAME.trtexec.failed and the loop goes
# on. Lock the clocks first for steady figures (Jetson: sudo jetson_clocks; a data-centre
# GPU: sudo nvidia-smi -lgc <max>). Then, on any machine with rlnas:
#   @NEXT@
cd "$(dirname "$0")" || exit 1
mkdir -p results
if [ -z "${TRTEXEC:-}" ]; then
  if command -v trtexec >/dev/null 2>&1; then TRTEXEC=trtexec
  elif [ -x /usr/src/tensorrt/bin/trtexec ]; then TRTEXEC=/usr/src/tensorrt/bin/trtexec
  else echo "trtexec not found: install TensorRT, or set TRTEXEC=/path/to/trtexec" >&2; exit 1
  fi
fi
case "${PRECISION:-@PRECISION@}" in
  fp16) FLAGS="--fp16" ;;
  int8) FLAGS="--int8 --fp16" ;;
  fp32) FLAGS="" ;;
  *) echo "PRECISION must be fp32, fp16 or int8, got '$PRECISION'" >&2; exit 1 ;;
esac
DIGEST=$(cat bundle.id)
for model in models/*.onnx; do
  name=$(basename "$model" .onnx)
  [ -s "results/$name.trtexec.txt" ] && continue
  if "$TRTEXEC" --onnx="$model" $FLAGS --timingCacheFile=timing.cache --warmUp=200 \\
      --duration=2 --useSpinWait --noDataTransfers > "results/$name.trtexec.tmp" 2>&1 \\
      && grep -q "GPU Compute Time" "results/$name.trtexec.tmp"; then
    echo "rlnas-bundle: $DIGEST" >> "results/$name.trtexec.tmp"
    mv "results/$name.trtexec.tmp" "results/$name.trtexec.txt"
    rm -f "results/$name.trtexec.failed"
  else
    mv "results/$name.trtexec.tmp" "results/$name.trtexec.failed"
    echo "$name: trtexec failed (results/$name.trtexec.failed)" >&2
  fi
done
"""

BENCHMARK_APP = """#!/bin/sh
# Times every model of this bundle (models/*.onnx) with OpenVINO's benchmark_app, each in
# its own run: DEVICE=CPU (default), GPU or NPU; one inference at a time (latency).
# Resumes; a model that fails gets results/NAME.benchmark_app.failed and the loop goes on.
# Then, on any machine with rlnas:
#   @NEXT@
cd "$(dirname "$0")" || exit 1
mkdir -p results
DIGEST=$(cat bundle.id)
for model in models/*.onnx; do
  name=$(basename "$model" .onnx)
  [ -s "results/$name.benchmark_app.txt" ] && continue
  if benchmark_app -m "$model" -d "${DEVICE:-CPU}" -hint latency -nireq 1 -t 2 \\
      > "results/$name.benchmark_app.tmp" 2>&1; then
    echo "rlnas-bundle: $DIGEST" >> "results/$name.benchmark_app.tmp"
    mv "results/$name.benchmark_app.tmp" "results/$name.benchmark_app.txt"
    rm -f "results/$name.benchmark_app.failed"
  else
    mv "results/$name.benchmark_app.tmp" "results/$name.benchmark_app.failed"
    echo "$name: benchmark_app failed (results/$name.benchmark_app.failed)" >&2
  fi
done
"""

PYTHON = '''"""Times every model of this bundle (models/*.onnx), each in its own session or engine.

Needs Python >= 3.8, numpy, and the runtime: onnxruntime (any execution provider), or
TensorRT's Python package with the CUDA runtime library (JetPack has both).

    python3 run_python.py [--runtime onnxruntime|tensorrt] [--provider CPUExecutionProvider]
        [--threads 1] [--seconds 1.0] [--warmup-seconds 0.2] [--precision @PRECISION@]

Resumes: models with a result are skipped; a model that fails gets
results/NAME.python.failed and the loop goes on. Then, on any machine with rlnas:
    @NEXT@
"""

import argparse
import ctypes
import ctypes.util
import glob
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import time
import traceback

import numpy as np


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_name():
    try:
        model = open("/proc/device-tree/model", "rb").read().decode(errors="ignore")
        if "Jetson" in model:
            return model.strip("\\x00 \\n")
    except OSError:
        pass
    if shutil.which("nvidia-smi"):
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             stdout=subprocess.PIPE, universal_newlines=True, check=False)
        if out.stdout.strip():
            return out.stdout.strip().splitlines()[0]
    return "unknown NVIDIA GPU"


def summary(times):
    times = np.sort(np.asarray(times))
    return {
        "median_ms": float(np.median(times)),
        "p10_ms": float(np.percentile(times, 10)),
        "p90_ms": float(np.percentile(times, 90)),
        "mean_ms": float(times.mean()),
        "std_ms": float(times.std()),
        "runs": len(times),
    }


def measure(run, seconds, warmup_seconds, min_runs=20):
    """Untimed runs for warmup_seconds (at least 5), then timed runs for seconds."""
    start, count = time.perf_counter(), 0
    while count < 5 or time.perf_counter() - start < warmup_seconds:
        run()
        count += 1
    times, start = [], time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < seconds:
        times.append(run())
    return summary(times)


class OnnxRuntime:
    def __init__(self, args):
        import onnxruntime as ort

        self.ort, self.args = ort, args
        self.version = "onnxruntime %s (%s, %d threads)" % (
            ort.__version__, args.provider, args.threads)
        self.device = cpu_name() if args.provider == "CPUExecutionProvider" else gpu_name()

    def timer(self, path):
        options = self.ort.SessionOptions()
        options.intra_op_num_threads = self.args.threads
        options.inter_op_num_threads = 1
        options.execution_mode = self.ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        session = self.ort.InferenceSession(str(path), options, providers=[self.args.provider])
        rng = np.random.default_rng(0)
        # Inputs bound once, as rlnas profile binds them: a timed call is the session's run.
        binding = session.io_binding()
        for i in session.get_inputs():
            binding.bind_cpu_input(i.name, rng.standard_normal(i.shape).astype(np.float32))
        for o in session.get_outputs():
            binding.bind_output(o.name, "cpu")

        def run():
            begin = time.perf_counter()
            session.run_with_iobinding(binding)
            return (time.perf_counter() - begin) * 1000.0

        return run


class Cuda:
    """The few CUDA runtime calls a TensorRT engine needs, through ctypes."""

    def __init__(self):
        names = ["libcudart.so", ctypes.util.find_library("cudart") or "libcudart.so"]
        for folder in sys.path:  # the nvidia-cuda-runtime wheel beside PyPI's tensorrt
            wheel = os.path.join(folder, "nvidia", "cuda_runtime", "lib", "libcudart.so*")
            names += glob.glob(wheel)
        names += glob.glob("/usr/local/cuda/lib64/libcudart.so*")
        for name in names:
            try:
                self.lib = ctypes.CDLL(name)
                break
            except OSError:
                continue
        else:
            raise RuntimeError("the CUDA runtime library (libcudart.so) was not found")

    def check(self, status, what):
        if status != 0:
            raise RuntimeError("CUDA %s failed with error %d" % (what, status))

    def malloc(self, size):
        pointer = ctypes.c_void_p()
        size = ctypes.c_size_t(max(size, 1))
        self.check(self.lib.cudaMalloc(ctypes.byref(pointer), size), "malloc")
        return pointer

    def upload(self, pointer, array):
        self.check(self.lib.cudaMemcpy(pointer, array.ctypes.data_as(ctypes.c_void_p),
                                       ctypes.c_size_t(array.nbytes), 1), "memcpy")

    def stream(self):
        handle = ctypes.c_void_p()
        self.check(self.lib.cudaStreamCreate(ctypes.byref(handle)), "stream")
        return handle

    def event(self):
        handle = ctypes.c_void_p()
        self.check(self.lib.cudaEventCreate(ctypes.byref(handle)), "event")
        return handle

    def elapsed(self, start, end):
        self.check(self.lib.cudaEventSynchronize(end), "event synchronize")
        ms = ctypes.c_float()
        self.check(self.lib.cudaEventElapsedTime(ctypes.byref(ms), start, end), "elapsed time")
        return float(ms.value)


class TensorRt:
    """TensorRT 8.5 (JetPack 5) to 10.x: name-based I/O and execute_async_v3 exist in both;
    8.x needs the explicit-batch flag, which 10.x no longer has."""

    def __init__(self, args):
        import tensorrt as trt

        self.trt, self.args = trt, args
        self.major = int(trt.__version__.split(".")[0])
        if self.major >= 11:
            raise RuntimeError("TensorRT %s: this runner knows 8.5-10.x" % trt.__version__)
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.cuda = Cuda()
        self.version = "TensorRT " + trt.__version__
        self.device = gpu_name()

    def timer(self, path):
        trt, cuda = self.trt, self.cuda
        builder = trt.Builder(self.logger)
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH) if self.major < 10 else 0
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(pathlib.Path(path).read_bytes()):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise RuntimeError("; ".join(errors))
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 30)
        if self.args.precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)
        if self.args.precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise RuntimeError("TensorRT failed to build an engine")
        engine = self.runtime.deserialize_cuda_engine(serialized)
        context = engine.create_execution_context()
        rng = np.random.default_rng(0)
        keep = []
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            shape = tuple(engine.get_tensor_shape(name))
            array = np.zeros(shape, dtype=trt.nptype(engine.get_tensor_dtype(name)))
            pointer = cuda.malloc(array.nbytes)
            if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                cuda.upload(pointer, rng.standard_normal(shape).astype(array.dtype))
            context.set_tensor_address(name, pointer.value)
            keep.append(pointer)
        stream, start, end = cuda.stream(), cuda.event(), cuda.event()

        def run():
            cuda.lib.cudaEventRecord(start, stream)
            if not context.execute_async_v3(stream.value):
                raise RuntimeError("execute_async_v3 failed")
            cuda.lib.cudaEventRecord(end, stream)
            return cuda.elapsed(start, end)

        run.keep = (engine, context, keep)  # buffers live as long as the timer
        return run


def main():
    parser = argparse.ArgumentParser(description="Times every model of this bundle.")
    parser.add_argument("--runtime", choices=("onnxruntime", "tensorrt"), default="onnxruntime")
    parser.add_argument("--provider", default="CPUExecutionProvider")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--warmup-seconds", type=float, default=0.2)
    parser.add_argument("--precision", default="@PRECISION@")
    args = parser.parse_args()
    here = pathlib.Path(__file__).resolve().parent
    results = here / "results"
    results.mkdir(exist_ok=True)
    digest = (here / "bundle.id").read_text().strip()
    runtime = (TensorRt if args.runtime == "tensorrt" else OnnxRuntime)(args)
    models = sorted((here / "models").glob("*.onnx"))
    for number, model in enumerate(models, 1):
        done = results / (model.stem + ".python.txt")
        if done.exists():
            continue
        failed = results / (model.stem + ".python.failed")
        try:
            stats = measure(runtime.timer(model), args.seconds, args.warmup_seconds)
        except Exception:  # one model's failure is recorded; the others go on
            failed.write_text(traceback.format_exc())
            print("%s: failed (%s)" % (model.stem, failed), file=sys.stderr)
            continue
        lines = ["%s = %s" % (k, v) for k, v in stats.items()]
        lines += ["tool_version = " + runtime.version, "device = " + runtime.device,
                  "threads = %d" % args.threads, "precision = " + args.precision,
                  "rlnas-bundle: " + digest]
        temporary = results / (model.stem + ".python.tmp")
        temporary.write_text("\\n".join(lines) + "\\n")
        temporary.replace(done)
        if failed.exists():
            failed.unlink()
        print("%d/%d %s %.4f ms" % (number, len(models), model.stem, stats["median_ms"]))


if __name__ == "__main__":
    main()
'''


def write_runners(folder: Path, precision: str, next_step: str) -> None:
    """Writes the three runners into a bundle folder, with its precision and the rlnas command
    that reads their results."""
    texts = (TRTEXEC, BENCHMARK_APP, PYTHON)
    for name, text in zip(RUNNERS, texts, strict=True):
        path = folder / name
        path.write_text(text.replace("@PRECISION@", precision).replace("@NEXT@", next_step))
        path.chmod(0o755)
