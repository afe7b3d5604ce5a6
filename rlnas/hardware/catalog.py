"""Where lookup tables are: the user's folder, the shipped ones, and lookup by name or settings."""

from __future__ import annotations

import functools
from pathlib import Path

from rlnas.errors import TableError, did_you_mean
from rlnas.files import rlnas_home
from rlnas.hardware.devices import get_device, list_devices, resolve_precision
from rlnas.hardware.table import LatencyTable, load_table, read_meta
from rlnas.hardware.table_meta import table_name
from rlnas.model.space import get_space, list_spaces


def user_tables_dir() -> Path:
    """Where `rlnas profile` writes by default: `$RLNAS_HOME/tables` (default `~/.rlnas/tables`)."""
    return rlnas_home() / "tables"


def shipped_tables_dir() -> Path:
    """The tables installed with the package."""
    from importlib import resources

    return Path(str(resources.files("rlnas.tables")))


def find_tables(extra_dirs: tuple[Path, ...] = ()) -> list[tuple[str, Path]]:
    """(origin, path) of every table file: the user's, then shipped, then `extra_dirs`."""
    found = []
    for origin, folder in [("user", user_tables_dir()), ("shipped", shipped_tables_dir())] + [
        ("dir", d) for d in extra_dirs
    ]:
        if folder.is_dir():
            found += [(origin, p) for p in sorted(folder.glob("*.parquet"))]
    return found


def resolve_table(name_or_path: str | Path) -> Path:
    """A table file from a path, or from a name (file stem) among the known tables.

    A name means what `predict` and `search` would use: the user's table where
    one has that name, else the shipped one.
    """
    path = Path(name_or_path)
    if path.is_dir():
        raise TableError(
            f"{path} is a folder, not a table file; give a *.parquet file or a table name "
            f"(`rlnas tables list --dir {path}` lists the tables in it)"
        )
    if path.suffix == ".parquet" or path.exists():
        if not path.is_file():
            raise TableError(
                f"table file {path} does not exist; `rlnas tables list` shows the tables"
            )
        return path
    names: dict[str, Path] = {}
    for _, found in find_tables():
        names.setdefault(found.stem, found)
    if str(name_or_path) not in names:
        raise TableError(
            f"table '{name_or_path}' doesn't exist; known: {', '.join(names) or 'none'}."
            f"{did_you_mean(str(name_or_path), names)} "
            "A table file is given by its path (*.parquet)"
        )
    return names[str(name_or_path)]


def locate_table(
    device: str, precision: str, space: str, resolution: int, batch: int = 1
) -> tuple[str, Path]:
    """(origin, path) of the table for these settings: the user's own first, then shipped.

    Raises:
        TableError: No such table, with the command that makes one.
    """
    name = table_name(device, precision, space, resolution, batch)
    for origin, path in find_tables():
        if path.stem == name:
            held = read_meta(path).name
            if held != name:
                raise TableError(
                    f"{path} is named for {name} but holds the table {held} (its metadata); "
                    f"rename it to {held}.parquet, or profile {name} with `rlnas profile "
                    f"--device {device} --precision {precision} --space {space} "
                    f"--resolution {resolution} --batch {batch}`"
                )
            return origin, path
    _check_names(device, precision, space, resolution)
    raise TableError(
        f"no lookup table '{name}' (shipped or in {user_tables_dir()}); measure one with "
        f"`rlnas profile --device {device} --precision {precision} --space {space} "
        f"--resolution {resolution} --batch {batch}`, or see `rlnas tables list`"
    )


def _check_names(device: str, precision: str, space: str, resolution: int) -> None:
    """Raises, with a did-you-mean, where a name a table's name is built from is not one
    rlnas knows (before saying that no table has the name): `profile` would refuse it."""
    if device in list_devices():  # a device reachable only by fitted tables has no list
        resolve_precision(get_device(device), precision)
    if space in list_spaces():  # a space file's name is checked where the file is read
        get_space(space).check_resolution(resolution)


def default_precision(device: str, space: str, resolution: int, batch: int = 1) -> str:
    """The first of the device's precisions that has a table here (else its first precision)."""
    precisions = get_device(device).precisions
    names = {p.stem for _, p in find_tables()}
    for precision in precisions:
        if table_name(device, precision, space, resolution, batch) in names:
            return precision
    return precisions[0]


def table_for(
    device: str,
    space: str,
    resolution: int,
    precision: str | None = None,
    table: str | Path | None = None,
) -> LatencyTable:
    """The table that predicts `space` on `device`: `table` if given, else the device's own
    at `precision` (default: its first precision with a table). Each file is read once
    while it is unchanged."""
    if table is not None:
        path = resolve_table(table)
    else:
        chosen = precision or default_precision(device, space, resolution)
        _, path = locate_table(device, chosen, space, resolution)
    return _load(path.resolve(), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _load(path: Path, mtime_ns: int) -> LatencyTable:
    return load_table(path)
