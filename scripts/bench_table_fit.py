"""Tables fitted from whole-network timings (`rlnas tables fit`): how many timings they need.

    python scripts/bench_table_fit.py --here [--networks 400] [--seed 7]
    python scripts/bench_table_fit.py --fbnet [--splits 100-119] [--devices 1080ti_1_ms ...]

`--here` times `--networks` seeded random architectures of the `fbnet` space
(105 layer keys) end to end on this CPU (ONNX Runtime fp32, 1 thread, batch 1,
32 px), each in two separate passes (the passes' disagreement is the
measurement's own floor; the timings are their mean). The first half is the
pool a fit draws from: fits on its first N = 25, 50, 100 and 200 networks
(MACs prior) predict the other half, next to the layer-by-layer table
profiled on this CPU (`tables/cpu_fp32_fbnet_32_b1.parquet`, raw sum, and
calibrated on the fit's first 30 networks, as `rlnas tables calibrate` does).
Timings go to docs/benchmarks/fit_cpu_fp32_fbnet.csv (a rerun reuses them: delete
the file to time again); figures to .json.

`--fbnet` uses HELP's timings of 5,000 FBNet networks on three real devices
(`../shared/data/fbnet/fbnet_latency.parquet`). Per split seed, N = 10, 25, 50
and 100 random networks fit a table (MACs prior) and the other 5,000 - N are
predicted. Median [min, max] over the split seeds of Spearman and the share
within +-10%. Each device's ceiling for any per-layer table: an additive model
(one latency per layer position and op) fitted by least squares on 4,000
networks and scored on the other 1,000; and, for the noise, gradient-boosted
trees on the same split (a model free to use interactions between layers).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.ensemble import HistGradientBoostingRegressor

from rlnas.hardware.calibration import fit_calibration
from rlnas.hardware.devices import cpu_name
from rlnas.hardware.endtoend import NetworkTimer, kind_parts
from rlnas.hardware.fit import fit_latencies, macs_prior
from rlnas.hardware.host import with_calibration
from rlnas.hardware.table import load_table
from rlnas.model.arch import Architecture
from rlnas.model.fbnet import from_arch_str
from rlnas.model.space import get_space

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "benchmarks"
TABLE = ROOT / "tables" / "cpu_fp32_fbnet_32_b1.parquet"
FBNET = ROOT.parent / "shared" / "data" / "fbnet" / "fbnet_latency.parquet"
DEVICES = ("1080ti_1_ms", "silver_4114_ms", "pixel2_ms")


def agreement(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    error = predicted / measured - 1
    return {
        "within_10pct": float(np.mean(np.abs(error) <= 0.10)),
        "within_5pct": float(np.mean(np.abs(error) <= 0.05)),
        "mape_pct": float(np.mean(np.abs(error)) * 100),
        "spearman": float(stats.spearmanr(predicted, measured)[0]),
    }


def row(name: str, figures: dict[str, float]) -> str:
    return (
        f"| {name} | {100 * figures['within_10pct']:.0f}% | {100 * figures['within_5pct']:.0f}% "
        f"| {figures['mape_pct']:.1f}% | {figures['spearman']:.3f} |"
    )


def here(networks: int, seed: int) -> None:
    space = get_space("fbnet")
    csv = OUT / "fit_cpu_fp32_fbnet.csv"
    if csv.exists():
        frame = pd.read_csv(csv)
        archs = [Architecture.decode(a, space) for a in frame["arch"]]
    else:
        rng = np.random.default_rng(seed)
        archs = [Architecture.sample(rng, space) for _ in range(networks)]
        timer = NetworkTimer("cpu", "fp32", threads=1)
        start = time.perf_counter()
        passes = []
        for number in range(2):
            medians = []
            for i, arch in enumerate(archs, 1):
                medians.append(timer.time(arch, 32, passes=1).median_ms)
                if i % 50 == 0:
                    print(
                        f"pass {number + 1}: {i}/{len(archs)} ({time.perf_counter() - start:.0f} s)"
                    )
            passes.append(np.array(medians))
        frame = pd.DataFrame(
            {"arch": [str(a) for a in archs], "pass1_ms": passes[0], "pass2_ms": passes[1]}
        )
        frame["latency_ms"] = (frame["pass1_ms"] + frame["pass2_ms"]) / 2
        OUT.mkdir(parents=True, exist_ok=True)
        frame.to_csv(csv, index=False, float_format="%.4f")
    y = frame["latency_ms"].to_numpy()
    half = len(archs) // 2
    test, measured = archs[half:], y[half:]
    table = load_table(TABLE)
    raw = np.array([table.raw_predict_ms(a) for a in test])
    pool_raw = np.array([table.raw_predict_ms(a) for a in archs[:30]])
    parts = [kind_parts(table, a) for a in archs[:30]]
    calibration = fit_calibration(pool_raw, y[:30], parts=parts, overhead_ms=table.meta.overhead_ms)
    calibrated = with_calibration(table, calibration)
    result: dict[str, object] = {
        "command": "python scripts/bench_table_fit.py --here",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{cpu_name()}, {platform.machine()}",
        "networks": len(archs),
        "measured_ms_range": [float(y.min()), float(y.max())],
        "profiled_raw": agreement(raw, measured),
        "calibration": calibration.describe(),
        "profiled_calibrated_30": agreement(
            np.array([calibrated.predict_ms(a) for a in test]), measured
        ),
        "floor_pass1_vs_pass2": agreement(
            frame["pass1_ms"].to_numpy()[half:], frame["pass2_ms"].to_numpy()[half:]
        ),
    }
    prior = macs_prior(space, 32)
    lines = ["| prediction of the other 200 | within 10% | within 5% | MAPE | Spearman |"]
    lines.append("| --- | --- | --- | --- | --- |")
    for n in (25, 50, 100, 200):
        if n > half:
            continue
        fit = fit_latencies(archs[:n], y[:n], 32, prior)
        figures = agreement(np.array([fit.predict_ms(a, 32) for a in test]), measured)
        result[f"fitted_{n}"] = {**figures, "lambda": fit.lam, "cv_mape_pct": fit.cv_mape}
        lines.append(row(f"fitted on {n} timings (MACs prior)", figures))
    lines.append(row("profiled table, raw sum of layers", result["profiled_raw"]))  # type: ignore[arg-type]
    lines.append(row("profiled table, calibrated on 30 timings", result["profiled_calibrated_30"]))  # type: ignore[arg-type]
    lines.append(row("measurement floor (pass 1 against pass 2)", result["floor_pass1_vs_pass2"]))  # type: ignore[arg-type]
    (OUT / "fit_cpu_fp32_fbnet.json").write_text(json.dumps(result, indent=2) + "\n")
    print("\n".join(lines))


def ceilings(frame: pd.DataFrame, column: str) -> tuple[float, float]:
    """(additive least squares, boosted trees): Spearman on networks 4,000-4,999 after
    fitting networks 0-3,999."""
    ops = sorted({t for s in frame["arch_str"] for t in s.split("-")})
    onehot = np.zeros((len(frame), 22 * len(ops)))
    for i, text in enumerate(frame["arch_str"]):
        for position, op in enumerate(text.split("-")):
            onehot[i, position * len(ops) + ops.index(op)] = 1
    design = np.column_stack([np.ones(len(frame)), onehot])
    y = frame[column].to_numpy()
    weights = np.linalg.lstsq(design[:4000], y[:4000], rcond=None)[0]
    additive = stats.spearmanr(design[4000:] @ weights, y[4000:])[0]
    trees = HistGradientBoostingRegressor(random_state=0).fit(onehot[:4000], y[:4000])
    boosted = stats.spearmanr(trees.predict(onehot[4000:]), y[4000:])[0]
    return float(additive), float(boosted)


def fbnet(splits: range, devices: list[str]) -> None:
    frame = pd.read_parquet(FBNET)
    archs = [from_arch_str(s) for s in frame["arch_str"]]
    prior = macs_prior(get_space("fbnet"), 32)
    lines = ["| device | N | Spearman | within 10% |", "| --- | --- | --- | --- |"]
    result: dict[str, object] = {"splits": [splits.start, splits.stop - 1]}
    for column in devices:
        y = frame[column].to_numpy()
        for n in (10, 25, 50, 100):
            spearman, within = [], []
            for split in splits:
                order = np.random.default_rng(split).permutation(len(archs))
                train, test = order[:n], order[n:]
                fit = fit_latencies([archs[i] for i in train], y[train], 32, prior)
                predicted = np.array([fit.predict_ms(archs[i], 32) for i in test])
                figures = agreement(predicted, y[test])
                spearman.append(figures["spearman"])
                within.append(figures["within_10pct"])
            result[f"{column}_{n}"] = {"spearman": spearman, "within_10pct": within}
            lines.append(
                f"| {column.removesuffix('_ms')} | {n} | {np.median(spearman):.3f} "
                f"[{min(spearman):.3f}, {max(spearman):.3f}] | {100 * np.median(within):.0f}% "
                f"[{100 * min(within):.0f}%, {100 * max(within):.0f}%] |"
            )
            print(lines[-1], flush=True)
        additive, boosted = ceilings(frame, column)
        result[f"{column}_ceiling"] = {"additive_4000": additive, "boosted_4000": boosted}
        lines.append(
            f"| {column.removesuffix('_ms')} | ceiling, 4,000 | additive {additive:.3f}, "
            f"boosted trees {boosted:.3f} | |"
        )
    path = OUT / "fit_fbnet_help.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**previous, **result}, indent=2) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--here", action="store_true")
    parser.add_argument("--fbnet", action="store_true")
    parser.add_argument("--networks", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--splits", default="100-119")
    parser.add_argument("--devices", nargs="+", default=list(DEVICES), choices=DEVICES)
    args = parser.parse_args()
    if args.here:
        here(args.networks, args.seed)
    if args.fbnet:
        first, last = (int(x) for x in args.splits.split("-"))
        fbnet(range(first, last + 1), args.devices)


if __name__ == "__main__":
    main()
