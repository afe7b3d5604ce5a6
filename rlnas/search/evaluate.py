"""Evaluating architectures under a budget: accuracy, latency, parameters, reward; cached.

The budget counts unique architectures; a repeat is served from the cache and
costs nothing. Every evaluation can be journalled (JSON lines, fsynced) so that
an interrupted search, replayed with the same seed, finds its evaluations
again instead of recomputing them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rlnas.errors import BudgetExhausted, RunError
from rlnas.model.arch import Architecture
from rlnas.model.costs import AdditiveCost
from rlnas.search.rewards import RewardConfig

if TYPE_CHECKING:
    from rlnas.cluster import TaskPool
    from rlnas.search.sources import AccuracySource, LatencySource


@dataclass(frozen=True)
class Evaluation:
    """One evaluated architecture.

    Attributes:
        step: Its rank among unique evaluations (0-based): the budget it used.
        arch: Canonical string.
        accuracy: Accuracy score in [0, 1].
        latency_ms: Predicted (or benchmark) latency.
        params: Parameter count.
        params_bytes: Parameter bytes at the deployment precision.
        reward: Reward under the run's reward settings.
        feasible: Within the latency target (hard mode), the memory limit, the accuracy
            floor (a baseline-relative search) and the least utilization.
        utilization: MAC-weighted utilization of the accelerator, where the latency
            source has a utilization model (a systolic table), else None.
    """

    step: int
    arch: str
    accuracy: float
    latency_ms: float
    params: int
    params_bytes: float
    reward: float
    feasible: bool
    utilization: float | None = None


class Evaluator:
    """Evaluates architectures of one space, counting unique ones against a budget.

    Args:
        accuracy: Accuracy source.
        latency: Latency source.
        params: Parameter-count model of the space.
        reward: Reward settings.
        budget: Unique architectures allowed.
        bytes_per_param: Parameter size at the deployment precision (memory limit).
        journal: JSON-lines file of evaluations; read first if it exists.
        pool: Runs tasks in parallel (a Ray cluster, `rlnas.cluster.run_tasks`); with it,
            `prefetch` scores a batch of proposals at once. None: everything in this process.
    """

    def __init__(
        self,
        accuracy: AccuracySource,
        latency: LatencySource,
        params: AdditiveCost,
        reward: RewardConfig,
        budget: int,
        bytes_per_param: float = 4.0,
        journal: Path | None = None,
        pool: TaskPool | None = None,
    ):
        self.pool = pool
        self.accuracy = accuracy
        self.latency = latency
        self.params = params
        self.reward = reward
        self.budget = budget
        self.bytes_per_param = bytes_per_param
        self.history: list[Evaluation] = []
        self.cache: dict[str, Evaluation] = {}
        self.replayed = 0
        # Proposals in a row that brought no new architecture (see `Strategy.stalled`).
        self.repeats = 0
        self._known: dict[str, Evaluation] = {}
        self.journal = journal
        if journal is not None and journal.exists():
            self._known = read_journal(journal)

    @property
    def exhausted(self) -> bool:
        return len(self.history) >= self.budget

    def prefetch(self, archs: list[Architecture]) -> None:
        """Scores a batch of proposals in parallel where there is a pool and the accuracy
        source can (the proxy and trained sources), so that evaluating them one by one
        afterwards is fast; the evaluations are the same as without it."""
        if self.pool is None:
            return
        cache, known = self.cache, self._known
        unseen = {str(a): a for a in archs if str(a) not in cache and str(a) not in known}
        # Only as many as the budget can still evaluate.
        new = list(unseen.values())[: max(self.budget - len(self.history), 0)]
        if new:
            self.accuracy.prefetch(new, self.pool)

    def affordable(self, arch: Architecture) -> bool:
        """Whether `evaluate(arch)` is within the budget (a cached architecture always is)."""
        return not self.exhausted or str(arch) in self.cache

    def nothing_new(self) -> None:
        """Counts a proposal that was dropped before evaluation (it brought nothing new)."""
        self.repeats += 1

    def evaluate(self, arch: Architecture) -> Evaluation:
        """The evaluation of `arch`, from the cache or computed (spending one unit of budget)."""
        text = str(arch)
        cached = self.cache.get(text)
        if cached is not None:
            self.repeats += 1
            return cached
        if self.exhausted:
            raise BudgetExhausted(f"budget of {self.budget} architectures spent")
        known = self._known.get(text)
        if known is not None:
            # Evaluations are deterministic: a journalled one is reused, re-stamped if a
            # replay reaches it at another step.
            result = dataclasses.replace(known, step=len(self.history))
            self.replayed += 1
            if result != known:
                self._write(result)
        else:
            result = self._compute(arch, text)
            self._write(result)
        self.cache[text] = result
        self.history.append(result)
        self.repeats = 0
        return result

    def _compute(self, arch: Architecture, text: str) -> Evaluation:
        accuracy = self.accuracy.accuracy(arch)
        latency = self.latency.latency_ms(arch)
        utilization = self.latency.utilization(arch)
        params = round(self.params.total(arch.choices))
        params_bytes = params * self.bytes_per_param
        return Evaluation(
            step=len(self.history),
            arch=text,
            accuracy=accuracy,
            latency_ms=latency,
            params=params,
            params_bytes=params_bytes,
            reward=self.reward.reward(accuracy, latency, params_bytes, utilization),
            feasible=self.reward.feasible(latency, params_bytes, accuracy, utilization),
            utilization=utilization,
        )

    def _write(self, result: Evaluation) -> None:
        if self.journal is None:
            return
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        with self.journal.open("a") as handle:
            handle.write(json.dumps(dataclasses.asdict(result)) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def read_journal(path: Path) -> dict[str, Evaluation]:
    """The evaluations of a journal by architecture string.

    A damaged last line is the one being written when a run was killed, and is
    ignored; a damaged line before it means the file was changed by something
    else, and is refused.

    Raises:
        RunError: A damaged line other than the last.
    """
    try:
        lines = path.read_bytes().decode().splitlines()
    except UnicodeDecodeError:
        raise RunError(
            f"{path} is not a journal of evaluations (not text); move it away to recompute the "
            "run, or pass another --out"
        ) from None
    known: dict[str, Evaluation] = {}
    for number, line in enumerate(lines, 1):
        record = _record(line)
        if record is None:
            if number == len(lines):
                break  # the line being written when the run stopped
            raise RunError(
                f"{path} line {number} is not an evaluation; the journal was changed after the "
                "run wrote it: move it away to recompute the run, or pass another --out"
            )
        known[record.arch] = record
    return known


def _record(line: str) -> Evaluation | None:
    """The evaluation on one journal line, or None if the line is not a valid one."""
    try:
        raw = json.loads(line)
        record = Evaluation(**raw)
    except (json.JSONDecodeError, TypeError):
        return None
    numbers = (record.accuracy, record.latency_ms, record.params_bytes, record.reward)
    valid = (
        isinstance(record.step, int)
        and isinstance(record.arch, str)
        and isinstance(record.params, int)
        and isinstance(record.feasible, bool)
        and all(isinstance(v, int | float) and math.isfinite(v) for v in numbers)
        and (record.utilization is None or isinstance(record.utilization, int | float))
    )
    return record if valid else None
