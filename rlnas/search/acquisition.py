"""Which networks to train next, after a baseline-relative search with a predictor.

Near the floor a few-shot predictor cannot tell which networks keep a0's accuracy
(its error is about the 1% margin). Training the networks it cannot decide, and
refitting it on them, can: on NAS-Bench-Macro, four rounds of search and 5 trainings
(20 past K = 50) brought the fastest trained keeper within 5% of the fastest real one
on 85-100% of held-out seeds, against 0-60% for the last search's own pick
(BENCHMARKS.md, "The refit loop").

The choice is constrained expected improvement: for each network the run
evaluated within its latency limit and the predictor does not know, the
probability that it keeps the floor (the predicted mean and standard deviation,
read as a normal) times how much faster it is than the fastest known network
that keeps it (the run's latency limit, a0's latency unless given, where none is
known; the predictor's own training networks count as known). The floor is
(1 - drop) x a0's accuracy: its trained one where a0 is among the predictor's
training networks, else the predicted one.

The networks come from the run's evaluations, not the whole space, so a new search
after the refit finds the next ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from rlnas.errors import RunError
from rlnas.model.arch import Architecture
from rlnas.model.space import get_space
from rlnas.search.run_folder import RunFolder
from rlnas.search.sources.predictor import PredictorAccuracy, proxy_values

COLUMNS = ["arch", "latency_ms", "predicted_pct", "std_pct", "p_keeps_floor", "expected_gain_ms"]


@dataclass(frozen=True)
class NextTrainings:
    """What `next_to_train` finds.

    Attributes:
        table: The networks to train, best first (`COLUMNS`).
        floor: The floor in percent.
        trained: Whether the floor comes from a0's trained accuracy.
        best: The fastest known network of the run within its limit that keeps the floor
            (the loop's answer so far), or None.
        best_ms: Its latency on the run's table (the limit where `best` is None).
    """

    table: pd.DataFrame
    floor: float
    trained: bool
    best: str | None
    best_ms: float


def expected_gain(
    mean: np.ndarray, std: np.ndarray, floor: float, latency_ms: np.ndarray, best_ms: float
) -> np.ndarray:
    """Per network: the chance that it keeps the floor (its predicted normal) times the
    latency it saves over `best_ms` (0 where it saves none)."""
    return norm.cdf((mean - floor) / std) * np.maximum(best_ms - latency_ms, 0.0)


def next_to_train(run: RunFolder, count: int) -> NextTrainings:
    """The `count` networks of `run` of the greatest expected gain, best first (fewer where
    fewer promise any).

    Raises:
        RunError: The run is not a baseline-relative search with a predictor.
    """
    config, a0 = run.config, run.provenance.baseline
    if (
        a0 is None
        or config.accuracy_kind() != "predictor"
        or config.sources.predictor.predictor is None
    ):
        raise RunError(
            f"run {run.path} is not a baseline-relative search with a predictor; the next "
            "networks to train need one (`rlnas train-controller --baseline A0 --predictor FILE`)"
        )
    if count < 1:
        raise RunError(f"--count must be at least 1, got {count}")
    space = get_space(config.space)
    source = PredictorAccuracy(config.sources.predictor.predictor, space, config.data)
    fitted = source.predictor
    known = {str(a): float(y) for a, y in zip(fitted.archs, fitted.accuracy, strict=True)}
    trained = a0.arch in known
    a0_accuracy = known[a0.arch] if trained else a0.accuracy * 100
    floor = (1 - a0.accuracy_drop) * a0_accuracy
    frame = run.evaluations.drop_duplicates("arch")
    frame = frame[frame["latency_ms"] <= a0.target_ms]
    keepers = frame[[known.get(arch, -np.inf) >= floor for arch in frame["arch"]]]
    fastest = keepers.sort_values("latency_ms", kind="stable").head(1)
    best = float(fastest["latency_ms"].iloc[0]) if len(fastest) else a0.target_ms
    answer = str(fastest["arch"].iloc[0]) if len(fastest) else None
    unknown = frame[~frame["arch"].isin(list(known)) & (frame["latency_ms"] < best)]
    if unknown.empty:
        return NextTrainings(pd.DataFrame(columns=COLUMNS), floor, trained, answer, best)
    archs = [Architecture.decode(a, space) for a in unknown["arch"]]
    mean, std = source.predictor.predict(archs, proxy_values(source.scorers, archs))
    source.flush()
    latency = unknown["latency_ms"].to_numpy()
    table = pd.DataFrame(
        {
            "arch": unknown["arch"].to_numpy(),
            "latency_ms": latency,
            "predicted_pct": mean,
            "std_pct": std,
            "p_keeps_floor": norm.cdf((mean - floor) / std),
            "expected_gain_ms": expected_gain(mean, std, floor, latency, best),
        }
    )
    table = table[table["expected_gain_ms"] > 0]
    ranked = table.sort_values("expected_gain_ms", ascending=False, kind="stable")
    return NextTrainings(ranked.head(count).reset_index(drop=True), floor, trained, answer, best)
