"""A search run: configuration, sources, strategy, and the run folder it writes.

Run folder:
    config.json          the resolved configuration (and the table's provenance)
    evaluations.jsonl    every evaluation as it happens (the resume journal)
    evaluations.parquet  every evaluated architecture: accuracy score, raw proxy values,
                         predicted latency, parameters, MACs, reward, feasibility
    pareto.parquet       the accuracy/latency Pareto front
    pareto.png           the front over all evaluated architectures
    controller.zip       the trained controller (ppo only; stable-baselines3 format)

An interrupted run is resumed by running the same command again: the strategy
replays from its seed and every evaluation already journalled is reused, so the
final state equals that of an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rlnas import __version__
from rlnas.accuracy.score_cache import default_cache_path
from rlnas.accuracy.scorer import ProxyConfig, ProxyScorer
from rlnas.errors import EstimatedTableWarning, RlnasError
from rlnas.hardware.catalog import default_precision, locate_table
from rlnas.hardware.devices import get_precision
from rlnas.hardware.table import load_table
from rlnas.model.arch import Architecture
from rlnas.model.space import DEFAULT_SPACE, get_space
from rlnas.search.evaluate import Evaluator
from rlnas.search.rewards import RewardConfig
from rlnas.search.sources import (
    AccuracySource,
    BenchmarkAccuracy,
    BenchmarkLatency,
    LatencySource,
    ProxyAccuracy,
    TableLatency,
    macs_model,
    params_model,
)
from rlnas.search.strategies import Progress, get_strategy


@dataclass(frozen=True)
class SearchConfig:
    """One search.

    Attributes:
        latency_ms: Latency target T in milliseconds.
        strategy: `ppo`, `random` or `evolution`.
        device: Target device; picks the lookup table with `precision`.
        precision: Precision of the table; None picks the first of the device's
            precisions that has a table (so `--device xavier-nx` finds the shipped fp16 one).
        space: Space name or file.
        resolution: Deployment resolution (default: the space's).
        reward: `mnas`, `tunas` or `hard`.
        proxy: Accuracy proxy (or `ensemble`) when no accuracy file is given.
        data: Images for data-dependent proxies (.npz or folder).
        budget: Unique architectures evaluated.
        seed: Seed of the strategy.
        memory_mb: Limit on parameter megabytes (10^6 bytes) at `precision`, or None.
        table: A table file to use instead of the device's default one.
        accuracy_file: Benchmark file replacing the proxy (arch_index or arch_str keyed).
        accuracy_column: Its column.
        latency_file: Benchmark file replacing the table.
        latency_column: Its column.
    """

    latency_ms: float
    strategy: str = "ppo"
    device: str = "cpu"
    precision: str | None = None
    space: str = DEFAULT_SPACE
    resolution: int | None = None
    reward: str = "mnas"
    proxy: str = "synflow"
    data: Path | None = None
    budget: int = 1000
    seed: int = 0
    memory_mb: float | None = None
    table: Path | None = None
    accuracy_file: Path | None = None
    accuracy_column: str = "cifar10_test_acc"
    latency_file: Path | None = None
    latency_column: str | None = None

    def resolved(self) -> SearchConfig:
        """These settings with `precision` filled in (see its docstring)."""
        if self.precision is not None:
            return self
        space = get_space(self.space)
        resolution = self.resolution or space.resolution
        precision = default_precision(self.device, space.name, resolution)
        return dataclasses.replace(self, precision=precision)

    def default_out(self) -> Path:
        return Path("runs") / (
            f"{self.strategy}-{self.device}-{self.precision}-{Path(self.space).stem}"
            f"-{self.latency_ms:g}ms-s{self.seed}"
        )


@dataclass
class RunResult:
    """What a search produced.

    Attributes:
        out: The run folder.
        evaluations: One row per evaluated architecture, in order.
        pareto: The Pareto front rows.
        replayed: Evaluations reused from an earlier, interrupted run.
    """

    out: Path
    evaluations: pd.DataFrame
    pareto: pd.DataFrame
    replayed: int


def _json(config: SearchConfig) -> dict[str, Any]:
    return {
        k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(config).items()
    }


def build_evaluator(
    config: SearchConfig, journal: Path | None
) -> tuple[Evaluator, ProxyScorer | None, dict[str, Any]]:
    """The sources and evaluator of a search, and a description of them for config.json."""
    if config.budget < 1:
        raise RlnasError(f"budget must be >= 1 architecture, got {config.budget}")
    space = get_space(config.space)
    resolution = config.resolution or space.resolution
    precision = config.precision or default_precision(config.device, space.name, resolution)
    provenance: dict[str, Any] = {}
    scorer = None
    accuracy: AccuracySource
    if config.accuracy_file is not None:
        accuracy = BenchmarkAccuracy(config.accuracy_file, config.accuracy_column)
    else:
        scorer = ProxyScorer(
            space, ProxyConfig(proxy=config.proxy, data=config.data, cache=default_cache_path())
        )
        accuracy = ProxyAccuracy(scorer)
    latency: LatencySource
    if config.latency_file is not None:
        if not config.latency_column:
            raise RlnasError("a latency file needs --latency-column (e.g. pixel3_ms)")
        latency = BenchmarkLatency(config.latency_file, config.latency_column)
    else:
        if config.table is not None:
            path = config.table
        else:
            _, path = locate_table(config.device, precision, space.name, resolution)
        table = load_table(path)
        if table.meta.source != "measured":
            warnings.warn(
                f"latencies come from the {table.meta.source} table {path.name} "
                f"({table.meta.host}); run `rlnas profile --device {table.meta.device}` on the "
                "device for measured ones",
                EstimatedTableWarning,
                stacklevel=2,
            )
        latency = TableLatency(table, space)
        provenance["table"] = {"path": str(path), **dataclasses.asdict(table.meta)}
    provenance["accuracy_source"] = accuracy.description
    provenance["latency_source"] = latency.description
    reward = RewardConfig(
        mode=config.reward,
        target_ms=config.latency_ms,
        memory_bytes=config.memory_mb * 1e6 if config.memory_mb is not None else None,
    )
    evaluator = Evaluator(
        accuracy,
        latency,
        params_model(space),
        reward,
        config.budget,
        get_precision(precision).bytes_per_element,
        journal,
    )
    return evaluator, scorer, provenance


def run_search(
    config: SearchConfig, out: Path | None = None, progress: Progress | None = None
) -> RunResult:
    """Runs (or resumes) a search and writes its run folder."""
    config = config.resolved()
    out = Path(out) if out is not None else config.default_out()
    stored = out / "config.json"
    if stored.exists():
        previous = json.loads(stored.read_text()).get("search")
        if previous != _json(config):
            changed = [k for k, v in _json(config).items() if (previous or {}).get(k) != v]
            raise RlnasError(
                f"run folder {out} holds a run with other settings ({', '.join(changed)}); "
                "pass another --out to start a new run, or the same settings to resume it"
            )
    evaluator, scorer, provenance = build_evaluator(config, out / "evaluations.jsonl")
    space = evaluator.params.space
    out.mkdir(parents=True, exist_ok=True)
    stored.write_text(
        json.dumps({"search": _json(config), "rlnas_version": __version__, **provenance}, indent=2)
        + "\n"
    )
    strategy_cls = get_strategy(config.strategy)
    kwargs: dict[str, Any] = {}
    if config.strategy == "ppo":
        kwargs["checkpoint"] = out / "controller.zip"
    strategy = strategy_cls(evaluator, space, config.seed, **kwargs)
    strategy.run(progress)
    if scorer is not None:
        scorer.flush()

    frame = pd.DataFrame([dataclasses.asdict(e) for e in evaluator.history])
    resolution = config.resolution or space.resolution
    macs = macs_model(space, resolution)
    archs = [Architecture.decode(a, space) for a in frame["arch"]]
    frame["macs"] = [round(macs.total(a.choices)) for a in archs]
    if scorer is not None:
        raw = [scorer.raw(a) for a in archs]
        for proxy in scorer.members:
            frame[f"proxy_{proxy}"] = [r[proxy] for r in raw]
    frame.to_parquet(out / "evaluations.parquet", index=False)
    front = pareto_front(frame)
    front.to_parquet(out / "pareto.parquet", index=False)
    from rlnas.search.plots import plot_pareto

    plot_pareto(frame, front, config, out / "pareto.png")
    return RunResult(out, frame, front, evaluator.replayed)


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


def ranked(frame: pd.DataFrame) -> pd.DataFrame:
    """Evaluations best first (feasible, then by reward), with a 1-based `rank` column."""
    order = frame.sort_values(["feasible", "reward", "step"], ascending=[False, False, True])
    order = order.drop_duplicates("arch").reset_index(drop=True)
    order.insert(0, "rank", range(1, len(order) + 1))
    return order


@dataclass(frozen=True)
class RunFolder:
    """A finished run folder, read back.

    Attributes:
        path: The folder.
        config: Its search settings.
        provenance: The rest of config.json (table provenance, sources).
        evaluations: evaluations.parquet.
    """

    path: Path
    config: SearchConfig
    provenance: dict[str, Any]
    evaluations: pd.DataFrame

    @classmethod
    def open(cls, path: Path) -> RunFolder:
        """Reads a run folder.

        Raises:
            RlnasError: Not a run folder, or an unfinished one.
        """
        path = Path(path)
        stored = path / "config.json"
        results = path / "evaluations.parquet"
        if not stored.is_file():
            raise RlnasError(
                f"{path} is not a run folder (no config.json); run `rlnas search` or "
                "`rlnas train-controller` first"
            )
        if not results.is_file():
            raise RlnasError(
                f"run {path} has no evaluations.parquet (unfinished?); rerun its search command "
                "to finish it"
            )
        raw = json.loads(stored.read_text())
        fields = {f.name for f in dataclasses.fields(SearchConfig)}
        settings = {k: v for k, v in raw.get("search", {}).items() if k in fields}
        for name in ("data", "table", "accuracy_file", "latency_file"):
            if settings.get(name) is not None:
                settings[name] = Path(settings[name])
        try:
            config = SearchConfig(**settings)
        except TypeError as exc:
            raise RlnasError(f"{stored} does not hold search settings ({exc})") from None
        provenance = {k: v for k, v in raw.items() if k != "search"}
        return cls(path, config, provenance, pd.read_parquet(results))

    def candidate(self, rank: int) -> pd.Series:
        """The evaluation at `rank` (1 = best reward among feasible)."""
        order = ranked(self.evaluations)
        if not 1 <= rank <= len(order):
            raise RlnasError(
                f"rank {rank} is out of range: run {self.path} has {len(order)} architectures "
                f"(ranks 1..{len(order)})"
            )
        return order.iloc[rank - 1]
