"""Per-layer bundles: a measured table from the vendor's own tools, with nothing of rlnas on
the device.

`write_layer_bundle` writes every unique layer key of a space (those `rlnas
profile` would time, at the table's batch and resolution) as one small ONNX in
`models/` (`L0000.onnx`, ...), and an empty graph per input shape (`E00.onnx`,
...), whose time is the per-call overhead, as `profile` measures it. An int8
bundle's models are already quantized (QDQ): symmetric, in the form TensorRT
accepts, for a TensorRT device; ONNX Runtime's own form otherwise. It writes
`bundle.json` (what the bundle is), `bundle.id` (its digest), `manifest.csv`
(model name, role, layer key, the overhead model) and the runners of
`rlnas.hardware.runners`.

`import_layer_results` reads the results back into a measured table:
each layer's median, the overhead of its input shape, the tool, its version
and the device as the results state them.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from rlnas import __version__
from rlnas.errors import RlnasError, TableError
from rlnas.files import OutputError, check_folder
from rlnas.hardware.backends import Workload
from rlnas.hardware.backends.quantize import quantize_qdq
from rlnas.hardware.devices import Device, get_device, resolve_precision
from rlnas.hardware.runner_scripts import RUNNERS, write_runners
from rlnas.hardware.runners import BUNDLE_ID, Result, collect_results
from rlnas.hardware.table import KEY_SCHEMA, rows_frame
from rlnas.hardware.table_meta import TableMeta
from rlnas.model.layers import enumerate_layers
from rlnas.model.network import export_onnx, seeded
from rlnas.model.ops import KEY_FIELDS, LayerKey, build_layer, input_shapes
from rlnas.model.space import get_space

BUNDLE = "bundle.json"
MANIFEST = "manifest.csv"
KIND = "layers"
# Seconds one layer takes on the device, by runner. trtexec: an estimate (not measured here,
# no GPU): an engine build of a few seconds (the shared timing cache shortens later ones)
# plus 0.2 s of warm-up and 2 s of timing. benchmark_app: its 2 s plus start-up (estimate).
# The Python runner: 1.2 s of warm-up and timing plus the session: 1.2 s a model measured for
# fbnet at 32 px on the project VM with ONNX Runtime (BENCHMARKS.md); larger layers take longer.
SECONDS_PER_LAYER = {"run_trtexec.sh": 8.0, "run_benchmark_app.sh": 3.0, "run_python.py": 1.5}


@dataclasses.dataclass(frozen=True)
class LayerBundle:
    """What a layer bundle holds (its `bundle.json`)."""

    device: str
    precision: str
    space: str
    space_digest: str
    resolution: int
    batch: int
    layers: int
    digest: str
    kind: str = KIND
    rlnas_version: str = __version__

    def expected_seconds(self) -> dict[str, float]:
        """Rough wall time on the device per runner, from the number of layers."""
        return {r: round(self.layers * s) for r, s in SECONDS_PER_LAYER.items()}


class _Empty(nn.Module):
    """The empty graph whose time is the per-call overhead (as `rlnas profile` times it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _models(keys: list[LayerKey], batch: int) -> tuple[list[dict], dict[tuple, str]]:
    shapes = sorted({tuple(input_shapes(k, batch)[0]) for k in keys})
    empties = {shape: f"E{i:02d}" for i, shape in enumerate(shapes)}
    rows = [
        {
            "name": f"L{i:04d}",
            "role": "layer",
            **key.as_dict(),
            "overhead": empties[tuple(input_shapes(key, batch)[0])],
        }
        for i, key in enumerate(keys)
    ]
    return rows, empties


def _digest(identity: dict, rows: list[dict]) -> str:
    text = json.dumps([identity, rows], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_layer_bundle(
    device: str,
    space: str,
    out: Path,
    precision: str | None = None,
    resolution: int | None = None,
    batch: int = 1,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> LayerBundle:
    """Writes the layer bundle of a space into `out` (new or empty; an unfinished write of
    the same bundle resumes).

    Raises:
        RlnasError: The device, precision or space is unknown, the space has no layers at
            that resolution, or `out` holds other files or another bundle.
    """
    dev = get_device(device)
    precision = resolve_precision(dev, precision)
    chosen = get_space(space)
    resolution = chosen.check_resolution(resolution)
    keys = enumerate_layers(chosen, resolution)
    if not keys:
        raise RlnasError(
            f"space '{chosen.name}' has no layer keys at {resolution} px; choose another "
            "--resolution (`rlnas spaces NAME` lists what it supports)"
        )
    identity = {
        "device": dev.name,
        "precision": precision,
        "space": chosen.name,
        "space_digest": chosen.digest,
        "resolution": resolution,
        "batch": batch,
        "seed": seed,
    }
    rows, empties = _models(keys, batch)
    digest = _digest(identity, rows)
    bundle = LayerBundle(
        dev.name, precision, chosen.name, chosen.digest, resolution, batch, len(keys), digest
    )
    out = Path(out)
    if (out / BUNDLE).exists():
        if read_bundle(out).digest != digest:
            raise OutputError(
                f"--out {out} holds another bundle ({BUNDLE}); choose a new or empty folder"
            )
    elif out.is_dir() and any(out.iterdir()):
        raise OutputError(f"--out {out} is not empty; choose a new or empty folder for the bundle")
    check_folder(out, BUNDLE)
    models = out / "models"
    models.mkdir(parents=True, exist_ok=True)
    manifest = rows + [
        {"name": n, "role": "empty", "shape": "x".join(map(str, shape))}
        for shape, n in empties.items()
    ]
    total = len(manifest)
    for done, row in enumerate(manifest, 1):
        path = models / f"{row['name']}.onnx"
        if not path.exists():
            path.write_bytes(_onnx(row, dev, precision, batch, seed, empties))
        if progress is not None:
            progress(done, total)
    frame = pd.DataFrame(manifest)
    numbers = [f for f in KEY_FIELDS if str(KEY_SCHEMA.field(f).type).startswith("int")]
    frame[numbers] = frame[numbers].astype("Int64")  # the empty graphs have no key
    frame.to_csv(out / MANIFEST, index=False)
    (out / BUNDLE_ID).write_text(digest + "\n")
    next_step = f"rlnas tables import THIS_FOLDER --device {dev.name}"
    write_runners(out, precision, next_step)
    # Written last: a folder with bundle.json is a whole bundle.
    (out / BUNDLE).write_text(json.dumps(dataclasses.asdict(bundle), indent=2) + "\n")
    return bundle


def _onnx(row: dict, device: Device, precision: str, batch: int, seed: int, empties: dict) -> bytes:
    if row["role"] == "empty":
        shape = tuple(int(v) for v in str(row["shape"]).split("x"))
        return export_onnx(_Empty(), [shape])
    key = _key(row)
    shapes = input_shapes(key, batch)
    module = seeded(functools.partial(build_layer, key), seed)
    model = export_onnx(module, shapes)
    if precision == "int8":
        calibration = Workload.random(module, shapes, seed).calibration()
        model = quantize_qdq(model, calibration, for_tensorrt=device.backend == "tensorrt")
    return model


def read_bundle(folder: Path) -> LayerBundle:
    """The bundle.json of a layer bundle.

    Raises:
        TableError: No bundle.json, or one that is not a layer bundle's.
    """
    path = Path(folder) / BUNDLE
    if not path.is_file():
        raise TableError(
            f"{folder} is not a layer bundle (no {BUNDLE}); write one with "
            "`rlnas bundle --layers --device D --space S`"
        )
    try:
        values = json.loads(path.read_text())
        if values.get("kind") != KIND:
            raise ValueError("not a layer bundle")
        return LayerBundle(**values)
    except (ValueError, TypeError) as exc:
        raise TableError(f"{path} is not a layer bundle's ({exc}); rewrite the bundle") from None


def import_layer_results(
    folder: Path,
    results: Path | None = None,
    device: str | None = None,
    partial: bool = False,
) -> tuple[TableMeta, pd.DataFrame, list[str]]:
    """A measured table from a layer bundle's results.

    Args:
        folder: The bundle folder.
        results: The results folder (default: the bundle's `results/`).
        device: The device the user names; must be the bundle's.
        partial: Write what there is when layers are missing (the table says so).

    Returns:
        The table's metadata, its rows, and one line per model that has no timing.

    Raises:
        TableError: Another bundle's results, another device, or missing layers without
            `partial` (with how many and the fix).
    """
    folder = Path(folder)
    bundle = read_bundle(folder)
    if device is not None and device != bundle.device:
        raise TableError(
            f"--device {device} differs from the bundle's device '{bundle.device}' "
            f"({folder / BUNDLE}); pass --device {bundle.device}, or write a bundle for {device}"
        )
    results = Path(results) if results is not None else folder / "results"
    if not results.is_dir():
        raise TableError(
            f"{results} does not exist; run one of {', '.join(RUNNERS)} in {folder} on the device"
        )
    manifest = pd.read_csv(folder / MANIFEST, dtype={"name": str})
    timed, problems = collect_results(results, manifest["name"], bundle.digest)
    layers = manifest[manifest["role"] == "layer"]
    missing = [str(n) for n in manifest["name"] if n not in timed]
    if missing and not partial:
        raise TableError(
            f"{len(missing)} of {len(manifest)} models of {folder} have no timing (e.g. "
            f"{', '.join(missing[:3])}); run the runner again to finish them, or pass "
            "--partial to write a table of the layers that have one"
        )
    rows = _layer_rows(layers, timed)
    if not rows:
        raise TableError(f"no layer of {folder} has a timing; run a runner on the device first")
    frame = rows_frame(rows)
    first = next(iter(timed.values()))
    tools = sorted({r.tool for r in timed.values()})
    network_input = (bundle.batch, 3, bundle.resolution, bundle.resolution)
    empty = manifest[(manifest["role"] == "empty")]
    stem = dict(zip(empty["shape"], empty["name"], strict=True)).get(
        "x".join(map(str, network_input))
    )
    overhead_ms = timed[stem].median_ms if stem in timed else float(np.median(frame["overhead_ms"]))
    count = f"{len(rows)} of {len(layers)} layers" if len(rows) < len(layers) else ""
    method = (
        f"imported from {', '.join(tools)} results of bundle {bundle.digest} (each layer in its "
        "own run; median; overhead of an empty graph per input shape)"
        + (f"; partial: {count}" if count else "")
    )
    meta = TableMeta(
        device=bundle.device,
        backend=first.tool,
        backend_version=first.tool_version or first.tool,
        precision=bundle.precision,
        space=bundle.space,
        space_digest=bundle.space_digest,
        resolution=bundle.resolution,
        batch=bundle.batch,
        threads=0,
        host=first.device or f"{bundle.device} (not stated by the results)",
        source="measured",
        method=method,
        overhead_ms=overhead_ms,
    )
    return meta, frame, problems


def _layer_rows(layers: pd.DataFrame, timed: dict[str, Result]) -> list[dict[str, object]]:
    """Table rows of the bundle's layers that have a timing and an overhead timing."""
    rows: list[dict[str, object]] = []
    for record in layers.to_dict("records"):
        layer, overhead = timed.get(str(record["name"])), timed.get(str(record["overhead"]))
        if layer is None or overhead is None:
            continue
        key = _key(record)
        rows.append(
            {
                **key.as_dict(),
                "latency_ms": layer.median_ms,
                "p10_ms": layer.p10_ms,
                "p90_ms": layer.p90_ms,
                "mean_ms": layer.mean_ms,
                "std_ms": layer.std_ms,
                "runs": layer.runs,
                "overhead_ms": overhead.median_ms,
                "unstable": False,
            }
        )
    return rows


def _key(record: dict) -> LayerKey:
    """The layer key of a manifest row (CSV gives strings and numbers back)."""
    values: dict[str, Any] = {}
    for name in KEY_FIELDS:
        kind, value = str(KEY_SCHEMA.field(name).type), record[name]
        if kind == "bool":
            values[name] = value if isinstance(value, bool) else str(value) == "True"
        elif kind.startswith("int"):
            values[name] = int(value)
        else:
            values[name] = str(value)
    return LayerKey(**values)
