"""What every command shares: the console, one-line errors, and number formats."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console

from rlnas.errors import RlnasError

console = Console()


def fail(exc: RlnasError, code: int = 2) -> typer.Exit:
    """Prints a user error as one line and returns the exit to raise."""
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code=code)


def reports_errors(command: Callable[..., None]) -> Callable[..., None]:
    """Turns an RlnasError raised by the command into one line on stderr and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except RlnasError as exc:
            raise fail(exc) from None

    return wrapper


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def count(n: int) -> str:
    return f"{n:,}" if n < 10**9 else f"{n:.3e}"
