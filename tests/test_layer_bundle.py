"""Layer bundles: every layer of a space as its own ONNX, timed by the bundle's own runner,
imported as a measured table; and what the import refuses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from rlnas.cli import app
from rlnas.errors import MissingEntriesError, OutputError, RlnasError, TableError
from rlnas.hardware.backends.quantize import quantize_qdq
from rlnas.hardware.layer_bundle import import_layer_results, write_layer_bundle
from rlnas.hardware.table import load_table, save_table
from rlnas.model.arch import Architecture
from rlnas.model.layers import enumerate_layers
from rlnas.model.network import export_onnx
from rlnas.model.ops import LayerKey, build_layer, input_shapes
from rlnas.model.space import get_space

runner = CliRunner()


def run_python(folder: Path, python: str = sys.executable) -> None:
    done = subprocess.run(
        [python, str(folder / "run_python.py"), "--seconds", "0.02", "--warmup-seconds", "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def timed(tmp_path_factory) -> Path:
    """The nbmacro layer bundle at 32 px (18 layers), timed by its Python runner."""
    folder = tmp_path_factory.mktemp("bundle") / "nbmacro"
    made = write_layer_bundle("cpu", "nbmacro", folder)
    assert made.layers == len(enumerate_layers("nbmacro", 32)) == 18
    run_python(folder)
    return folder


def copy(folder: Path, to: Path) -> Path:
    shutil.copytree(folder, to)
    return to


def test_a_timed_bundle_imports_as_a_measured_table_every_command_reads(timed, tmp_path):
    out = tmp_path / "imported.parquet"
    result = runner.invoke(
        app, ["tables", "import", str(timed), "--device", "cpu", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "18 layers measured by onnxruntime" in result.output
    table = load_table(out)
    meta = table.meta
    assert (meta.source, meta.device, meta.space) == ("measured", "cpu", "nbmacro")
    assert meta.resolution == 32
    assert meta.backend == "python" and meta.backend_version.startswith("onnxruntime ")
    assert "partial" not in meta.method and meta.overhead_ms > 0
    assert (table.frame["latency_ms"] > 0).all() and (table.frame["overhead_ms"] > 0).all()
    arch = Architecture.sample(np.random.default_rng(0), get_space("nbmacro"))
    assert table.predict_ms(arch) > 0
    shown = runner.invoke(app, ["tables", "show", str(out)])
    assert shown.exit_code == 0, shown.output
    # A search takes it as its table.
    searched = runner.invoke(
        app,
        [
            *("search", "--space", "nbmacro", "--table", str(out), "--latency-ms", "10"),
            *("--strategy", "random", "--budget", "5", "--no-calibrate"),
            *("--out", str(tmp_path / "run")),
        ],
    )
    assert searched.exit_code == 0, searched.output


def test_missing_layers_are_refused_or_written_as_partial(timed, tmp_path):
    folder = copy(timed, tmp_path / "b")
    (folder / "results" / "L0003.python.txt").unlink()
    (folder / "results" / "L0005.python.txt").write_text("runs = 3\n")  # no median
    with pytest.raises(TableError, match=r"2 of \d+ models .* have no timing .* --partial"):
        import_layer_results(folder)
    meta, frame, problems = import_layer_results(folder, partial=True)
    assert len(frame) == 16 and "partial: 16 of 18 layers" in meta.method
    assert len(problems) == 1 and problems[0].startswith("L0005: python result has no median")
    out = tmp_path / "partial.parquet"
    save_table(meta, frame, out)
    table = load_table(out)
    missing = enumerate_layers("nbmacro", 32)[3]
    with pytest.raises(MissingEntriesError):
        table.rows([missing])


def test_results_of_another_bundle_or_device_are_refused(timed, tmp_path):
    other = tmp_path / "other"
    write_layer_bundle("cpu", "nbmacro", other, seed=1)  # other weights: another digest
    before = sorted(p.name for p in other.rglob("*"))
    with pytest.raises(TableError, match=r"belongs to another bundle .* its own folder"):
        import_layer_results(other, results=timed / "results")
    with pytest.raises(TableError, match=r"--device t4 differs from the bundle's device 'cpu'"):
        import_layer_results(timed, device="t4")
    with pytest.raises(TableError, match="is not a layer bundle"):
        import_layer_results(tmp_path)
    assert sorted(p.name for p in other.rglob("*")) == before


def test_a_bundle_is_written_only_into_an_empty_folder(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(OutputError, match="is not empty"):
        write_layer_bundle("cpu", "nbmacro", mine)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    with pytest.raises(RlnasError, match="resolution"):
        write_layer_bundle("cpu", "nbmacro", tmp_path / "x", resolution=7)
    result = runner.invoke(app, ["bundle", "--layers", "--device", "cpu", "--space", "nbmacro",
                                 "--out", str(tmp_path / "cli")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "rlnas tables import" in result.output
    assert "expected: run_trtexec.sh about" in result.output


def test_int8_models_for_tensorrt_are_symmetric_with_float_biases():
    key = LayerKey("conv", 8, 16, 8, 8, 3, 1, 1, False, "relu")
    module = build_layer(key)
    shapes = input_shapes(key)
    calibration = [tuple(np.random.default_rng(i).standard_normal(s).astype(np.float32)
                         for s in shapes) for i in range(2)]  # fmt: skip
    model = onnx.load_from_string(
        quantize_qdq(export_onnx(module, shapes), calibration, for_tensorrt=True)
    )
    graph = model.graph
    initializers = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    quantizers = [n for n in graph.node if n.op_type == "QuantizeLinear"]
    assert quantizers
    for node in quantizers:  # symmetric: every zero point is 0
        if len(node.input) > 2:
            assert not initializers[node.input[2]].any()
    dequantized = {n.input[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    int32 = [n for n in dequantized if n in initializers and initializers[n].dtype == np.int32]
    assert int32 == []  # biases stay in float
    # ONNX Runtime's own form keeps asymmetric activations.
    plain = onnx.load_from_string(quantize_qdq(export_onnx(module, shapes), calibration))
    plain_init = {i.name: onnx.numpy_helper.to_array(i) for i in plain.graph.initializer}
    zero_points = [plain_init[n.input[2]] for n in plain.graph.node
                   if n.op_type == "QuantizeLinear" and len(n.input) > 2]  # fmt: skip
    assert any(z.any() for z in zero_points)


def python38() -> str | None:
    """A Python 3.8 with numpy and onnxruntime: RLNAS_PYTHON38 (set by .ci/run)."""
    path = os.environ.get("RLNAS_PYTHON38")
    return path if path and Path(path).exists() else None


@pytest.mark.skipif(python38() is None, reason="RLNAS_PYTHON38 (a Python 3.8 with onnxruntime) "
                    "is not set; .ci/run sets it")  # fmt: skip
def test_the_python_runner_runs_under_python_38(tmp_path, timed):
    python = python38()
    assert python is not None
    version = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert version.strip() == "(3, 8)"
    folder = tmp_path / "b38"
    write_layer_bundle("cpu", "nbmacro", folder)
    run_python(folder, python)
    meta, frame, problems = import_layer_results(folder)
    assert len(frame) == 18 and problems == []
    assert meta.backend_version.startswith("onnxruntime 1.19")


def test_whole_network_timings_fit_with_the_imported_table_as_prior(timed, tmp_path):
    """Where whole networks were timed too, `tables fit` takes the imported table as prior."""
    from rlnas.hardware.bundle import write_bundle

    imported = tmp_path / "imported.parquet"
    meta, frame, _ = import_layer_results(timed)
    save_table(meta, frame, imported)
    networks = tmp_path / "networks"
    write_bundle(get_space("nbmacro"), 32, 8, networks, seed=4)
    run_python(networks)
    out = tmp_path / "fitted.parquet"
    result = runner.invoke(
        app,
        [
            *("tables", "fit", "--from-dir", str(networks), "--device", "my-cpu"),
            *("--space", "nbmacro", "--prior", str(imported), "--out", str(out)),
        ],
    )
    assert result.exit_code == 0, result.output
    fitted = load_table(out).meta
    assert fitted.source == "fitted" and "prior tables: none" not in fitted.method
