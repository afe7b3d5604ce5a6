"""A per-layer table from a layer bundle, against `rlnas profile` on the same host; and the
import's speed.

    python scripts/bench_layer_bundle.py agreement [--space fbnet] [--out docs/benchmarks]
    python scripts/bench_layer_bundle.py import-speed [--space mobilenet] [--work DIR]

`agreement`: writes the layer bundle of the space (`rlnas bundle --layers --device cpu`),
times it with the bundle's Python runner (ONNX Runtime, 1 thread), imports it
(`rlnas tables import`), and profiles the same space twice with `rlnas profile --device
cpu` (1 thread), once before and once after the runner (this VM's speed drifts over
minutes). Per layer: the share of layers whose imported latency is within +-10% of
the first profile's, against the share the two profiles agree on (the profile's own
repeatability); the same for the latency beyond the empty graph's (what a prediction sums).
Writes layer_bundle_<space>.json and .csv.

`import-speed`: writes the space's layer bundle (3,089 layers for `mobilenet` at 224 px),
times it with the Python runner at its shortest (0.01 s per layer; the figures are real
but rough) unless results are there already, and times `rlnas tables import` (median of 3).
Resumes: a bundle or results left in --work are reused.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from rlnas.hardware.table import load_table

RLNAS = str(Path(sys.executable).parent / "rlnas")


def run(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(list(args), check=True, env=env)


def within(a: np.ndarray, b: np.ndarray, tolerance: float = 0.10) -> float:
    return float(np.mean(np.abs(a / b - 1) <= tolerance))


def agreement(space: str, out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="rlnas-lb-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "RLNAS_HOME": str(work / "home")}
        bundle = work / "bundle"
        run(RLNAS, "bundle", "--layers", "--device", "cpu", "--space", space, "--out", str(bundle))
        # profile, runner, profile: this VM's speed drifts over minutes, so the runner is timed
        # between the two profiles, and each is compared with both.
        profiles = []
        runner_s = 0.0
        for number in (1, 2):
            path = work / f"profile{number}.parquet"
            run(RLNAS, "profile", "--device", "cpu", "--space", space, "--threads", "1",
                "--out", str(path), env=env)  # fmt: skip
            profiles.append(load_table(path))
            if number == 1:
                started = time.perf_counter()
                run(sys.executable, str(bundle / "run_python.py"), "--threads", "1")
                runner_s = time.perf_counter() - started
        imported = work / "imported.parquet"
        run(RLNAS, "tables", "import", str(bundle), "--device", "cpu", "--out", str(imported))
        table = load_table(imported)
    keys = profiles[0].keys()

    def column(t, name: str) -> np.ndarray:
        return t.frame[name].to_numpy()[t.rows(keys)]

    first, second = (column(p, "latency_ms") for p in profiles)
    ours = column(table, "latency_ms")
    over_first, over_second = (column(p, "overhead_ms") for p in profiles)
    over_ours = column(table, "overhead_ms")
    frame = pd.DataFrame(
        {
            "layer": [str(k) for k in keys],
            "profile1_ms": first,
            "profile2_ms": second,
            "imported_ms": ours,
            "profile1_overhead_ms": over_first,
            "imported_overhead_ms": over_ours,
        }
    )
    beyond = (ours - over_ours, first - over_first, second - over_second)
    result = {
        "command": f"python scripts/bench_layer_bundle.py agreement --space {space}",
        "date": time.strftime("%Y-%m-%d"),
        "layers": len(keys),
        "runner_s": round(runner_s, 1),
        "imported_backend": table.meta.backend_version,
        "imported_host": table.meta.host,
        "profile_backend": profiles[0].meta.backend_version,
        "within_10pct_imported_vs_profile1": within(ours, first),
        "within_10pct_profile2_vs_profile1": within(second, first),
        "within_10pct_imported_vs_profile2": within(ours, second),
        "beyond_overhead_within_10pct_imported_vs_profile1": within(beyond[0], beyond[1]),
        "beyond_overhead_within_10pct_profile2_vs_profile1": within(beyond[2], beyond[1]),
        "median_ratio_imported_over_profile1": float(np.median(ours / first)),
        "median_ratio_profile2_over_profile1": float(np.median(second / first)),
        # After one common scale (the median ratio) is taken out: the layers' relative costs.
        "scaled_within_10pct_imported_vs_profile1": within(ours / np.median(ours / first), first),
        "scaled_within_10pct_profile2_vs_profile1": within(
            second / np.median(second / first), first
        ),
        "overhead_ms": {
            "imported_median": float(np.median(over_ours)),
            "profile1_median": float(np.median(over_first)),
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"layer_bundle_{space}.json").write_text(json.dumps(result, indent=2) + "\n")
    frame.to_csv(out / f"layer_bundle_{space}.csv", index=False, float_format="%.5f")
    print(json.dumps(result, indent=2))


def import_speed(space: str, work: Path) -> None:
    bundle = work / f"bundle_{space}"
    run(RLNAS, "bundle", "--layers", "--device", "cpu", "--space", space, "--out", str(bundle))
    started = time.perf_counter()
    run(sys.executable, str(bundle / "run_python.py"), "--seconds", "0.01",
        "--warmup-seconds", "0")  # fmt: skip
    print(f"runner: {time.perf_counter() - started:.0f} s (0 if it had finished before)")
    seconds = []
    for number in range(3):
        out = work / f"imported{number}.parquet"
        out.unlink(missing_ok=True)
        began = time.perf_counter()
        run(RLNAS, "tables", "import", str(bundle), "--device", "cpu", "--out", str(out))
        seconds.append(time.perf_counter() - began)
    layers = len(load_table(work / "imported0.parquet"))
    print(
        json.dumps(
            {
                "command": f"python scripts/bench_layer_bundle.py import-speed --space {space}",
                "date": time.strftime("%Y-%m-%d"),
                "layers": layers,
                "import_s_median_of_3": round(statistics.median(seconds), 2),
                "import_s_each": [round(s, 2) for s in seconds],
            },
            indent=2,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("agreement", "import-speed"))
    parser.add_argument("--space", default=None)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    parser.add_argument("--work", type=Path, default=Path("runs/bench_layer_bundle"))
    args = parser.parse_args()
    if args.what == "agreement":
        agreement(args.space or "fbnet", args.out)
    else:
        args.work.mkdir(parents=True, exist_ok=True)
        import_speed(args.space or "mobilenet", args.work)


if __name__ == "__main__":
    main()
