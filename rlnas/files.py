"""Files rlnas writes: where its user folder is, and atomic writes.

Every file a command writes goes to a temporary file in the same folder first
and is then renamed over the target, so a reader (or a run killed mid-write)
never sees a half-written file. Temporary files a killed run left behind
(`.<name>.*.tmp`) are removed by the next write of the same file.

Output paths a user names are checked first (`check_output`): a file rlnas did
not create is replaced only with `--force`.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from rlnas.errors import OutputError

# A temporary file older than this is a leftover of a killed run, not a live write.
STALE_TMP_S = 60.0


def rlnas_home() -> Path:
    """The user's rlnas folder: `$RLNAS_HOME` (default `~/.rlnas`)."""
    return Path(os.environ.get("RLNAS_HOME", Path.home() / ".rlnas"))


def atomic_write(path: Path, write: Callable[[str], object]) -> None:
    """Calls `write(temporary path)` beside `path`, then renames the result over `path`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_tmp(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # name the file the user asked for, not the temporary one
        raise OSError(exc.errno, exc.strerror, str(path)) from None
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


def remove_stale_tmp(path: Path) -> None:
    """Deletes temporary files of `path` left by a killed run (`.<name>.*.tmp`, a minute old)."""
    now = time.time()
    for leftover in Path(path).parent.glob(f".{Path(path).name}.*tmp"):
        try:
            if now - leftover.stat().st_mtime > STALE_TMP_S:
                leftover.unlink()
        except OSError:
            pass  # another process's file, or already gone


def check_output(path: Path, force: bool = False, option: str = "--out") -> Path:
    """Checks that a file can be written at `path` without replacing one unasked.

    Raises:
        OutputError: `path` is a folder, lies under a file, cannot be written,
            or exists and `force` is false.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{option} {path} is a folder; give a file path inside it")
    parent = _existing_parent(path.parent)
    if not parent.is_dir():
        raise OutputError(
            f"{option} {path} lies under {parent}, which is a file; choose another {option}"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {path}: cannot write in {parent}; choose another {option}")
    if path.exists() and not force:
        raise OutputError(
            f"{option} {path} exists; pass --force to replace it, or choose another {option}"
        )
    return path


def check_folder(path: Path, marker: str, option: str = "--out") -> Path:
    """Checks that `path` is a folder rlnas may write into: new, empty, or holding `marker`.

    Raises:
        OutputError: `path` is a file, lies under a file, cannot be written, or
            is a folder of other files (no `marker` in it).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path} is a file, not a folder; choose another {option}")
    parent = _existing_parent(path)
    if not parent.is_dir():
        raise OutputError(
            f"{option} {path} lies under {parent}, which is a file; choose another {option}"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {path}: cannot write in {parent}; choose another {option}")
    if path.is_dir() and not (path / marker).exists() and any(path.iterdir()):
        raise OutputError(
            f"{option} {path} is a folder of other files (no {marker}); choose a new or "
            f"empty folder for {option}"
        )
    return path


def _existing_parent(path: Path) -> Path:
    """The nearest existing ancestor of `path` (or `path` itself if it exists)."""
    current = path.absolute()
    while not current.exists() and current != current.parent:
        current = current.parent
    return current
