"""What every command shares: the console, one-line errors, and number formats."""

from __future__ import annotations

import csv
import enum
import functools
import json
import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from typer._click.exceptions import ClickException
from typer.core import TyperGroup
from typer.exceptions import Abort

from rlnas.errors import RlnasError

console = Console()


class OneLineErrors(TyperGroup):
    """The command group: a mistyped option or value is one line on stderr, like every error.

    Click prints a usage box for these; rlnas prints `error: <what is wrong>; see
    `rlnas CMD --help``, exit code 2. typer is pinned, so its vendored click is stable.
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        def run() -> Any:
            return super(OneLineErrors, self).main(
                args, prog_name, complete_var, False, windows_expand_args, **extra
            )

        if not standalone_mode:
            return run()
        try:
            code = run()
        except ClickException as exc:
            context = getattr(exc, "ctx", None)
            command = context.command_path if context is not None else "rlnas"
            typer.echo(f"error: {exc.format_message()}; see `{command} --help`", err=True)
            sys.exit(exc.exit_code)
        except Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def fail(exc: RlnasError, code: int = 2) -> typer.Exit:
    """Prints a user error as one line and returns the exit to raise."""
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code=code)


def reports_errors(command: Callable[..., None]) -> Callable[..., None]:
    """Turns an RlnasError raised by the command into one line on stderr and exit code 2.

    An operating-system error (a file that cannot be written or read: permissions,
    a full disk, a path under a file) is one line too, naming the path.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except RlnasError as exc:
            raise fail(exc) from None
        except OSError as exc:
            raise fail(RlnasError(os_message(exc))) from None

    return wrapper


def os_message(exc: OSError) -> str:
    """One line for a file the system refused: the path, the reason, the fix."""
    where = exc.filename if exc.filename is not None else "a file"
    reason = exc.strerror or str(exc)
    return f"cannot use {where}: {reason}; choose another path or fix its permissions"


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def count(n: int) -> str:
    return f"{n:,}" if n < 10**9 else f"{n:.3e}"


class Format(str, enum.Enum):
    """How a listing is printed: a table for people, CSV or JSON for programs."""

    table = "table"
    csv = "csv"
    json = "json"


def listing(rows: Sequence[dict[str, Any]], fmt: Format, title: str | None = None) -> None:
    """Prints rows (all with the same keys) as a table, CSV or JSON; never cuts a value.

    A table printed to a terminal wraps long values; printed to a pipe or a file it
    is as wide as its longest row, so `| grep` finds every name whole.
    """
    columns = list(rows[0]) if rows else []
    if fmt == Format.json:
        typer.echo(json.dumps(list(rows), indent=2, default=str))
        return
    if fmt == Format.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(str(row[c]) for c in columns))
    if console.is_terminal:
        console.print(table)
        return
    width = Measurement.get(console, console.options.update_width(10**5), table).maximum
    Console(width=max(width, 80), file=sys.stdout).print(table)


FormatOption = Annotated[Format, typer.Option("--format", help="table, csv or json.")]
