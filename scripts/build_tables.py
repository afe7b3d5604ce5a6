"""Builds (or resumes) the lookup tables shipped in tables/, and prints their benchmark rows.

Usage:
    python scripts/build_tables.py [--only cpu_fp32] [--limit N] [--out-dir tables]

Each table: the default space (mobilenet), and resnet, at 224x224, batch 1, 1 thread, on this
machine's CPU. Interrupting is safe; rerunning continues where it stopped (the
figures then cover only the layers measured in the last run).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rlnas.hardware.profile import ProfileConfig, profile
from rlnas.hardware.table import load_table

PRECISIONS = [("cpu", "fp32"), ("cpu", "int8"), ("intel-cpu", "fp32"), ("intel-cpu", "bf16")]
# mobilenet is the default space; resnet (46 layers) makes the ResNet-18 baseline predictable.
SPACES = ["mobilenet", "resnet"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="device_precision, e.g. cpu_int8")
    parser.add_argument("--space", action="append", help="space (default: mobilenet, resnet)")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parents[1] / "tables")
    args = parser.parse_args()

    print("| table | entries | measured now | wall s | entries/min | overhead ratio | unstable |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for space in args.space or SPACES:
        for device, precision in PRECISIONS:
            if args.only and f"{device}_{precision}" not in args.only:
                continue
            build(device, precision, space, args.out_dir, args.limit)


def build(device: str, precision: str, space: str, out_dir: Path, limit: int | None) -> None:
    name = f"{device}_{precision}_{space}_224_b1"
    config = ProfileConfig(
        device=device,
        precision=precision,
        space=space,
        out=out_dir / f"{name}.parquet",
        limit=limit,
    )
    result = profile(config)
    table = load_table(result.out)
    rate = 60 * result.measured / result.wall_s if result.wall_s else 0.0
    ratio = result.wall_s / result.timed_s if result.timed_s else 0.0
    print(
        f"| {name} | {len(table)} | {result.measured} | {result.wall_s:.0f} | {rate:.0f} "
        f"| {ratio:.2f} | {int(table.frame['unstable'].sum())} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
