"""A search run: sources, evaluator and strategy from a `SearchConfig`, written to a run folder.

An interrupted run is resumed by running the same command again: the strategy
replays from its seed and every evaluation already journalled is reused, so the
final state equals that of an uninterrupted run. The folder's files are named
in `rlnas.search.run_folder`.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from rlnas import cluster
from rlnas.cluster import Notify, Status, TaskPool
from rlnas.errors import RlnasError, RunError
from rlnas.files import atomic_write_parquet, check_folder
from rlnas.hardware.devices import get_precision
from rlnas.model.arch import Architecture
from rlnas.model.space import get_space
from rlnas.search import run_folder
from rlnas.search.baseline import (
    BaselineTarget,
    baseline_target,
    resolve_baseline,
    with_limit,
)
from rlnas.search.config import SearchConfig
from rlnas.search.evaluate import Evaluator
from rlnas.search.plots import plot_pareto
from rlnas.search.rewards import RewardConfig
from rlnas.search.run_folder import Provenance, TableProvenance
from rlnas.search.sources import (
    accuracy_source,
    latency_source,
    macs_model,
    params_model,
)
from rlnas.search.strategies import Progress, get_strategy
from rlnas.search.targets import RelativeTarget, relative_target, with_relative
from rlnas.settings import to_json


@dataclass
class RunResult:
    """What a search produced.

    Attributes:
        out: The run folder.
        evaluations: One row per evaluated architecture, in order.
        pareto: The Pareto front rows.
        replayed: Evaluations reused from an earlier, interrupted run.
        best: The rank-1 evaluation (see `rlnas.search.run_folder.ranked`).
        stopped: Why the search ended before spending its budget, or None.
        config: The settings, with the latency target a baseline set filled in.
        baseline: a0 and its limits, in a baseline-relative search.
    """

    out: Path
    evaluations: pd.DataFrame
    pareto: pd.DataFrame
    replayed: int
    best: pd.Series
    stopped: str | None = None
    config: SearchConfig | None = None
    baseline: BaselineTarget | None = None


def build_evaluator(
    config: SearchConfig, journal: Path | None, pool: TaskPool | None = None
) -> tuple[Evaluator, Provenance]:
    """The sources and evaluator of a search, and where their numbers come from.

    In a baseline-relative search a0 is scored first by the same sources, and its
    accuracy floor and latency limit go into the reward (`provenance.baseline`).
    """
    config = config.resolved()
    space = get_space(config.space)
    accuracy = accuracy_source(config, space)
    latency = latency_source(config, space)
    relative = relative_target(config, latency)
    config = with_relative(config, relative)
    target = None
    if config.baseline is not None:
        a0 = resolve_baseline(config.baseline, space)
        target = baseline_target(
            config, a0, accuracy.accuracy(a0), latency.latency_ms(a0), accuracy.description
        )
    table = latency.table
    provenance = Provenance(
        accuracy.description,
        latency.description,
        proxy=accuracy.proxy,
        table=TableProvenance(table.path, table.meta) if table and table.path else None,
        baseline=target,
        relative=relative,
    )
    reward = RewardConfig(
        mode=config.reward,
        target_ms=target.target_ms if target is not None else config.target_ms,
        memory_bytes=config.memory_mb * 1e6 if config.memory_mb is not None else None,
        accuracy_floor=target.accuracy_floor if target is not None else None,
        utilization_weight=config.utilization_weight,
        min_utilization=config.min_utilization,
    )
    if reward.uses_utilization and not (table is not None and table.has_utilization):
        raise RlnasError(
            f"--utilization-weight and --min-utilization need a table with utilization; "
            f"{latency.description} has none: write one with `rlnas tables estimate --device "
            "systolic --array 128x128` and search with --device systolic"
        )
    evaluator = Evaluator(
        accuracy,
        latency,
        params_model(space),
        reward,
        config.budget,
        get_precision(config.precision or "fp32").bytes_per_element,
        journal,
        pool,
    )
    return evaluator, provenance


def run_search(
    config: SearchConfig,
    out: Path | None = None,
    progress: Progress | None = None,
    tensorboard: Path | None = None,
    ray_address: str | None = None,
    notify: Notify | None = None,
    status: Status | None = None,
) -> RunResult:
    """Runs (or resumes) a search and writes its run folder.

    `tensorboard` is a folder where the PPO controller logs its training (the
    `tensorboard` extra); other strategies refuse it. With `ray_address` (or
    RAY_ADDRESS) batches of proposals are scored as parallel tasks on that Ray
    cluster (`Evaluator.prefetch`); the evaluations are those of a run without it.
    `notify` is told of cluster events (a node that left) and `status` of the cluster's
    work, one line each.
    """
    config = config.resolved()
    if tensorboard is not None:
        check_tensorboard(config.strategy)
    out = check_folder(Path(out) if out is not None else config.default_out(), run_folder.CONFIG)
    stored = _stored_provenance(out, config)
    pool = None
    address = cluster.ray_address(ray_address)
    if address is not None:
        ray = cluster.connect(address)
        pool = functools.partial(cluster.run_tasks, ray, notify=notify, status=status)
    evaluator, provenance = build_evaluator(config, out / run_folder.JOURNAL, pool)
    if provenance.relative is not None:
        _check_resumed_target(out, provenance.relative, stored.relative if stored else None)
        if notify is not None:
            notify(provenance.relative.describe())
    space = evaluator.params.space
    out.mkdir(parents=True, exist_ok=True)
    run_folder.write_settings(out, config, provenance)
    # as RunFolder.open reads it back
    config = with_limit(with_relative(config, provenance.relative), provenance.baseline)
    strategy_cls = get_strategy(config.strategy)
    field = strategy_cls.settings_field
    strategy = strategy_cls(
        evaluator,
        space,
        config.seed,
        settings=getattr(config.strategies, field) if field else None,
        checkpoint=out / run_folder.CONTROLLER,
        tensorboard=tensorboard,
        start=(
            Architecture.decode(provenance.baseline.arch, space)
            if provenance.baseline is not None
            else None
        ),
        targets=(
            (config.latency_min_ms, config.target_ms) if config.latency_min_ms is not None else None
        ),
    )
    strategy.run(progress)
    evaluator.accuracy.flush()
    frame, front = _write_results(out, evaluator, config)
    best = run_folder.ranked(frame, config.target_ms, config.baseline is not None).iloc[0]
    return RunResult(
        out,
        frame,
        front,
        evaluator.replayed,
        best,
        strategy.stop_reason(),
        config,
        provenance.baseline,
    )


def _stored_provenance(out: Path, config: SearchConfig) -> Provenance | None:
    """The provenance of the run already in `out` (None for a new run); raises if that
    run has other settings."""
    if not (out / run_folder.CONFIG).exists():
        return None
    previous, stored = run_folder.read_settings(out)
    if previous != config:
        was, now = to_json(previous), to_json(config)
        changed = [k for k in now if was.get(k) != now[k]]
        raise RunError(
            f"run folder {out} holds a run with other settings ({', '.join(changed)}); "
            "pass another --out to start a new run, or the same settings to resume it"
        )
    return stored


def _check_resumed_target(out: Path, now: RelativeTarget, was: RelativeTarget | None) -> None:
    """Raises if a resumed run's relative target now resolves to another latency (the
    table was calibrated again): its journal was scored against the old one."""
    if was is not None and not math.isclose(was.target_ms, now.target_ms, rel_tol=1e-9):
        raise RunError(
            f"run folder {out} searched for {was.target_ms:.3f} ms ({was.factor:g}x "
            f"{was.reference}); on this host's table that is now {now.target_ms:.3f} ms "
            "(calibrated again); start a new run with another --out (this folder is kept as it is)"
        )


def _write_results(
    out: Path, evaluator: Evaluator, config: SearchConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Writes the evaluations (with MACs and the accuracy source's own columns), the Pareto
    front and its plot; returns the first two."""
    space = evaluator.params.space
    frame = pd.DataFrame([dataclasses.asdict(e) for e in evaluator.history])
    macs = macs_model(space, config.resolution or space.resolution)
    archs = [Architecture.decode(a, space) for a in frame["arch"]]
    frame["macs"] = [round(macs.total(a.choices)) for a in archs]
    for name, values in evaluator.accuracy.columns(archs).items():
        frame[name] = values
    atomic_write_parquet(_arrow(frame), out / run_folder.EVALUATIONS)
    front = pareto_front(frame)
    atomic_write_parquet(_arrow(front), out / run_folder.PARETO)
    plot_pareto(frame, front, config, out / run_folder.PARETO_PLOT)
    return frame, front


def check_tensorboard(strategy: str) -> None:
    """Raises unless the strategy can log to TensorBoard here."""
    get_strategy(strategy).check_logs_training()
    if importlib.util.find_spec("tensorboard") is None:
        raise RlnasError(
            "--tensorboard needs TensorBoard: pip install 'rlnas[tensorboard]' (or drop "
            "--tensorboard)"
        )


def _arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def pareto_front(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows not dominated in (higher accuracy, lower latency), by increasing latency."""
    ordered = frame.sort_values(["latency_ms", "accuracy"], ascending=[True, False])
    best = -float("inf")
    keep = []
    for index, accuracy in zip(ordered.index, ordered["accuracy"], strict=True):
        if accuracy > best:
            keep.append(index)
            best = accuracy
    return ordered.loc[keep].reset_index(drop=True)
