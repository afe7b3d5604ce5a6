"""`rlnas verify`: a run's best candidates and the baselines, trained and timed for real.

The K best candidates of a run and the baselines (the run's a0 first) are timed
end to end on the run's device (`rlnas.results.measure`, reused where
`measured.parquet` already has them) and trained with one recipe (the trained
source's short recipe, `--epochs` epochs), once per seed. Each training is a
folder of the trained source's cache, so a killed `verify` resumes where it
stopped (mid-epoch trainings from their last epoch) and a network trained
before (by `--accuracy trained` or the ground truth) is not trained again.
Trainings run seed by seed, so that every network has its first seed early.
With `--ray-address` each seed's trainings run in parallel on the cluster and
the timing on its device node.

Every network is trained at two budgets, E and 2E epochs (same recipe and seeds;
all E trainings first), because a regime far from convergence favours networks
that learn fast, not those that end up accurate. A verdict counts only where it
holds at both budgets. a0's per-epoch history at 2E (validation top-1, mean over
seeds) is fitted with a saturating curve a - b exp(-epoch / tau), and the budget
at which it comes within 1% of its plateau a is reported: the budget that would
settle the comparison. (The recipe's cosine schedule flattens the end of every
curve, so this is an estimate from the curve's shape, not a measurement.)

`verified.parquet` (one row per network, rewritten atomically after every
training) holds the trained top-1 (test images where the data has them, else
the validation split) as mean, spread and per seed at E epochs, the same at 2E
(`long_*`), the predicted and measured latency, and, in a baseline-relative
run, whether the accuracy constraint held for real at each budget (mean top-1
>= (1 - drop) x a0's mean top-1: `held_short`, `held_long`) and at both
(`constraint_held`). `rlnas.results.verified_report` writes the report.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import optimize

from rlnas import cluster
from rlnas.accuracy.trained import SHORT_RECIPE, Notice, TrainedAccuracy
from rlnas.accuracy.training import HISTORY, TRAIN_DEVICES, check_train_device
from rlnas.errors import RlnasError
from rlnas.files import atomic_write_parquet
from rlnas.hardware.timing import TimingConfig
from rlnas.model.arch import Architecture
from rlnas.model.space import get_space
from rlnas.results.measure import (
    BASELINE_NAMES,
    KEY_COLUMNS,
    MeasureConfig,
    a0_name,
    measure_run,
    measures_baselines,
)
from rlnas.search.run_folder import MEASURED, MEASURED_COLUMNS, VERIFIED, RunFolder, read_frame


@dataclass(frozen=True)
class VerifyConfig:
    """What `verify_run` trains and times.

    Attributes:
        top: Best candidates of the run (by its ranking).
        seeds: Trainings per network (seeds 0..seeds-1).
        epochs: Epochs of the recipe (the trained source's short recipe otherwise).
        data: Labelled images (default: the run's --data).
        baselines: Named baselines trained beside the candidates (the run's a0 always is).
        train_device: cpu or cuda (default: cuda where torch sees a GPU).
        threads: Intra-op threads of the end-to-end timing (CPU backends).
        passes: Timing passes per network.
        timing: Harness settings of the end-to-end timing.
        ray_address: A Ray cluster (or auto): each seed's trainings run there as parallel
            tasks (on nodes with a GPU for cuda), the timing on the node that offers the
            run's device.
        a0_reference: A known top-1 of a0 (percent, e.g. its fully trained accuracy), shown
            beside the one trained here.
        truth: A benchmark (nbmacro or nb201): check the run against its full-training
            accuracies instead of training (`rlnas.results.truth`).
        truth_file: That benchmark's file (default: under ../shared/data).
    """

    top: int = 5
    seeds: int = 3
    epochs: int = SHORT_RECIPE.epochs
    data: Path | None = None
    baselines: tuple[str, ...] = BASELINE_NAMES
    train_device: str | None = None
    threads: int = 1
    passes: int = 2
    timing: TimingConfig = field(default_factory=TimingConfig)
    ray_address: str | None = None
    truth: str | None = None
    truth_file: Path | None = None
    a0_reference: float | None = None

    def __post_init__(self) -> None:
        for name in ("top", "seeds", "epochs", "threads", "passes"):
            if getattr(self, name) < 1:
                raise RlnasError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.a0_reference is not None and not 0 < self.a0_reference <= 100:
            raise RlnasError(
                f"--a0-reference is a top-1 in percent (0-100], got {self.a0_reference:g}; "
                "give e.g. 94.1 for 94.1%"
            )
        if self.train_device is not None and self.train_device not in TRAIN_DEVICES:
            raise RlnasError(f"--train-device must be cpu or cuda, got '{self.train_device}'")
        unknown = [b for b in self.baselines if b not in BASELINE_NAMES]
        if unknown:
            raise RlnasError(
                f"--baselines: {', '.join(unknown)} is not measured with a run; choose from "
                f"{', '.join(BASELINE_NAMES)}"
            )


# Called as progress(done, total, what) after each training.
VerifyProgress = Callable[[int, int, str], None]


def _measured(run: RunFolder, config: VerifyConfig) -> pd.DataFrame:
    """The run's end-to-end rows for this device and precision, measured where missing."""
    device, precision = run.config.device, run.config.precision or "fp32"
    named = measures_baselines(run, True)
    wanted = {f"rank{r}" for r in run.ranked()["rank"].head(config.top)}
    wanted |= set(config.baselines) if named else set()
    a0 = a0_name(run, named)
    wanted |= {a0} if a0 is not None else set()
    out = run.file(MEASURED)
    if out.is_file():
        frame = read_frame(out, MEASURED_COLUMNS, f"move {out} away to measure the run afresh")
        here = frame[(frame["device"] == device) & (frame["precision"] == precision)]
        if wanted <= set(here["name"]):
            return here
    measure = MeasureConfig(
        device=device,
        precision=precision,
        top=config.top,
        threads=config.threads,
        passes=config.passes,
        timing=config.timing,
        ray_address=config.ray_address,
    )
    return measure_run(run.path, measure)


def _networks(run: RunFolder, config: VerifyConfig, measured: pd.DataFrame) -> pd.DataFrame:
    """The rows to train: the top candidates, a0, and the chosen baselines (a0 first)."""
    a0 = a0_name(run, measures_baselines(run, True))
    candidates = measured[measured["kind"] == "candidate"]
    ranks = pd.to_numeric(candidates["rank"], errors="coerce")
    candidates = candidates[ranks <= config.top].sort_values("rank")
    keep = measured["name"].isin(config.baselines) | (measured["name"] == a0)
    baselines = measured[(measured["kind"] == "baseline") & keep].copy()
    baselines["is_a0"] = baselines["name"] == a0
    baselines = baselines.sort_values(["is_a0", "measured_ms"], ascending=[False, True])
    frame = pd.concat([baselines, candidates.assign(is_a0=False)], ignore_index=True)
    return frame.drop_duplicates(KEY_COLUMNS)


def verify_run(
    run_path: Path,
    config: VerifyConfig,
    progress: VerifyProgress | None = None,
    notice: Notice | None = None,
    notify: cluster.Notify | None = None,
    status: cluster.Status | None = None,
) -> pd.DataFrame:
    """Trains and times a run's best candidates and the baselines; writes `verified.parquet`
    and the report. Returns the verified rows (one per network). On a Ray cluster
    (`config.ray_address`), `notify` is told of cluster events (a node that left) and
    `status` of the cluster's work, one line each."""
    address = cluster.ray_address(config.ray_address)
    if config.train_device == "cuda" and not address:
        # Here, before any timing; a cluster's nodes may have GPUs where this host has none.
        check_train_device("cuda", "--train-device")
    run = RunFolder.open(run_path)
    data = config.data or run.config.data
    if data is None:
        raise RlnasError(
            f"run {run_path} names no images; pass --data (an .npz with x_train/y_train, or a "
            "folder of class folders)"
        )
    space = get_space(run.config.space)
    networks = _networks(run, config, _measured(run, config))
    # A baseline may belong to another (built-in) space than the run's.
    archs = [
        Architecture.decode(a, space if s in (None, space.name) else get_space(s))
        for a, s in zip(networks["arch"], networks["space"], strict=True)
    ]
    budgets = (config.epochs, 2 * config.epochs)
    recipes = [
        dataclasses.replace(SHORT_RECIPE, epochs=epochs, seed=seed)
        for epochs in budgets
        for seed in range(config.seeds)
    ]
    results: dict[int, list[list[dict[str, float]]]] = {e: [[] for _ in archs] for e in budgets}
    curves: list[Path] = []
    total, done = len(archs) * len(recipes), 0
    pool = None
    if address:
        ray = cluster.connect(address)
        pool = functools.partial(cluster.run_tasks, ray, notify=notify, status=status)
    for recipe in recipes:
        source = TrainedAccuracy(data, recipe, device=config.train_device, notice=notice)
        if pool is not None:
            source.prefetch(archs, pool)
        for number, arch in enumerate(archs):
            results[recipe.epochs][number].append(source.result(arch))
            if recipe.epochs == budgets[1] and networks["is_a0"].iloc[number]:
                curves.append(source.training_folder(arch) / HISTORY)
            done += 1
            frame = verified_frame(run, networks, results, budgets, settles_epochs(curves))
            frame["a0_reference"] = config.a0_reference
            atomic_write_parquet(
                pa.Table.from_pandas(frame, preserve_index=False), run.file(VERIFIED)
            )
            if progress is not None:
                progress(
                    done,
                    total,
                    f"{networks['name'].iloc[number]} seed {recipe.seed}, {recipe.epochs} epochs",
                )
    from rlnas.results.verified_report import write_verified_report

    write_verified_report(run.path)
    return frame


def verified_frame(
    run: RunFolder,
    networks: pd.DataFrame,
    results: dict[int, list[list[dict[str, float]]]],
    budgets: tuple[int, int],
    settles: float = np.nan,
) -> pd.DataFrame:
    """One row per network: its measured latency and trained top-1 over the seeds so far, at
    the short budget and at the long one (`long_*`), and the verdicts."""
    short, long = budgets
    rows = []
    for number, (_, net) in enumerate(networks.iterrows()):
        rows.append(
            {
                "name": net["name"],
                "kind": net["kind"],
                "rank": net["rank"],
                "is_a0": bool(net["is_a0"]),
                "arch": net["arch"],
                "device": net["device"],
                "precision": net["precision"],
                "score": net["score"],
                "predicted_ms": net["predicted_ms"],
                "measured_ms": net["measured_ms"],
                "params": net["params"],
                "macs": net["macs"],
                **_top1(results[short][number], ""),
                "epochs": short,
                **_top1(results[long][number], "long_"),
                "long_epochs": long,
                "a0_settles_epochs": settles,
            }
        )
    frame = pd.DataFrame(rows)
    frame["held_short"] = _constraint(run, frame, "")
    frame["held_long"] = _constraint(run, frame, "long_")
    frame["constraint_held"] = [
        held_at_both(a, b) for a, b in zip(frame["held_short"], frame["held_long"], strict=True)
    ]
    return frame


def _top1(trained: list[dict[str, float]], prefix: str) -> dict[str, object]:
    """The trained top-1 of one network at one budget, over the seeds trained so far."""
    split = "test" if trained and "test_top1" in trained[0] else "val"
    top1 = [float(r[f"{split}_top1"]) for r in trained]
    return {
        f"{prefix}seeds": len(top1),
        f"{prefix}top1_split": split,
        f"{prefix}top1_mean": float(np.mean(top1)) if top1 else np.nan,
        f"{prefix}top1_std": float(np.std(top1, ddof=1)) if len(top1) > 1 else np.nan,
        f"{prefix}top1_seeds": json.dumps(top1),
        f"{prefix}val_top1_mean": (
            float(np.mean([r["val_top1"] for r in trained])) if trained else np.nan
        ),
    }


def held_at_both(short: bool | None, long: bool | None) -> bool | None:
    """Held only where it holds at both budgets; missed where it misses at either."""
    if short is False or long is False:
        return False
    return True if short and long else None


def _constraint(run: RunFolder, frame: pd.DataFrame, prefix: str) -> list[bool | None]:
    """Per row, at one budget: whether its trained top-1 keeps (1 - drop) x a0's
    (candidates of a baseline-relative run with a0 trained at least as often), else None."""
    a0 = run.provenance.baseline
    base = frame[frame["is_a0"]]
    seeds, mean = f"{prefix}seeds", f"{prefix}top1_mean"
    if a0 is None or base.empty or not base[seeds].iloc[0]:
        return [None] * len(frame)
    floor = (1 - a0.accuracy_drop) * float(base[mean].iloc[0])
    return [
        bool(row[mean] >= floor)
        if row["kind"] == "candidate" and row[seeds] and row[seeds] <= base[seeds].iloc[0]
        else None
        for _, row in frame.iterrows()
    ]


def settles_epochs(histories: list[Path], within: float = 0.01) -> float:
    """The epochs after which a learning curve comes within `within` (relative) of its
    plateau: a - b exp(-epoch / tau) fitted to the mean validation top-1 per epoch of
    `histories` (one per seed). NaN where there is no curve to fit (under 4 epochs, or a
    fit that does not converge to a rising curve)."""
    curves = [pd.read_parquet(h)["val_top1"].to_numpy() for h in histories if h.is_file()]
    if not curves or len(curves[0]) < 4 or any(len(c) != len(curves[0]) for c in curves):
        return np.nan
    mean = np.mean(curves, axis=0)
    epochs = np.arange(1, len(mean) + 1, dtype=float)

    def curve(e: np.ndarray, a: float, b: float, tau: float) -> np.ndarray:
        return a - b * np.exp(-e / tau)

    try:
        start = (float(mean[-1]), float(mean[-1] - mean[0]) * np.e, len(mean) / 3)
        (a, b, tau), _ = optimize.curve_fit(curve, epochs, mean, p0=start, maxfev=5000)
    except (RuntimeError, ValueError):
        return np.nan
    if not (a > 0 and b > 0 and tau > 0):
        return np.nan
    return float(max(1.0, tau * np.log(b / (within * a))))
