"""HW-NAS-Bench's FBNet `arch_str` for the `fbnet` space.

The benchmark names a network by its 22 searchable layers' ops, input to
output, joined by `-`: `k{3,5}_e{1,3,6}`, `k{3,5}_e1_g2` or `skip`. Our slot
tokens are the same with an `irf_` prefix (`irf_k3_e1_g2`), and skip is skip.
Our architectures also hold the fixed decisions (the activation and each
stage's single width), which the string leaves out.
"""

from __future__ import annotations

from rlnas.errors import ArchitectureError
from rlnas.model.arch import Architecture
from rlnas.model.macro import SKIP, MacroSpace
from rlnas.model.space import get_space

SPACE = "fbnet"
PREFIX = "irf_"


def _slots() -> list[int]:
    """Positions of the searchable slot decisions, input to output."""
    space = get_space(SPACE)
    assert isinstance(space, MacroSpace)
    return space.slot_positions()


def to_arch_str(arch: Architecture) -> str:
    """The benchmark's `arch_str` of an `fbnet` architecture."""
    if arch.space.name != SPACE:
        raise ArchitectureError(f"only {SPACE} architectures have an FBNet arch_str")
    tokens = [arch.space.decisions[i].tokens[arch.choices[i]] for i in _slots()]
    return "-".join(t.removeprefix(PREFIX) for t in tokens)


def from_arch_str(text: str) -> Architecture:
    """The `fbnet` architecture of a benchmark `arch_str` (22 ops joined by '-')."""
    space = get_space(SPACE)
    slots = _slots()
    ops = str(text).strip().split("-")
    allowed = [t.removeprefix(PREFIX) for t in space.decisions[slots[1]].tokens]
    if len(ops) != len(slots):
        raise ArchitectureError(
            f"'{text}' is not an FBNet arch_str: it needs {len(slots)} ops joined by '-', "
            f"each one of {', '.join(allowed)}"
        )
    choices = [0] * space.num_decisions
    for position, op in zip(slots, ops, strict=True):
        if op not in allowed:
            raise ArchitectureError(
                f"unknown FBNet op '{op}' in '{text}'; allowed: {', '.join(allowed)}"
            )
        choices[position] = space.token_index(position, op if op == SKIP else PREFIX + op)
    return Architecture(space, tuple(choices))
