"""The run folder: every file a search and its follow-ups write, its typed provenance, and "best".

    config.json          the resolved search settings and their provenance (with a0's
                         accuracy, latency and floor in a baseline-relative search)
    evaluations.jsonl    every evaluation as it happens (the resume journal)
    evaluations.parquet  every evaluated architecture: accuracy score, raw proxy values,
                         predicted latency, parameters, MACs, reward, feasibility
    pareto.parquet       the accuracy/latency Pareto front
    pareto.png           the front over all evaluated architectures
    controller.zip       the trained controller (ppo only; stable-baselines3 format)
    measured.parquet     end-to-end measurements (`rlnas measure`)
    report.md, .png      the report of those measurements
    export/              exported architectures (`rlnas export`)
    verified.parquet     candidates and baselines trained and timed (`rlnas verify`)
    verified.md, .png    the verification report

"Best" is defined once, by `ranked`: architectures within the latency target
and the memory limit come first, most accurate first (then faster); the rest
follow by reward. In a baseline-relative search (`--baseline`) the feasible
ones (also above the accuracy floor) come first fastest first (then more
accurate). Rank 1 is what the CLI summary shows, what `export --rank 1`
writes and what `measure --top 1` times.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rlnas import __version__
from rlnas.accuracy.scorer import ProxyConfig
from rlnas.errors import RlnasError, RunError
from rlnas.files import atomic_write_text
from rlnas.hardware.table_meta import TableMeta
from rlnas.search.baseline import BaselineTarget, with_limit
from rlnas.search.config import SearchConfig
from rlnas.search.targets import RelativeTarget, with_relative
from rlnas.settings import from_json, to_json

CONFIG = "config.json"
JOURNAL = "evaluations.jsonl"
EVALUATIONS = "evaluations.parquet"
PARETO = "pareto.parquet"
PARETO_PLOT = "pareto.png"
CONTROLLER = "controller.zip"
MEASURED = "measured.parquet"
REPORT = "report.md"
REPORT_PLOT = "report.png"
EXPORTS = "export"
VERIFIED = "verified.parquet"
VERIFIED_REPORT = "verified.md"
VERIFIED_PLOT = "verified.png"

# Columns every evaluations.parquet has (written by `rlnas.search.run`) and their kinds:
# "text", "bool", "number" (finite) or "number?" (NaN allowed).
EVALUATION_COLUMNS = {
    "step": "number",
    "arch": "text",
    "accuracy": "number",
    "latency_ms": "number",
    "params": "number",
    "reward": "number",
    "feasible": "bool",
}
# Columns of measured.parquet (written by `rlnas measure`) that the report reads.
MEASURED_COLUMNS = {
    "name": "text",
    "kind": "text",
    "arch": "text",
    "device": "text",
    "precision": "text",
    "score": "number?",
    "predicted_ms": "number?",
    "measured_ms": "number",
}


def read_frame(path: Path, columns: dict[str, str], fix: str) -> pd.DataFrame:
    """Reads a run folder's Parquet file and checks its columns' presence, kinds and values.

    Raises:
        RunError: Unreadable, or a column missing, of another kind, or with invalid values
            (each named, with `fix`).
    """
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunError(f"{path} is unreadable ({reason}); {fix}") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RunError(f"{path} lacks column(s) {', '.join(missing)}; {fix}")
    for name, kind in columns.items():
        values = frame[name]
        if kind == "text":
            ok = bool(values.map(lambda v: isinstance(v, str)).all())
        elif kind == "bool":
            ok = pd.api.types.is_bool_dtype(values)
        else:
            ok = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
            if ok and kind == "number":
                ok = bool(np.isfinite(values.to_numpy(dtype=np.float64)).all())
        if not ok:
            what = {"text": "text", "bool": "true/false"}.get(kind, "finite numbers")
            raise RunError(f"{path}: column '{name}' must hold {what}; {fix}")
    return frame


@dataclass(frozen=True)
class TableProvenance:
    """The lookup table a run's latencies came from.

    Attributes:
        path: The table file when the run started.
        meta: Its metadata.
    """

    path: Path
    meta: TableMeta


@dataclass(frozen=True)
class Provenance:
    """Where a run's numbers come from.

    Attributes:
        accuracy_source: The accuracy source, in words.
        latency_source: The latency source, in words.
        proxy: The proxy settings where accuracy is a proxy score, else None.
        table: The lookup table where latency is predicted from one, else None.
        baseline: a0 and the limits it set, in a baseline-relative search, else None.
        relative: What a target relative to a baseline resolved to, else None.
        rlnas_version: The rlnas that ran the search.
    """

    accuracy_source: str
    latency_source: str
    proxy: ProxyConfig | None = None
    table: TableProvenance | None = None
    baseline: BaselineTarget | None = None
    relative: RelativeTarget | None = None
    rlnas_version: str = __version__


def ranked(frame: pd.DataFrame, target_ms: float, fastest: bool = False) -> pd.DataFrame:
    """Evaluations best first (see the module docstring), with a 1-based `rank` column;
    `fastest`: the feasible ones by latency (a baseline-relative search)."""
    within = frame["feasible"] & (frame["latency_ms"] <= target_ms)
    keys = ["latency_ms", "accuracy", "step"] if fastest else ["accuracy", "latency_ms", "step"]
    order = pd.concat(
        [
            frame[within].sort_values(keys, ascending=[fastest, not fastest, True]),
            frame[~within].sort_values(["reward", "step"], ascending=[False, True]),
        ]
    )
    order = order.drop_duplicates("arch").reset_index(drop=True)
    order.insert(0, "rank", range(1, len(order) + 1))
    return order


def write_settings(folder: Path, config: SearchConfig, provenance: Provenance) -> None:
    """Writes config.json atomically."""
    data: dict[str, Any] = {
        "search": to_json(config),
        "rlnas_version": provenance.rlnas_version,
        "accuracy_source": provenance.accuracy_source,
        "latency_source": provenance.latency_source,
        "proxy": to_json(provenance.proxy) if provenance.proxy else None,
        "table": (
            {"path": str(provenance.table.path), **dataclasses.asdict(provenance.table.meta)}
            if provenance.table
            else None
        ),
        "baseline": dataclasses.asdict(provenance.baseline) if provenance.baseline else None,
        "latency_target": dataclasses.asdict(provenance.relative) if provenance.relative else None,
    }
    atomic_write_text(json.dumps(data, indent=2) + "\n", Path(folder) / CONFIG)


def read_settings(folder: Path) -> tuple[SearchConfig, Provenance]:
    """The settings and provenance in a run folder's config.json.

    Raises:
        RunError: No config.json, or one that is not a run's.
    """
    stored = Path(folder) / CONFIG
    if not stored.is_file():
        raise RunError(
            f"{folder} is not a run folder (no {CONFIG}); run `rlnas search` or "
            "`rlnas train-controller` first"
        )
    try:
        raw = json.loads(stored.read_bytes().decode())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(
            f"{stored} is not valid JSON ({exc}); rerun the search into a new --out"
        ) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("search"), dict):
        raise RunError(f"{stored} holds no search settings; rerun the search into a new --out")
    try:
        config = from_json(SearchConfig, raw["search"], str(stored))
        proxy = from_json(ProxyConfig, raw["proxy"], str(stored)) if raw.get("proxy") else None
        table = None
        if isinstance(raw.get("table"), dict):
            fields = {f.name for f in dataclasses.fields(TableMeta)}
            meta = TableMeta(**{k: v for k, v in raw["table"].items() if k in fields})
            table = TableProvenance(Path(raw["table"]["path"]), meta)
        baseline = BaselineTarget(**raw["baseline"]) if raw.get("baseline") else None
        relative = RelativeTarget(**raw["latency_target"]) if raw.get("latency_target") else None
    except (TypeError, KeyError, ValueError) as exc:
        raise RunError(f"{stored} is not a run's settings ({exc})") from None
    except RlnasError as exc:
        message = str(exc).removeprefix(f"{stored}: ")
        raise RunError(
            f"{stored} holds invalid settings ({message}); rerun the search into a new --out"
        ) from None
    provenance = Provenance(
        str(raw.get("accuracy_source", "")),
        str(raw.get("latency_source", "")),
        proxy,
        table,
        baseline,
        relative,
        str(raw.get("rlnas_version", "")),
    )
    return config, provenance


@dataclass(frozen=True)
class RunFolder:
    """A finished run folder, read back.

    Attributes:
        path: The folder.
        config: Its search settings.
        provenance: Where its numbers came from.
        evaluations: evaluations.parquet.
    """

    path: Path
    config: SearchConfig
    provenance: Provenance
    evaluations: pd.DataFrame

    @classmethod
    def open(cls, path: Path) -> RunFolder:
        """Reads a run folder.

        Raises:
            RunError: Not a run folder, an unfinished one, or unreadable files.
        """
        path = Path(path)
        config, provenance = read_settings(path)
        config = with_limit(with_relative(config, provenance.relative), provenance.baseline)
        results = path / EVALUATIONS
        if not results.is_file():
            raise RunError(
                f"run {path} has no {EVALUATIONS} (unfinished?); rerun its search command "
                "to finish it"
            )
        fix = "rerun the search command to rewrite it from the run's journal"
        frame = read_frame(results, EVALUATION_COLUMNS, fix)
        return cls(path, config, provenance, frame)

    def file(self, name: str) -> Path:
        """A file of this folder by its name constant (e.g. `MEASURED`)."""
        return self.path / name

    def ranked(self) -> pd.DataFrame:
        return ranked(
            self.evaluations, self.config.target_ms, fastest=self.config.baseline is not None
        )

    def candidate(self, rank: int) -> pd.Series:
        """The evaluation at `rank` (1 = best, see the module docstring)."""
        order = self.ranked()
        if not 1 <= rank <= len(order):
            raise RunError(
                f"rank {rank} is out of range: run {self.path} has {len(order)} architectures "
                f"(ranks 1..{len(order)})"
            )
        return order.iloc[rank - 1]
