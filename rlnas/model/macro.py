"""Macro spaces: a stem, stages of block slots, a head and a classifier.

Decisions: `act` (the network's activation), then per stage `stageN.width`
and `stageN.slotM`. Canonical string, e.g. for two stages:
`relu6|c16:ir_k3_e1|c24:ir_k3_e6,ir_k3_e6,skip`. Each slot holds a block
(one layer of `rlnas.model.ops`) or skip. Skip is the identity; in a stage's
first slot it is allowed only where the stage says `skip_first = true`, and
there, where the stride or the width changes, it is a projection: a 1x1
convolution with the stride, and batch norm, without activation (as in
NAS-Bench-Macro), or with the network's activation where the space says
`projection_activated = true` (as in FBNet).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import nn

from rlnas.errors import ArchitectureError, SpaceError, did_you_mean
from rlnas.model.costs import CostTerms, LayerCost
from rlnas.model.ops import LAYER_OPS, LayerKey, build_layer, out_size
from rlnas.model.space import Decision, SiblingReader, Space, SpaceReader

ACTIVATIONS = ("relu", "relu6", "silu")
# The ops a space file may search as block families (`LayerOp.block`).
BLOCK_OPS = tuple(name for name, op in LAYER_OPS.items() if op.block)
SKIP = "skip"


@dataclass(frozen=True)
class Block:
    """A block family member of a macro space (not skip).

    Attributes:
        op: `ir` (inverted residual, MBConv), `er` (fused MBConv), `irf` (FBNet's
            inverted residual, `rlnas.model.blocks.IRFBlock`) or `basic` (ResNet basic block).
        kernel: Spatial kernel size of the block's main convolution.
        expand: Channel expansion ratio (1 for basic).
        se: Whether the block has squeeze-and-excitation.
        groups: Groups of an `irf` block's 1x1 convolutions (1 or 2).
    """

    op: str
    kernel: int
    expand: int
    se: bool
    groups: int = 1

    @property
    def token(self) -> str:
        if self.op == "basic":
            return f"basic_k{self.kernel}"
        grouped = f"_g{self.groups}" if self.groups > 1 else ""
        return f"{self.op}_k{self.kernel}_e{self.expand}" + ("_se" if self.se else "") + grouped

    def key(self, cin: int, cout: int, size: int, stride: int, act: str) -> LayerKey:
        """The layer of this block at a position of the network."""
        op = f"{self.op}_g{self.groups}" if self.groups > 1 else self.op
        return LayerKey(op, cin, cout, size, size, self.kernel, stride, self.expand, self.se, act)


@dataclass(frozen=True)
class Stage:
    """A macro-space stage.

    Attributes:
        stride: Stride of the stage's first slot (the others have stride 1).
        widths: Output channel choices.
        slots: Number of block slots.
        skip_first: Whether the first slot may be skip (a projection where the shape changes).
    """

    stride: int
    widths: tuple[int, ...]
    slots: int
    skip_first: bool = False


def projection(cin: int, cout: int, size: int, stride: int, act: str = "none") -> LayerKey | None:
    """The layer of a skip in a stage's first slot: none where the shape stays, else a 1x1
    convolution with the stride and batch norm, with activation `act`."""
    if stride == 1 and cin == cout:
        return None
    return LayerKey("conv", cin, cout, size, size, 1, stride, act=act)


@dataclass(frozen=True, eq=False)
class MacroSpace(Space):
    """A stem, stages of block slots, a head and a classifier (see the module docstring).

    Attributes:
        activations: Activation choices for the whole network.
        stem_kernel: Stem convolution kernel size.
        stem_stride: Stem convolution stride.
        stem_width: Stem output channels.
        stem_maxpool: Whether a 3x3 stride-2 max pool follows the stem.
        head_width: Channels of the 1x1 head convolution; 0 for no head conv.
        stages: The stages, input to output.
        blocks: The block choices of a slot, skip excluded.
        projection_activated: Whether a skip's projection has the network's activation.
    """

    KEYS: ClassVar[set[str]] = {
        "activations",
        "stem",
        "head",
        "blocks",
        "stages",
        "projection_activated",
    }
    COMPARES_WITH_BASELINES: ClassVar[bool] = True

    activations: tuple[str, ...] = ()
    stem_kernel: int = 3
    stem_stride: int = 2
    stem_width: int = 32
    stem_maxpool: bool = False
    head_width: int = 0
    stages: tuple[Stage, ...] = ()
    blocks: tuple[Block, ...] = ()
    projection_activated: bool = False

    # -- canonical strings

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

    def slot_positions(self) -> list[int]:
        """Positions of the slot decisions (not the activation or widths), input to output."""
        return [i for i, d in enumerate(self.decisions) if ".slot" in d.name]

    def activation(self, choices: tuple[int, ...]) -> str:
        return self.activations[choices[0]]

    def skip_act(self, act: str) -> str:
        """The activation of a skip's projection in a network of activation `act`."""
        return act if self.projection_activated else "none"

    # -- layers

    def stem_layers(self, act: str, resolution: int) -> tuple[list[LayerKey], int]:
        """The stem's layers and the size after it."""
        r, width = resolution, self.stem_width
        keys = [LayerKey("conv", 3, width, r, r, self.stem_kernel, self.stem_stride, act=act)]
        r = out_size(r, self.stem_stride)
        if self.stem_maxpool:
            keys.append(LayerKey("maxpool", width, width, r, r, 3, 2))
            r = out_size(r, 2)
        return keys, r

    def tail_layers(self, cin: int, act: str, size: int) -> list[LayerKey]:
        """The head convolution (if any) and the classifier after the last stage."""
        keys = []
        if self.head_width:
            keys.append(LayerKey("conv", cin, self.head_width, size, size, 1, 1, act=act))
            cin = self.head_width
        keys.append(LayerKey("classifier", cin, self.num_classes, size, size))
        return keys

    def layers(self, choices: tuple[int, ...], resolution: int) -> list[LayerKey]:
        act = self.activation(choices)
        keys, r = self.stem_layers(act, resolution)
        cin = self.stem_width
        for stage, (width, blocks) in zip(self.stages, self.stage_choices(choices), strict=True):
            for slot, block in enumerate(blocks):
                stride = stage.stride if slot == 0 else 1
                if block is None:
                    skip_act = self.skip_act(act)
                    key = projection(cin, width, r, stride, skip_act) if slot == 0 else None
                    if key is None:
                        continue
                else:
                    key = block.key(cin, width, r, stride, act)
                keys.append(key)
                r, cin = out_size(r, stride), width
        return keys + self.tail_layers(cin, act, r)

    def unique_layers(self, resolution: int) -> set[LayerKey]:
        keys: set[LayerKey] = set()
        for act in self.activations:
            stem, r = self.stem_layers(act, resolution)
            keys.update(stem)
            cins: tuple[int, ...] = (self.stem_width,)
            for stage in self.stages:
                for cin in cins:
                    for width in stage.widths:
                        keys.update(b.key(cin, width, r, stage.stride, act) for b in self.blocks)
                        skip = projection(cin, width, r, stage.stride, self.skip_act(act))
                        if stage.skip_first and skip:
                            keys.add(skip)
                r = out_size(r, stage.stride)
                if stage.slots > 1:
                    for width in stage.widths:
                        keys.update(b.key(width, width, r, 1, act) for b in self.blocks)
                cins = stage.widths
            for cin in cins:
                keys.update(self.tail_layers(cin, act, r))
        return keys

    # -- per-decision costs

    def cost_terms(self, resolution: int, cost: LayerCost, fixed: float) -> CostTerms:
        """A slot's cost depends on the activation, its stage's width, and (first slot) the
        previous stage's width; the head's on the last width."""
        n = self.num_decisions
        deps: list[tuple[int, ...]] = [()] * n
        tables: list[Any] = [[] for _ in range(n)]
        acts = self.activations
        stems = [self.stem_layers(act, resolution) for act in acts]
        tables[0] = [fixed + sum(cost(k) for k in keys) for keys, _ in stems]
        size = stems[0][1]

        def slot(act: str, cin: int, width: int, size: int, stride: int) -> list[float]:
            """Cost of each block choice of one slot (skip, where allowed, is last)."""
            return [cost(b.key(cin, width, size, stride, act)) for b in self.blocks]

        def first(stage: Stage, act: str, cin: int, width: int, size: int) -> list[float]:
            """Cost of each choice of a stage's first slot (skip: its projection, if any)."""
            costs = slot(act, cin, width, size, stage.stride)
            if stage.skip_first:
                key = projection(cin, width, size, stage.stride, self.skip_act(act))
                costs.append(cost(key) if key else 0.0)
            return costs

        position, prev_position = 1, None
        prev_widths: tuple[int, ...] = (self.stem_width,)
        for number, stage in enumerate(self.stages):
            width_position, first_slot = position, position + 1
            size_out = out_size(size, stage.stride)
            tables[width_position] = [0.0] * len(stage.widths)
            if number == len(self.stages) - 1:
                deps[width_position] = (0,)
                tables[width_position] = [
                    [sum(cost(k) for k in self.tail_layers(w, act, size_out)) for w in stage.widths]
                    for act in acts
                ]
            if prev_position is None:
                deps[first_slot] = (0, width_position)
                tables[first_slot] = [
                    [first(stage, act, prev_widths[0], w, size) for w in stage.widths]
                    for act in acts
                ]
            else:
                deps[first_slot] = (0, prev_position, width_position)
                tables[first_slot] = [
                    [[first(stage, act, cin, w, size) for w in stage.widths] for cin in prev_widths]
                    for act in acts
                ]
            for p in range(first_slot + 1, first_slot + stage.slots):
                deps[p] = (0, width_position)
                tables[p] = [
                    [[*slot(act, w, w, size_out, 1), 0.0] for w in stage.widths] for act in acts
                ]
            size, prev_widths, prev_position = size_out, stage.widths, width_position
            position = first_slot + stage.slots
        return CostTerms(tuple(deps), tables)

    # -- torch

    def build(self, choices: tuple[int, ...], resolution: int) -> nn.Module:
        return nn.Sequential(*(build_layer(k) for k in self.layers(choices, resolution)))

    # -- space files

    @classmethod
    def parse(
        cls, reader: SpaceReader, read_sibling: SiblingReader
    ) -> tuple[dict[str, Any], tuple[Decision, ...], dict[str, Any]]:
        activations = tuple(reader.get_list("activations", str, choices=ACTIVATIONS))
        stem = reader.table("stem", {"kernel", "stride", "width", "maxpool"})
        head = reader.table("head", {"width"})
        blocks: list[Block] = []
        for op, table in reader.get("blocks", dict).items():
            if op not in BLOCK_OPS:
                raise SpaceError(
                    f"{reader.source}: unknown block family '{op}' in [blocks]; allowed: "
                    f"{', '.join(BLOCK_OPS)}.{did_you_mean(op, BLOCK_OPS)}"
                )
            # One table is every combination of its values; [[blocks.op]] tables add theirs.
            for part in table if isinstance(table, list) else [table]:
                if not isinstance(part, dict):
                    raise SpaceError(
                        f"{reader.source}: [blocks.{op}] must be a table of kernel/expand/se "
                        "lists, or [[blocks.{op}]] tables"
                    )
                blocks += _family(op, part, SpaceReader(part, f"{reader.source} [blocks.{op}]"))
        if not blocks:
            raise SpaceError(f"{reader.source}: [blocks] lists no block family")
        stages = []
        for number, table in enumerate(reader.get("stages", list), 1):
            sub = SpaceReader(table, f"{reader.source} stage {number}")
            sub.only({"stride", "widths", "slots", "skip_first"})
            stages.append(
                Stage(
                    stride=sub.get("stride", int, choices=(1, 2)),
                    widths=tuple(sub.get_list("widths", int, minimum=1)),
                    slots=sub.get("slots", int, minimum=1),
                    skip_first=sub.get("skip_first", bool) if "skip_first" in table else False,
                )
            )
        if not stages:
            raise SpaceError(f"{reader.source}: no [[stages]]")

        block_tokens = tuple(b.token for b in blocks)
        decisions = [Decision("act", activations)]
        for number, stage in enumerate(stages, 1):
            widths = tuple(f"c{w}" for w in stage.widths)
            decisions.append(Decision(f"stage{number}.width", widths))
            for slot in range(1, stage.slots + 1):
                skip = slot > 1 or stage.skip_first
                tokens = (*block_tokens, SKIP) if skip else block_tokens
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
            projection_activated=(
                reader.get("projection_activated", bool)
                if "projection_activated" in reader.data
                else False
            ),
        )
        return extra, tuple(decisions), {}


def _family(op: str, table: dict[str, Any], sub: SpaceReader) -> list[Block]:
    """Every combination of one block table's kernels, expansions and SE settings."""
    sub.only({"kernel", "expand", "se", "groups"})
    kernels = sub.get_list("kernel", int, minimum=1)
    expands = sub.get_list("expand", int, minimum=1) if "expand" in table else [1]
    ses = sub.get_list("se", bool) if "se" in table else [False]
    groups = sub.get_list("groups", int, choices=(1, 2)) if "groups" in table else [1]
    if op == "basic" and (expands != [1] or ses != [False]):
        raise SpaceError(f"{sub.source}: the basic block takes only 'kernel'")
    if groups != [1] and op != "irf":
        raise SpaceError(f"{sub.source}: only irf blocks take 'groups'")
    if op == "irf" and ses != [False]:
        raise SpaceError(f"{sub.source}: irf blocks have no squeeze-and-excitation ('se')")
    return [Block(op, k, e, s, g) for k in kernels for e in expands for s in ses for g in groups]
