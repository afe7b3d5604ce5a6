"""U-Boost's comparison, in kind: the network each cost model picks, run on a systolic array.

Usage:
    python scripts/bench_systolic.py [--arrays 128x128 32x32] [--seeds 5] [--budget 300]
        [--weight 0.5] [--strategy ppo] [--quantile 0.5] [--drop 0.01]
        [--out docs/benchmarks/systolic_nbmacro.csv]
    python scripts/bench_systolic.py --out docs/benchmarks/systolic_mobilenet.csv
        --predictor docs/benchmarks/predictor_mobilenet_groundtruth.parquet

Space: NAS-Bench-Macro, whose accuracies are true (the benchmark's 3-seed mean
after full training), so every network's accuracy here is real. On each array,
four cost models give a table (`rlnas tables estimate --device systolic
--cost-model ...`): `flops` (every MAC at full utilization), `roofline` (that,
or the bytes moved at 30 GB/s), `lookup` (the analytic table: U-Boost's
runtime per layer) and `lookup+util` (the same table with the reward term
`--utilization-weight`). Each runs the baseline-relative search (a0 at
`--quantile` of the benchmark's accuracy; floor (1 - drop) x a0's; latency
limit a0's under that cost model) for `--seeds` seeds at equal budget, and the
network it finds is then timed on the analytic model: runtime, utilization,
and its true accuracy. The optimum under each cost model (all 6,561 networks
enumerated, no search noise) is reported beside the searches.

With `--predictor FILE` the same four searches run in the default `mobilenet`
space at 224 px, with a0 = MobileNetV2 and the few-shot predictor's accuracy
(percent, predicted from short trainings: `rlnas predictor fit`); there is no
enumeration there.

Second part: the utilization of each block type of the default `mobilenet`
space at its stage widths (stride 1, 224 px input), on each array.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from validate_search import nbmacro_files

from rlnas.errors import EstimatedTableWarning
from rlnas.hardware.estimate import systolic_table
from rlnas.hardware.systolic import SystolicArray, conv_cost, layer_cost, parse_array
from rlnas.hardware.table import load_table
from rlnas.hardware.utilization import Utilization, arch_utilization
from rlnas.model.arch import Architecture
from rlnas.model.baselines import get_baseline
from rlnas.model.ops import LayerKey
from rlnas.model.space import get_space
from rlnas.search.config import SearchConfig
from rlnas.search.run import run_search

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"flops": "flops", "roofline": "roofline", "lookup": "analytic", "lookup+util": "analytic"}
# Stage widths (middle choice) and input sizes of the default space at 224 px.
STAGES = [(16, 112), (24, 56), (40, 28), (80, 14), (112, 14), (192, 7), (320, 7)]
BLOCKS = [("ir", 3, 1, False), ("ir", 3, 6, False), ("ir", 7, 6, False), ("ir", 5, 6, True),
          ("er", 3, 6, False), ("basic", 3, 1, False)]  # fmt: skip


def enumerate_optimum(truth, latency, utilization, a0, floor, weight):
    """The network each cost model's objective picks among all of them (no search)."""
    limit = latency[a0]
    keeps = (truth["mean_acc"].to_numpy() >= floor) & (latency <= limit)
    score = 1 - latency / limit + weight * utilization
    return int(np.flatnonzero(keeps)[np.argmax(score[keeps])])


def block_utilization(arrays: list[SystolicArray]) -> pd.DataFrame:
    rows = []
    for op, kernel, expand, se in BLOCKS:
        for width, size in STAGES:
            key = LayerKey(op, width, width, size, size, kernel, 1, expand, se, "relu6")
            row = {"block": f"{op}_k{kernel}_e{expand}{'_se' if se else ''}", "width": width}
            for array in arrays:
                row[array.size] = layer_cost(key, array).utilization
            rows.append(row)
    for width, size in STAGES:  # the depthwise convolution of ir_k3_e6 alone
        row = {"block": "depthwise 3x3 (of ir_k3_e6)", "width": width * 6}
        hidden = width * 6
        for array in arrays:
            row[array.size] = conv_cost(3, hidden, hidden, size**2, array, hidden).utilization
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arrays", nargs="+", default=["128x128", "32x32"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--weight", type=float, default=0.5)
    parser.add_argument("--strategy", default="ppo")
    parser.add_argument("--quantile", type=float, default=0.5)
    parser.add_argument("--drop", type=float, default=0.01)
    parser.add_argument("--predictor", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "docs/benchmarks/systolic_nbmacro.csv")
    args = parser.parse_args()
    warnings.simplefilter("ignore", EstimatedTableWarning)  # every table here is estimated
    space = get_space("nbmacro")
    arrays = [SystolicArray(*parse_array(a)) for a in args.arrays]
    rows = []
    if args.predictor is not None:
        with tempfile.TemporaryDirectory() as folder:
            rows = search_mobilenet(args, arrays, Path(folder))
        report(args, arrays, pd.DataFrame(rows))
        return
    with tempfile.TemporaryDirectory() as folder:
        accuracy_file, _ = nbmacro_files(Path(folder))
        truth = pd.read_parquet(accuracy_file)
        archs = [Architecture.decode(s, space) for s in truth["arch_str"]]
        ordered = truth.sort_values("mean_acc").reset_index()
        a0 = int(ordered.loc[int(args.quantile * (len(ordered) - 1)), "index"])
        floor = (1 - args.drop) * truth["mean_acc"][a0]
        print(f"a0 {truth['arch_str'][a0]}: {truth['mean_acc'][a0]:.2f}%, floor {floor:.2f}%")
        for array in arrays:
            tables = {
                name: systolic_table(
                    array,
                    space="nbmacro",
                    model=model,
                    out=Path(folder) / f"{array.size}_{model}.parquet",
                    force=True,
                )
                for name, model in MODELS.items()
                if name != "lookup+util"
            }
            tables["lookup+util"] = tables["lookup"]
            analytic = load_table(tables["lookup"])
            util = Utilization(analytic, space)
            runtime = np.array([analytic.predict_ms(a) for a in archs])
            utilization = np.array([util.of(a.choices) for a in archs])
            for name, path in tables.items():
                weight = args.weight if name == "lookup+util" else 0.0
                own = load_table(path)
                latency = np.array([own.predict_ms(a) for a in archs])
                best = enumerate_optimum(truth, latency, utilization, a0, floor, weight)
                found = [("optimum", best)]
                for seed in range(args.seeds):
                    config = SearchConfig.of(space="nbmacro", device="systolic", table=path,
                                          precision="int8", strategy=args.strategy,
                                          accuracy_file=accuracy_file, accuracy_column="mean_acc",
                                          baseline=truth["arch_str"][a0], accuracy_drop=args.drop,
                                          budget=args.budget, seed=seed,
                                          utilization_weight=weight)  # fmt: skip
                    run = Path(folder) / f"{array.size}-{name}-{seed}"
                    result = run_search(config, run)
                    index = truth.index[truth["arch_str"] == result.best["arch"]][0]
                    found.append((f"seed {seed}", int(index)))
                for label, index in found:
                    rows.append(
                        {
                            "array": array.size,
                            "cost_model": name,
                            "weight": weight,
                            "pick": label,
                            "arch": truth["arch_str"][index],
                            "runtime_ms": runtime[index],
                            "utilization": utilization[index],
                            "accuracy": truth["mean_acc"][index],
                            "a0_runtime_ms": runtime[a0],
                            "a0_utilization": utilization[a0],
                        }
                    )
                picked = pd.DataFrame(rows[-len(found) :])
                print(
                    f"{array.size} {name:>11}: optimum {runtime[best] * 1000:.1f} us at "
                    f"{utilization[best]:.1%}; searches (median) "
                    f"{picked['runtime_ms'][1:].median() * 1000:.1f} us at "
                    f"{picked['utilization'][1:].median():.1%}, accuracy "
                    f"{picked['accuracy'][1:].median():.2f}%",
                    flush=True,
                )
    report(args, arrays, pd.DataFrame(rows))


def search_mobilenet(args, arrays: list[SystolicArray], folder: Path) -> list[dict]:
    """The four searches in the default space, a0 = MobileNetV2, predicted accuracy."""
    space = get_space("mobilenet")
    a0 = get_baseline("mobilenetv2").architecture()
    rows = []
    for array in arrays:
        tables = {
            name: systolic_table(
                array, model=model, out=folder / f"{array.size}_{model}.parquet", force=True
            )
            for name, model in MODELS.items()
            if name != "lookup+util"
        }
        tables["lookup+util"] = tables["lookup"]
        analytic = load_table(tables["lookup"])
        for name, path in tables.items():
            weight = args.weight if name == "lookup+util" else 0.0
            picks = []
            for seed in range(args.seeds):
                config = SearchConfig.of(device="systolic", table=path, precision="int8",
                                      strategy=args.strategy, predictor=args.predictor,
                                      baseline="mobilenetv2", accuracy_drop=args.drop,
                                      budget=args.budget, seed=seed,
                                      utilization_weight=weight)  # fmt: skip
                result = run_search(config, folder / f"{array.size}-{name}-{seed}")
                arch = Architecture.decode(result.best["arch"], space)
                picks.append(
                    {
                        "array": array.size,
                        "cost_model": name,
                        "weight": weight,
                        "pick": f"seed {seed}",
                        "arch": str(arch),
                        "runtime_ms": analytic.predict_ms(arch),
                        "utilization": arch_utilization(analytic, arch),
                        "accuracy": float(result.best["accuracy"]),
                        "feasible": bool(result.best["feasible"]),
                        "a0_runtime_ms": analytic.predict_ms(a0),
                        "a0_utilization": arch_utilization(analytic, a0),
                        "a0_accuracy": result.baseline.accuracy if result.baseline else np.nan,
                    }
                )
            frame = pd.DataFrame(picks)
            print(
                f"{array.size} {name:>11}: searches (median) {frame['runtime_ms'].median():.3f} "
                f"ms at {frame['utilization'].median():.1%} (MobileNetV2 "
                f"{frame['a0_runtime_ms'][0]:.3f} ms at {frame['a0_utilization'][0]:.1%}), "
                f"predicted accuracy {frame['accuracy'].median():.4f}",
                flush=True,
            )
            rows += picks
    return rows


def report(args, arrays: list[SystolicArray], frame: pd.DataFrame) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    summary = (
        frame.assign(search=frame["pick"] != "optimum")
        .groupby(["array", "cost_model", "search"], sort=False)[
            ["runtime_ms", "utilization", "accuracy"]
        ]
        .median()
    )
    print(summary.to_string(float_format=lambda v: f"{v:.4f}"))
    blocks = block_utilization(arrays)
    blocks.to_csv(args.out.with_name("systolic_blocks.csv"), index=False)
    print(blocks.to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
