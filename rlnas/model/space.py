"""Search spaces: loaded from data files, validated, and turned into decisions.

A space is a sequence of decisions, each a tuple of string tokens. An
architecture is one choice per decision (see `rlnas.model.arch`); its canonical
string is built from the chosen tokens. Each kind of space is a module that
owns its file format, its canonical strings, its layers, its per-decision
cost terms and its torch construction; `SPACE_KINDS` maps a file's `kind` to it:

- `macro` (`rlnas.model.macro`): a stem, stages of fixed stride with a width
  choice and block slots, a head (MnasNet / FBNet / ProxylessNAS style).
- `cell` (`rlnas.model.cell`): one DAG cell repeated through a fixed skeleton
  (NAS-Bench-201).

Built-in spaces are the `*.toml` files in `rlnas/spaces/`; a user copies one,
edits it, and passes its path wherever a space name is accepted.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import importlib
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, as a package
    import tomli as tomllib

from rlnas.errors import ArchitectureError, LayerError, SpaceError, did_you_mean, unknown

if TYPE_CHECKING:
    from torch import nn

    from rlnas.model.costs import CostTerms, LayerCost
    from rlnas.model.ops import LayerKey

DEFAULT_SPACE = "mobilenet"
SPACE_KINDS: dict[str, str] = {
    "macro": "rlnas.model.macro:MacroSpace",
    "cell": "rlnas.model.cell:CellSpace",
}
# Keys every space file has; each kind adds its own (`Space.KEYS`).
COMMON_KEYS = {"name", "kind", "description", "resolution", "num_classes"}
SiblingReader = Callable[[str], str]


@dataclass(frozen=True)
class Decision:
    """One step of building an architecture.

    Attributes:
        name: Where the decision sits, e.g. `stage2.slot3` or `edge 0->1`.
        tokens: The allowed choices, as they appear in the canonical string.
    """

    name: str
    tokens: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Space:
    """Fields and behaviour shared by every kind of space; a kind overrides the rest.

    Spaces compare and hash by `digest`, a hash of their file's content, so two
    loads of one file are the same space and an edited copy is a different one.

    Attributes:
        name: The space's name (for built-ins, also its file name).
        kind: `macro` or `cell`.
        description: One line for listings.
        resolution: Default input resolution in pixels (square).
        num_classes: Classifier outputs.
        digest: First 16 hex digits of the SHA-256 of the space's content.
        decisions: The decisions, in the order an architecture takes them.
    """

    KEYS: ClassVar[set[str]] = set()
    # Input sizes must be a multiple of this (a cell space halves the size twice).
    RESOLUTION_MULTIPLE: ClassVar[int] = 1
    # ImageNet-style spaces are compared with the published baselines.
    COMPARES_WITH_BASELINES: ClassVar[bool] = False

    name: str
    kind: str
    description: str
    resolution: int
    num_classes: int
    digest: str
    decisions: tuple[Decision, ...] = field(repr=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    @property
    def num_decisions(self) -> int:
        return len(self.decisions)

    @functools.cached_property
    def choice_counts(self) -> tuple[int, ...]:
        return tuple(len(d.tokens) for d in self.decisions)

    @property
    def size(self) -> int:
        """Number of distinct choice vectors (architectures) in the space."""
        return math.prod(self.choice_counts)

    def check_choices(self, choices: tuple[int, ...]) -> None:
        """Raises ArchitectureError unless `choices` is a member of this space."""
        if len(choices) != self.num_decisions:
            raise ArchitectureError(
                f"space '{self.name}' takes {self.num_decisions} choices, got {len(choices)}"
            )
        for position, (choice, count) in enumerate(zip(choices, self.choice_counts, strict=True)):
            if not 0 <= choice < count:
                name = self.decisions[position].name
                raise ArchitectureError(
                    f"choice {choice} at position {position} ({name}) of space '{self.name}' "
                    f"is out of range; allowed: 0..{count - 1}"
                )

    def token_index(self, position: int, token: str) -> int:
        """The choice index of `token` at decision `position`; raises on unknown tokens."""
        decision = self.decisions[position]
        try:
            return decision.tokens.index(token)
        except ValueError:
            allowed = ", ".join(decision.tokens)
            raise ArchitectureError(
                f"unknown token '{token}' at position {position} ({decision.name}) of space "
                f"'{self.name}'; allowed: {allowed}.{did_you_mean(token, decision.tokens)}"
            ) from None

    def index(self, choices: tuple[int, ...]) -> int:
        """Position of `choices` in the space's enumeration order (last decision fastest)."""
        self.check_choices(choices)
        result = 0
        for choice, count in zip(choices, self.choice_counts, strict=True):
            result = result * count + choice
        return result

    def from_index(self, index: int) -> tuple[int, ...]:
        """Inverse of `index`."""
        if not 0 <= index < self.size:
            raise ArchitectureError(
                f"index {index} is outside space '{self.name}'; allowed: 0..{self.size - 1}"
            )
        choices = []
        for count in reversed(self.choice_counts):
            index, choice = divmod(index, count)
            choices.append(choice)
        return tuple(reversed(choices))

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        """A uniformly random choice per decision."""
        return tuple(int(rng.integers(count)) for count in self.choice_counts)

    # Defined by each kind of space.

    @classmethod
    def parse(
        cls, reader: SpaceReader, read_sibling: SiblingReader
    ) -> tuple[dict[str, Any], tuple[Decision, ...], dict[str, Any]]:
        """The kind's own fields, its decisions, and content to hash beyond the file's text."""
        raise NotImplementedError

    def encode(self, choices: tuple[int, ...]) -> str:
        raise NotImplementedError

    def decode(self, text: str) -> tuple[int, ...]:
        raise NotImplementedError

    def layers(self, choices: tuple[int, ...], resolution: int) -> list[LayerKey]:
        """An architecture's layers in execution order (repeats kept)."""
        raise NotImplementedError

    def unique_layers(self, resolution: int) -> set[LayerKey]:
        """Every layer any architecture can produce, without enumerating architectures."""
        raise NotImplementedError

    def cost_terms(self, resolution: int, cost: LayerCost, fixed: float) -> CostTerms:
        """Per-decision increments of a per-layer cost (see `rlnas.model.costs`)."""
        raise NotImplementedError

    def build(self, choices: tuple[int, ...], resolution: int) -> nn.Module:
        """An architecture as a torch module taking NCHW float input."""
        raise NotImplementedError

    def check_resolution(self, resolution: int | None) -> int:
        """`resolution` (default the space's) if this space can use it; else LayerError."""
        resolution = self.resolution if resolution is None else resolution
        multiple = self.RESOLUTION_MULTIPLE
        if resolution < 8 or resolution % multiple:
            raise LayerError(
                f"resolution {resolution} is not usable for space '{self.name}'; use a value >= 8"
                + (f" divisible by {multiple}" if multiple > 1 else "")
                + f" (default {self.resolution})"
            )
        return resolution


# ---------------------------------------------------------------------------
# Loading


def list_spaces(pattern: str = "*") -> list[str]:
    """Names of the built-in spaces matching a shell-style wildcard."""
    files = resources.files("rlnas.spaces").iterdir()
    names = sorted(f.name.removesuffix(".toml") for f in files if f.name.endswith(".toml"))
    return [n for n in names if fnmatch.fnmatch(n, pattern)]


def get_space(name_or_path: str | Path | Space = DEFAULT_SPACE) -> Space:
    """A built-in space by name, or a space file by path.

    Raises:
        SpaceError: The name is unknown, the file is missing, or it is invalid.
    """
    if isinstance(name_or_path, Space):
        return name_or_path
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text or Path(text).is_file():
        path = Path(text)
        if not path.is_file():
            raise SpaceError(
                f"space file '{path}' does not exist; built-in spaces: {', '.join(list_spaces())}"
            )
        return _load_file(path.resolve())
    if text not in list_spaces():
        raise SpaceError(
            f"space '{text}' doesn't exist; built-in spaces: {', '.join(list_spaces())}."
            f"{did_you_mean(text, list_spaces())} A space file is given by its path (*.toml)."
        )
    return _load_builtin(text)


@functools.cache
def _load_builtin(name: str) -> Space:
    resource = resources.files("rlnas.spaces").joinpath(f"{name}.toml")
    return _parse(
        resource.read_text(),
        source=f"built-in space '{name}'",
        read_sibling=lambda f: resources.files("rlnas.spaces").joinpath(f).read_text(),
    )


@functools.cache
def _load_file(path: Path) -> Space:
    return _parse(
        path.read_text(),
        source=f"space file '{path}'",
        read_sibling=lambda f: (path.parent / f).read_text(),
    )


def space_class(kind: str) -> type[Space]:
    """The class of a kind of space (imported on first use)."""
    if kind not in SPACE_KINDS:
        raise SpaceError(unknown("space kind", kind, SPACE_KINDS))
    module_name, class_name = SPACE_KINDS[kind].split(":")
    cls: type[Space] = getattr(importlib.import_module(module_name), class_name)
    return cls


def _parse(text: str, source: str, read_sibling: SiblingReader) -> Space:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpaceError(f"{source} is not valid TOML: {exc}") from None
    reader = SpaceReader(data, source)
    kind = reader.get("kind", str, choices=tuple(SPACE_KINDS))
    cls = space_class(kind)
    reader.only(COMMON_KEYS | cls.KEYS)
    extra, decisions, hashed = cls.parse(reader, read_sibling)
    content = {**data, **hashed}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]
    return cls(
        name=reader.get("name", str),
        kind=kind,
        description=reader.get("description", str),
        resolution=reader.get("resolution", int, minimum=8),
        num_classes=reader.get("num_classes", int, minimum=1),
        digest=digest,
        decisions=decisions,
        **extra,
    )


class SpaceReader:
    """Typed, strict access to one TOML table, with errors naming the file and key."""

    def __init__(self, data: Any, source: str):
        if not isinstance(data, dict):
            raise SpaceError(f"{source} must be a table, got {data!r}")
        self.data = data
        self.source = source

    def only(self, allowed: set[str]) -> None:
        for key in self.data:
            if key not in allowed:
                raise SpaceError(
                    f"{self.source}: unknown key '{key}'; allowed: {', '.join(sorted(allowed))}."
                    f"{did_you_mean(key, allowed)}"
                )

    def table(self, key: str, allowed: set[str]) -> SpaceReader:
        sub = SpaceReader(self.get(key, dict), f"{self.source} [{key}]")
        sub.only(allowed)
        return sub

    def get(
        self,
        key: str,
        kind: type,
        choices: tuple[Any, ...] | None = None,
        minimum: int | None = None,
    ) -> Any:
        if key not in self.data:
            raise SpaceError(f"{self.source}: missing key '{key}'")
        return self._check(key, self.data[key], kind, choices, minimum)

    def get_list(
        self,
        key: str,
        kind: type,
        choices: tuple[Any, ...] | None = None,
        minimum: int | None = None,
    ) -> list[Any]:
        values = self.get(key, list)
        if not values:
            raise SpaceError(f"{self.source}: '{key}' must not be empty")
        if len(set(values)) != len(values):
            raise SpaceError(f"{self.source}: '{key}' has repeated values: {values}")
        return [self._check(key, v, kind, choices, minimum) for v in values]

    def _check(
        self,
        key: str,
        value: Any,
        kind: type[Any],
        choices: tuple[Any, ...] | None,
        minimum: int | None,
    ) -> Any:
        # bool is an int in Python; a width of `true` is still a mistake.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise SpaceError(f"{self.source}: '{key}' must be {kind.__name__}, got {value!r}")
        if choices is not None and value not in choices:
            raise SpaceError(
                f"{self.source}: '{key}' = {value!r} is not allowed; allowed: "
                f"{', '.join(map(str, choices))}.{did_you_mean(str(value), map(str, choices))}"
            )
        if minimum is not None and value < minimum:
            raise SpaceError(f"{self.source}: '{key}' = {value} must be >= {minimum}")
        return value
