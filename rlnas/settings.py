"""Config dataclasses as data: to and from JSON, and as flat fields for the command line.

Configs are frozen dataclasses with a Google-style `Attributes:` docstring.
Nested configs (e.g. a search's PPO settings) flatten to `prefix_field`, which
is how the CLI derives one option per field, with the field's default and its
docstring line as help (`rlnas.cli.options`). A nested config whose class sets
`INLINE = True` (a group, such as a search's source settings) adds no prefix: its
fields keep their own names on the command line and in JSON, and only Python sees
the grouping. Flat names must be unique within a config.
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


def is_inline(annotation: Any) -> bool:
    """Whether a nested config is a group whose fields keep their own names."""
    return is_config(annotation) and bool(getattr(annotation, "INLINE", False))


def _names(annotation: Any, names: tuple[str, ...], name: str) -> tuple[str, ...]:
    """The flat-name prefix of the fields of a nested config `name` of type `annotation`."""
    return names if is_inline(annotation) else (*names, name)


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


def flat_fields(
    cls: type, prefix: tuple[str, ...] = (), names: tuple[str, ...] = ()
) -> list[FlatField]:
    """Every leaf field of `cls`, nested configs flattened (groups without a prefix)."""
    hints = typing.get_type_hints(cls)
    helps = docstring_attributes(cls)
    result = []
    for f in dataclasses.fields(cls):
        annotation = hints[f.name]
        path = (*prefix, f.name)
        if is_config(annotation):
            result += flat_fields(annotation, path, _names(annotation, names, f.name))
            continue
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            default = MISSING
        name = "_".join((*names, f.name))
        result.append(FlatField(name, path, annotation, default, helps.get(f.name, "")))
    if not prefix:
        seen = [f.name for f in result]
        twice = sorted({n for n in seen if seen.count(n) > 1})
        if twice:
            raise TypeError(f"{cls.__name__}: flat field names used twice: {', '.join(twice)}")
    return result


def from_flat(cls: type, values: dict[str, Any], names: tuple[str, ...] = ()) -> Any:
    """Builds `cls` from flat values (missing ones take their defaults); a nested config may
    also be given whole, under its flat name (`ppo=PPOSettings(...)`)."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        name = "_".join((*names, f.name))
        annotation = hints[f.name]
        given_whole = name in values and not is_inline(annotation)
        if is_config(annotation) and not given_whole:
            kwargs[f.name] = from_flat(annotation, values, _names(annotation, names, f.name))
        elif name in values:
            kwargs[f.name] = _coerce(values[name], annotation)
    return cls(**kwargs)


def to_json(config: Any) -> dict[str, Any]:
    """A config as JSON-ready data (paths as strings, tuples as lists, nesting kept)."""
    result: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            if is_inline(type(value)):
                result.update(to_json(value))
            else:
                result[f.name] = to_json(value)
        elif isinstance(value, Path):
            result[f.name] = str(value)
        elif isinstance(value, tuple):
            result[f.name] = list(value)
        else:
            result[f.name] = value
    return result


def json_keys(cls: type) -> set[str]:
    """The keys `to_json` writes for `cls` at its own level (groups' fields included)."""
    hints = typing.get_type_hints(cls)
    keys = set()
    for f in dataclasses.fields(cls):
        keys |= json_keys(hints[f.name]) if is_inline(hints[f.name]) else {f.name}
    return keys


def from_json(cls: type, data: Any, source: str) -> Any:
    """Reads what `to_json` wrote; RlnasError naming `source` if it does not fit `cls`."""
    if not isinstance(data, dict):
        raise RlnasError(f"{source}: expected an object of {cls.__name__} settings, got {data!r}")
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - json_keys(cls))
    if unknown:
        raise RlnasError(f"{source}: unknown {cls.__name__} setting(s) {', '.join(unknown)}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        annotation = hints[f.name]
        if is_inline(annotation):
            own = json_keys(annotation)
            group = {k: v for k, v in data.items() if k in own}
            kwargs[f.name] = from_json(annotation, group, source)
        elif f.name not in data:
            continue
        elif is_config(annotation):
            kwargs[f.name] = from_json(annotation, data[f.name], source)
        else:
            kwargs[f.name] = _coerce(data[f.name], annotation)
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
