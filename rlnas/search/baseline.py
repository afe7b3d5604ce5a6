"""The baseline-relative search: the fastest network that keeps the user's baseline's accuracy.

Deci's AutoNAC (its white paper) takes a baseline a0 the user already has and
finds `argmin Lat(a)` subject to `Acc(a) >= (1 - drop) * Acc(a0)`. Here a0 is
a baseline name, a canonical string of the run's space, or a JSON export
(`rlnas export --format json`). Its accuracy and latency come from the run's
own sources, so the floor is in the same units as every candidate's score:
which is why a proxy score (a percentile) cannot be used. Where the user
gives no latency target, a0's own latency is the limit: a candidate must be
faster than the baseline. The strategies start from a0's neighbourhood
(`Strategy.start`): the white paper's "good starting point ... extracted from
a0".

What was decided (`BaselineTarget`) is kept in the run folder's config.json.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from rlnas.errors import ArchitectureError, RlnasError
from rlnas.model.arch import Architecture
from rlnas.model.baselines import BASELINES, get_baseline
from rlnas.model.space import Space, get_space
from rlnas.search.config import SearchConfig
from rlnas.search.sources import accuracy_kind


@dataclass(frozen=True)
class BaselineTarget:
    """a0 and what it sets.

    Attributes:
        name: a0 as the user gave it.
        arch: Its canonical string in the run's space.
        accuracy: Its accuracy score from the run's accuracy source.
        latency_ms: Its latency from the run's latency source.
        accuracy_drop: The drop allowed, as a fraction of `accuracy`.
        accuracy_floor: (1 - accuracy_drop) x accuracy.
        target_ms: The latency limit of the search (a0's latency unless given).
        accuracy_source: The accuracy source, in words.
    """

    name: str
    arch: str
    accuracy: float
    latency_ms: float
    accuracy_drop: float
    accuracy_floor: float
    target_ms: float
    accuracy_source: str


def parse_drop(text: str) -> float:
    """`1%` -> 0.01; `0.01` -> 0.01 (a fraction); else RlnasError naming the value."""
    value = text.strip()
    percent = value.endswith("%")
    try:
        number = float(value.removesuffix("%"))
    except ValueError:
        raise RlnasError(
            f"accuracy drop {text!r} is not a number; give a percentage (1%) or a fraction (0.01)"
        ) from None
    return number / 100 if percent else number


def resolve_baseline(text: str, space: Space) -> Architecture:
    """a0 from a baseline name, a JSON export, or a canonical string of `space`.

    Raises:
        RlnasError: A baseline of another space, an unreadable export, an unknown string.
    """
    if text in BASELINES:
        baseline = get_baseline(text)
        if baseline.space != space.name:
            raise RlnasError(
                f"baseline {text} is a member of the {baseline.space} space, not of "
                f"{space.name}; search --space {baseline.space}, or give a0 as a string of "
                f"{space.name}"
            )
        return baseline.architecture()
    path = Path(text)
    if path.suffix == ".json":
        return _from_export(path, space)
    try:
        return Architecture.decode(text, space)
    except ArchitectureError as exc:
        raise RlnasError(
            f"--baseline {text!r} is no baseline name ({', '.join(BASELINES)}), no JSON "
            f"export and no architecture of {space.name} ({exc})"
        ) from None


def _from_export(path: Path, space: Space) -> Architecture:
    if not path.is_file():
        raise RlnasError(
            f"baseline file {path} does not exist; export one with `rlnas export RUN --format json`"
        )
    try:
        raw = json.loads(path.read_bytes().decode())
        arch = str(raw["arch"])
        digest = raw.get("space_digest")
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        raise RlnasError(
            f"{path} is not an architecture export (a JSON object with 'arch'); export one "
            "with `rlnas export RUN --format json`"
        ) from None
    if digest is not None and digest != space.digest:
        raise RlnasError(
            f"{path} holds an architecture of another space ({raw.get('space')}); search "
            "that space, or export a0 from a run of this one"
        )
    return Architecture.decode(arch, space)


def baseline_target(
    config: SearchConfig, a0: Architecture, accuracy: float, latency_ms: float, source: str
) -> BaselineTarget:
    """What a0's accuracy and latency set for the search `config`."""
    if not accuracy > 0:
        raise RlnasError(
            f"baseline {config.baseline} scores {accuracy:g} on {source}; a floor of "
            f"{1 - config.accuracy_drop:g}x that keeps nothing out: check the accuracy source"
        )
    return BaselineTarget(
        name=str(config.baseline),
        arch=str(a0),
        accuracy=accuracy,
        latency_ms=latency_ms,
        accuracy_drop=config.accuracy_drop,
        accuracy_floor=(1 - config.accuracy_drop) * accuracy,
        target_ms=config.latency_ms if config.latency_ms is not None else latency_ms,
        accuracy_source=source,
    )


def with_limit(config: SearchConfig, target: BaselineTarget | None) -> SearchConfig:
    """`config` with the latency limit a0 set as its target (where it had none)."""
    if target is None or config.latency_ms is not None:
        return config
    return dataclasses.replace(config, latency_ms=target.target_ms)


def margin_note(config: SearchConfig, a0: BaselineTarget, arch: str, accuracy: float) -> str | None:
    """A line where a candidate's margin over the floor (`accuracy` of `arch`, a canonical
    string) is less than its accuracy source's own standard deviation for it, where the
    source knows one (a predictor): the source cannot tell whether it keeps the floor."""
    kind = accuracy_kind(config)
    if kind.spread is None:
        return None
    error = kind.spread(config, Architecture.decode(arch, get_space(config.space)))
    margin = accuracy - a0.accuracy_floor
    if margin >= error:
        return None
    return (
        f"its margin over the floor ({margin * 100:+.2f} points) is less than the "
        f"{kind.name}'s standard deviation for it ({error * 100:.2f} points): the "
        "source cannot tell whether it keeps the floor; `rlnas verify RUN` trains it, and "
        "`rlnas predictor next RUN` names the networks worth training to refit it"
    )
