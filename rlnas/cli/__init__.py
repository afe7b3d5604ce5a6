"""The `rlnas` command line. Each command parses its arguments and calls the library."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from rlnas import __version__
from rlnas.cli import predictor, runs, train
from rlnas.cli.bundle import bundle
from rlnas.cli.common import (
    Format,
    FormatOption,
    OneLineErrors,
    console,
    count,
    listing,
    reports_errors,
)
from rlnas.cli.tables import tables_app
from rlnas.errors import RlnasError

app = typer.Typer(
    help="Hardware-aware neural architecture search with per-device latency tables.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=OneLineErrors,
)
app.add_typer(tables_app, name="tables")
app.command("bundle")(bundle)
runs.register(app)
train.register(app)
predictor.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rlnas {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Hardware-aware neural architecture search with per-device latency tables."""


@app.command()
@reports_errors
def spaces(
    name: Annotated[
        str | None, typer.Argument(help="A space name or a space file (.toml): show its decisions.")
    ] = None,
    resolution: Annotated[
        int | None,
        typer.Option(help="Input resolution for counting layers (default: each space's own)."),
    ] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """List the search spaces, or show one space's decisions."""
    from rlnas.model.baselines import BASELINES
    from rlnas.model.layers import enumerate_layers
    from rlnas.model.space import get_space, list_spaces

    if name is None:
        rows = []
        for space_name in list_spaces():
            space = get_space(space_name)
            space.check_resolution(resolution)
            rows.append(
                {
                    "space": space.name,
                    "kind": space.kind,
                    "decisions": space.num_decisions,
                    "architectures": count(space.size) if fmt == Format.table else space.size,
                    "resolution": resolution or space.resolution,
                    "unique layers": len(enumerate_layers(space, resolution)),
                    "description": space.description,
                }
            )
        listing(rows, fmt, "search spaces")
        return
    space = get_space(name)
    space.check_resolution(resolution)
    layers = enumerate_layers(space, resolution)
    if fmt != Format.table:
        listing(
            [
                {"index": i, "decision": d.name, "choices": " ".join(d.tokens)}
                for i, d in enumerate(space.decisions)
            ],
            fmt,
        )
        return
    console.print(f"[bold]{space.name}[/bold] ({space.kind}): {space.description}")
    console.print(
        f"{space.num_decisions} decisions, {count(space.size)} architectures, "
        f"{len(layers)} unique layers at {resolution or space.resolution}px, "
        f"digest {space.digest}"
    )
    table = Table()
    table.add_column("#")
    table.add_column("decision")
    table.add_column("choices")
    for i, decision in enumerate(space.decisions):
        table.add_row(str(i), decision.name, " ".join(decision.tokens))
    console.print(table)
    members = [b for b in BASELINES.values() if b.space == space.name]
    for baseline in members:
        console.print(f"baseline {baseline.name}: {baseline.arch}")


@app.command()
@reports_errors
def devices(fmt: FormatOption = Format.table) -> None:
    """List target devices, their backends and precisions, and what each needs here."""
    from rlnas.hardware.devices import DEVICES

    rows = []
    for device in DEVICES.values():
        missing = device.missing()
        rows.append(
            {
                "device": device.name,
                "backend": device.backend,
                "precisions": ", ".join(device.precisions),
                "needs": device.hardware,
                "usable here": "yes" if missing is None else f"no: {missing}",
            }
        )
    listing(rows, fmt, "devices")


def _space_of(space: str | None, table: str | None) -> str:
    """The space of `predict`'s architecture strings: --space, else the table file's own."""
    from rlnas.hardware.table import read_meta

    if table is None or not Path(table).is_file():
        return space or DEFAULT_PREDICT_SPACE
    held = read_meta(Path(table)).space
    if space is not None and space != held:
        raise RlnasError(
            f"table {table} is for space '{held}', not '{space}'; drop --space (the table's "
            "is used) or give a table of that space"
        )
    return held


DEFAULT_PREDICT_SPACE = "mobilenet"


@app.command()
@reports_errors
def predict(
    arch: Annotated[
        list[str] | None, typer.Argument(help="Architecture strings of the space.")
    ] = None,
    baseline: Annotated[
        list[str] | None, typer.Option(help="A baseline by name (repeatable), e.g. mobilenetv2.")
    ] = None,
    device: Annotated[str, typer.Option(help="Target device.")] = "cpu",
    precision: Annotated[
        str | None,
        typer.Option(help="Precision of the table (default: the device's first with a table)."),
    ] = None,
    space: Annotated[
        str | None,
        typer.Option(help="Space of the architecture strings (default: --table's, or mobilenet)."),
    ] = None,
    resolution: Annotated[int | None, typer.Option(help="Resolution (default: space's).")] = None,
    table: Annotated[
        str | None, typer.Option(help="Table name or file (default: by device and precision).")
    ] = None,
    calibrate: Annotated[
        bool,
        typer.Option(
            help="Adapt a table measured on another host to this one first (once per host, "
            "at most 60 s)."
        ),
    ] = True,
    fmt: FormatOption = Format.table,
) -> None:
    """Predict architectures' latency on a device from its lookup table, as on this host."""
    from rlnas.hardware.catalog import table_for
    from rlnas.hardware.endtoend import table_for_host
    from rlnas.hardware.utilization import arch_utilization
    from rlnas.model.arch import Architecture
    from rlnas.model.baselines import get_baseline
    from rlnas.model.network import build_network, count_params

    space = _space_of(space, table)
    targets = [(text, Architecture.decode(text, space)) for text in arch or []]
    targets += [(name, get_baseline(name).architecture()) for name in baseline or []]
    if not targets:
        raise RlnasError("give architecture strings or --baseline NAME (e.g. mobilenetv2)")
    rows = []
    for label, target in targets:
        res = target.space.check_resolution(resolution)
        loaded = table_for(device, target.space.name, res, precision, table)
        assert loaded.path is not None
        host = table_for_host(loaded.path, calibrate)
        latency = host.table.predict_ms(target)
        params = count_params(build_network(target, res))
        rows.append(
            {
                "architecture": label,
                "space": target.space.name,
                "table": str(loaded.path) if loaded.path else loaded.meta.name,
                "predicted_ms": round(latency, 3) if fmt == Format.table else latency,
                "params": f"{params:,}" if fmt == Format.table else params,
                "calibration": host.calibration,
            }
        )
        utilization = arch_utilization(host.table, target)
        if utilization is not None:
            rows[-1]["utilization"] = f"{utilization:.1%}" if fmt == Format.table else utilization
    listing(rows, fmt, f"predicted latency on {device}")


if __name__ == "__main__":
    app()
