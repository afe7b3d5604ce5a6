"""Bundles of networks to time on a device rlnas cannot reach, and reading their timings back.

`write_bundle` picks networks so that a table fitted to their timings
(`rlnas.hardware.fit`) is well conditioned, and writes:

- `models/NNNN.onnx`: each network at batch 1, input `input0` (NCHW float);
- `manifest.csv`: name, architecture (canonical string), space, resolution,
  MACs, parameters, and its cost by the guide (see below);
- `bundle.id`, its digest, and the runners of `rlnas.hardware.runners`
  (trtexec, benchmark_app, and a Python runner for ONNX Runtime or TensorRT),
  each writing one result file per network into `results/`.

The choice: from a seeded pool of 20 random networks per wanted one, first
greedily the network that covers the most layer keys not covered yet, until
every key the pool holds is covered or the count is reached; then the rest
spread evenly over the guide's cost (the device's table when there is one, else
MACs), so the timings span the latencies the search will ask about.

`read_results` parses those result files (`rlnas.hardware.runners.parse_result`):
trtexec's "GPU Compute Time" median (the engine's time on the GPU, without host
transfers), benchmark_app's latency median, and the Python runner's median. A
network whose run failed is named in one line; the others are read. Bundles
written before the shared runners (`networks/`, `run_onnxruntime.py`) are read too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from rlnas.errors import RlnasError
from rlnas.files import check_folder
from rlnas.hardware.runner_scripts import RUNNERS, write_runners
from rlnas.hardware.runners import BUNDLE_ID, collect_results
from rlnas.model.arch import Architecture
from rlnas.model.layers import arch_layers
from rlnas.model.network import build_network, count_params, export_onnx
from rlnas.model.ops import layer_macs
from rlnas.model.space import Space

MANIFEST = "manifest.csv"
POOL_PER_NETWORK = 20


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
    (out / "models").mkdir(parents=True, exist_ok=True)
    rows = []
    for number, arch in enumerate(archs):
        name = f"{number:04d}"
        net = build_network(arch, resolution, seed=0)
        path = out / "models" / f"{name}.onnx"
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
    manifest = pd.DataFrame(rows)
    manifest.to_csv(out / MANIFEST, index=False)
    digest = hashlib.sha256((out / MANIFEST).read_bytes()).hexdigest()[:16]
    (out / BUNDLE_ID).write_text(digest + "\n")
    next_step = f"rlnas tables fit --from-dir THIS_FOLDER --device NAME --space {space.name}"
    write_runners(out, "fp16", next_step)
    return manifest


def read_results(folder: Path) -> tuple[pd.DataFrame, list[str]]:
    """The bundle's timed networks (arch, latency_ms and the tool that timed each), and one
    line per network whose run failed or left no median.

    Raises:
        RlnasError: No manifest, another bundle's results, or no timing at all (each named
            with the fix).
    """
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        raise RlnasError(f"{folder} is not a bundle (no {MANIFEST}); write one with `rlnas bundle`")
    manifest = pd.read_csv(folder / MANIFEST, dtype={"name": str})
    digest_file = folder / BUNDLE_ID
    digest = digest_file.read_text().strip() if digest_file.is_file() else ""
    timed, problems = collect_results(folder / "results", manifest["name"], digest, "network ")
    rows = [
        {"arch": arch, "latency_ms": timed[name].median_ms, "tool": timed[name].tool}
        for name, arch in zip(manifest["name"], manifest["arch"], strict=True)
        if name in timed
    ]
    if not rows:
        raise RlnasError(
            f"{folder}/results holds no timings; run one of {', '.join(RUNNERS)} on the device"
            + (f" ({len(problems)} runs failed: {problems[0]})" if problems else "")
        )
    return pd.DataFrame(rows), problems
