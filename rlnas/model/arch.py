"""Architectures: one choice per decision of a space, with a canonical string form."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rlnas.model.space import DEFAULT_SPACE, Space, get_space


@dataclass(frozen=True)
class Architecture:
    """A member of a search space.

    `str(arch)` is its canonical string; `Architecture.decode(str(arch), space)`
    gives it back exactly. Construction validates the choices.

    Attributes:
        space: The space it belongs to.
        choices: The chosen token index of each decision, in decision order.
    """

    space: Space
    choices: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple(int(c) for c in self.choices))
        self.space.check_choices(self.choices)

    @classmethod
    def decode(cls, text: str, space: str | Path | Space = DEFAULT_SPACE) -> Architecture:
        """Parses a canonical string; raises ArchitectureError naming any bad token."""
        space = get_space(space)
        return cls(space, space.decode(text))

    @classmethod
    def from_index(cls, index: int, space: str | Path | Space = DEFAULT_SPACE) -> Architecture:
        """The architecture at `index` in the space's enumeration order."""
        space = get_space(space)
        return cls(space, space.from_index(index))

    @classmethod
    def sample(
        cls, rng: np.random.Generator, space: str | Path | Space = DEFAULT_SPACE
    ) -> Architecture:
        """A uniformly random architecture (one uniform choice per decision)."""
        space = get_space(space)
        return cls(space, space.sample(rng))

    def encode(self) -> str:
        return self.space.encode(self.choices)

    def __str__(self) -> str:
        return self.encode()

    @property
    def index(self) -> int:
        return self.space.index(self.choices)

    @property
    def tokens(self) -> dict[str, str]:
        """Decision name -> chosen token."""
        return {
            d.name: d.tokens[c] for d, c in zip(self.space.decisions, self.choices, strict=True)
        }
