"""The `rlnas` command line. Each command parses its arguments and calls the library."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from rlnas import __version__
from rlnas.cli import runs
from rlnas.cli.common import console, count, fail
from rlnas.cli.tables import tables_app
from rlnas.errors import RlnasError

app = typer.Typer(
    help="Hardware-aware neural architecture search with per-device latency tables.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(tables_app, name="tables")
runs.register(app)


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
def spaces(
    name: Annotated[
        str | None, typer.Argument(help="A space name or a space file (.toml): show its decisions.")
    ] = None,
    resolution: Annotated[
        int | None,
        typer.Option(help="Input resolution for counting layers (default: each space's own)."),
    ] = None,
) -> None:
    """List the search spaces, or show one space's decisions."""
    from rlnas.model.baselines import BASELINES
    from rlnas.model.layers import enumerate_layers
    from rlnas.model.space import get_space, list_spaces

    try:
        if name is None:
            table = Table(title="search spaces")
            for column in (
                "space",
                "kind",
                "decisions",
                "architectures",
                "resolution",
                "unique layers",
                "description",
            ):
                table.add_column(column)
            for space_name in list_spaces():
                space = get_space(space_name)
                layers = enumerate_layers(space, resolution)
                table.add_row(
                    space.name,
                    space.kind,
                    str(space.num_decisions),
                    count(space.size),
                    str(resolution or space.resolution),
                    str(len(layers)),
                    space.description,
                )
            console.print(table)
            return
        space = get_space(name)
        layers = enumerate_layers(space, resolution)
    except RlnasError as exc:
        raise fail(exc) from None
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
def devices() -> None:
    """List target devices, their backends and precisions, and what each needs here."""
    from rlnas.hardware.devices import DEVICES

    table = Table(title="devices")
    for column in ("device", "backend", "precisions", "needs", "usable here"):
        table.add_column(column)
    for device in DEVICES.values():
        missing = device.missing()
        table.add_row(
            device.name,
            device.backend,
            ", ".join(device.precisions),
            device.hardware,
            "yes" if missing is None else f"no: {missing}",
        )
    console.print(table)


@app.command()
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
    space: Annotated[str, typer.Option(help="Space of the architecture strings.")] = "mobilenet",
    resolution: Annotated[int | None, typer.Option(help="Resolution (default: space's).")] = None,
    table: Annotated[
        str | None, typer.Option(help="Table name or file (default: by device and precision).")
    ] = None,
) -> None:
    """Predict architectures' latency on a device from its lookup table."""
    from rlnas.hardware.catalog import table_for
    from rlnas.model.arch import Architecture
    from rlnas.model.baselines import get_baseline
    from rlnas.model.network import build_network, count_params

    try:
        targets = [(text, Architecture.decode(text, space)) for text in arch or []]
        targets += [(name, get_baseline(name).architecture()) for name in baseline or []]
        if not targets:
            raise RlnasError("give architecture strings or --baseline NAME (e.g. mobilenetv2)")
        rows = []
        for label, target in targets:
            res = resolution or target.space.resolution
            loaded = table_for(device, target.space.name, res, precision, table)
            latency = loaded.predict_ms(target)
            params = count_params(build_network(target, res))
            stem = loaded.path.stem if loaded.path else loaded.meta.name
            rows.append((label, target.space.name, stem, latency, params))
    except RlnasError as exc:
        raise fail(exc) from None
    out = Table(title=f"predicted latency on {device}")
    for column in ("architecture", "space", "table", "predicted ms", "params"):
        out.add_column(column)
    for label, space_name, stem, latency, params in rows:
        shown = label if len(label) <= 40 else label[:37] + "..."
        out.add_row(shown, space_name, stem, f"{latency:.3f}", f"{params:,}")
    console.print(out)


if __name__ == "__main__":
    app()
