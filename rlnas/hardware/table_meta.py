"""A lookup table's metadata: what it holds and what produced it (the file's `rlnas.*` keys),
and the name a table is found by."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from rlnas.errors import TableError

SCHEMA_VERSION = 1
# Metadata a table may lack (added after schema 1 was fixed; the rows are unchanged).
OPTIONAL_META = ("calibration", "host_fingerprint")


@dataclass(frozen=True)
class TableMeta:
    """What a table holds and what produced it (the file's `rlnas.*` metadata).

    Attributes:
        device: Device name (`cpu`, `t4`, ...).
        backend: Backend name (`onnxruntime`, ...).
        backend_version: The vendor runtime's version and mode.
        precision: fp32, bf16, fp16 or int8.
        space: Name of the search space.
        space_digest: The space's digest; a table serves only that exact space.
        resolution: Input resolution in pixels.
        batch: Batch size.
        threads: Intra-op threads used when timing (0 where not applicable).
        host: The hardware that measured it (CPU or GPU model), or what an
            estimate stands for.
        source: `measured` or `estimated`.
        method: How an estimated table was made; the timing harness settings
            for a measured one.
        overhead_ms: Per-call overhead of an empty graph on the network input.
        created: ISO 8601 creation time (UTC).
        rlnas_version: Version of rlnas that wrote it.
        schema_version: Table schema version.
        calibration: JSON of the end-to-end `Calibration`, or "" if uncalibrated.
        host_fingerprint: JSON of the measuring CPU host's fingerprint
            (`rlnas.hardware.host`), or "" (estimated tables, GPUs, older tables).
    """

    device: str
    backend: str
    backend_version: str
    precision: str
    space: str
    space_digest: str
    resolution: int
    batch: int
    threads: int
    host: str
    source: str
    method: str
    overhead_ms: float
    created: str = field(
        default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    )
    rlnas_version: str = field(default_factory=lambda: _rlnas_version())
    schema_version: int = SCHEMA_VERSION
    calibration: str = ""
    host_fingerprint: str = ""

    def to_metadata(self) -> dict[bytes, bytes]:
        return {f"rlnas.{k}".encode(): str(v).encode() for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_metadata(cls, raw: dict[bytes, bytes], path: Path) -> TableMeta:
        values = {
            k.decode().removeprefix("rlnas."): v.decode()
            for k, v in raw.items()
            if k.startswith(b"rlnas.")
        }
        if "schema_version" not in values:
            raise TableError(
                f"{path} is a Parquet file but not an rlnas table (no rlnas.schema_version in "
                "its metadata); build one with `rlnas profile`"
            )
        if values["schema_version"] != str(SCHEMA_VERSION):
            raise TableError(
                f"{path} has table schema version {values['schema_version']}; this rlnas reads "
                f"version {SCHEMA_VERSION}: rebuild it with `rlnas profile` or use a matching rlnas"
            )
        kwargs: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            if f.name not in values and f.name in OPTIONAL_META:
                continue
            if f.name not in values:
                raise TableError(f"{path}: metadata lacks 'rlnas.{f.name}'; rebuild the table")
            text = values[f.name]
            try:
                kwargs[f.name] = (
                    int(text) if f.type == "int" else float(text) if f.type == "float" else text
                )
            except ValueError:
                raise TableError(
                    f"{path}: metadata 'rlnas.{f.name}' = {text!r} is not a {f.type}"
                ) from None
        return cls(**kwargs)  # type: ignore[arg-type]

    @property
    def name(self) -> str:
        """Conventional file stem: device_precision_space_resolution_bBatch."""
        return table_name(self.device, self.precision, self.space, self.resolution, self.batch)


def table_name(device: str, precision: str, space: str, resolution: int, batch: int) -> str:
    return f"{device}_{precision}_{space}_{resolution}_b{batch}"


def _rlnas_version() -> str:
    from rlnas import __version__

    return __version__


def profile_command(meta: TableMeta) -> str:
    """The `rlnas profile` command that measures a table like the one `meta` describes."""
    return (
        f"rlnas profile --device {meta.device} --precision {meta.precision} "
        f"--space {meta.space} --resolution {meta.resolution} --batch {meta.batch}"
    )
