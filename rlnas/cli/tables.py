"""`rlnas tables`: list, show, check, calibrate, estimate and fit lookup tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rlnas.cli.common import Format, FormatOption, console, listing, reports_errors
from rlnas.errors import RlnasError
from rlnas.hardware.catalog import find_tables, resolve_table

tables_app = typer.Typer(help="List, show and check lookup tables.", no_args_is_help=True)


@tables_app.command("list")
@reports_errors
def tables_list(
    directory: Annotated[
        list[Path] | None, typer.Option("--dir", help="Also list tables in this folder.")
    ] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Shipped and user tables with their provenance (a user table hides a shipped one of
    the same name)."""
    from rlnas.hardware.table import read_meta

    rows = []
    seen: set[str] = set()
    for origin, path in find_tables(tuple(directory or ())):
        row: dict[str, object] = {"table": path.stem, "origin": origin, "path": str(path)}
        hidden = origin == "shipped" and path.stem in seen
        seen.add(path.stem)
        try:
            meta = read_meta(path)
        except RlnasError as exc:
            rows.append({**row, "status": f"unreadable: {exc}"})
            continue
        rows.append(
            {
                **row,
                "status": "hidden by the user's table" if hidden else "ok",
                "device": meta.device,
                "backend": meta.backend,
                "precision": meta.precision,
                "space": meta.space,
                "res": meta.resolution,
                "batch": meta.batch,
                "source": meta.source,
                "host": meta.host,
                "created": meta.created,
            }
        )
    columns = dict.fromkeys(k for row in rows for k in row)
    listing([{c: row.get(c, "") for c in columns} for row in rows], fmt, "lookup tables")


@tables_app.command("show")
@reports_errors
def tables_show(
    name: Annotated[str, typer.Argument(help="Table name (see `tables list`) or file.")],
) -> None:
    """A table's metadata and a summary of its rows."""
    from rlnas.hardware.table import load_table

    loaded = load_table(resolve_table(name))
    typer.echo(f"{'file':16} {loaded.path}")
    for key, value in vars(loaded.meta).items():
        if key == "calibration":
            value = loaded.calibration.describe() if loaded.calibration else "none"
        typer.echo(f"{key:16} {value}")
    frame = loaded.frame
    typer.echo(f"{'rows':16} {len(frame)} ({int(frame['unstable'].sum())} flagged unstable)")
    summary = frame.groupby("op")["latency_ms"].describe()[["count", "min", "50%", "max"]]
    typer.echo(summary.to_string(float_format=lambda v: f"{v:.4f}"))


@tables_app.command("check")
def tables_check(
    name: Annotated[str, typer.Argument(help="Table name (see `tables list`) or file.")],
    space: Annotated[str, typer.Option(help="Space name or file it must cover.")] = "mobilenet",
    resolution: Annotated[int | None, typer.Option(help="Resolution it must cover.")] = None,
) -> None:
    """Check that a table is valid and covers a space; exit 1 if it does not."""
    from rlnas.hardware.table import load_table
    from rlnas.model.layers import enumerate_layers
    from rlnas.model.space import get_space

    try:
        loaded = load_table(resolve_table(name))
        target = get_space(space)
        loaded.check_space(target, resolution)
        keys = enumerate_layers(target, resolution)
        missing = loaded.missing(keys)
        if missing:
            raise loaded.missing_error(missing)
    except RlnasError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(f"ok: {loaded.path} covers all {len(keys)} layers of space '{target.name}'")


@tables_app.command("calibrate")
@reports_errors
def tables_calibrate(
    name: Annotated[str, typer.Argument(help="Table name (see `tables list`) or file.")],
    seconds: Annotated[
        float,
        typer.Option(
            min=1, help="Time cap: it stops earlier where the error reaches the measurement's."
        ),
    ] = 60.0,
    archs: Annotated[
        int | None, typer.Option(min=5, help="At most this many networks (default: no cap).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the networks.")] = 2026,
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="A Ray cluster (or auto; default RAY_ADDRESS): time on its node that offers "
            "the table's device as a resource (pip install 'rlnas\\[ray]')."
        ),
    ] = None,
) -> None:
    """Adapt a table to this host: time random networks end to end here until the held-out
    error reaches the measurement's own (or --seconds), and store the table fitted to them,
    with this one as its prior, for this host in the user folder."""
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn

    from rlnas.cli.progress import Bar
    from rlnas.cluster import ray_address as cluster_address
    from rlnas.hardware.endtoend import calibrate_table
    from rlnas.hardware.host import busy_note
    from rlnas.hardware.table import read_meta

    path = resolve_table(name)
    address = cluster_address(ray_address)
    timer = None
    if address:
        from rlnas.hardware.fleet import FleetNetworkTimer

        meta = read_meta(path)
        timer = FleetNetworkTimer(meta.device, meta.precision, meta.threads or 1, None, address)
    columns = (BarColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Bar(*columns, console=console) as bar:
        task = bar.add_task("", total=seconds)
        result, stored = calibrate_table(
            path,
            seconds,
            seed,
            progress=lambda done, total, text: bar.update(task, completed=done, description=text),
            timer=timer,
            max_archs=archs,
        )
    # A fleet's device node timed them: this host's load says nothing of it.
    typer.echo(result.summary() + ("" if timer else busy_note(result.meta)))
    typer.echo(f"stored for this host in {stored}")


@tables_app.command("estimate")
@reports_errors
def tables_estimate(
    device: Annotated[str, typer.Option(help="t4, xavier-nx or systolic.")],
    precision: Annotated[
        str | None, typer.Option(help="fp16 or int8 (default: fp16; systolic: int8).")
    ] = None,
    space: Annotated[str, typer.Option(help="Space name or file.")] = "mobilenet",
    resolution: Annotated[int | None, typer.Option(help="Resolution (default: space's).")] = None,
    batch: Annotated[int, typer.Option(help="Batch (systolic only; others: 1).")] = 1,
    out: Annotated[Path | None, typer.Option(help="Output table file.")] = None,
    published: Annotated[
        Path | None,
        typer.Option(help="Published latencies CSV (default: the Deci white paper's, shipped)."),
    ] = None,
    array: Annotated[str, typer.Option(help="systolic: array size ROWSxCOLS.")] = "128x128",
    clock_mhz: Annotated[float, typer.Option(help="systolic: clock in MHz.")] = 700.0,
    mapping: Annotated[
        str, typer.Option(help="systolic: grouped/depthwise mapping, block-diagonal or per-group.")
    ] = "block-diagonal",
    cost_model: Annotated[
        str,
        typer.Option(
            help="systolic: analytic (U-Boost), or the baselines flops and roofline "
            "(full utilization)."
        ),
    ] = "analytic",
    bandwidth_gbs: Annotated[
        float, typer.Option(help="systolic, roofline cost model: memory bandwidth in GB/s.")
    ] = 30.0,
    force: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Write an estimated table for a device: a roofline model fitted on published latencies
    (t4, xavier-nx), or the analytic systolic-array model (runtime and utilization)."""
    from rlnas.hardware.estimate import estimate_table, systolic_table
    from rlnas.hardware.systolic import SystolicArray, parse_array

    if device == "systolic":
        rows, cols = parse_array(array)
        accelerator = SystolicArray(rows, cols, clock_mhz, mapping, bandwidth_gbs)
        path = systolic_table(
            accelerator, precision or "int8", space, resolution, batch, cost_model, out, force
        )
        typer.echo(f"wrote {path} (source: estimated; {cost_model} cost model, "
                   f"{accelerator.describe()})")  # fmt: skip
        return
    path, calibrated = estimate_table(
        device, precision or "fp16", space, resolution, batch, out, published, force
    )
    typer.echo(calibrated.errors.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    typer.echo(f"wrote {path} (source: estimated; {calibrated.describe()})")


@tables_app.command("fit")
@reports_errors
def tables_fit(
    device: Annotated[str, typer.Option(help="Name of the device that timed them.")],
    timings: Annotated[
        Path | None,
        typer.Argument(help="CSV or Parquet of timed networks: arch, latency_ms."),
    ] = None,
    from_dir: Annotated[
        Path | None,
        typer.Option(help="A bundle folder (`rlnas bundle`) whose runners wrote results/."),
    ] = None,
    space: Annotated[str, typer.Option(help="Space name or file of the networks.")] = "mobilenet",
    precision: Annotated[str, typer.Option(help="Precision they ran at.")] = "fp32",
    resolution: Annotated[int | None, typer.Option(help="Resolution (default: space's).")] = None,
    prior: Annotated[
        list[str] | None,
        typer.Option(
            help="Tables (names or files) of the same space and resolution to pull toward, "
            "repeatable; 'auto' (default): every table of the space rlnas knows; 'macs': none, "
            "the layers' work alone."
        ),
    ] = None,
    duplicates: Annotated[
        str,
        typer.Option(help="A network timed twice differently: 'refuse', or take the 'median'."),
    ] = "refuse",
    host: Annotated[str, typer.Option(help="What timed them, in words.")] = "",
    out: Annotated[Path | None, typer.Option(help="Output table file.")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Fit a table (source: fitted) to whole-network timings, for devices that cannot be
    profiled layer by layer."""
    import re

    from rich.progress import BarColumn, MofNCompleteColumn, TimeRemainingColumn

    from rlnas.cli.progress import Bar
    from rlnas.files import check_output
    from rlnas.hardware.bundle import read_results
    from rlnas.hardware.catalog import user_tables_dir
    from rlnas.hardware.features import prior_tables
    from rlnas.hardware.fit import (
        decode_timings,
        fit_latencies,
        read_timings,
        write_fitted_table,
    )
    from rlnas.hardware.table_meta import table_name
    from rlnas.model.space import get_space

    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", device):
        raise RlnasError(
            f"--device '{device}' must be lower-case letters, digits, '.', '_' or '-' "
            "(it names the table file), e.g. jetson-orin"
        )
    target = get_space(space)
    resolution = target.check_resolution(resolution)
    name = table_name(device, precision, target.name, resolution, 1)
    path = check_output(Path(out) if out else user_tables_dir() / f"{name}.parquet", force)
    if (timings is None) == (from_dir is None):
        raise RlnasError(
            "give the timings either as a file (TIMINGS) or as a bundle folder (--from-dir), "
            "not both or neither"
        )
    if from_dir is not None:
        found, problems = read_results(from_dir)
        for line in problems:
            console.print(f"skipped {line}", markup=False, highlight=False)
        archs, latency = decode_timings(found, target, f"{from_dir}/results", duplicates)
        source = f"{', '.join(sorted(set(found['tool'])))} in {from_dir.name}"
        typer.echo(f"{len(found)} timed networks in {from_dir}/results ({source})")
    else:
        assert timings is not None
        archs, latency = read_timings(timings, target, duplicates)
        source = timings.name
    priors = prior_tables(prior or ["auto"], target, resolution, exclude=[path])
    with Bar(BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("", total=1)
        result = fit_latencies(
            archs,
            latency,
            resolution,
            priors,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    what = host or f"{device}, timed end to end ({source})"
    write_fitted_table(result, target, resolution, device, precision, what, path)
    typer.echo(f"wrote {path} (source: fitted; {result.describe()})")
    typer.echo(f"use it with `rlnas search --space {target.name} --device {device} --table {path}`")
