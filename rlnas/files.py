"""Files rlnas writes: where its user folder is, and atomic writes.

Every file a command writes goes to a temporary file in the same folder first
and is then renamed over the target, so a reader (or a run killed mid-write)
never sees a half-written file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def rlnas_home() -> Path:
    """The user's rlnas folder: `$RLNAS_HOME` (default `~/.rlnas`)."""
    return Path(os.environ.get("RLNAS_HOME", Path.home() / ".rlnas"))


def atomic_write(path: Path, write: Callable[[str], object]) -> None:
    """Calls `write(temporary path)` beside `path`, then renames the result over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes it private; results are meant to be shared
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_parquet(table: pa.Table, path: Path) -> None:
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def atomic_write_text(text: str, path: Path) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def atomic_write_bytes(data: bytes, path: Path) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
