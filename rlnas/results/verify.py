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

`verified.parquet` (one row per network, rewritten atomically after every
training) holds the trained top-1 (test images where the data has them, else
the validation split) as mean, spread and per seed, the predicted and
measured latency, and, in a baseline-relative run, whether the accuracy
constraint held for real: mean top-1 >= (1 - drop) x a0's mean top-1.
`rlnas.results.verified_report` writes the report.
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

from rlnas import cluster
from rlnas.accuracy.trained import SHORT_RECIPE, Notice, TrainedAccuracy
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

    def __post_init__(self) -> None:
        for name in ("top", "seeds", "epochs", "threads", "passes"):
            if getattr(self, name) < 1:
                raise RlnasError(f"--{name} must be >= 1, got {getattr(self, name)}")
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
    recipes = [
        dataclasses.replace(SHORT_RECIPE, epochs=config.epochs, seed=seed)
        for seed in range(config.seeds)
    ]
    results: list[list[dict[str, float]]] = [[] for _ in archs]
    total, done = len(archs) * len(recipes), 0
    address = cluster.ray_address(config.ray_address)
    pool = None
    if address:
        ray = cluster.connect(address)
        pool = functools.partial(cluster.run_tasks, ray, notify=notify, status=status)
    for recipe in recipes:
        source = TrainedAccuracy(data, recipe, device=config.train_device, notice=notice)
        if pool is not None:
            source.prefetch(archs, pool)
        for number, arch in enumerate(archs):
            results[number].append(source.result(arch))
            done += 1
            frame = verified_frame(run, networks, results, recipe.epochs)
            atomic_write_parquet(
                pa.Table.from_pandas(frame, preserve_index=False), run.file(VERIFIED)
            )
            if progress is not None:
                progress(done, total, f"{networks['name'].iloc[number]} seed {recipe.seed}")
    from rlnas.results.verified_report import write_verified_report

    write_verified_report(run.path)
    return frame


def verified_frame(
    run: RunFolder, networks: pd.DataFrame, results: list[list[dict[str, float]]], epochs: int
) -> pd.DataFrame:
    """One row per network: its measured latency and trained top-1 over the seeds so far."""
    rows = []
    for (_, net), trained in zip(networks.iterrows(), results, strict=True):
        split = "test" if trained and "test_top1" in trained[0] else "val"
        top1 = [float(r[f"{split}_top1"]) for r in trained]
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
                "seeds": len(top1),
                "top1_split": split,
                "top1_mean": float(np.mean(top1)) if top1 else np.nan,
                "top1_std": float(np.std(top1, ddof=1)) if len(top1) > 1 else np.nan,
                "top1_seeds": json.dumps(top1),
                "val_top1_mean": (
                    float(np.mean([r["val_top1"] for r in trained])) if trained else np.nan
                ),
                "epochs": epochs,
            }
        )
    frame = pd.DataFrame(rows)
    frame["constraint_held"] = _constraint(run, frame)
    return frame


def _constraint(run: RunFolder, frame: pd.DataFrame) -> list[bool | None]:
    """Per row: whether its trained top-1 keeps (1 - drop) x a0's (candidates of a
    baseline-relative run with a0 trained at least as often), else None."""
    a0 = run.provenance.baseline
    base = frame[frame["is_a0"]]
    if a0 is None or base.empty or not base["seeds"].iloc[0]:
        return [None] * len(frame)
    floor = (1 - a0.accuracy_drop) * float(base["top1_mean"].iloc[0])
    return [
        bool(row["top1_mean"] >= floor)
        if row["kind"] == "candidate" and row["seeds"] and row["seeds"] <= base["seeds"].iloc[0]
        else None
        for _, row in frame.iterrows()
    ]
