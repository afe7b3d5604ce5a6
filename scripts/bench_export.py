"""Benchmark: ONNX export throughput per layer, and lookup-table size per space.

Usage:
    python scripts/bench_export.py [--layers 60] [--seed 0] [--dynamo-layers 15]

Export throughput is measured on a seeded sample of the default space's
unique layers (224x224, batch 1): build the module and serialise it to ONNX
bytes, as the profiler does, once per exporter. Prints markdown for
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import statistics
import time

import numpy as np
import torch

from rlnas.hardware.devices import cpu_name
from rlnas.model.layers import enumerate_layers
from rlnas.model.network import export_onnx
from rlnas.model.ops import build_layer, input_shapes
from rlnas.model.space import get_space, list_spaces


def time_exports(keys: list, dynamo: bool) -> list[float]:
    seconds = []
    for key in keys:
        start = time.perf_counter()
        export_onnx(build_layer(key), input_shapes(key), dynamo=dynamo)
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=60, help="layers for the legacy exporter")
    parser.add_argument("--dynamo-layers", type=int, default=15, help="layers for dynamo")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(1)
    keys = enumerate_layers("mobilenet", 224)
    rng = np.random.default_rng(args.seed)
    sample = [keys[i] for i in rng.choice(len(keys), args.layers, replace=False)]
    # Warm-up: first export pays for imports and registrations.
    export_onnx(build_layer(sample[0]), input_shapes(sample[0]))

    print(f"machine: {cpu_name()}, {platform.python_version()}, torch {torch.__version__}")
    print("\n| exporter | layers | median s/layer | layers/min |")
    print("| --- | --- | --- | --- |")
    exporters = [("torchscript (dynamo=False)", False, sample)]
    if importlib.util.find_spec("onnxscript") is not None:
        export_onnx(build_layer(sample[0]), input_shapes(sample[0]), dynamo=True)
        exporters.append(("dynamo (dynamo=True)", True, sample[: args.dynamo_layers]))
    for label, dynamo, subset in exporters:
        seconds = time_exports(subset, dynamo)
        rate = 60 * len(seconds) / sum(seconds)
        print(f"| {label} | {len(seconds)} | {statistics.median(seconds):.4f} | {rate:,.0f} |")

    print("\n| space | resolution | unique layers (table rows per precision) | architectures |")
    print("| --- | --- | --- | --- |")
    for name in list_spaces():
        space = get_space(name)
        resolutions = [space.resolution] + ([160, 192] if space.kind == "macro" else [64])
        for resolution in resolutions:
            count = len(enumerate_layers(space, resolution))
            print(f"| {name} | {resolution} | {count:,} | {space.size:.3e} |")


if __name__ == "__main__":
    main()
