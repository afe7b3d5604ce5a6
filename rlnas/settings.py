"""Config dataclasses as data: to and from JSON, and as flat fields for the command line.

Configs are frozen dataclasses with a Google-style `Attributes:` docstring.
Nested configs (e.g. a search's PPO settings) flatten to `prefix_field`, which
is how the CLI derives one option per field, with the field's default and its
docstring line as help (`rlnas.cli.options`).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Any

from rlnas.errors import RlnasError


@dataclass(frozen=True)
class FlatField:
    """One leaf field of a (possibly nested) config.

    Attributes:
        name: Flat name, `prefix_field` for nested configs.
        path: Field names from the outer config down to this one.
        annotation: The field's type.
        default: Its default, or `dataclasses.MISSING` if it has none.
        help: Its docstring line.
    """

    name: str
    path: tuple[str, ...]
    annotation: Any
    default: Any
    help: str


def is_config(annotation: Any) -> bool:
    return dataclasses.is_dataclass(annotation) and isinstance(annotation, type)


def docstring_attributes(cls: type) -> dict[str, str]:
    """Field name -> its description in the class's `Attributes:` section (joined lines)."""
    doc = inspect.getdoc(cls) or ""
    section = doc.partition("Attributes:")[2]
    found: dict[str, str] = {}
    current = None
    for line in section.splitlines():
        match = re.match(r"^    (\w+): (.*)$", line)
        if match:
            current = match.group(1)
            found[current] = match.group(2).strip()
        elif current and line.startswith("        "):
            found[current] += " " + line.strip()
        elif line.strip() and not line.startswith(" "):
            break
    return found


def flat_fields(cls: type, prefix: tuple[str, ...] = ()) -> list[FlatField]:
    """Every leaf field of `cls`, nested configs flattened."""
    hints = typing.get_type_hints(cls)
    helps = docstring_attributes(cls)
    result = []
    for f in dataclasses.fields(cls):
        annotation = hints[f.name]
        path = (*prefix, f.name)
        if is_config(annotation):
            result += flat_fields(annotation, path)
            continue
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            default = MISSING
        result.append(FlatField("_".join(path), path, annotation, default, helps.get(f.name, "")))
    return result


def from_flat(cls: type, values: dict[str, Any], prefix: tuple[str, ...] = ()) -> Any:
    """Builds `cls` from flat values (missing ones take their defaults)."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        path = (*prefix, f.name)
        annotation = hints[f.name]
        if is_config(annotation):
            kwargs[f.name] = from_flat(annotation, values, path)
        elif "_".join(path) in values:
            kwargs[f.name] = _coerce(values["_".join(path)], annotation)
    return cls(**kwargs)


def to_json(config: Any) -> dict[str, Any]:
    """A config as JSON-ready data (paths as strings, tuples as lists, nesting kept)."""
    result: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            result[f.name] = to_json(value)
        elif isinstance(value, Path):
            result[f.name] = str(value)
        elif isinstance(value, tuple):
            result[f.name] = list(value)
        else:
            result[f.name] = value
    return result


def from_json(cls: type, data: Any, source: str) -> Any:
    """Reads what `to_json` wrote; RlnasError naming `source` if it does not fit `cls`."""
    if not isinstance(data, dict):
        raise RlnasError(f"{source}: expected an object of {cls.__name__} settings, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RlnasError(f"{source}: unknown {cls.__name__} setting(s) {', '.join(unknown)}")
    kwargs = {}
    for name, value in data.items():
        annotation = hints[name]
        if is_config(annotation):
            kwargs[name] = from_json(annotation, value, source)
        else:
            kwargs[name] = _coerce(value, annotation)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise RlnasError(f"{source}: {cls.__name__} settings are incomplete ({exc})") from None


def _coerce(value: Any, annotation: Any) -> Any:
    """Paths from strings, tuples from lists, as the annotation says."""
    if value is None:
        return None
    args = typing.get_args(annotation)
    kinds = set(args) if args else {annotation}
    if Path in kinds and isinstance(value, str):
        return Path(value)
    if (typing.get_origin(annotation) is tuple or tuple in kinds) and isinstance(value, list):
        return tuple(value)
    return value
