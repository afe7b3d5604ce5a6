"""Validation of the search strategies on measured data (NAS-Bench-201 by default).

Usage:
    python scripts/validate_search.py [--columns titan_rtx_1_ms raspi4_ms pixel3_ms]
        [--budget 300] [--seeds 10] [--seed-start 0] [--strategies ppo random evolution]
        [--quantile 0.25] [--accuracy FILE --accuracy-column C] [--latency FILE]
        [--space nb201] [--ppo KEY=VALUE ...] [--plot docs/benchmarks/search_regret.png]
    python scripts/validate_search.py --space nbmacro [...]

Accuracy = the accuracy file's column (true CIFAR-10 accuracy), latency = each
measured device column of the latency file; the latency limit is that column's
`quantile`; reward `hard`. `--space nbmacro` takes NAS-Bench-Macro's 3-seed
mean accuracy and the latency that the shipped `cpu` table of the space
predicts (column `cpu_ms`, calibrated for this host as a search would use it).
`--evolution-sample-size` sets evolution's tournament (default 5; the
controller's editor draws 10). `--ppo` overrides a PPO setting (e.g.
`ent_coef=0.01`); settings are tuned on seeds 0-19 and reported on
`--seed-start 100 --seeds 20`. Regret = best feasible true accuracy in the
whole file minus the best feasible accuracy found so far, in percentage points.
Prints median and IQR over seeds at several budgets; plots the curves.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rlnas.model.nbmacro import from_code
from rlnas.model.space import get_space
from rlnas.search.config import SearchConfig
from rlnas.search.run import build_evaluator
from rlnas.search.strategies import EvolutionSettings, PPOSettings, get_strategy

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201"
NBMACRO = SHARED.parent / "nbmacro" / "nbmacro_cifar10.parquet"


def nbmacro_files(folder: Path) -> tuple[Path, Path]:
    """NAS-Bench-Macro's accuracy and the shipped cpu table's latency, keyed by arch_str."""
    bench = pd.read_parquet(NBMACRO)
    archs = [from_code(code) for code in bench["arch"]]
    config = SearchConfig(space="nbmacro", device="cpu", latency_ms=1.0, strategy="random")
    evaluator, _ = build_evaluator(config, journal=None)
    strings = [str(a) for a in archs]
    accuracy = pd.DataFrame({"arch_str": strings, "mean_acc": bench["mean_acc"]})
    latency = pd.DataFrame(
        {"arch_str": strings, "cpu_ms": [evaluator.latency.latency_ms(a) for a in archs]}
    )
    paths = folder / "nbmacro_accuracy.parquet", folder / "nbmacro_latency.parquet"
    accuracy.to_parquet(paths[0])
    latency.to_parquet(paths[1])
    return paths


def ppo_settings(overrides: list[str]) -> PPOSettings:
    values: dict[str, object] = {}
    defaults = PPOSettings()
    for item in overrides:
        key, _, text = item.partition("=")
        kind = type(getattr(defaults, key))
        values[key] = tuple(int(v) for v in text.split(",")) if kind is tuple else kind(text)
    return PPOSettings(**values)  # type: ignore[arg-type]


def regret_curve(history, best: float, budget: int) -> np.ndarray:
    found = np.full(budget, np.nan)
    best_so_far = 0.0
    for i, evaluation in enumerate(history[:budget]):
        if evaluation.feasible:
            best_so_far = max(best_so_far, evaluation.accuracy)
        found[i] = best_so_far
    return 100 * (best - found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accuracy", type=Path, default=SHARED / "nb201_cifar10_accuracy.parquet")
    parser.add_argument("--accuracy-column", default="cifar10_test_acc")
    parser.add_argument("--latency", type=Path, default=SHARED / "nb201_latency.parquet")
    parser.add_argument(
        "--columns", nargs="+", default=["titan_rtx_1_ms", "raspi4_ms", "pixel3_ms"]
    )
    parser.add_argument("--space", default="nb201")
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--seed-start", type=int, default=0)
    parser.add_argument("--ppo", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--evolution-sample-size", type=int, default=5)
    parser.add_argument("--strategies", nargs="+", default=["ppo", "random", "evolution"])
    parser.add_argument("--quantile", type=float, default=0.25)
    parser.add_argument(
        "--plot",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "search_regret.png",
    )
    args = parser.parse_args()

    space = get_space(args.space)
    key = "arch_index"
    if args.space == "nbmacro":
        folder = Path(tempfile.mkdtemp(prefix="rlnas-nbmacro-"))
        args.accuracy, args.latency = nbmacro_files(folder)
        args.accuracy_column, args.columns, key = "mean_acc", ["cpu_ms"], "arch_str"
    accuracy = pd.read_parquet(args.accuracy).set_index(key)[args.accuracy_column]
    latency = pd.read_parquet(args.latency).set_index(key)
    settings = ppo_settings(args.ppo)
    evolution = EvolutionSettings(sample_size=args.evolution_sample_size)
    checkpoints = [b for b in (50, 100, 200, args.budget) if b <= args.budget]
    figure, axes = plt.subplots(
        1, len(args.columns), figsize=(5 * len(args.columns), 4), dpi=110, squeeze=False
    )
    print(
        "| device column | limit ms | strategy | "
        + " | ".join(f"regret @{b} median [IQR]" for b in checkpoints)
        + " |"
    )
    print("| --- | --- | --- | " + " | ".join("---" for _ in checkpoints) + " |")
    for ax, column in zip(axes[0], args.columns, strict=True):
        limit = float(latency[column].quantile(args.quantile))
        feasible = latency.index[latency[column] <= limit]
        best = float(accuracy.loc[feasible].max()) / 100
        for strategy in args.strategies:
            curves = []
            for seed in range(args.seed_start, args.seed_start + args.seeds):
                config = SearchConfig.of(
                    latency_ms=limit,
                    strategy=strategy,
                    space=args.space,
                    reward="hard",
                    budget=args.budget,
                    seed=seed,
                    accuracy_file=args.accuracy,
                    accuracy_column=args.accuracy_column,
                    latency_file=args.latency,
                    latency_column=column,
                )
                evaluator, _ = build_evaluator(config, journal=None)
                own = {"ppo": settings, "evolution": evolution}.get(strategy)
                get_strategy(strategy)(evaluator, space, seed, settings=own).run()
                curves.append(regret_curve(evaluator.history, best, args.budget))
            curves_array = np.array(curves)
            median = np.nanmedian(curves_array, axis=0)
            q1, q3 = np.nanpercentile(curves_array, [25, 75], axis=0)
            cells = [f"{median[b - 1]:.2f} [{q1[b - 1]:.2f}, {q3[b - 1]:.2f}]" for b in checkpoints]
            print(
                f"| {column} | {limit:.3f} | {strategy} | " + " | ".join(cells) + " |", flush=True
            )
            steps = np.arange(1, args.budget + 1)
            ax.plot(steps, median, label=strategy)
            ax.fill_between(steps, q1, q3, alpha=0.2)
        ax.set_title(f"{column}, limit {limit:.2f} ms (p{100 * args.quantile:.0f})")
        ax.set_xlabel("architectures evaluated")
        ax.set_ylabel("regret (accuracy points)")
        ax.set_yscale("symlog", linthresh=0.1)
        ax.grid(alpha=0.3)
        ax.legend()
    figure.suptitle(f"median and IQR over {args.seeds} seeds, {args.space}")
    figure.tight_layout()
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.plot)
    print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
