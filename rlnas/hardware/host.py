"""Which host measured a table, and the per-host calibrations of tables measured elsewhere.

A CPU model name does not identify the silicon: two "Intel(R) Xeon(R)
Processor" hosts with different caches ran the same networks 27% apart
(BENCHMARKS.md). A fingerprint records what decides layer latencies on a CPU:
the model name, a digest of the ISA flags, the cache sizes and the number of
cores. A GPU table's fingerprint is the GPU's model (nvidia-smi's name, or a
Jetson's model from its device tree). Tables profiled since this module existed
carry it in their metadata (`host_fingerprint`); older ones do not, and count as
measured elsewhere.

A measured table used on another host is adapted there once: whole networks
timed end to end, and a table fitted to them with the measured one as its prior
(`rlnas.hardware.endtoend.calibrate_table`, `rlnas.hardware.fit`). The fitted
table is stored per host in the user folder
(`~/.rlnas/calibrations/<table>-<build>@<host id>.parquet`, or under
`$RLNAS_CALIBRATIONS`). Shipped files are never modified.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

from rlnas.errors import TableError
from rlnas.files import rlnas_home
from rlnas.hardware.devices import DEVICES, cpu_name, gpu_names
from rlnas.hardware.table import LatencyTable, load_table
from rlnas.hardware.table_meta import TableMeta


def _cpu_flags() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return " ".join(sorted(line.split(":", 1)[1].split()))
    return ""


def _caches() -> str:
    """Cache levels and sizes of CPU 0, e.g. 'L1d 48K, L1i 32K, L2 2048K, L3 107520K'."""
    root = Path("/sys/devices/system/cpu/cpu0/cache")
    entries = []
    for index in sorted(root.glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
        entries.append(f"L{level}{suffix} {size}")
    return ", ".join(entries)


def fingerprint(gpu: bool = False) -> dict[str, str]:
    """This host's CPU: model, ISA flags digest, caches, cores; with `gpu`, its GPU's model
    (what decides a GPU table's latencies), or "" where none is found."""
    if gpu:
        return {"gpu": next(iter(gpu_names()), "")}
    return dict(_fingerprint())


def measures_on_gpu(meta: TableMeta) -> bool:
    """Whether the table's device is a GPU (its host is then the GPU, not the CPU)."""
    return meta.device in DEVICES and DEVICES[meta.device].gpu


@functools.cache
def _fingerprint() -> tuple[tuple[str, str], ...]:
    """Read once per process (/proc and /sys do not change under a running process)."""
    flags = _cpu_flags()
    return tuple(
        {
            "cpu": cpu_name(),
            "isa_flags": hashlib.sha256(flags.encode()).hexdigest()[:12] if flags else "",
            "caches": _caches(),
            "cores": str(os.cpu_count() or 0),
        }.items()
    )


def host_id(print_: dict[str, str] | None = None) -> str:
    """A short, stable name of a fingerprint (this host's by default)."""
    text = json.dumps(print_ if print_ is not None else fingerprint(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def measured_here(meta: TableMeta) -> bool:
    """Whether a table was measured on this host (same fingerprint); False without one."""
    if not meta.host_fingerprint:
        return False
    try:
        return bool(json.loads(meta.host_fingerprint) == fingerprint(measures_on_gpu(meta)))
    except json.JSONDecodeError:
        return False


def calibrations_dir() -> Path:
    """`$RLNAS_CALIBRATIONS`, else `calibrations/` in the user folder."""
    return Path(os.environ.get("RLNAS_CALIBRATIONS", rlnas_home() / "calibrations"))


def host_fit_path(meta: TableMeta) -> Path:
    """Where this host's adaptation of a table lives: a fitted table, one file per table build
    and host."""
    build = hashlib.sha256(meta.created.encode()).hexdigest()[:6]
    here = host_id(fingerprint(measures_on_gpu(meta)))
    return calibrations_dir() / f"{meta.name}-{build}@{here}.parquet"


def load_host_fit(meta: TableMeta) -> LatencyTable | None:
    """This host's adaptation of the table `meta` describes, or None before the first one.

    Raises:
        TableError: The file is there but unreadable (named, with the fix).
    """
    path = host_fit_path(meta)
    if not path.exists():
        return None
    try:
        return load_table(path)
    except TableError as exc:
        raise TableError(
            f"this host's adaptation of {meta.name}, {path}, is unreadable ({exc}); delete that "
            "file and the next use times this host again"
        ) from None


# A 1-minute load average above this many times the cores: other work shared the CPU.
BUSY_LOAD = 1.5


def busy_note(meta: TableMeta) -> str:
    """A warning where this host was busy just now (its 1-minute load average above
    `BUSY_LOAD` x its cores), as it timed networks for `meta`'s adaptation: such timings
    run slow, and the adaptation is kept for the host. "" where it was not, or where the
    load is unknown."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not on every OS
        return ""
    cores = os.cpu_count() or 1
    if load <= BUSY_LOAD * cores:
        return ""
    return (
        f"; this host was busy as it timed (load {load:.1f} on {cores} cores), so the "
        f"adaptation may predict too slow: rerun `rlnas tables calibrate {meta.name}` when "
        "it is quiet"
    )
