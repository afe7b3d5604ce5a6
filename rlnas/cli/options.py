"""Command-line options derived from the config dataclasses: one option per field.

Each field of a config (nested configs flattened to `--prefix-field`) becomes a
typer option with the field's default and its docstring line as help, so the
CLI cannot drift from the library's defaults and every setting is reachable.
A command built by `config_command` receives the config itself.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Sequence
from dataclasses import MISSING
from typing import Annotated, Any

import typer

from rlnas.settings import FlatField, flat_fields, from_flat


def option_name(field: FlatField) -> str:
    return "--" + field.name.replace("_", "-")


def _parameter(field: FlatField) -> inspect.Parameter:
    annotation = field.annotation
    default = field.default
    if typing.get_origin(annotation) is tuple:
        # Typer takes repeated options as a list.
        annotation = list[typing.get_args(annotation)[0]]  # type: ignore[misc]
        default = list(default) if default is not MISSING else MISSING
    if annotation is bool:
        option = typer.Option(
            f"{option_name(field)}/--no-{option_name(field)[2:]}", help=field.help
        )
    else:
        option = typer.Option(option_name(field), help=field.help)
    return inspect.Parameter(
        field.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=inspect.Parameter.empty if default is MISSING else default,
        annotation=Annotated[annotation, option],
    )


def config_command(
    config_cls: type,
    run: Callable[..., None],
    exclude: Sequence[str] = (),
    fixed: dict[str, Any] | None = None,
    extra: Sequence[inspect.Parameter] = (),
    doc: str = "",
    parsed: dict[str, tuple[inspect.Parameter, Callable[[Any], dict[str, Any]]]] | None = None,
) -> Callable[..., None]:
    """A typer command whose options are the fields of `config_cls`.

    Args:
        config_cls: The config dataclass.
        run: Called as `run(config, **extra_values)`.
        exclude: Flat field names not offered (they take `fixed` values or defaults).
        fixed: Flat field values set by the command itself.
        extra: Further parameters of the command (arguments, output paths, flags).
        doc: The command's help.
        parsed: Options that replace a field's own: field name -> (the option, a function
            of its value giving field values), e.g. one option setting two fields.
    """
    parsed = parsed or {}
    fields = [f for f in flat_fields(config_cls) if f.name not in exclude]
    names = {f.name for f in fields}
    # Required options first: Python wants parameters without defaults first.
    parameters = sorted(
        [parsed[f.name][0] if f.name in parsed else _parameter(f) for f in fields],
        key=lambda p: p.default is not inspect.Parameter.empty,
    )

    def command(**values: Any) -> None:
        settings = {k: v for k, v in values.items() if k in names and k not in parsed}
        for name, (_, parse) in parsed.items():
            settings.update(parse(values[name]))
        others = {k: v for k, v in values.items() if k not in names}
        run(from_flat(config_cls, {**settings, **(fixed or {})}), **others)

    command.__signature__ = inspect.Signature([*extra, *parameters])  # type: ignore[attr-defined]
    command.__doc__ = doc
    return command


def argument(
    name: str, annotation: Any, help: str, default: Any = inspect.Parameter.empty
) -> inspect.Parameter:
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[annotation, typer.Argument(help=help)],
    )


def option(name: str, annotation: Any, help: str, default: Any, *flags: str) -> inspect.Parameter:
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[annotation, typer.Option(*flags, help=help)],
    )
