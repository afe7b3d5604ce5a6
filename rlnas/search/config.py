"""The settings of one search (`rlnas search` / `rlnas train-controller`), checked on creation.

A bad strategy, reward or budget fails here, before any run folder is written.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlnas.errors import RlnasError, unknown
from rlnas.hardware.catalog import default_precision
from rlnas.hardware.devices import get_device, list_devices, resolve_precision
from rlnas.hardware.table import read_meta
from rlnas.model.baselines import BASELINES, get_baseline
from rlnas.model.space import DEFAULT_SPACE, get_space, list_spaces
from rlnas.search.rewards import REWARD_MODES
from rlnas.search.sources import SourceSettings, accuracy_kind, latency_kind
from rlnas.search.strategies import STRATEGIES, get_strategy
from rlnas.search.strategies.settings import StrategySettings
from rlnas.settings import flat_fields, from_flat

# Seeds reach numpy's legacy seeding (inside stable-baselines3), which takes 0..2**32 - 1.
MAX_SEED = 2**32 - 1


def check_seed(seed: int) -> int:
    """`seed` if it is in 0..2**32 - 1; else RlnasError."""
    if not 0 <= seed <= MAX_SEED:
        raise RlnasError(f"seed must be in 0..{MAX_SEED}, got {seed}; e.g. --seed 0")
    return seed


@dataclass(frozen=True)
class SearchConfig:
    """One search.

    Attributes:
        latency_ms: Latency target T in milliseconds (the upper end of a range); with
            `baseline` it may be left out: the search sets it to a0's own latency.
        latency_factor: A target relative to a named baseline measured here: the
            search's target is this factor x `latency_reference`'s latency on the
            search's own (calibrated) table (`--latency-ms 0.6x:mobilenetv2`), resolved
            when the search starts (`rlnas.search.targets`).
        latency_reference: The baseline a relative target is a factor of.
        latency_min_ms: Lower end of a range of targets (`--latency-ms 4:12`): the PPO
            controller learns one policy for every target in [latency_min_ms,
            latency_ms] (each episode draws one) and the run's Pareto front covers
            the range. None: one target.
        strategy: ppo (the controller), random or evolution.
        device: Target device; picks the lookup table with `precision`.
        precision: Precision of the table; None picks the first of the device's
            precisions that has a table (so `--device xavier-nx` finds the shipped fp16 one).
        space: Space name or space file (default: the space of a --table file, else
            mobilenet).
        resolution: Deployment resolution (default: the space's).
        reward: mnas, tunas or hard.
        data: Images for data-dependent proxies, the trained source's training and the
            predictor's proxies (.npz or folder).
        budget: Unique architectures evaluated.
        seed: Seed of the strategy.
        memory_mb: Limit on parameter megabytes (10^6 bytes) at `precision`, or None.
        table: A table file to use instead of the device's default one.
        accuracy: Accuracy source: proxy, benchmark, trained (validation top-1
            after a short training on `data`, cached; see `rlnas.accuracy.trained`) or
            predictor (a few-shot predictor file; see `rlnas predictor fit`) (default:
            predictor if a predictor file is given, benchmark if an accuracy file is,
            else proxy).
        latency: Latency source: table or benchmark (default: benchmark if a latency
            file is given, else table).
        baseline: A0, the user's baseline: a baseline name, a canonical string of the
            space, or a JSON export (`rlnas export --format json`). With it the search
            minimises latency subject to accuracy >= (1 - accuracy_drop) x a0's, both
            from the run's accuracy source (see `rlnas.search.baseline`).
        accuracy_drop: The accuracy a candidate may lose against the baseline, as a
            fraction of a0's (0.01, or 1% on the command line).
        utilization_weight: beta of a reward term beta x utilization (U-Boost), on an
            accelerator with a utilization model (a systolic table); 0: none.
        min_utilization: The least utilization allowed (0-1, a hard limit in
            every reward mode), on such an accelerator; None: no limit.
        sources: The settings of the accuracy and latency sources (`rlnas.search.sources`).
        strategies: The settings of the strategies (`rlnas.search.strategies.settings`).
    """

    latency_ms: float | None = None
    latency_min_ms: float | None = None
    latency_factor: float | None = None
    latency_reference: str | None = None
    strategy: str = "ppo"
    device: str = "cpu"
    precision: str | None = None
    space: str = ""  # filled in by __post_init__
    resolution: int | None = None
    reward: str = "hard"
    data: Path | None = None
    budget: int = 1000
    seed: int = 0
    memory_mb: float | None = None
    table: Path | None = None
    accuracy: str | None = None
    latency: str | None = None
    baseline: str | None = None
    accuracy_drop: float = 0.01
    utilization_weight: float = 0.0
    min_utilization: float | None = None
    sources: SourceSettings = field(default_factory=SourceSettings)
    strategies: StrategySettings = field(default_factory=StrategySettings)

    @classmethod
    def of(cls, **values: Any) -> SearchConfig:
        """A search from its settings by their flat names, as the command line and
        `config.json` name them (`SearchConfig.of(latency_ms=6, proxy="synflow")`); a group
        may also be given whole (`ppo=PPOSettings(...)`)."""
        leaves = flat_fields(cls)
        groups = {f.name[: -len(f.path[-1]) - 1] for f in leaves if f.name != f.path[-1]}
        names = {f.name for f in leaves} | groups
        wrong = sorted(set(values) - names)
        if wrong:
            raise TypeError(f"SearchConfig has no setting(s) {', '.join(wrong)}")
        config: SearchConfig = from_flat(cls, values)
        return config

    def __post_init__(self) -> None:
        object.__setattr__(self, "space", self._space())
        if self.strategy not in STRATEGIES:
            raise RlnasError(unknown("strategy", self.strategy, STRATEGIES))
        if self.reward not in REWARD_MODES:
            raise RlnasError(unknown("reward mode", self.reward, REWARD_MODES))
        if self.budget < 1:
            raise RlnasError(f"budget must be >= 1 architecture, got {self.budget}")
        if self.latency_factor is not None or self.latency_reference is not None:
            self._check_relative()
        if self.latency_ms is None:
            if self.baseline is None and self.latency_factor is None:
                raise RlnasError(
                    "give a latency target (--latency-ms 6), or a baseline to beat "
                    "(--baseline mobilenetv2: its latency is the target)"
                )
        elif not (math.isfinite(self.latency_ms) and self.latency_ms > 0):
            raise RlnasError(
                f"latency_ms must be a finite target > 0 ms, got {self.latency_ms:g}; "
                "e.g. --latency-ms 6"
            )
        if self.baseline is not None:
            self._check_baseline()
        if self.latency_min_ms is not None:
            if self.latency_ms is None or not 0 < self.latency_min_ms < self.latency_ms:
                raise RlnasError(
                    f"a latency range needs 0 < low < high, got {self.latency_min_ms:g}:"
                    f"{self.latency_ms:g} ms; e.g. --latency-ms 4:12"
                )
            get_strategy(self.strategy).check_target_range((self.latency_min_ms, self.latency_ms))
        if self.memory_mb is not None and not (
            math.isfinite(self.memory_mb) and self.memory_mb > 0
        ):
            raise RlnasError(
                f"memory_mb must be a finite limit > 0 MB, got {self.memory_mb:g}; omit it for "
                "no limit"
            )
        if not (math.isfinite(self.utilization_weight) and self.utilization_weight >= 0):
            raise RlnasError(
                f"utilization_weight must be a finite weight >= 0, got {self.utilization_weight:g}"
            )
        if self.min_utilization is not None and not 0 < self.min_utilization <= 1:
            raise RlnasError(
                f"min_utilization must be a share in (0, 1], got {self.min_utilization:g}; e.g. "
                "--min-utilization 0.3"
            )
        check_seed(self.seed)
        accuracy_kind(self)  # an unknown source fails here, before any file is read
        latency_kind(self)
        if self.table is None or self.device in list_devices():
            # A device rlnas cannot reach has only the tables given for it (a fitted one).
            resolve_precision(get_device(self.device), self.precision or None)
        space = get_space(self.space)
        space.check_resolution(self.resolution)
        field = get_strategy(self.strategy).settings_field
        if field is not None:
            getattr(self.strategies, field).check(
                space, target_range=self.latency_min_ms is not None
            )

    def _space(self) -> str:
        """`space`, else the space of a `table` file, else the default; a table file of
        another space than an explicit one is an error."""
        held = None
        if self.table is not None and Path(self.table).is_file():
            held = read_meta(Path(self.table)).space
        if not self.space:
            if held is not None and held not in list_spaces():
                raise RlnasError(
                    f"table {self.table} is for space '{held}', which is not built in; give its "
                    "file with --space FILE.toml"
                )
            return held or DEFAULT_SPACE
        if held is not None and get_space(self.space).name != held:
            raise RlnasError(
                f"table {self.table} is for space '{held}', not '{self.space}'; drop --space "
                "(the table's is used) or give a table of that space"
            )
        return self.space

    def _check_relative(self) -> None:
        factor, reference = self.latency_factor, self.latency_reference
        if factor is None or reference is None:
            raise RlnasError(
                "a relative latency target needs a factor and a baseline; e.g. "
                "--latency-ms 0.6x:mobilenetv2"
            )
        if not (math.isfinite(factor) and factor > 0):
            raise RlnasError(
                f"latency factor must be finite and > 0, got {factor:g}; e.g. "
                "--latency-ms 0.6x:mobilenetv2"
            )
        if self.latency_ms is not None or self.latency_min_ms is not None:
            raise RlnasError(
                f"give the latency target in ms or as {factor:g}x:{reference}, not both "
                "(a relative target is one target, not a range)"
            )
        if reference not in BASELINES:
            raise RlnasError(unknown("latency baseline", reference, BASELINES))
        held, space = get_baseline(reference).space, get_space(self.space).name
        if held != space:
            others = [n for n, b in BASELINES.items() if b.space == space]
            raise RlnasError(
                f"latency baseline {reference} is a member of the {held} space, not of "
                f"{space}; name a baseline of {space} ({', '.join(others) or 'none'}) or give "
                "the target in ms"
            )

    def _check_baseline(self) -> None:
        if not (math.isfinite(self.accuracy_drop) and 0 <= self.accuracy_drop < 1):
            raise RlnasError(
                f"accuracy_drop must be a fraction in [0, 1), got {self.accuracy_drop:g}; "
                "e.g. --accuracy-drop 1%"
            )
        if not accuracy_kind(self).is_accuracy:
            raise RlnasError(
                "--baseline needs accuracies: a proxy score is a percentile, so "
                f"'{1 - self.accuracy_drop:g}x the baseline' means nothing; give --predictor FILE "
                "(`rlnas predictor fit`), --accuracy trained --data IMAGES, or --accuracy-file"
            )
        if self.reward != "hard":
            raise RlnasError(
                f"--baseline minimises latency under an accuracy floor; --reward {self.reward} "
                "trades one for the other: drop --reward"
            )
        if self.latency_min_ms is not None:
            raise RlnasError(
                "--baseline finds the fastest network that keeps a0's accuracy; a latency "
                "range does not apply: give one --latency-ms or none"
            )

    @property
    def target_ms(self) -> float:
        """The latency target (set by the search from a0's latency where not given)."""
        if self.latency_ms is None:
            raise RlnasError(
                "this search's latency target comes from a baseline's latency: run it first "
                "(`rlnas.search.run.run_search`)"
            )
        return self.latency_ms

    def resolved(self) -> SearchConfig:
        """These settings with `precision`, `accuracy` and `latency` filled in."""
        accuracy = accuracy_kind(self).name
        latency = latency_kind(self).name
        precision = self.precision
        if precision is None and self.table is not None and self.device not in list_devices():
            precision = read_meta(self.table).precision
        if precision is None:
            space = get_space(self.space)
            resolution = self.resolution or space.resolution
            precision = default_precision(self.device, space.name, resolution)
        return dataclasses.replace(self, precision=precision, accuracy=accuracy, latency=latency)

    def accuracy_kind(self) -> str:
        """The accuracy source's name (see `rlnas.search.sources`)."""
        return accuracy_kind(self).name

    def score_name(self) -> str:
        """What this search's accuracy score is, in words: a proxy score is never called an
        accuracy."""
        return accuracy_kind(self).score_name(self)

    def target_text(self) -> str:
        """The target as the command line writes it: `6` or `4:12`."""
        low = f"{self.latency_min_ms:g}:" if self.latency_min_ms is not None else ""
        return f"{low}{self.target_ms:g}"

    def default_out(self) -> Path:
        if self.baseline is not None:
            target = f"{Path(self.baseline).stem}-drop{self.accuracy_drop * 100:g}pct"
            if self.latency_ms is not None:
                target += f"-{self.latency_ms:g}ms"
        elif self.latency_ms is None and self.latency_factor is not None:
            target = f"{self.latency_factor:g}x{self.latency_reference}"
        else:
            target = f"{self.target_text()}ms"
        return Path("runs") / (
            f"{self.strategy}-{self.device}-{self.precision}-{Path(self.space).stem}"
            f"-{target}-s{self.seed}"
        )
