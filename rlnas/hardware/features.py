"""What is known of each layer before a fit: its latency in known tables, its work and
its memory, as the features of a prior (`rlnas.hardware.fit`).

- Prior tables: every table of the same space and resolution (`prior_tables`: the
  shipped ones, the user's, fitted tables of other devices), each a `PriorTable`; one
  that lacks some layers is completed from its own ratio to their work.
- Work: MACs, operators (the layer's primitive operations, `operators`) and the
  elements they write.
- Memory: weight and activation bytes, and with a host's caches (a CPU fingerprint) the
  bytes of the layer's working set beyond the L2 and beyond the L3.

`feature_models` groups them into the prior models a fit chooses among.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import nnls
from torch import nn

from rlnas.errors import TableError
from rlnas.hardware.calibration import layer_kind
from rlnas.hardware.catalog import find_tables, resolve_table
from rlnas.hardware.table import LatencyTable, load_table, read_meta
from rlnas.model.ops import (
    LayerKey,
    get_op,
    input_shapes,
    layer_macs,
    layer_params,
    layer_primitives,
)
from rlnas.model.space import Space

BYTES_PER_ELEMENT = 4  # fp32 activations and weights: the working set a CPU's caches see


@dataclass(frozen=True)
class PriorTable:
    """One known table as a prior: its name and each layer's latency inside a network."""

    name: str
    latency: Mapping[LayerKey, float]

    @classmethod
    def of(cls, table: LatencyTable) -> PriorTable:
        return cls(
            table.meta.name,
            {k: float(table.net_latency[row]) for k, row in table.index.items()},
        )


@functools.cache
def operators(key: LayerKey) -> tuple[int, int]:
    """(operators, elements) of one layer: its primitive operations (`layer_primitives`:
    convolutions with their BN, standalone activations, SE, pooling, shuffles, the residual
    sum) and the elements they write. Ops the primitives do not cover (NAS-Bench-201's) are
    counted on their torch module instead, run on the meta device: its modules other than
    identities plus its residual sum, and what they write."""
    if get_op(key.op).primitives is not None and key.h == key.w:
        ops = layer_primitives(key)
        return len(ops), sum(op.out_elems or op.macs for op in ops)
    with torch.device("meta"):
        module = get_op(key.op).build(key)
        leaves = [
            m for m in module.modules() if not list(m.children()) and not isinstance(m, nn.Identity)
        ]
        written: list[int] = []
        hooks = [m.register_forward_hook(lambda m, i, o: written.append(o.numel())) for m in leaves]
        output = module(*(torch.empty(shape) for shape in input_shapes(key)))
        for hook in hooks:
            hook.remove()
    residual = bool(getattr(module, "residual", False))
    return len(leaves) + residual, sum(written) + residual * output.numel()


def cache_sizes(caches: str) -> dict[str, int]:
    """Bytes per cache level of a fingerprint's `caches` ('L1d 48K, L2 2048K, L3 107520K')."""
    sizes: dict[str, int] = {}
    for level, number, unit in re.findall(r"(L\d)[di]?\s+(\d+)\s*([KMG]?)", caches):
        scale = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[unit]
        sizes[level] = max(sizes.get(level, 0), int(number) * scale)
    return sizes


def _work(keys: Sequence[LayerKey]) -> np.ndarray:
    macs = [float(layer_macs(k)) for k in keys]
    ops, elements = np.array([operators(k) for k in keys], dtype=np.float64).reshape(-1, 2).T
    return np.column_stack([macs, ops, elements])


def _memory(keys: Sequence[LayerKey], caches: str) -> tuple[list[str], np.ndarray]:
    weights = np.array([layer_params(k) for k in keys], dtype=np.float64) * BYTES_PER_ELEMENT
    inputs = [sum(int(np.prod(s)) for s in input_shapes(k)) for k in keys]
    written = np.array([operators(k)[1] for k in keys], dtype=np.float64)
    activations = (np.array(inputs, dtype=np.float64) + written) * BYTES_PER_ELEMENT
    names, columns = ["weight_bytes", "activation_bytes"], [weights, activations]
    working_set = weights + activations
    for level, size in sorted(cache_sizes(caches).items()):
        if level in ("L2", "L3"):
            names.append(f"bytes_beyond_{level}")
            columns.append(np.maximum(working_set - size, 0.0))
    return names, np.column_stack(columns)


def _complete(prior: PriorTable, keys: Sequence[LayerKey], work: np.ndarray) -> np.ndarray | None:
    """The prior's latency of each key; keys it lacks get its own fitted ratio to their work
    (None where it shares fewer than 3 layers with `keys`)."""
    known = np.array([k in prior.latency for k in keys])
    column = np.array([prior.latency.get(k, 0.0) for k in keys])
    if known.all():
        return column
    if known.sum() < 3:
        return None
    norm = work[known].max(axis=0)
    norm[norm == 0] = 1.0
    ratio, _ = nnls(work[known] / norm, column[known])
    column[~known] = work[~known] / norm @ ratio
    return column


def feature_models(
    keys: Sequence[LayerKey], priors: Sequence[PriorTable] = (), caches: str = ""
) -> dict[str, tuple[list[str], np.ndarray]]:
    """Each prior model's features: names, and one row per key (see the module docstring)."""
    work = _work(keys)
    usable = [(p.name, c) for p in priors if (c := _complete(p, keys, work)) is not None]
    models: dict[str, tuple[list[str], np.ndarray]] = {}
    if usable:
        first_name, first = usable[0]
        models["scale"] = ([first_name], first[:, None])
        kinds = sorted({layer_kind(k) for k in keys})
        if len(kinds) > 1:
            of_kind = np.array([[layer_kind(k) == kind for kind in kinds] for k in keys])
            models["kinds"] = ([f"{first_name}[{k}]" for k in kinds], first[:, None] * of_kind)
    work_names = ["macs", "operators", "elements"]
    models["work"] = (work_names, work)
    memory_names, memory = _memory(keys, caches)
    models["all"] = (
        [n for n, _ in usable] + work_names + memory_names,
        np.column_stack([c for _, c in usable] + [work, memory]),
    )
    return models


def prior_tables(
    names: Sequence[str], space: Space, resolution: int, exclude: Sequence[Path] = ()
) -> list[PriorTable]:
    """The prior tables of a fit: `macs` (none), `auto` (every known table of the space at
    this resolution, the user's and the shipped), or tables by name or file.

    Raises:
        TableError: A named table is of another space or resolution, or unreadable.
    """
    priors: list[PriorTable] = []
    skip = {Path(p).resolve() for p in exclude}
    for name in names:
        if name == "macs":
            continue
        if name == "auto":
            for _, path in find_tables():
                if path.resolve() in skip:
                    continue
                try:  # the metadata alone first: most tables are of other spaces
                    meta = read_meta(path)
                    if meta.space_digest != space.digest or meta.resolution != resolution:
                        continue
                    priors.append(PriorTable.of(load_table(path)))
                except TableError:
                    continue  # a broken file: not a prior
            continue
        table = load_table(resolve_table(name))
        try:
            table.check_space(space, resolution)
        except TableError:
            raise TableError(
                f"prior table {table.path} is for space '{table.meta.space}' at "
                f"{table.meta.resolution}px, not '{space.name}' at {resolution}px; give a table "
                "of the timings' space and resolution, or --prior auto"
            ) from None
        priors.append(PriorTable.of(table))
    unique: dict[str, PriorTable] = {}
    for prior in priors:  # the user's come first: one hides a shipped table of its name
        unique.setdefault(prior.name, prior)
    return list(unique.values())
