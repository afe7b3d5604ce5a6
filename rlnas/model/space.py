"""Search spaces: loaded from data files, validated, and turned into decisions.

A space is a sequence of decisions, each a tuple of string tokens. An
architecture is one choice per decision (see `rlnas.model.arch`); its canonical
string is built from the chosen tokens. Two kinds of space exist:

- `macro`: a stem, stages of fixed stride with a width choice and block slots,
  a head (MnasNet / FBNet / ProxylessNAS style).
- `cell`: one DAG cell repeated through a fixed skeleton (NAS-Bench-201).

Built-in spaces are the `*.toml` files in `rlnas/spaces/`; a user copies one,
edits it, and passes its path wherever a space name is accepted.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from rlnas.errors import ArchitectureError, SpaceError, did_you_mean

ACTIVATIONS = ("relu", "relu6", "silu")
BLOCK_OPS = ("ir", "er", "basic")
SKIP = "skip"
CELL_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
DEFAULT_SPACE = "mobilenet"


@dataclass(frozen=True)
class Decision:
    """One step of building an architecture.

    Attributes:
        name: Where the decision sits, e.g. `stage2.slot3` or `edge 0->1`.
        tokens: The allowed choices, as they appear in the canonical string.
    """

    name: str
    tokens: tuple[str, ...]


@dataclass(frozen=True)
class Block:
    """A block family member of a macro space (not skip).

    Attributes:
        op: `ir` (inverted residual, MBConv), `er` (fused MBConv) or `basic`
            (ResNet basic block).
        kernel: Spatial kernel size of the block's main convolution.
        expand: Channel expansion ratio (1 for basic).
        se: Whether the block has squeeze-and-excitation.
    """

    op: str
    kernel: int
    expand: int
    se: bool

    @property
    def token(self) -> str:
        if self.op == "basic":
            return f"basic_k{self.kernel}"
        return f"{self.op}_k{self.kernel}_e{self.expand}" + ("_se" if self.se else "")


@dataclass(frozen=True)
class Stage:
    """A macro-space stage.

    Attributes:
        stride: Stride of the stage's first slot (the others have stride 1).
        widths: Output channel choices.
        slots: Number of block slots; the first slot is never skip.
    """

    stride: int
    widths: tuple[int, ...]
    slots: int


@dataclass(frozen=True, eq=False)
class Space:
    """Fields and behaviour shared by every kind of space.

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

    def encode(self, choices: tuple[int, ...]) -> str:
        raise NotImplementedError

    def decode(self, text: str) -> tuple[int, ...]:
        raise NotImplementedError

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


@dataclass(frozen=True, eq=False)
class MacroSpace(Space):
    """A stem, stages of block slots, a head and a classifier.

    Decisions: `act` (the network's activation), then per stage
    `stageN.width` and `stageN.slotM`. Canonical string, e.g. for two stages:
    `relu6|c16:ir_k3_e1|c24:ir_k3_e6,ir_k3_e6,skip`.

    Attributes:
        activations: Activation choices for the whole network.
        stem_kernel: Stem convolution kernel size.
        stem_stride: Stem convolution stride.
        stem_width: Stem output channels.
        stem_maxpool: Whether a 3x3 stride-2 max pool follows the stem.
        head_width: Channels of the 1x1 head convolution; 0 for no head conv.
        stages: The stages, input to output.
        blocks: The block choices of a slot, skip excluded.
    """

    activations: tuple[str, ...] = ()
    stem_kernel: int = 3
    stem_stride: int = 2
    stem_width: int = 32
    stem_maxpool: bool = False
    head_width: int = 0
    stages: tuple[Stage, ...] = ()
    blocks: tuple[Block, ...] = ()

    def encode(self, choices: tuple[int, ...]) -> str:
        self.check_choices(choices)
        tokens = [d.tokens[c] for d, c in zip(self.decisions, choices, strict=True)]
        parts = [tokens[0]]
        position = 1
        for stage in self.stages:
            width, slots = tokens[position], tokens[position + 1 : position + 1 + stage.slots]
            parts.append(f"{width}:{','.join(slots)}")
            position += 1 + stage.slots
        return "|".join(parts)

    def decode(self, text: str) -> tuple[int, ...]:
        parts = text.strip().split("|")
        if len(parts) != 1 + len(self.stages):
            raise ArchitectureError(
                f"'{text}' has {len(parts)} '|'-separated groups; space '{self.name}' needs "
                f"{1 + len(self.stages)}: the activation, then one 'width:block,...' per stage"
            )
        tokens = [parts[0]]
        for number, (stage, part) in enumerate(zip(self.stages, parts[1:], strict=True), 1):
            width, sep, slots = part.partition(":")
            slot_tokens = slots.split(",") if sep else []
            if len(slot_tokens) != stage.slots:
                raise ArchitectureError(
                    f"stage {number} group '{part}' of '{text}' needs a width and "
                    f"{stage.slots} comma-separated blocks, e.g. "
                    f"'{self.decisions[len(tokens)].tokens[0]}:"
                    f"{','.join(['ir_k3_e6'] * stage.slots)}'"
                )
            tokens += [width, *slot_tokens]
        return tuple(self.token_index(i, token) for i, token in enumerate(tokens))

    def stage_choices(self, choices: tuple[int, ...]) -> list[tuple[int, list[Block | None]]]:
        """Per stage, the chosen width and blocks (None for skip)."""
        result = []
        position = 1
        for stage in self.stages:
            width = stage.widths[choices[position]]
            slots: list[Block | None] = []
            for slot in range(stage.slots):
                choice = choices[position + 1 + slot]
                # Skip is the last token of a slot, after the blocks.
                slots.append(self.blocks[choice] if choice < len(self.blocks) else None)
            result.append((width, slots))
            position += 1 + stage.slots
        return result

    def activation(self, choices: tuple[int, ...]) -> str:
        return self.activations[choices[0]]


@dataclass(frozen=True, eq=False)
class CellSpace(Space):
    """One DAG cell, repeated through the NAS-Bench-201 skeleton.

    Decisions: one per edge `i->j` (i < j), ordered by j then i. Canonical
    string: NAS-Bench-201's, e.g. `|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|`.

    Attributes:
        ops: Operation choices per edge.
        nodes: Nodes in the cell, the input node included.
        cells_per_stage: Cells in each of the stages.
        widths: Channels of each stage.
        order: If given, the benchmark's enumeration order: `order[i]` is the
            choice vector of index i.
    """

    ops: tuple[str, ...] = ()
    nodes: int = 4
    cells_per_stage: int = 5
    widths: tuple[int, ...] = ()
    order: tuple[tuple[int, ...], ...] | None = field(default=None, repr=False)

    @functools.cached_property
    def edges(self) -> tuple[tuple[int, int], ...]:
        """(source, target) node pairs, in decision order."""
        return tuple((i, j) for j in range(1, self.nodes) for i in range(j))

    @functools.cached_property
    def _order_index(self) -> dict[tuple[int, ...], int]:
        return {choices: i for i, choices in enumerate(self.order or ())}

    def encode(self, choices: tuple[int, ...]) -> str:
        self.check_choices(choices)
        groups: list[list[str]] = [[] for _ in range(self.nodes - 1)]
        for (i, j), choice in zip(self.edges, choices, strict=True):
            groups[j - 1].append(f"{self.ops[choice]}~{i}")
        return "+".join("|" + "|".join(group) + "|" for group in groups)

    def decode(self, text: str) -> tuple[int, ...]:
        groups = text.strip().split("+")
        if len(groups) != self.nodes - 1:
            raise ArchitectureError(
                f"'{text}' has {len(groups)} '+'-separated node groups; space '{self.name}' "
                f"needs {self.nodes - 1}, e.g. '{self.encode((0,) * self.num_decisions)}'"
            )
        choices: list[int] = []
        for j, group in enumerate(groups, 1):
            items = group.split("|")
            if len(items) != j + 2 or items[0] or items[-1]:
                raise ArchitectureError(
                    f"node group {j} '{group}' of '{text}' must be '|op~0|...|op~{j - 1}|'"
                )
            for i, item in enumerate(items[1:-1]):
                op, sep, source = item.partition("~")
                if not sep or source != str(i):
                    raise ArchitectureError(
                        f"token '{item}' in node group {j} of '{text}' must be 'op~{i}'"
                    )
                choices.append(self.token_index(len(choices), op))
        return tuple(choices)

    def index(self, choices: tuple[int, ...]) -> int:
        if self.order is None:
            return super().index(choices)
        self.check_choices(choices)
        return self._order_index[choices]

    def from_index(self, index: int) -> tuple[int, ...]:
        if self.order is None:
            return super().from_index(index)
        if not 0 <= index < len(self.order):
            raise ArchitectureError(
                f"index {index} is outside space '{self.name}'; allowed: 0..{self.size - 1}"
            )
        return self.order[index]


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


_MACRO_KEYS = {
    "name",
    "kind",
    "description",
    "resolution",
    "num_classes",
    "activations",
    "stem",
    "head",
    "blocks",
    "stages",
}
_CELL_KEYS = {
    "name",
    "kind",
    "description",
    "resolution",
    "num_classes",
    "ops",
    "nodes",
    "cells_per_stage",
    "widths",
    "order",
}


def _parse(text: str, source: str, read_sibling: Any) -> Space:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpaceError(f"{source} is not valid TOML: {exc}") from None
    reader = _Reader(data, source)
    kind = reader.get("kind", str, choices=("macro", "cell"))
    extra: dict[str, Any] = {}
    content: dict[str, Any] = dict(data)
    if kind == "macro":
        reader.only(_MACRO_KEYS)
        extra, decisions = _parse_macro(reader)
    else:
        reader.only(_CELL_KEYS)
        extra, decisions = _parse_cell(reader, read_sibling)
        content["order"] = extra["order"]
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]
    cls: type[Space] = MacroSpace if kind == "macro" else CellSpace
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


def _parse_macro(reader: _Reader) -> tuple[dict[str, Any], tuple[Decision, ...]]:
    activations = tuple(reader.get_list("activations", str, choices=ACTIVATIONS))
    stem = reader.table("stem", {"kernel", "stride", "width", "maxpool"})
    head = reader.table("head", {"width"})
    blocks: list[Block] = []
    block_tables = reader.get("blocks", dict)
    for op, table in block_tables.items():
        if op not in BLOCK_OPS:
            raise SpaceError(
                f"{reader.source}: unknown block family '{op}' in [blocks]; allowed: "
                f"{', '.join(BLOCK_OPS)}.{did_you_mean(op, BLOCK_OPS)}"
            )
        sub = _Reader(table, f"{reader.source} [blocks.{op}]")
        sub.only({"kernel", "expand", "se"})
        kernels = sub.get_list("kernel", int, minimum=1)
        expands = sub.get_list("expand", int, minimum=1) if "expand" in table else [1]
        ses = sub.get_list("se", bool) if "se" in table else [False]
        if op == "basic" and (expands != [1] or ses != [False]):
            raise SpaceError(f"{sub.source}: the basic block takes only 'kernel'")
        blocks += [Block(op, k, e, s) for k in kernels for e in expands for s in ses]
    if not blocks:
        raise SpaceError(f"{reader.source}: [blocks] lists no block family")
    stages = []
    for number, table in enumerate(reader.get("stages", list), 1):
        sub = _Reader(table, f"{reader.source} stage {number}")
        sub.only({"stride", "widths", "slots"})
        stages.append(
            Stage(
                stride=sub.get("stride", int, choices=(1, 2)),
                widths=tuple(sub.get_list("widths", int, minimum=1)),
                slots=sub.get("slots", int, minimum=1),
            )
        )
    if not stages:
        raise SpaceError(f"{reader.source}: no [[stages]]")

    block_tokens = tuple(b.token for b in blocks)
    decisions = [Decision("act", activations)]
    for number, stage in enumerate(stages, 1):
        decisions.append(Decision(f"stage{number}.width", tuple(f"c{w}" for w in stage.widths)))
        for slot in range(1, stage.slots + 1):
            tokens = block_tokens if slot == 1 else (*block_tokens, SKIP)
            decisions.append(Decision(f"stage{number}.slot{slot}", tokens))
    extra = dict(
        activations=activations,
        stem_kernel=stem.get("kernel", int, minimum=1),
        stem_stride=stem.get("stride", int, choices=(1, 2)),
        stem_width=stem.get("width", int, minimum=1),
        stem_maxpool=stem.get("maxpool", bool),
        head_width=head.get("width", int, minimum=0),
        stages=tuple(stages),
        blocks=tuple(blocks),
    )
    return extra, tuple(decisions)


def _parse_cell(reader: _Reader, read_sibling: Any) -> tuple[dict[str, Any], tuple[Decision, ...]]:
    ops = tuple(reader.get_list("ops", str, choices=CELL_OPS))
    nodes = reader.get("nodes", int, minimum=2)
    edges = [(i, j) for j in range(1, nodes) for i in range(j)]
    decisions = tuple(Decision(f"edge {i}->{j}", ops) for i, j in edges)
    order = None
    if "order" in reader.data:
        order_file = reader.get("order", str)
        expected = len(ops) ** len(edges)
        try:
            lines = read_sibling(order_file).split()
        except OSError as exc:
            raise SpaceError(
                f"{reader.source}: cannot read order file '{order_file}': {exc}"
            ) from None
        allowed_digits = {str(i) for i in range(len(ops))}
        if any(len(line) != len(edges) or not set(line) <= allowed_digits for line in lines):
            raise SpaceError(
                f"{reader.source}: order file '{order_file}' must list each of the {expected} "
                f"cells once, as {len(edges)} digits below {len(ops)} per line"
            )
        order = tuple(tuple(int(c) for c in line) for line in lines)
        if len(set(order)) != expected or len(order) != expected:
            raise SpaceError(
                f"{reader.source}: order file '{order_file}' must list each of the {expected} "
                f"cells once, as {len(edges)} digits below {len(ops)} per line"
            )
    extra = dict(
        ops=ops,
        nodes=nodes,
        cells_per_stage=reader.get("cells_per_stage", int, minimum=1),
        widths=tuple(reader.get_list("widths", int, minimum=1)),
        order=order,
    )
    return extra, decisions


class _Reader:
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

    def table(self, key: str, allowed: set[str]) -> _Reader:
        sub = _Reader(self.get(key, dict), f"{self.source} [{key}]")
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
