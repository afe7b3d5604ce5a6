"""The `rlnas` command line. Each command parses its arguments and calls the library."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rlnas import __version__
from rlnas.errors import RlnasError

app = typer.Typer(
    help="Hardware-aware neural architecture search with per-device latency tables.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()


def _fail(exc: RlnasError) -> typer.Exit:
    """Prints a user error as one line and returns the exit to raise."""
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code=2)


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
    from rlnas.baselines import BASELINES
    from rlnas.layers import enumerate_layers
    from rlnas.space import get_space, list_spaces

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
                    _count(space.size),
                    str(resolution or space.resolution),
                    str(len(layers)),
                    space.description,
                )
            console.print(table)
            return
        space = get_space(name)
        layers = enumerate_layers(space, resolution)
    except RlnasError as exc:
        raise _fail(exc) from None
    console.print(f"[bold]{space.name}[/bold] ({space.kind}): {space.description}")
    console.print(
        f"{space.num_decisions} decisions, {_count(space.size)} architectures, "
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
    from rlnas.devices import DEVICES

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


def _count(n: int) -> str:
    return f"{n:,}" if n < 10**9 else f"{n:.3e}"


if __name__ == "__main__":
    app()
