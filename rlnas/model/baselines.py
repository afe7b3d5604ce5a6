"""Well-known networks expressed as architectures: the baselines every result is compared to.

Parameter counts are the published ones at 1000 classes (torchvision's model
documentation, which matches the papers to the stated precision).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from rlnas.errors import ArchitectureError, unknown
from rlnas.model.arch import Architecture


@dataclass(frozen=True)
class Baseline:
    """A published network as a member of one of our spaces.

    Attributes:
        name: Short name used on the command line.
        space: Name of the space it is an exact member of.
        arch: Its canonical string in that space.
        published_params: Published parameter count at 1000 classes.
        note: Where it differs from the published network, if anywhere.
    """

    name: str
    space: str
    arch: str
    published_params: int
    note: str = ""

    def architecture(self) -> Architecture:
        return Architecture.decode(self.arch, self.space)


def _stage(width: int, blocks: list[str]) -> str:
    return f"c{width}:" + ",".join(blocks)


_MBV2 = "|".join(
    [
        "relu6",
        _stage(16, ["ir_k3_e1"]),
        _stage(24, ["ir_k3_e6"] * 2 + ["skip"]),
        _stage(32, ["ir_k3_e6"] * 3),
        _stage(64, ["ir_k3_e6"] * 4),
        _stage(96, ["ir_k3_e6"] * 3 + ["skip"]),
        _stage(160, ["ir_k3_e6"] * 3 + ["skip"]),
        _stage(320, ["ir_k3_e6"]),
    ]
)

_EFFB0 = "|".join(
    [
        "silu",
        _stage(16, ["ir_k3_e1_se"]),
        _stage(24, ["ir_k3_e6_se"] * 2 + ["skip"]),
        _stage(40, ["ir_k5_e6_se"] * 2 + ["skip"]),
        _stage(80, ["ir_k3_e6_se"] * 3 + ["skip"]),
        _stage(112, ["ir_k5_e6_se"] * 3 + ["skip"]),
        _stage(192, ["ir_k5_e6_se"] * 4),
        _stage(320, ["ir_k3_e6_se"]),
    ]
)


def _resnet(depths: list[int], slots: list[int]) -> str:
    widths = [64, 128, 256, 512]
    return "|".join(
        ["relu"]
        + [
            _stage(w, ["basic_k3"] * d + ["skip"] * (s - d))
            for w, d, s in zip(widths, depths, slots, strict=True)
        ]
    )


BASELINES: dict[str, Baseline] = {
    b.name: b
    for b in [
        Baseline("mobilenetv2", "mobilenet", _MBV2, 3_504_872),
        Baseline(
            "efficientnet_b0",
            "mobilenet",
            _EFFB0,
            5_288_548,
            note="no dropout or stochastic depth (training-only, no parameters)",
        ),
        Baseline("resnet18", "resnet", _resnet([2, 2, 2, 2], [3, 4, 6, 3]), 11_689_512),
        Baseline("resnet34", "resnet", _resnet([3, 4, 6, 3], [3, 4, 6, 3]), 21_797_672),
    ]
}


def list_baselines(pattern: str = "*") -> list[str]:
    return [name for name in BASELINES if fnmatch.fnmatch(name, pattern)]


def get_baseline(name: str) -> Baseline:
    if name not in BASELINES:
        raise ArchitectureError(unknown("baseline", name, BASELINES))
    return BASELINES[name]
