"""Bundles of networks to time on a device rlnas cannot reach, and reading their timings back.

`write_bundle` picks networks so that a table fitted to their timings
(`rlnas.hardware.fit`) is well conditioned, and writes:

- `networks/NNNN.onnx`: each network at batch 1, input `input0` (NCHW float);
- `manifest.csv`: name, architecture (canonical string), space, resolution,
  MACs, parameters, and its cost by the guide (see below);
- three runners, each writing one result file per network into `results/`:
  `run_trtexec.sh` (TensorRT's `trtexec`, `PRECISION=fp16|int8|fp32`),
  `run_benchmark_app.sh` (OpenVINO's `benchmark_app`, `DEVICE=CPU|GPU|NPU`)
  and `run_onnxruntime.py` (ONNX Runtime, any execution provider).

The choice: from a seeded pool of 20 random networks per wanted one, first
greedily the network that covers the most layer keys not covered yet, until
every key the pool holds is covered or the count is reached; then the rest
spread evenly over the guide's cost (the device's table when there is one, else
MACs), so the timings span the latencies the search will ask about.

`read_results` parses those result files: trtexec's "GPU Compute Time" median
(the engine's time on the GPU, without host transfers), benchmark_app's
latency median, and the ONNX Runtime runner's median.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from rlnas.errors import RlnasError
from rlnas.files import check_folder
from rlnas.model.arch import Architecture
from rlnas.model.layers import arch_layers
from rlnas.model.network import build_network, count_params, export_onnx
from rlnas.model.ops import layer_macs
from rlnas.model.space import Space

MANIFEST = "manifest.csv"
POOL_PER_NETWORK = 20
RUNNERS = ("run_trtexec.sh", "run_benchmark_app.sh", "run_onnxruntime.py")
# Result file suffix -> (tool, pattern of the median in ms).
PATTERNS = {
    ".trtexec.txt": (
        "trtexec",
        re.compile(r"GPU Compute Time:.*?median\s*=?\s*([0-9.eE+-]+)\s*ms"),
    ),
    ".benchmark_app.txt": (
        "benchmark_app",
        re.compile(r"Median(?: latency)?:\s*([0-9.eE+-]+)\s*ms", re.IGNORECASE),
    ),
    ".onnxruntime.txt": ("onnxruntime", re.compile(r"median_ms\s*=\s*([0-9.eE+-]+)")),
}

TRTEXEC = """#!/bin/sh
# Times every network of this bundle with TensorRT's trtexec (on the device, with
# TensorRT installed): PRECISION=fp16 (default), int8 or fp32. One result file per
# network in results/; then, on any machine with rlnas:
#   rlnas tables fit --from-dir THIS_FOLDER --device NAME --space SPACE
set -e
cd "$(dirname "$0")"
mkdir -p results
case "${PRECISION:-fp16}" in
  fp16) FLAGS="--fp16" ;;
  int8) FLAGS="--int8 --fp16" ;;
  *) FLAGS="" ;;
esac
for model in networks/*.onnx; do
  name=$(basename "$model" .onnx)
  [ -s "results/$name.trtexec.txt" ] && continue
  trtexec --onnx="$model" $FLAGS --warmUp=500 --duration=3 --useSpinWait \\
    > "results/$name.trtexec.tmp" 2>&1
  mv "results/$name.trtexec.tmp" "results/$name.trtexec.txt"
done
"""

BENCHMARK_APP = """#!/bin/sh
# Times every network of this bundle with OpenVINO's benchmark_app: DEVICE=CPU
# (default), GPU or NPU; one inference at a time (latency). One result file per
# network in results/; then: rlnas tables fit --from-dir THIS_FOLDER --device NAME --space SPACE
set -e
cd "$(dirname "$0")"
mkdir -p results
for model in networks/*.onnx; do
  name=$(basename "$model" .onnx)
  [ -s "results/$name.benchmark_app.txt" ] && continue
  benchmark_app -m "$model" -d "${DEVICE:-CPU}" -hint latency -nireq 1 -t 3 \\
    > "results/$name.benchmark_app.tmp" 2>&1
  mv "results/$name.benchmark_app.tmp" "results/$name.benchmark_app.txt"
done
"""

ONNXRUNTIME = '''"""Times every network of this bundle with ONNX Runtime (pip install
onnxruntime, or a vendor build):
    python run_onnxruntime.py [--provider CPUExecutionProvider] [--threads 1]
One result file per network in results/; then, on any machine with rlnas:
    rlnas tables fit --from-dir THIS_FOLDER --device NAME --space SPACE
"""

import argparse
import pathlib
import statistics
import time

import numpy as np
import onnxruntime as ort

parser = argparse.ArgumentParser()
parser.add_argument("--provider", default="CPUExecutionProvider")
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--seconds", type=float, default=2.0)
args = parser.parse_args()
here = pathlib.Path(__file__).resolve().parent
(here / "results").mkdir(exist_ok=True)
for model in sorted((here / "networks").glob("*.onnx")):
    result = here / "results" / f"{model.stem}.onnxruntime.txt"
    if result.exists():
        continue
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(str(model), options, providers=[args.provider])
    feed = {
        i.name: np.random.default_rng(0).standard_normal(i.shape).astype(np.float32)
        for i in session.get_inputs()
    }
    for _ in range(20):
        session.run(None, feed)
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < args.seconds or len(times) < 20:
        begin = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - begin) * 1000)
    result.write_text(f"median_ms = {statistics.median(times)}\\nruns = {len(times)}\\n")
'''


def choose_networks(
    space: Space, resolution: int, count: int, seed: int, cost: Callable[[Architecture], float]
) -> list[Architecture]:
    """`count` distinct architectures: layer coverage first, then spread over `cost`."""
    rng = np.random.default_rng(seed)
    pool = list(
        {
            str(a): a
            for a in (Architecture.sample(rng, space) for _ in range(POOL_PER_NETWORK * count))
        }.values()
    )
    layers = [set(arch_layers(a, resolution)) for a in pool]
    chosen: list[int] = []
    taken: set[int] = set()
    covered: set[object] = set()
    while len(chosen) < count:
        gains = [len(keys - covered) if i not in taken else -1 for i, keys in enumerate(layers)]
        best = int(np.argmax(gains))
        if gains[best] <= 0:
            break
        chosen.append(best)
        taken.add(best)
        covered |= layers[best]
    rest = [i for i in range(len(pool)) if i not in taken]
    wanted = count - len(chosen)
    if wanted > 0 and rest:
        costs = np.array([cost(pool[i]) for i in rest])
        order = [rest[i] for i in np.argsort(costs, kind="stable")]
        picks = np.unique(np.linspace(0, len(order) - 1, min(wanted, len(order))).round())
        chosen += [order[int(i)] for i in picks]
    return [pool[i] for i in chosen]


def write_bundle(
    space: Space,
    resolution: int,
    count: int,
    out: Path,
    seed: int = 0,
    cost: Callable[[Architecture], float] | None = None,
    guide: str = "macs",
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Writes the bundle (see the module docstring) into `out`; returns its manifest."""
    out = check_folder(out, MANIFEST)
    if count < 1:
        raise RlnasError(f"--archs must be at least 1, got {count}")

    def macs(arch: Architecture) -> float:
        return float(sum(layer_macs(k) for k in arch_layers(arch, resolution)))

    guide_cost = cost or macs
    archs = choose_networks(space, resolution, count, seed, guide_cost)
    (out / "networks").mkdir(parents=True, exist_ok=True)
    rows = []
    for number, arch in enumerate(archs):
        name = f"{number:04d}"
        net = build_network(arch, resolution, seed=0)
        path = out / "networks" / f"{name}.onnx"
        if not path.exists():
            path.write_bytes(export_onnx(net, [(1, 3, resolution, resolution)]))
        rows.append(
            {
                "name": name,
                "arch": str(arch),
                "space": space.name,
                "resolution": resolution,
                "macs": int(macs(arch)),
                "params": count_params(net),
                f"guide_{guide}": guide_cost(arch),
            }
        )
        if progress is not None:
            progress(number + 1, len(archs))
    for runner, text in zip(RUNNERS, (TRTEXEC, BENCHMARK_APP, ONNXRUNTIME), strict=True):
        (out / runner).write_text(text)
        if runner.endswith(".sh"):
            (out / runner).chmod(0o755)
    manifest = pd.DataFrame(rows)
    manifest.to_csv(out / MANIFEST, index=False)
    return manifest


def read_results(folder: Path) -> pd.DataFrame:
    """The bundle's timed networks: arch, latency_ms and the tool that timed each.

    Raises:
        RlnasError: No manifest, no result file at all, or a result file without a median
            (each named with the fix).
    """
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        raise RlnasError(f"{folder} is not a bundle (no {MANIFEST}); write one with `rlnas bundle`")
    manifest = pd.read_csv(folder / MANIFEST, dtype={"name": str})
    rows = []
    for name, arch in zip(manifest["name"], manifest["arch"], strict=True):
        for suffix, (tool, pattern) in PATTERNS.items():
            path = folder / "results" / f"{name}{suffix}"
            if not path.is_file():
                continue
            match = pattern.search(path.read_text(errors="replace"))
            if match is None:
                raise RlnasError(
                    f"{path} holds no {tool} median latency (did the run fail? see the file); "
                    "delete it and run the runner again"
                )
            rows.append({"arch": arch, "latency_ms": float(match.group(1)), "tool": tool})
            break
    if not rows:
        raise RlnasError(
            f"{folder}/results holds no timings; run one of {', '.join(RUNNERS)} on the device"
        )
    return pd.DataFrame(rows)
