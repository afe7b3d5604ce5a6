"""The runners a bundle carries to the device, and the reading of what they write.

A bundle (`rlnas.hardware.bundle` for whole networks, `rlnas.hardware.layer_bundle`
for single layers) holds `models/*.onnx`, `bundle.id` (its digest) and three
runners that need nothing of rlnas on the device. Each times every model in its
own run, writes `results/NAME.TOOL.txt` (or `results/NAME.TOOL.failed` with the
log, and goes on), appends the bundle's digest, and skips models already done,
so a runner resumes where it stopped:

- `run_trtexec.sh`: TensorRT's `trtexec` (`TRTEXEC=` or PATH or JetPack's
  `/usr/src/tensorrt/bin/trtexec`), one shared `--timingCacheFile` so the
  builds reuse each other's tactics; `PRECISION=fp32|fp16|int8` (the bundle's
  by default; an int8 bundle's models are already QDQ, so `--int8` builds them
  with their own scales);
- `run_benchmark_app.sh`: OpenVINO's `benchmark_app` (`DEVICE=CPU|GPU|NPU`);
- `run_python.py`: ONNX Runtime or TensorRT's Python API, on Python >= 3.8 with
  numpy and the runtime only (TensorRT's buffers and events through the CUDA
  runtime library, by ctypes).

`parse_result` reads one result file: the median (and what else the tool
gives), the tool's version and the device as the output states them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

BUNDLE_ID = "bundle.id"
RUNNERS = ("run_trtexec.sh", "run_benchmark_app.sh", "run_python.py")
# Result suffix -> tool. `.onnxruntime.txt` is what bundles before `run_python.py` wrote.
TOOLS = {
    ".trtexec.txt": "trtexec",
    ".benchmark_app.txt": "benchmark_app",
    ".python.txt": "python",
    ".onnxruntime.txt": "onnxruntime",
}
FAILED = ".failed"
DIGEST_LINE = re.compile(r"^rlnas-bundle:\s*(\S+)\s*$", re.MULTILINE)

_NUMBER = r"([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)"
# trtexec (8.x and 10.x): "GPU Compute Time: min = 0.1 ms, max = ..., mean = ..., median =
# ..., percentile(90%) = ..., ..." in its performance summary.
# (Not "Total GPU Compute Time: 3.2 s", which follows it.)
_TRT_GPU = re.compile(r"(?<!Total )GPU Compute Time: (.*)")
_TRT_STAT = re.compile(r"(min|max|mean|median|percentile\(90%\))\s*=\s*" + _NUMBER + r"\s*ms")
_TRT_VERSION = re.compile(r"TensorRT version:\s*([0-9][0-9.]*)")
_TRT_DEVICE = re.compile(r"(?:Selected Device|Device):\s*(.+?)\s*$", re.MULTILINE)
# benchmark_app (2022.1 onwards): "[ INFO ]    Median:  1.23 ms" under "Latency:"; recent
# releases print small latencies in microseconds ("Median:  68.24 us").
_OV_STAT = re.compile(
    r"\b(Median|Average|Min|Max)\s*:\s*" + _NUMBER + r"\s*(ms|us|µs|s)\b", re.IGNORECASE
)
_TO_MS = {"ms": 1.0, "us": 1e-3, "µs": 1e-3, "s": 1e3}
_OV_VERSION = re.compile(r"Build\s*\.+\s*([0-9][^\s]*)")
_OV_DEVICE = re.compile(r"\[ INFO \]\s*(CPU|GPU(?:\.\d)?|NPU)\s*$", re.MULTILINE)
# run_python.py and the older run_onnxruntime.py: "key = value" lines.
_PY_LINE = re.compile(r"^(\w+)\s*=\s*(.+?)\s*$", re.MULTILINE)
_ERROR = re.compile(r"(?:\[E\]|ERROR|Error|error)[^\n]*")


@dataclass(frozen=True)
class Result:
    """One model's timing as its runner wrote it.

    Attributes:
        median_ms: The median latency.
        tool: trtexec, benchmark_app, python or onnxruntime.
        p10_ms, p90_ms, mean_ms, std_ms, runs: What else the tool reports (NaN or 0 where
            it reports none; trtexec gives no 10th percentile, its minimum stands in).
        tool_version: The runtime's version as the output states it ("" if not stated).
        device: The device as the output states it ("" if not stated).
        digest: The bundle digest the runner appended ("" for older bundles).
    """

    median_ms: float
    tool: str
    p10_ms: float = float("nan")
    p90_ms: float = float("nan")
    mean_ms: float = float("nan")
    std_ms: float = float("nan")
    runs: int = 0
    tool_version: str = ""
    device: str = ""
    digest: str = ""


class ResultError(ValueError):
    """A result file that holds no timing: why, in one line."""


def find_result(results: Path, name: str) -> Path | None:
    """The result file of model `name` (a failure record counts), or None if not run yet."""
    for suffix in (*TOOLS, *(f".{t}{FAILED}" for t in dict.fromkeys(TOOLS.values()))):
        path = results / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def parse_result(path: Path) -> Result:
    """Reads one result file.

    Raises:
        ResultError: A failure record, an empty file, or no median in it (with the
            tool's first error line where it printed one).
    """
    text = path.read_text(errors="replace")
    tool = next((t for s, t in TOOLS.items() if path.name.endswith(s)), "")
    if path.name.endswith(FAILED):
        tool = path.name[: -len(FAILED)].rsplit(".", 1)[-1]
        raise ResultError(f"{tool} failed ({_first_error(text)})")
    if not text.strip():
        raise ResultError(f"{tool} wrote an empty file (the run was cut short?)")
    digest_match = DIGEST_LINE.search(text)
    digest = digest_match.group(1) if digest_match else ""
    if tool == "trtexec":
        return _trtexec(text, digest)
    if tool == "benchmark_app":
        return _benchmark_app(text, digest)
    return _python(text, tool, digest)


def _first_error(text: str) -> str:
    match = _ERROR.search(text)
    line = match.group(0) if match else (text.strip().splitlines() or ["no output"])[-1]
    return line.strip()[:200]


def _trtexec(text: str, digest: str) -> Result:
    lines = _TRT_GPU.findall(text)
    stats = {k: float(v) for k, v in _TRT_STAT.findall(lines[-1])} if lines else {}
    if "median" not in stats:
        raise ResultError(f"trtexec printed no GPU Compute Time median ({_first_error(text)})")
    version = _TRT_VERSION.search(text)
    device = _TRT_DEVICE.search(text)
    return Result(
        stats["median"],
        "trtexec",
        p10_ms=stats.get("min", float("nan")),
        p90_ms=stats.get("percentile(90%)", float("nan")),
        mean_ms=stats.get("mean", float("nan")),
        tool_version=f"TensorRT {version.group(1)}" if version else "",
        device=device.group(1) if device else "",
        digest=digest,
    )


def _benchmark_app(text: str, digest: str) -> Result:
    # The latency block comes after "Latency:"; a throughput-only run has none.
    block = text.split("Latency:", 1)[1] if "Latency:" in text else ""
    stats = {k.lower(): float(v) * _TO_MS[u.lower()] for k, v, u in _OV_STAT.findall(block)}
    if "median" not in stats:
        raise ResultError(f"benchmark_app printed no median latency ({_first_error(text)})")
    version = _OV_VERSION.search(text)
    device = _OV_DEVICE.search(text)
    return Result(
        stats["median"],
        "benchmark_app",
        p10_ms=stats.get("min", float("nan")),
        p90_ms=stats.get("max", float("nan")),
        mean_ms=stats.get("average", float("nan")),
        tool_version=f"OpenVINO {version.group(1)}" if version else "",
        device=device.group(1) if device else "",
        digest=digest,
    )


def _python(text: str, tool: str, digest: str) -> Result:
    values = dict(_PY_LINE.findall(text))
    try:
        median = float(values["median_ms"])
    except (KeyError, ValueError):
        raise ResultError(f"{tool} result has no median_ms line") from None

    def number(key: str) -> float:
        try:
            return float(values[key])
        except (KeyError, ValueError):
            return float("nan")

    return Result(
        median,
        tool,
        p10_ms=number("p10_ms"),
        p90_ms=number("p90_ms"),
        mean_ms=number("mean_ms"),
        std_ms=number("std_ms"),
        runs=int(number("runs")) if values.get("runs", "").isdigit() else 0,
        tool_version=values.get("tool_version", ""),
        device=values.get("device", ""),
        digest=digest or values.get("bundle", ""),
    )


# --- the runners, written into each bundle ----------------------------------------------

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
