"""Profiling: measure every unique layer of a space on a device into a lookup table.

Crash safety: each measured row is appended to a journal next to the output
(`<out>.journal`, JSON lines, flushed and fsynced) before the next layer
starts, and the journal is folded into the Parquet table (written atomically)
every `checkpoint_every` rows and at the end. A run killed at any moment loses
at most the layer in flight; a rerun with the same arguments reads the table
and the journal and measures only what is missing. Nothing but the output
table and its journal is ever written or removed.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from rlnas.cluster import ray_address
from rlnas.errors import RlnasError, TableError
from rlnas.files import check_output
from rlnas.hardware.backends import Backend, Workload, check_precision, get_backend
from rlnas.hardware.catalog import user_tables_dir
from rlnas.hardware.devices import (
    ANALYTIC,
    Device,
    get_device,
    measuring_host,
    resolve_precision,
)
from rlnas.hardware.host import fingerprint
from rlnas.hardware.table import (
    TableMeta,
    load_table,
    read_meta,
    rows_frame,
    save_table,
    table_name,
)
from rlnas.hardware.timing import Timing, TimingConfig, measure
from rlnas.model.layers import enumerate_layers
from rlnas.model.network import seeded
from rlnas.model.ops import KEY_FIELDS, LayerKey, build_layer, input_shapes
from rlnas.model.space import DEFAULT_SPACE, get_space

if TYPE_CHECKING:
    from rlnas.hardware.fleet import FleetTimer


@dataclass(frozen=True)
class ProfileConfig:
    """What to profile and how.

    Attributes:
        device: Target device name (see `rlnas devices`).
        precision: Precision; default the device's first (fp32).
        space: Space name or space file.
        resolution: Input resolution; default the space's.
        batch: Batch size.
        threads: Intra-op threads for CPU backends (recorded in the table).
        out: Output table; default `<user tables dir>/<table name>.parquet`.
        limit: Measure at most this many new layers in this run.
        allow_other_device: Measure a GPU device's table on a different GPU;
            the table then records the GPU that really measured it.
        timing: Timing harness settings.
        checkpoint_every: Fold the journal into the Parquet file this often.
        seed: Seed of the random layer inputs.
        ray_address: A Ray cluster (or "auto") whose node with the device as a custom
            resource times the layers; None: this machine (or RAY_ADDRESS where set).
    """

    device: str = "cpu"
    precision: str | None = None
    space: str = DEFAULT_SPACE
    resolution: int | None = None
    batch: int = 1
    threads: int = 1
    out: Path | None = None
    limit: int | None = None
    allow_other_device: bool = False
    timing: TimingConfig = field(default_factory=TimingConfig)
    checkpoint_every: int = 100
    seed: int = 0
    ray_address: str | None = None

    def __post_init__(self) -> None:
        for name in ("batch", "threads", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise RlnasError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.limit is not None and self.limit < 1:
            raise RlnasError(f"limit must be >= 1 layer, got {self.limit}")
        if self.seed < 0:
            raise RlnasError(f"seed must be >= 0, got {self.seed}; e.g. --seed 0")
        resolve_precision(get_device(self.device), self.precision)
        get_space(self.space).check_resolution(self.resolution)


@dataclass(frozen=True)
class ProfilePlan:
    """What a profile run would do.

    Attributes:
        out: The output table.
        total: Unique layers of the space at this resolution.
        done: Layers the table and journal already hold.
        todo: Layers this run measures (after `limit`).
        estimated_s: Rough wall time for `todo` (the device's `seconds_per_layer`).
    """

    out: Path
    total: int
    done: int
    todo: list[LayerKey]
    estimated_s: float


@dataclass(frozen=True)
class ProfileResult:
    """What a profile run did.

    Attributes:
        out: The table written.
        measured: Layers measured in this run.
        rows: Rows in the table now.
        complete: The table covers the whole space.
        wall_s: Wall time of the measuring loop.
        timed_s: Time inside timed runs (the rest is export, compile, warm-up).
        unstable: Layers of this run flagged unstable.
    """

    out: Path
    measured: int
    rows: int
    complete: bool
    wall_s: float
    timed_s: float
    unstable: int


class _Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _resolve(config: ProfileConfig) -> tuple[Device, str]:
    device = get_device(config.device)
    if device.backend == ANALYTIC:
        measuring_host(device, action="profile")  # says how to write its table instead
    return device, resolve_precision(device, config.precision)


def _default_out(config: ProfileConfig, precision: str) -> Path:
    space = get_space(config.space)
    resolution = config.resolution or space.resolution
    name = table_name(config.device, precision, space.name, resolution, config.batch)
    return user_tables_dir() / f"{name}.parquet"


def _journal_path(out: Path) -> Path:
    return out.with_name(out.name + ".journal")


def _identity(config: ProfileConfig, precision: str, space_digest: str, resolution: int) -> dict:
    """What a table or journal must match to be resumed by this run."""
    return {
        "device": config.device,
        "precision": precision,
        "space_digest": space_digest,
        "resolution": resolution,
        "batch": config.batch,
        "threads": config.threads,
    }


def _read_existing(out: Path, identity: dict) -> dict[LayerKey, dict]:
    """Rows already measured, from the table and its journal; refuses foreign files."""
    rows: dict[LayerKey, dict] = {}
    if out.exists():
        try:
            meta = read_meta(out)
        except TableError as exc:
            raise TableError(
                f"{exc} -- refusing to write over {out}; pass another --out or move it away"
            ) from None
        found = {k: getattr(meta, k) for k in identity}
        if found != identity:
            diff = ", ".join(
                f"{k}={found[k]} (want {v})" for k, v in identity.items() if found[k] != v
            )
            raise TableError(
                f"{out} holds another table ({diff}); refusing to change it: pass another --out"
            )
        frame = load_table(out).frame
        for record in frame.to_dict("records"):
            rows[LayerKey(*(record[f] for f in KEY_FIELDS))] = record
    journal = _journal_path(out)
    if journal.exists():
        lines = journal.read_text().splitlines()
        header = json.loads(lines[0]) if lines else None
        if header is not None and header != identity:
            raise TableError(
                f"journal {journal} belongs to another profile run ({header}); "
                "pass another --out or move the journal away"
            )
        for line in lines[1:]:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # the line being written when the run was killed
            key = LayerKey(*(record[f] for f in KEY_FIELDS))
            rows.setdefault(key, record)
    return rows


def plan_profile(config: ProfileConfig) -> ProfilePlan:
    """What `profile(config)` would measure, without measuring or writing anything."""
    return _plan(config)[0]


def _plan(config: ProfileConfig) -> tuple[ProfilePlan, dict[LayerKey, dict], dict]:
    """The plan, the rows already measured, and the identity a resumed file must match."""
    device, precision = _resolve(config)
    space = get_space(config.space)
    resolution = config.resolution or space.resolution
    keys = enumerate_layers(space, resolution)
    out = check_output(
        Path(config.out) if config.out else _default_out(config, precision), force=True
    )
    identity = _identity(config, precision, space.digest, resolution)
    existing = _read_existing(out, identity)
    todo = [k for k in keys if k not in existing]
    if config.limit is not None:
        todo = todo[: config.limit]
    rate = device.seconds_per_layer.get(precision, 1.0)
    done = sum(k in existing for k in keys)
    return ProfilePlan(out, len(keys), done, todo, len(todo) * rate), existing, identity


def time_workload(
    backend: Backend, workload: Workload, precision: str, timing: TimingConfig
) -> Timing:
    """Compiles and times one workload with the shared harness."""
    compiled = backend.compile(workload, precision)
    return measure(compiled.run_timed, timing)


class LayerTimer:
    """Times layers of a profile run on this machine: its backend, host and overheads.

    Raises:
        DeviceError: The device cannot be measured here.
    """

    def __init__(self, config: ProfileConfig):
        device, self.precision = _resolve(config)
        self.config = config
        self.host = measuring_host(device, config.allow_other_device, "profile")
        self.backend = get_backend(device.backend, threads=config.threads)
        check_precision(self.backend, self.precision)
        self.version = self.backend.version()
        self.fingerprint = json.dumps(fingerprint(device.gpu), sort_keys=True)
        # The empty graph is timed in fp32: quantizing an identity is meaningless.
        self.overhead_precision = "fp32" if "fp32" in device.precisions else self.precision
        self.overheads: dict[tuple[int, ...], float] = {}

    def overhead_ms(self, shape: tuple[int, ...]) -> float:
        """Per-call overhead of an empty graph on an input of `shape`."""
        if shape not in self.overheads:
            workload = Workload.random(_Identity(), [shape], self.config.seed)
            timed = time_workload(
                self.backend, workload, self.overhead_precision, self.config.timing
            )
            self.overheads[shape] = timed.median_ms
        return self.overheads[shape]

    def time(self, key: LayerKey) -> tuple[dict, float]:
        """One layer's table row, and the seconds spent inside timed runs."""
        config = self.config
        shapes = input_shapes(key, config.batch)
        layer = seeded(functools.partial(build_layer, key), config.seed)
        workload = Workload.random(layer, shapes, config.seed)
        timing = time_workload(self.backend, workload, self.precision, config.timing)
        record = {
            **key.as_dict(),
            "latency_ms": timing.median_ms,
            "p10_ms": timing.p10_ms,
            "p90_ms": timing.p90_ms,
            "mean_ms": timing.mean_ms,
            "std_ms": timing.std_ms,
            "runs": timing.runs,
            "overhead_ms": self.overhead_ms(shapes[0]),
            "unstable": timing.unstable,
        }
        return record, timing.total_ms / 1000

    def describe(self, network_input: tuple[int, ...]) -> dict:
        """What the table's metadata says about the measuring machine."""
        return {
            "backend": self.backend.name,
            "backend_version": self.version,
            "host": self.host,
            "host_fingerprint": self.fingerprint,
            "overhead_ms": self.overhead_ms(network_input),
        }

    def measure(self, keys: list[LayerKey]) -> Iterator[tuple[LayerKey, dict, float]]:
        for key in keys:
            yield (key, *self.time(key))


def profile(
    config: ProfileConfig,
    progress: Callable[[int, int, LayerKey], None] | None = None,
    notify: Callable[[str], None] | None = None,
) -> ProfileResult:
    """Measures the missing layers of a table and writes it.

    With `config.ray_address` the layers are timed on the Ray cluster's node that
    offers the device as a resource (`rlnas.hardware.fleet`), and the rows stream back
    into this table.

    Args:
        config: What to profile.
        progress: Called as `progress(done, todo, key)` after each layer.
        notify: Told of cluster events (a node that left), one line each.
    """
    device, precision = _resolve(config)
    space = get_space(config.space)
    resolution = config.resolution or space.resolution
    plan, rows, identity = _plan(config)
    out = plan.out
    network_input = (config.batch, 3, resolution, resolution)
    timer: LayerTimer | FleetTimer
    address = ray_address(config.ray_address)
    if address is not None:
        from rlnas.hardware.fleet import FleetTimer

        timer = FleetTimer(config, address, notify)
    else:
        timer = LayerTimer(config)
    machine = timer.describe(network_input)
    if out.exists():
        # Rows measured by another runtime version or machine must not be mixed in.
        old = read_meta(out)
        for label, was, now in [
            ("backend version", old.backend_version, machine["backend_version"]),
            ("host", old.host, machine["host"]),
        ]:
            if was != now:
                raise TableError(
                    f"{out} was measured with {label} '{was}', this run has '{now}'; refusing "
                    "to mix them: pass another --out"
                )
    meta = TableMeta(
        device=device.name,
        precision=precision,
        space=space.name,
        space_digest=space.digest,
        resolution=resolution,
        batch=config.batch,
        threads=config.threads,
        source="measured",
        method=f"median of timed runs ({config.timing.describe()})",
        **machine,
    )

    journal_path = _journal_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    journal = journal_path.open("a")
    if journal.tell() == 0:
        journal.write(json.dumps(identity) + "\n")
    start = time.perf_counter()
    timed_s = 0.0
    unstable = 0
    since_checkpoint = 0
    try:
        for done, (key, record, seconds) in enumerate(timer.measure(plan.todo), 1):
            journal.write(json.dumps(record) + "\n")
            journal.flush()
            os.fsync(journal.fileno())
            rows[key] = record
            timed_s += seconds
            unstable += record["unstable"]
            since_checkpoint += 1
            if since_checkpoint >= config.checkpoint_every:
                _checkpoint(meta, rows, out, journal_path)
                journal.close()
                journal = journal_path.open("a")
                journal.write(json.dumps(identity) + "\n")
                since_checkpoint = 0
            if progress is not None:
                progress(done, len(plan.todo), key)
    finally:
        journal.close()
    wall_s = time.perf_counter() - start
    _checkpoint(meta, rows, out, journal_path)
    return ProfileResult(
        out, len(plan.todo), len(rows), len(rows) >= plan.total, wall_s, timed_s, unstable
    )


def _checkpoint(meta: TableMeta, rows: dict[LayerKey, dict], out: Path, journal: Path) -> None:
    """Writes all rows to the table atomically, then drops the journal they came from."""
    save_table(meta, rows_frame(list(rows.values())), out)
    journal.unlink(missing_ok=True)
