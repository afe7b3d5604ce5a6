"""Fidelity of a lookup table: predicted against end-to-end measured latency of random networks.

    python scripts/bench_fidelity.py --device cpu --archs 200
    python scripts/bench_fidelity.py --device intel-cpu --archs 200
    python scripts/bench_fidelity.py --device cpu --archs 100 --host   # a fresh host
    python scripts/bench_fidelity.py --device cuda --space nbmacro --table T.parquet --archs 50

With `--host`, the table predicts as rlnas predicts on this host: a table
measured on another host is first calibrated here (the run `rlnas` makes on
first use, timed and included; its networks are seed 2026, not the ones
scored), and the figures go to `..._host.json`. `--table` names a table file
(a freshly profiled one, say) instead of the device's table in the catalog; a
table with no stored calibration is scored by its raw sum alone.

Takes `--archs` seeded random architectures of the default space, predicts
each from the device's table (raw sum, and with the table's stored
calibration, which was fitted on other architectures), and measures each
network end to end twice, in two separate passes over all networks (each
compiles afresh), so the passes' disagreement is the measurement's own floor.
Writes docs/benchmarks/fidelity_<device>_<precision>[_<space>][_host].{json,png}; prints the
figures for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import matplotlib

from rlnas.hardware.catalog import locate_table

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.stats import kendalltau, spearmanr

from rlnas.hardware.devices import cpu_name
from rlnas.hardware.endtoend import NetworkTimer, table_for_host
from rlnas.hardware.table import load_table
from rlnas.model.arch import Architecture
from rlnas.model.space import get_space


def agreement(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    error = predicted / measured - 1
    return {
        "within_10pct": float(np.mean(np.abs(error) <= 0.10)),
        "within_5pct": float(np.mean(np.abs(error) <= 0.05)),
        "mape_pct": float(np.mean(np.abs(error)) * 100),
        "mean_error_pct": float(np.mean(error) * 100),
        "kendall_tau": float(kendalltau(predicted, measured)[0]),
        "spearman": float(spearmanr(predicted, measured)[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--space", default="mobilenet")
    parser.add_argument("--archs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    parser.add_argument(
        "--host",
        action="store_true",
        help="predict as rlnas does on this host: calibrate here on first use (timed)",
    )
    parser.add_argument("--table", type=Path, help="a table file (default: the catalog's)")
    args = parser.parse_args()

    space = get_space(args.space)
    if args.table is not None:
        path = args.table
    else:
        _, path = locate_table(args.device, args.precision, space.name, space.resolution)
    table = load_table(path)
    calibration_run_s = 0.0
    if args.host:
        # Out of the box on this host: the calibration `rlnas` runs on first use here.
        started = time.perf_counter()
        table = table_for_host(path).table
        calibration_run_s = time.perf_counter() - started
    timer = NetworkTimer(args.device, args.precision, threads=table.meta.threads or 1)
    rng = np.random.default_rng(args.seed)
    archs = [Architecture.sample(rng, space) for _ in range(args.archs)]
    start = time.perf_counter()
    passes = []
    for number in range(2):
        medians = []
        for i, arch in enumerate(archs, 1):
            medians.append(timer.time(arch, table.meta.resolution, passes=1).median_ms)
            if i % 25 == 0:
                print(f"pass {number + 1}: {i}/{len(archs)} ({time.perf_counter() - start:.0f} s)")
        passes.append(np.array(medians))
    measured = (passes[0] + passes[1]) / 2
    frame = pd.DataFrame(
        {
            "arch": [str(a) for a in archs],
            "raw_predicted_ms": [table.raw_predict_ms(a) for a in archs],
            "predicted_ms": [table.predict_ms(a) for a in archs],
            "pass1_ms": passes[0],
            "pass2_ms": passes[1],
            "measured_ms": measured,
        }
    )
    result = {
        "command": (
            f"python scripts/bench_fidelity.py --device {args.device} --precision "
            f"{args.precision} --space {space.name} --archs {args.archs} --seed {args.seed}"
            + (" --host" if args.host else "")
            + (f" --table {args.table}" if args.table else "")
        ),
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{cpu_name()}, {platform.machine()}",
        "table": str(path),
        "backend": f"{timer.backend.name} {timer.backend.version()}",
        "threads": timer.threads,
        "archs": args.archs,
        "wall_s": round(time.perf_counter() - start, 1),
        "calibration": table.calibration.describe() if table.calibration else "none",
        "calibration_run_s": round(calibration_run_s, 1),
        "measured_ms_range": [float(measured.min()), float(measured.max())],
        "raw": agreement(frame["raw_predicted_ms"].to_numpy(), measured),
        "calibrated": agreement(frame["predicted_ms"].to_numpy(), measured),
        "floor_pass1_vs_pass2": agreement(passes[0], passes[1]),
    }
    # The default space keeps the historical name; another space is named, so it never
    # overwrites the default space's figures.
    suffix = ("" if space.name == "mobilenet" else f"_{space.name}") + (
        "_host" if args.host else ""
    )
    stem = f"fidelity_{args.device}_{args.precision}{suffix}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    frame.to_csv(args.out / f"{stem}.csv", index=False, float_format="%.4f")

    figure, axes = plt.subplots(figsize=(5.5, 5), dpi=120)
    axes.scatter(measured, frame["raw_predicted_ms"], s=8, alpha=0.5, label="raw sum of layers")
    axes.scatter(measured, frame["predicted_ms"], s=8, alpha=0.7, label="calibrated")
    low, high = float(measured.min()) * 0.9, float(measured.max()) * 1.1
    grid = np.array([low, high])
    axes.plot(grid, grid, "k-", linewidth=0.8, label="y = x")
    axes.fill_between(grid, grid * 0.9, grid * 1.1, color="0.85", alpha=0.5, label="+-10%")
    axes.set_xlabel(f"measured end to end (ms), {args.device} {args.precision}")
    axes.set_ylabel("predicted from the table (ms)")
    axes.set_title(f"{args.archs} random {space.name} networks, {timer.backend.name}", fontsize=9)
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(args.out / f"{stem}.png")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
