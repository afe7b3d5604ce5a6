"""NAS-Bench-Macro's 8-digit architecture codes for the `nbmacro` space.

The benchmark names a network by one digit per searchable layer, input to
output: 0 = `id` (skip), 1 = `ir_3x3_t3` (our `ir_k3_e3`), 2 = `ir_5x5_t6`
(our `ir_k5_e6`). Our architectures also hold the fixed decisions (the
activation and each stage's single width), which the code leaves out.
"""

from __future__ import annotations

from rlnas.errors import ArchitectureError
from rlnas.model.arch import Architecture
from rlnas.model.macro import SKIP, MacroSpace
from rlnas.model.space import get_space

SPACE = "nbmacro"
# Benchmark digit -> our slot token.
DIGITS = {"0": SKIP, "1": "ir_k3_e3", "2": "ir_k5_e6"}


def _slots() -> list[int]:
    """Positions of the searchable slot decisions, input to output."""
    space = get_space(SPACE)
    assert isinstance(space, MacroSpace)
    return space.slot_positions()


def to_code(arch: Architecture) -> str:
    """The benchmark's 8-digit code of an `nbmacro` architecture."""
    if arch.space.name != SPACE:
        raise ArchitectureError(f"only {SPACE} architectures have a NAS-Bench-Macro code")
    digit = {token: d for d, token in DIGITS.items()}
    tokens = [arch.space.decisions[i].tokens[arch.choices[i]] for i in _slots()]
    return "".join(digit[t] for t in tokens)


def from_code(code: str) -> Architecture:
    """The `nbmacro` architecture of an 8-digit benchmark code (e.g. '01200012')."""
    code = str(code).strip()
    slots = _slots()
    if len(code) != len(slots) or any(c not in DIGITS for c in code):
        raise ArchitectureError(
            f"'{code}' is not a NAS-Bench-Macro code: {len(slots)} digits of 0 (id), "
            "1 (ir_3x3_t3) or 2 (ir_5x5_t6), e.g. '01200012'"
        )
    space = get_space(SPACE)
    choices = [0] * space.num_decisions
    for position, digit in zip(slots, code, strict=True):
        choices[position] = space.token_index(position, DIGITS[digit])
    return Architecture(space, tuple(choices))
