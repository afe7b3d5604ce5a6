"""Tables fitted from whole-network timings (`rlnas tables fit`): how many timings they need.

    python scripts/bench_table_fit.py --here [--networks 400] [--seed 7]
    python scripts/bench_table_fit.py --fbnet [--splits 100-119] [--devices 1080ti_1_ms ...] \
        [--prior auto|macs]
    python scripts/bench_table_fit.py --speed [--networks 1000]

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
and 100 random networks fit a table and the other 5,000 - N are predicted.
`--prior auto` (what `rlnas tables fit` does by default): the priors are the
CPU fbnet table rlnas ships and a table of each other device, fitted (no prior
table) on 1,000 of its timings (networks 0-999 of a seed-0 permutation), as a
user who timed those devices would have; `--prior macs`: no table, the layers'
work and memory alone. Median [min, max] over the split seeds of Spearman and
the share within +-10%. Each device's ceiling for any per-layer table: an
additive model (one latency per layer position and op) fitted by least squares
on 4,000 networks and scored on the other 1,000; and, for the noise,
gradient-boosted trees on the same split (a model free to use interactions
between layers).

`--speed` times one fit of `--networks` whole-network timings of the mobilenet
space (3,089 layer keys; the timings are the shipped cpu table's predictions
with 3% noise) with every shipped mobilenet table as a prior, as `rlnas tables
fit` runs it.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
from bench_fidelity import agreement
from scipy import stats
from sklearn.ensemble import HistGradientBoostingRegressor

from rlnas.hardware.devices import cpu_name
from rlnas.hardware.endtoend import NetworkTimer
from rlnas.hardware.features import PriorTable, prior_tables
from rlnas.hardware.fit import fit_latencies
from rlnas.hardware.table import load_table
from rlnas.model.arch import Architecture
from rlnas.model.fbnet import from_arch_str
from rlnas.model.space import get_space

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "benchmarks"
TABLE = ROOT / "tables" / "cpu_fp32_fbnet_32_b1.parquet"
FBNET = ROOT.parent / "shared" / "data" / "fbnet" / "fbnet_latency.parquet"
DEVICES = ("1080ti_1_ms", "silver_4114_ms", "pixel2_ms")


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
    adapted = fit_latencies(archs[:30], y[:30], 32, [PriorTable.of(table)])
    result: dict[str, object] = {
        "command": "python scripts/bench_table_fit.py --here",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{cpu_name()}, {platform.machine()}",
        "networks": len(archs),
        "measured_ms_range": [float(y.min()), float(y.max())],
        "profiled_raw": agreement(raw, measured),
        "adaptation": adapted.describe(),
        "profiled_adapted_30": agreement(
            np.array([adapted.predict_ms(a, 32) for a in test]), measured
        ),
        "floor_pass1_vs_pass2": agreement(
            frame["pass1_ms"].to_numpy()[half:], frame["pass2_ms"].to_numpy()[half:]
        ),
    }
    lines = ["| prediction of the other 200 | within 10% | within 5% | MAPE | Spearman |"]
    lines.append("| --- | --- | --- | --- | --- |")
    for n in (25, 50, 100, 200):
        if n > half:
            continue
        fit = fit_latencies(archs[:n], y[:n], 32)
        figures = agreement(np.array([fit.predict_ms(a, 32) for a in test]), measured)
        result[f"fitted_{n}"] = {**figures, "lambda": fit.lam, "cv_mape_pct": fit.cv_mape}
        lines.append(row(f"fitted on {n} timings (no prior table)", figures))
    lines.append(row("profiled table, raw sum of layers", result["profiled_raw"]))  # type: ignore[arg-type]
    lines.append(row("profiled table, adapted on 30 timings", result["profiled_adapted_30"]))  # type: ignore[arg-type]
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


def other_devices(frame: pd.DataFrame, archs: list, target: str) -> list[PriorTable]:
    """A table of each other device, fitted on 1,000 of its timings (no prior table)."""
    pool = np.random.default_rng(0).permutation(len(archs))[:1000]
    priors = []
    for column in DEVICES:
        if column != target:
            fit = fit_latencies([archs[i] for i in pool], frame[column].to_numpy()[pool], 32)
            priors.append(PriorTable(column.removesuffix("_ms"), fit.latency))
    return priors


def fbnet(splits: range, devices: list[str], prior: str, sizes: list[int]) -> None:
    frame = pd.read_parquet(FBNET)
    archs = [from_arch_str(s) for s in frame["arch_str"]]
    shipped = prior_tables(["auto"], get_space("fbnet"), 32)
    lines = ["| device | prior | N | Spearman | within 10% |", "| --- | --- | --- | --- | --- |"]
    tag = f"splits {splits.start}-{splits.stop - 1}"
    result: dict[str, object] = {}
    for column in devices:
        y = frame[column].to_numpy()
        priors = shipped + other_devices(frame, archs, column) if prior == "auto" else []
        for n in sizes:
            spearman, within, models = [], [], []
            for split in splits:
                order = np.random.default_rng(split).permutation(len(archs))
                train, test = order[:n], order[n:]
                fit = fit_latencies([archs[i] for i in train], y[train], 32, priors)
                predicted = np.array([fit.predict_ms(archs[i], 32) for i in test])
                figures = agreement(predicted, y[test])
                spearman.append(figures["spearman"])
                within.append(figures["within_10pct"])
                models.append(fit.model)
            result[f"{column} {prior} N={n} {tag}"] = {
                "spearman": spearman,
                "within_10pct": within,
                "models": models,
            }
            lines.append(
                f"| {column.removesuffix('_ms')} | {prior} | {n} | {np.median(spearman):.3f} "
                f"[{min(spearman):.3f}, {max(spearman):.3f}] | {100 * np.median(within):.0f}% "
                f"[{100 * min(within):.0f}%, {100 * max(within):.0f}%] |"
            )
            print(lines[-1], flush=True)
        additive, boosted = ceilings(frame, column)
        result[f"{column}_ceiling"] = {"additive_4000": additive, "boosted_4000": boosted}
        lines.append(
            f"| {column.removesuffix('_ms')} | ceiling, 4,000 | | additive {additive:.3f}, "
            f"boosted trees {boosted:.3f} | |"
        )
    path = OUT / "fit_fbnet_help.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**previous, **result}, indent=2) + "\n")
    print("\n".join(lines))


def speed(networks: int) -> None:
    space = get_space("mobilenet")
    table = load_table(ROOT / "tables" / "cpu_fp32_mobilenet_224_b1.parquet")
    rng = np.random.default_rng(0)
    archs = [Architecture.sample(rng, space) for _ in range(networks)]
    y = np.array([table.raw_predict_ms(a) for a in archs]) * rng.normal(1, 0.03, networks)
    start = time.perf_counter()
    priors = prior_tables(["auto"], space, 224)
    fit = fit_latencies(archs, y, 224, priors)
    seconds = time.perf_counter() - start
    print(
        f"{networks} timings, {len(fit.latency)} layer keys, {len(priors)} prior tables: "
        f"{seconds:.2f} s ({cpu_name()}); {fit.describe()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--here", action="store_true")
    parser.add_argument("--fbnet", action="store_true")
    parser.add_argument("--networks", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--splits", default="100-119")
    parser.add_argument("--devices", nargs="+", default=list(DEVICES), choices=DEVICES)
    parser.add_argument("--prior", choices=("auto", "macs"), default="auto")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 25, 50, 100])
    parser.add_argument("--speed", action="store_true")
    args = parser.parse_args()
    if args.here:
        here(args.networks, args.seed)
    if args.fbnet:
        first, last = (int(x) for x in args.splits.split("-"))
        fbnet(range(first, last + 1), args.devices, args.prior, args.sizes)
    if args.speed:
        speed(args.networks if args.networks != 400 else 1000)


if __name__ == "__main__":
    main()
