"""On-disk cache of raw proxy scores (Parquet), so no architecture is scored twice.

A row is keyed by everything the score depends on: the space (digest), the
architecture (canonical string), the proxy, the data (content hash, or
`none`), the resolution, the batch size and the seed. New rows are kept in
memory and written with `flush()` (atomic rewrite of the whole file), which
`put` also calls once `FLUSH_EVERY_S` have passed since the last write, so a
killed search loses at most that much scoring. A flush first takes in the rows
another process wrote to the file since, so two searches sharing the cache do
not erase each other's rows.
"""

from __future__ import annotations

import time
from dataclasses import astuple, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from rlnas.errors import RlnasError
from rlnas.files import atomic_write_parquet
from rlnas.hardware.catalog import user_tables_dir

FLUSH_EVERY_S = 30.0
# 2: weights drawn from a local generator (`rlnas.model.network.init_weights`).
CACHE_SCHEMA_VERSION = 2
CACHE_SCHEMA = pa.schema(
    [
        ("space_digest", pa.string()),
        ("arch", pa.string()),
        ("proxy", pa.string()),
        ("data_id", pa.string()),
        ("resolution", pa.int32()),
        ("batch_size", pa.int32()),
        ("seed", pa.int32()),
        ("value", pa.float64()),
    ]
)


@dataclass(frozen=True)
class ScoreKey:
    """What a raw proxy score depends on."""

    space_digest: str
    arch: str
    proxy: str
    data_id: str
    resolution: int
    batch_size: int
    seed: int


def default_cache_path() -> Path:
    """The user's cache; its name carries the schema version, so a cache of scores
    from older weights is left alone, never read."""
    return user_tables_dir().parent / "cache" / f"proxy_scores_v{CACHE_SCHEMA_VERSION}.parquet"


class ScoreCache:
    """Raw scores by `ScoreKey`, backed by one Parquet file (or memory only if path is None)."""

    def __init__(self, path: Path | None):
        self.path = path
        self.values: dict[ScoreKey, float] = {}
        self.pending = 0
        self.flushed_at = time.monotonic()
        if path is not None and path.exists():
            self._read(path)

    def _read(self, path: Path, missing_only: bool = False) -> None:
        """Takes in the file's rows (with `missing_only`, only keys not held already)."""
        try:
            # One open file: read by name, pyarrow opens it twice, and a flush of another
            # process that replaces the file in between reads as a corrupt one.
            with path.open("rb") as handle:
                table = pq.read_table(handle)
        except (pa.ArrowInvalid, OSError) as exc:
            raise RlnasError(
                f"score cache {path} is unreadable ({exc}); move it away to start a new one"
            ) from None
        version = (table.schema.metadata or {}).get(b"rlnas.cache_schema_version")
        if (
            version != str(CACHE_SCHEMA_VERSION).encode()
            or table.schema.names != CACHE_SCHEMA.names
        ):
            raise RlnasError(
                f"{path} is not an rlnas score cache of schema {CACHE_SCHEMA_VERSION}; "
                "move it away to start a new one"
            )
        columns = [table.column(name).to_pylist() for name in CACHE_SCHEMA.names]
        for row in zip(*columns, strict=True):
            key = ScoreKey(*row[:-1])
            if not missing_only or key not in self.values:
                self.values[key] = float(row[-1])

    def __len__(self) -> int:
        return len(self.values)

    def get(self, key: ScoreKey) -> float | None:
        return self.values.get(key)

    def put(self, key: ScoreKey, value: float) -> None:
        self.values[key] = value
        self.pending += 1
        if time.monotonic() - self.flushed_at >= FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        """Writes every row to the file, atomically; a no-op without new rows or path."""
        if self.path is None or not self.pending:
            return
        if self.path.exists():
            self._read(self.path, missing_only=True)
        rows = [(*astuple(k), v) for k, v in self.values.items()]
        columns = {name: [row[i] for row in rows] for i, name in enumerate(CACHE_SCHEMA.names)}
        table = pa.table(columns, schema=CACHE_SCHEMA).replace_schema_metadata(
            {b"rlnas.cache_schema_version": str(CACHE_SCHEMA_VERSION).encode()}
        )
        atomic_write_parquet(table, self.path)
        self.pending = 0
        self.flushed_at = time.monotonic()
