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

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rlnas.cluster import ray_address
from rlnas.errors import TableError
from rlnas.files import check_output
from rlnas.hardware.catalog import user_tables_dir
from rlnas.hardware.fleet import FleetTimer
from rlnas.hardware.layer_timer import LayerTimer, ProfileConfig, resolve_device
from rlnas.hardware.table import load_table, read_meta, rows_frame, save_table
from rlnas.hardware.table_meta import TableMeta, table_name
from rlnas.model.layers import enumerate_layers
from rlnas.model.ops import KEY_FIELDS, LayerKey
from rlnas.model.space import get_space

__all__ = ["ProfileConfig", "ProfilePlan", "ProfileResult", "plan_profile", "profile"]


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
    device, precision = resolve_device(config)
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
    space = get_space(config.space)
    resolution = config.resolution or space.resolution
    plan, rows, identity = _plan(config)
    out = plan.out
    network_input = (config.batch, 3, resolution, resolution)
    address = ray_address(config.ray_address)
    timer = LayerTimer(config) if address is None else FleetTimer(config, address, notify)
    meta = _table_meta(config, plan.out, timer.describe(network_input))
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


def _table_meta(config: ProfileConfig, out: Path, machine: dict) -> TableMeta:
    """The metadata of a profile run's table; raises where `out` holds rows of another
    runtime version or machine, which must not be mixed in."""
    device, precision = resolve_device(config)
    space = get_space(config.space)
    if out.exists():
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
    return TableMeta(
        device=device.name,
        precision=precision,
        space=space.name,
        space_digest=space.digest,
        resolution=config.resolution or space.resolution,
        batch=config.batch,
        threads=config.threads,
        source="measured",
        method=f"median of timed runs ({config.timing.describe()})",
        **machine,
    )


def _checkpoint(meta: TableMeta, rows: dict[LayerKey, dict], out: Path, journal: Path) -> None:
    """Writes all rows to the table atomically, then drops the journal they came from."""
    save_table(meta, rows_frame(list(rows.values())), out)
    journal.unlink(missing_ok=True)
