"""`rlnas verify RUN --truth nbmacro|nb201`: a run checked against a benchmark's full-training
accuracies instead of training.

Where a space has a benchmark (NAS-Bench-Macro, NAS-Bench-201), every network's
accuracy after full training is known, so what a search claims can be checked
for real, in seconds. The run's pick is its rank 1. Latencies are the run's own
(its table, as calibrated on this host, or its benchmark column), so the check
asks only whether the accuracy the search relied on (a proxy, a predictor)
picked right:

- a baseline-relative run (`--baseline`): the real floor, (1 - drop) x a0's
  true accuracy; whether the pick keeps it; the speed-up over a0 on the run's
  table; where the pick ranks by latency among all networks that keep the real
  floor within the run's latency limit (1: the fastest of them), and its latency
  over that fastest one's;
- a run for a latency target: the pick's true accuracy; where it ranks by true
  accuracy among all networks within the target, and its regret (the best true
  accuracy there minus its).

The result is `truth.json` in the run folder; nothing else there changes.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rlnas.errors import DataError, RlnasError, unknown
from rlnas.files import atomic_write_text
from rlnas.model.arch import Architecture
from rlnas.model.nbmacro import from_code
from rlnas.model.space import Space, get_space
from rlnas.search.run_folder import RunFolder
from rlnas.search.sources import latency_source

TRUTH = "truth.json"
# Where the benchmarks' files are unless --truth-file says otherwise (the layout of the
# reference data beside a checkout).
DATA_DIR = Path("../shared/data")


@dataclass(frozen=True)
class TruthBenchmark:
    """A benchmark whose file gives every network of a space its full-training accuracy.

    Attributes:
        name: What --truth calls it.
        space: The space its networks are members of.
        file: Its file under DATA_DIR.
        column: The accuracy column (percent).
        key: The column that names a network.
        arch: The network of one key.
        about: In words, for the report.
    """

    name: str
    space: str
    file: str
    column: str
    key: str
    arch: Callable[[object, Space], Architecture]
    about: str


TRUTHS = {
    b.name: b
    for b in [
        TruthBenchmark(
            "nbmacro",
            "nbmacro",
            "nbmacro/nbmacro_cifar10.parquet",
            "mean_acc",
            "arch",
            lambda code, _: from_code(str(code)),
            "NAS-Bench-Macro, CIFAR-10 test top-1, mean of 3 full trainings",
        ),
        TruthBenchmark(
            "nb201",
            "nb201",
            "nb201/nb201_cifar10_accuracy.parquet",
            "cifar10_test_acc",
            "arch_index",
            lambda index, space: Architecture.from_index(int(str(index)), space),
            "NAS-Bench-201, CIFAR-10 test top-1 after 200 epochs",
        ),
    ]
}


@dataclass(frozen=True)
class TruthCheck:
    """What a benchmark says of a run's pick (see the module docstring); percent for
    accuracies, the run's latency source for ms. Fields of the other kind of run are None."""

    benchmark: str
    about: str
    pick: str
    pick_accuracy: float
    pick_ms: float
    limit_ms: float
    networks_within_limit: int
    a0: str | None = None
    a0_accuracy: float | None = None
    a0_ms: float | None = None
    accuracy_drop: float | None = None
    floor: float | None = None
    held: bool | None = None
    speedup: float | None = None
    keep_floor: int | None = None
    fastest_keeping_ms: float | None = None
    pick_rank_by_latency: int | None = None
    over_fastest: float | None = None
    best_accuracy: float | None = None
    pick_rank_by_accuracy: int | None = None
    regret: float | None = None

    def lines(self) -> list[str]:
        """The check in a few lines, for the terminal."""
        out = [f"truth: {self.about}"]
        if self.floor is not None:
            out += [
                f"a0 {self.a0_accuracy:.2f}%, real floor {self.floor:.2f}% "
                f"({100 * (self.accuracy_drop or 0):g}% drop); the pick {self.pick_accuracy:.2f}%: "
                f"{'held' if self.held else 'MISSED'}",
                f"speed-up over a0 {self.speedup:.2f}x ({self.a0_ms:.3f} -> {self.pick_ms:.3f} ms "
                "on the run's latency source)",
                f"{self.keep_floor} of {self.networks_within_limit} networks within "
                f"{self.limit_ms:.3f} ms keep the real floor; the fastest "
                f"{self.fastest_keeping_ms:.3f} ms; the pick {self._rank()} "
                f"({self.over_fastest:.3f}x its latency)",
            ]
        else:
            out += [
                f"the pick {self.pick_accuracy:.2f}% at {self.pick_ms:.3f} ms; rank "
                f"{self.pick_rank_by_accuracy} of {self.networks_within_limit} networks within "
                f"{self.limit_ms:.3f} ms by true accuracy (best {self.best_accuracy:.2f}%, "
                f"regret {self.regret:.2f} points)"
            ]
        return out

    def _rank(self) -> str:
        if self.pick_rank_by_latency is None:
            return "does not keep it"
        return f"ranks {self.pick_rank_by_latency} by latency among them"


def check_truth(run: RunFolder, name: str, file: Path | None = None) -> TruthCheck:
    """Checks `run` against benchmark `name` (its file: `file`, default under DATA_DIR),
    writes `truth.json` in the run folder and returns the check.

    Raises:
        RlnasError: An unknown benchmark, a run of another space, a missing or unreadable
            file.
    """
    if name not in TRUTHS:
        raise RlnasError(unknown("--truth benchmark", name, TRUTHS))
    bench = TRUTHS[name]
    config = run.config
    space = get_space(config.space)
    if space.name != bench.space:
        raise RlnasError(
            f"run {run.path} searched the {space.name} space; --truth {name} knows only "
            f"{bench.space} networks (benchmarks: "
            f"{', '.join(f'{b.name} for {b.space}' for b in TRUTHS.values())})"
        )
    index, ms, accuracy = _every_network(run, bench, file, space)
    pick = str(run.ranked().iloc[0]["arch"])
    i = index[pick]
    limit = float(config.target_ms)
    within = ms <= limit * (1 + 1e-9)
    common = TruthCheck(
        benchmark=name,
        about=bench.about,
        pick=pick,
        pick_accuracy=float(accuracy[i]),
        pick_ms=float(ms[i]),
        limit_ms=limit,
        networks_within_limit=int(within.sum()),
    )
    baseline = run.provenance.baseline
    if baseline is None:
        best = float(accuracy[within].max())
        check = dataclasses.replace(
            common,
            best_accuracy=best,
            pick_rank_by_accuracy=1 + int((accuracy[within] > accuracy[i]).sum()),
            regret=best - float(accuracy[i]),
        )
    else:
        a = index[baseline.arch]
        floor = (1 - baseline.accuracy_drop) * float(accuracy[a])
        keep = within & (accuracy >= floor)
        held = bool(accuracy[i] >= floor)
        fastest = float(ms[keep].min())
        check = dataclasses.replace(
            common,
            a0=baseline.arch,
            a0_accuracy=float(accuracy[a]),
            a0_ms=float(ms[a]),
            accuracy_drop=baseline.accuracy_drop,
            floor=floor,
            held=held,
            speedup=float(ms[a] / ms[i]),
            keep_floor=int(keep.sum()),
            fastest_keeping_ms=fastest,
            pick_rank_by_latency=1 + int((ms[keep] < ms[i]).sum()) if held else None,
            over_fastest=float(ms[i] / fastest),
        )
    atomic_write_text(json.dumps(dataclasses.asdict(check), indent=2) + "\n", run.file(TRUTH))
    return check


def _every_network(
    run: RunFolder, bench: TruthBenchmark, file: Path | None, space: Space
) -> tuple[dict[str, int], np.ndarray, np.ndarray]:
    """Every network of the space (thousands, not more): its position by canonical string,
    its latency on the run's latency source and its true accuracy."""
    truth = _accuracies(bench, file if file is not None else DATA_DIR / bench.file, space)
    latency = latency_source(run.config.resolved(), space)
    counts = space.choice_counts
    archs = [Architecture(space, tuple(c)) for c in itertools.product(*map(range, counts))]
    ms = np.array([latency.latency_ms(a) for a in archs])
    accuracy = np.array([truth[str(a)] for a in archs])
    return {str(a): i for i, a in enumerate(archs)}, ms, accuracy


def _accuracies(bench: TruthBenchmark, path: Path, space: Space) -> dict[str, float]:
    """Canonical string -> true accuracy (percent) of every network in the benchmark's file."""
    if not path.is_file():
        raise DataError(
            f"no {bench.name} benchmark file at {path}; give it with --truth-file "
            f"(the file {bench.file} of the reference data)"
        )
    try:
        frame = pd.read_parquet(path, columns=[bench.key, bench.column])
        truth = {
            str(bench.arch(key, space)): float(value)
            for key, value in zip(frame[bench.key], frame[bench.column], strict=True)
        }
    except Exception as exc:  # pyarrow and the decoders raise many types for a wrong file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"{path} is not the {bench.name} benchmark file ({reason}); give the file "
            f"{bench.file} of the reference data with --truth-file"
        ) from None
    total = int(np.prod(space.choice_counts))
    if len(truth) != total:
        raise DataError(
            f"{path} names {len(truth)} networks, not the {total} of {space.name}; give the "
            f"whole {bench.name} benchmark file with --truth-file"
        )
    return truth
