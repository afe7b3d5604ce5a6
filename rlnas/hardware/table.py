"""Lookup tables: per-layer latencies of one device, precision, space, resolution and batch.

One Parquet file per table, with an explicit pyarrow schema: the `LayerKey`
columns (derived from its fields), then latency statistics. Where tables are
found is `rlnas.hardware.catalog`. File metadata (all `rlnas.*` keys) says what
measured it. Reading validates the schema, its version and the metadata, and
names exactly what is wrong. No pickle anywhere.

Raw predicted network latency = per-call overhead once + the sum over the
network's layers of (layer latency - that layer's own per-call overhead): each
layer was timed in its own call, so a plain sum would count the overhead of a
call once per layer. A table calibrated by an earlier release
(`rlnas.hardware.calibration`) scales each layer (by its kind, or all alike) and
adds a constant.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from rlnas.errors import MissingEntriesError, TableError
from rlnas.files import atomic_write_parquet
from rlnas.hardware.calibration import Calibration
from rlnas.hardware.table_meta import SCHEMA_VERSION, TableMeta, profile_command
from rlnas.model.arch import Architecture
from rlnas.model.costs import AdditiveCost
from rlnas.model.layers import arch_layers, enumerate_layers
from rlnas.model.ops import KEY_FIELDS, LayerKey
from rlnas.model.space import Space

KEY_SCHEMA = pa.schema(
    [
        ("op", pa.string()),
        ("cin", pa.int32()),
        ("cout", pa.int32()),
        ("h", pa.int32()),
        ("w", pa.int32()),
        ("kernel", pa.int32()),
        ("stride", pa.int32()),
        ("expand", pa.int32()),
        ("se", pa.bool_()),
        ("act", pa.string()),
    ]
)
STAT_SCHEMA = pa.schema(
    [
        ("latency_ms", pa.float64()),  # median
        ("p10_ms", pa.float64()),
        ("p90_ms", pa.float64()),
        ("mean_ms", pa.float64()),
        ("std_ms", pa.float64()),
        ("runs", pa.int32()),
        ("overhead_ms", pa.float64()),  # per-call overhead of an empty graph on the same inputs
        ("unstable", pa.bool_()),  # spread stayed wide after re-timing
    ]
)
SCHEMA = pa.schema(list(KEY_SCHEMA) + list(STAT_SCHEMA))
STAT_FIELDS = tuple(STAT_SCHEMA.names)
# Columns only some tables have (an analytic accelerator's, `rlnas.hardware.systolic`): the
# layer's MACs on the compute array and their MAC-weighted utilization.
UTILIZATION_SCHEMA = pa.schema([("macs", pa.float64()), ("utilization", pa.float64())])


class LatencyTable:
    """A loaded table: metadata plus rows, with fast lookup by `LayerKey`."""

    def __init__(self, meta: TableMeta, frame: pd.DataFrame, path: Path | None = None):
        self.meta = meta
        self.frame = frame.reset_index(drop=True)
        self.path = path
        keys = [LayerKey(*row) for row in self.frame[list(KEY_FIELDS)].itertuples(index=False)]
        self.index: dict[LayerKey, int] = {k: i for i, k in enumerate(keys)}
        if len(self.index) != len(keys):
            raise TableError(f"{path or 'table'} has duplicate layer keys; rebuild it")
        self.latency = self.frame["latency_ms"].to_numpy(dtype=np.float64)
        # What a layer adds inside a network: its latency without its own call overhead.
        self.net_latency = np.maximum(
            self.latency - self.frame["overhead_ms"].to_numpy(dtype=np.float64), 0.0
        )
        self.calibration = Calibration.from_json(meta.calibration)
        self.has_utilization = set(UTILIZATION_SCHEMA.names) <= set(self.frame.columns)

    def __len__(self) -> int:
        return len(self.frame)

    def keys(self) -> list[LayerKey]:
        return list(self.index)

    def missing(self, keys: list[LayerKey]) -> list[LayerKey]:
        return [k for k in dict.fromkeys(keys) if k not in self.index]

    def layer_ms(self, key: LayerKey) -> float:
        """Median latency of one layer timed alone (its call overhead included)."""
        return float(self.latency[self._row(key)])

    def _row(self, key: LayerKey) -> int:
        row = self.index.get(key)
        if row is None:
            raise self.missing_error([key])
        return row

    def rows(self, keys: list[LayerKey]) -> np.ndarray:
        """Row indices of the keys; raises MissingEntriesError naming any that are absent."""
        index = self.index
        try:
            return np.fromiter((index[k] for k in keys), dtype=np.int64, count=len(keys))
        except KeyError:
            raise self.missing_error(self.missing(keys)) from None

    def raw_predict_ms(self, arch: Architecture) -> float:
        """Overhead once plus the layers' latencies without their own overhead; uncalibrated."""
        self.check_space(arch.space)
        rows = self.rows(arch_layers(arch, self.meta.resolution))
        return float(self.meta.overhead_ms + self.net_latency[rows].sum())

    def predict_ms(self, arch: Architecture) -> float:
        """Predicted end-to-end latency at the table's resolution (calibrated if it can be)."""
        raw, calibration = self.raw_predict_ms(arch), self.calibration
        if calibration is None or not calibration.kind_scales:
            return raw if calibration is None else calibration.apply(raw)
        keys = arch_layers(arch, self.meta.resolution)
        rows = zip(keys, self.rows(keys), strict=True)
        net = sum(calibration.scale_of(k) * self.net_latency[r] for k, r in rows)
        return float(calibration.scale * self.meta.overhead_ms + calibration.offset_ms + net)

    def cost_model(self, space: Space) -> AdditiveCost:
        """Fast per-decision latency of the space's architectures (see `rlnas.model.costs`).

        Raises:
            TableError: The table is for another space or resolution.
            MissingEntriesError: The table does not cover the space.
        """
        self.check_space(space)
        missing = self.missing(enumerate_layers(space, self.meta.resolution))
        if missing:
            raise self.missing_error(missing)
        calibration = self.calibration or Calibration(1.0, 0.0, 0, 0.0, 0.0)
        net = {
            key: calibration.scale_of(key) * float(self.net_latency[row])
            for key, row in self.index.items()
        }
        fixed = calibration.scale * self.meta.overhead_ms + calibration.offset_ms
        return AdditiveCost(space, self.meta.resolution, net.__getitem__, fixed)

    def check_space(self, space: Space, resolution: int | None = None) -> None:
        """Raises TableError unless this table serves `space` at `resolution`."""
        meta = self.meta
        resolution = meta.resolution if resolution is None else resolution
        if meta.space_digest != space.digest or meta.resolution != resolution:
            where = self.path or meta.name
            raise TableError(
                f"table {where} is for space '{meta.space}' (digest {meta.space_digest}) at "
                f"{meta.resolution}px, not space '{space.name}' (digest {space.digest}) at "
                f"{resolution}px; profile one with `rlnas profile --space {space.name} "
                f"--resolution {resolution}`"
            )

    def missing_error(self, missing: list[LayerKey]) -> MissingEntriesError:
        meta = self.meta
        shown = "; ".join(str(k) for k in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        command = profile_command(meta) + (f" --out {self.path}" if self.path else "")
        return MissingEntriesError(
            f"table {self.path or meta.name} lacks {len(missing)} layer(s): {shown}{more}; "
            f"fill them with `{command}`",
            missing,
        )


def rows_frame(records: list[dict[str, object]]) -> pd.DataFrame:
    """A frame with the table's columns, in order and of the schema's types, from row dicts."""
    arrow = pa.Table.from_pylist(records, schema=SCHEMA)
    return arrow.to_pandas()


def figure_rows(latency: dict[LayerKey, float]) -> pd.DataFrame:
    """Rows of a table that holds one figure per layer (estimated or fitted): no spread, no
    timed runs, no call overhead."""
    fixed = {"std_ms": 0.0, "runs": 0, "overhead_ms": 0.0, "unstable": False}
    figures = ("latency_ms", "p10_ms", "p90_ms", "mean_ms")
    return rows_frame(
        [{**key.as_dict(), **dict.fromkeys(figures, ms), **fixed} for key, ms in latency.items()]
    )


def save_table(meta: TableMeta, frame: pd.DataFrame, path: Path) -> None:
    """Writes the table atomically: a reader never sees a half-written file."""
    frame = frame.sort_values(list(KEY_FIELDS)).reset_index(drop=True)
    schema = _schema(frame.columns)
    arrow = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    atomic_write_parquet(arrow.replace_schema_metadata(meta.to_metadata()), path)


def _schema(columns: object) -> pa.Schema:
    """The table schema, with the utilization columns where `columns` has them."""
    names = set(columns)  # type: ignore[call-overload]
    extra = list(UTILIZATION_SCHEMA) if set(UTILIZATION_SCHEMA.names) <= names else []
    return pa.schema(list(SCHEMA) + extra)


def read_meta(path: Path) -> TableMeta:
    """The metadata alone (cheap: no rows are read)."""
    path = Path(path)
    if not path.is_file():
        raise TableError(f"table file {path} does not exist; `rlnas tables list` shows the tables")
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise TableError(
            f"{path} is not a readable Parquet file ({exc}); rebuild it with `rlnas profile`"
        ) from None
    return TableMeta.from_metadata(schema.metadata or {}, path)


def load_table(path: Path) -> LatencyTable:
    """Reads and validates a table.

    Raises:
        TableError: Missing file, not Parquet, not an rlnas table, wrong schema
            version, or columns of wrong names or types (each named).
    """
    path = Path(path)
    meta = read_meta(path)
    try:
        arrow = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise TableError(
            f"{path} cannot be read ({exc}); rebuild it with `rlnas profile`"
        ) from None
    problems = []
    schema = _schema(arrow.schema.names)
    for expected in schema:
        if expected.name not in arrow.schema.names:
            problems.append(f"missing column '{expected.name}'")
        elif arrow.schema.field(expected.name).type != expected.type:
            got = arrow.schema.field(expected.name).type
            problems.append(f"column '{expected.name}' is {got}, expected {expected.type}")
    extra = [n for n in arrow.schema.names if n not in schema.names]
    problems += [f"unexpected column '{n}'" for n in extra]
    if problems:
        raise TableError(
            f"{path} does not match table schema {SCHEMA_VERSION}: {'; '.join(problems)}"
        )
    frame = arrow.to_pandas()
    check_values(meta, frame, path)
    return LatencyTable(meta, frame, path)


# Statistics that are times (and the utilization columns): each must be a finite number,
# zero or more.
TIME_FIELDS = ("latency_ms", "p10_ms", "p90_ms", "mean_ms", "std_ms", "overhead_ms")


def check_values(meta: TableMeta, frame: pd.DataFrame, path: Path) -> None:
    """Raises TableError naming the first invalid latency (NaN, infinite or negative).

    A table with such values would predict NaN or negative latencies and make
    every reward built on them meaningless, so it is refused on load.
    """
    fix = f"rebuild the table with `{profile_command(meta)}`"
    if not (np.isfinite(meta.overhead_ms) and meta.overhead_ms >= 0):
        raise TableError(
            f"{path}: metadata overhead_ms = {meta.overhead_ms} is not a finite time >= 0; "
            "rebuild the table with `rlnas profile`"
        )
    if meta.resolution <= 0 or meta.batch <= 0:
        raise TableError(
            f"{path}: metadata resolution {meta.resolution} / batch {meta.batch} must be "
            "positive; rebuild the table with `rlnas profile`"
        )
    for name in TIME_FIELDS + tuple(n for n in UTILIZATION_SCHEMA.names if n in frame):
        values = frame[name].to_numpy(dtype=np.float64)
        bad = ~(np.isfinite(values) & (values >= 0))
        if bad.any():
            first = int(np.argmax(bad))
            key = LayerKey(*frame.loc[first, list(KEY_FIELDS)])
            raise TableError(
                f"{path}: {int(bad.sum())} row(s) have an invalid {name} (e.g. {values[first]} "
                f"for {key}); latencies must be finite and >= 0: {fix}"
            )
    if frame[list(KEY_FIELDS)].isna().to_numpy().any():
        raise TableError(
            f"{path}: some layer keys are empty; rebuild the table with `rlnas profile`"
        )
