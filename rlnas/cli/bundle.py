"""`rlnas bundle`: networks or layers to time with a device's own tools; `rlnas tables import`:
a layer bundle's results as a measured table."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TimeRemainingColumn

from rlnas.cli.common import console, duration, reports_errors
from rlnas.cli.progress import Bar
from rlnas.cli.tables import tables_app
from rlnas.errors import RlnasError


@contextlib.contextmanager
def _progress() -> Iterator[Callable[[int, int], None]]:
    """A progress bar, and the (done, total) callback that moves it."""
    with Bar(BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@reports_errors
def bundle(
    device: Annotated[str, typer.Option(help="Device it is for (its table guides the choice).")],
    archs: Annotated[int, typer.Option(min=1, help="Networks to write.")] = 100,
    out: Annotated[Path, typer.Option(help="Folder to write (new, empty, or a bundle).")] = Path(
        "bundle"
    ),
    space: Annotated[str, typer.Option(help="Space name or file.")] = "mobilenet",
    resolution: Annotated[int | None, typer.Option(help="Resolution (default: space's).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the networks.")] = 0,
    layers: Annotated[
        bool,
        typer.Option(
            help="Write every unique layer of the space instead, one small ONNX each, for a "
            "measured per-layer table (`rlnas tables import`)."
        ),
    ] = False,
    precision: Annotated[
        str | None, typer.Option(help="With --layers: the precision (default: the device's).")
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="With --layers: the batch size.")] = 1,
) -> None:
    """Write networks (or, with --layers, every layer) to time on a device with its vendor's
    tools, with runners for trtexec, benchmark_app and a Python runner (ONNX Runtime or
    TensorRT); `rlnas tables fit --from-dir` (networks) or `rlnas tables import` (layers)
    reads their results."""
    from rlnas.hardware.bundle import write_bundle
    from rlnas.hardware.catalog import default_precision, locate_table
    from rlnas.hardware.devices import list_devices
    from rlnas.hardware.runner_scripts import RUNNERS
    from rlnas.hardware.table import load_table
    from rlnas.model.space import get_space

    if layers:
        from rlnas.hardware.layer_bundle import write_layer_bundle

        with _progress() as progress:
            made = write_layer_bundle(
                device, space, out, precision, resolution, batch, seed, progress=progress
            )
        hours = ", ".join(
            f"{runner} about {duration(seconds)}"
            for runner, seconds in made.expected_seconds().items()
        )
        typer.echo(
            f"wrote {made.layers} layers of {made.space} at {made.resolution} px ({made.device} "
            f"{made.precision}, batch {made.batch}) to {out}; on the device run one of "
            f"{', '.join(RUNNERS)} (expected: {hours}), then `rlnas tables import {out} "
            f"--device {made.device}`"
        )
        return
    target = get_space(space)
    resolution = target.check_resolution(resolution)
    cost, guide = None, "macs"
    if device in list_devices():
        try:
            precision = default_precision(device, target.name, resolution)
            _, path = locate_table(device, precision, target.name, resolution)
            table = load_table(path)
            cost, guide = table.predict_ms, f"{path.stem}_ms"
        except RlnasError:
            pass  # no table of this device and space: MACs guide the spread
    with _progress() as progress:
        manifest = write_bundle(target, resolution, archs, out, seed, cost, guide, progress)
    typer.echo(
        f"wrote {len(manifest)} networks to {out} (spread by {guide}); on the device run one of "
        f"{', '.join(RUNNERS)}, then `rlnas tables fit --from-dir {out} --device {device} "
        f"--space {target.name}`"
    )


@tables_app.command("import")
@reports_errors
def tables_import(
    folder: Annotated[Path, typer.Argument(help="A layer bundle (`rlnas bundle --layers`).")],
    results: Annotated[
        Path | None, typer.Option(help="Its results folder (default: FOLDER/results).")
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="The device (checked against the bundle's).")
    ] = None,
    partial: Annotated[
        bool,
        typer.Option(help="Write the layers that have a timing when some have none (marked)."),
    ] = False,
    out: Annotated[Path | None, typer.Option(help="Output table file.")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Turn a layer bundle's results (trtexec, benchmark_app or the Python runner) into a
    measured per-layer table, readable by every command."""
    from rlnas.files import check_output
    from rlnas.hardware.catalog import user_tables_dir
    from rlnas.hardware.layer_bundle import import_layer_results
    from rlnas.hardware.table import load_table, save_table
    from rlnas.hardware.table_meta import table_name

    meta, frame, problems = import_layer_results(folder, results, device, partial)
    name = table_name(meta.device, meta.precision, meta.space, meta.resolution, meta.batch)
    path = check_output(Path(out) if out else user_tables_dir() / f"{name}.parquet", force)
    for line in problems:
        console.print(f"no timing: {line}", markup=False, highlight=False)
    save_table(meta, frame, path)
    load_table(path)  # read back as every command will
    typer.echo(
        f"wrote {path}: {len(frame)} layers measured by {meta.backend_version} on {meta.host}"
        + (" (partial)" if "partial:" in meta.method else "")
    )
