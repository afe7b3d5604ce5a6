"""A table adapted to a foreign host from a minute of whole-network timings (issue 33).

    python scripts/bench_host_adaptation.py --setting threads-1to2 [--archs 100] [--seconds 60]

One VM stands in for several hosts whose per-layer behaviour differs from the table's:

- `fresh-host`: the shipped `cpu_fp32_mobilenet_224_b1` (an Intel host) on this CPU,
  every other mobilenet table rlnas ships as further priors (what first use does);
- `threads-1to2`: the fbnet table timed at 1 thread, networks run at 2 threads;
- `threads-2to1`: the fbnet table profiled here at 2 threads, networks run at 1;
- `int8`: the fbnet fp32 table predicting int8 (QDQ) networks;
- `co-run`: the fbnet table (timed quiet) while a memory-bound load runs pinned to the
  other core (this process is pinned to core 0);
- `openvino`: the fbnet table profiled here with OpenVINO (`intel-cpu`) predicting ONNX
  Runtime networks.

In the fbnet settings the foreign table is the only prior (the shipped fbnet table
would be the answer itself in some of them). Per setting: two first uses
(`rlnas.hardware.endtoend.adapt`, networks of seed 2026, at most `--seconds` each),
then `--archs` other networks (seed `--seed`) timed in two separate passes: their
mean is the truth, their disagreement the measurement's floor. Reported: the share
within +-10% of the raw foreign table, of each adapted table and of pass 1 against
pass 2, and how far the two adapted tables' predictions are apart. Timings are kept in
docs/benchmarks/host_<setting>.csv (a rerun reuses them; delete it to time again) and
host_<setting>_first_use<N>.csv, figures in .json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from bench_fidelity import agreement  # scripts/ is on the path of a script run from it

from rlnas.hardware.devices import cpu_name
from rlnas.hardware.endtoend import NetworkTimer, adapt
from rlnas.hardware.profile import ProfileConfig, profile
from rlnas.hardware.table import LatencyTable, load_table
from rlnas.model.arch import Architecture
from rlnas.model.layers import arch_layers
from rlnas.model.space import get_space

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "benchmarks"
TABLES = ROOT / "tables"
SETTINGS = ("fresh-host", "threads-1to2", "threads-2to1", "int8", "co-run", "openvino")
LOAD = (
    "import os, numpy as np\n"
    "os.sched_setaffinity(0, {1})\n"
    "a = np.ones(64 * 2**20 // 8); b = np.empty_like(a)\n"
    "while True: np.copyto(b, a); np.copyto(a, b)\n"
)


def profiled(device: str, threads: int) -> Path:
    """An fbnet table profiled on this host (kept under docs/benchmarks/host_tables)."""
    out = OUT / "host_tables" / f"{device}_fp32_fbnet_32_b1_t{threads}.parquet"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        profile(ProfileConfig(device=device, space="fbnet", threads=threads, out=out))
    return out


def setting(name: str) -> tuple[LatencyTable, NetworkTimer, bool]:
    """(foreign table, timer of this 'host', whether the other known tables are priors)."""
    fbnet = TABLES / "cpu_fp32_fbnet_32_b1.parquet"
    if name == "fresh-host":
        return load_table(TABLES / "cpu_fp32_mobilenet_224_b1.parquet"), NetworkTimer("cpu"), True
    if name == "threads-1to2":
        return load_table(fbnet), NetworkTimer("cpu", "fp32", threads=2), False
    if name == "threads-2to1":
        return load_table(profiled("cpu", 2)), NetworkTimer("cpu", "fp32", threads=1), False
    if name == "int8":
        return load_table(fbnet), NetworkTimer("cpu", "int8", threads=1), False
    if name == "co-run":
        return load_table(fbnet), NetworkTimer("cpu", "fp32", threads=1), False
    return load_table(profiled("intel-cpu", 1)), NetworkTimer("cpu", "fp32", threads=1), False


def predict(latency: dict, fixed_ms: float, arch: Architecture, resolution: int) -> float:
    return fixed_ms + sum(latency[k] for k in arch_layers(arch, resolution))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=SETTINGS, required=True)
    parser.add_argument("--archs", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    table, timer, auto = setting(args.setting)
    load = None
    if args.setting == "co-run":
        os.sched_setaffinity(0, {0})
        load = subprocess.Popen([sys.executable, "-c", LOAD])
    try:
        space = get_space(table.meta.space)
        resolution = table.meta.resolution
        first_uses = []
        for use in range(2):
            result = adapt(table, timer, args.seconds, priors=None if auto else [])
            print(f"first use {use + 1}: {result.summary()}", flush=True)
            result.frame.to_csv(
                OUT / f"host_{args.setting}_first_use{use + 1}.csv",
                index=False,
                float_format="%.5f",
            )
            first_uses.append(result)
        csv = OUT / f"host_{args.setting}.csv"
        rng = np.random.default_rng(args.seed)
        archs = [Architecture.sample(rng, space) for _ in range(args.archs)]
        if csv.exists():
            frame = pd.read_csv(csv)
        else:
            start = time.perf_counter()
            passes = []
            for number in range(2):
                medians = []
                for i, arch in enumerate(archs, 1):
                    medians.append(timer.time(arch, resolution, table.meta.batch, 1).median_ms)
                    if i % 25 == 0:
                        print(
                            f"pass {number + 1}: {i}/{len(archs)} "
                            f"({time.perf_counter() - start:.0f} s)",
                            flush=True,
                        )
                passes.append(medians)
            frame = pd.DataFrame(
                {"arch": [str(a) for a in archs], "pass1_ms": passes[0], "pass2_ms": passes[1]}
            )
            frame["measured_ms"] = (frame["pass1_ms"] + frame["pass2_ms"]) / 2
            OUT.mkdir(parents=True, exist_ok=True)
            frame.to_csv(csv, index=False, float_format="%.5f")
    finally:
        if load is not None:
            load.kill()
    measured = frame["measured_ms"].to_numpy()
    raw = np.array([table.raw_predict_ms(a) for a in archs])
    adapted = [
        np.array([predict(r.fit.latency, r.fit.fixed_ms, a, resolution) for a in archs])
        for r in first_uses
    ]
    floor = agreement(frame["pass1_ms"].to_numpy(), frame["pass2_ms"].to_numpy())
    apart = np.abs(adapted[0] / adapted[1] - 1)
    result_json = {
        "command": f"python scripts/bench_host_adaptation.py --setting {args.setting} "
        f"--archs {args.archs} --seconds {args.seconds:g} --seed {args.seed}",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{cpu_name()}, {platform.machine()}, {os.cpu_count()} cores",
        "table": table.meta.name,
        "timer": f"{timer.device.name} {timer.precision}, {timer.threads} thread(s), "
        f"{timer.backend_name} {timer.backend_version}",
        "measured_ms_range": [float(measured.min()), float(measured.max())],
        "first_uses": [
            {
                "summary": r.summary(),
                "networks": r.fit.networks,
                "seconds": round(r.seconds, 1),
                "model": r.fit.model,
                "lambda": r.fit.lam,
                "cv_mape_pct": r.fit.cv_mape,
                "floor_pct": r.floor_pct,
                "held_out": agreement(p, measured),
            }
            for r, p in zip(first_uses, adapted, strict=True)
        ],
        "raw": agreement(raw, measured),
        "floor_pass1_vs_pass2": floor,
        "two_first_uses_apart": {
            "mean_pct": float(100 * apart.mean()),
            "max_pct": float(100 * apart.max()),
            "floor_mape_pct": floor["mape_pct"],
        },
    }
    (OUT / f"host_{args.setting}.json").write_text(json.dumps(result_json, indent=2) + "\n")
    lines = [
        f"raw table: {100 * result_json['raw']['within_10pct']:.0f}% within 10%",
        *(
            f"first use {i + 1}: {100 * u['held_out']['within_10pct']:.0f}% within 10% "
            f"({u['networks']} networks, {u['seconds']:.0f} s, model {u['model']})"
            for i, u in enumerate(result_json["first_uses"])
        ),
        f"floor: {100 * floor['within_10pct']:.0f}% within 10% (MAPE {floor['mape_pct']:.1f}%)",
        f"two first uses apart: mean {100 * apart.mean():.1f}%, max {100 * apart.max():.1f}%",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
