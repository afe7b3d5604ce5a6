"""Bundles of networks to time elsewhere, their runners' results, and the table fitted from them."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from rlnas.cli import app
from rlnas.errors import OutputError, RlnasError
from rlnas.hardware.bundle import choose_networks, read_results, write_bundle
from rlnas.hardware.runner_scripts import RUNNERS
from rlnas.hardware.table import load_table
from rlnas.model.layers import arch_layers, enumerate_layers
from rlnas.model.space import get_space

runner = CliRunner()

TRTEXEC = """[I] === Performance summary ===
[I] Throughput: 1615.02 qps
[I] Latency: min = 0.65 ms, max = 0.9 ms, mean = 0.7 ms, median = 0.69 ms, percentile(90%) = 0.72 ms
[I] GPU Compute Time: min = 0.58 ms, max = 0.8 ms, mean = 0.61 ms, median = 0.6125 ms, \
percentile(90%) = 0.63 ms
"""
BENCHMARK_APP = """[ INFO ] Count:            1000 iterations
[ INFO ] Latency:
[ INFO ]    Median:     2.63 ms
[ INFO ]    Average:    2.70 ms
[ INFO ] Throughput:   370.50 FPS
"""


def test_choice_covers_every_layer_then_spreads():
    space = get_space("nbmacro")
    archs = choose_networks(space, 32, 12, seed=0, cost=lambda a: float(a.index))
    assert len({str(a) for a in archs}) == 12
    covered = {k for a in archs for k in arch_layers(a, 32)}
    assert covered == set(enumerate_layers(space, 32))


def test_bundle_runs_with_onnxruntime_and_fits(tmp_path):
    """The real ONNX Runtime runner times the bundle; `tables fit --from-dir` reads it."""
    folder = tmp_path / "bundle"
    manifest = write_bundle(get_space("nbmacro"), 32, 8, folder, seed=1)
    assert len(manifest) == 8 and len(list((folder / "models").glob("*.onnx"))) == 8
    assert all((folder / name).is_file() for name in RUNNERS)
    done = subprocess.run(
        [sys.executable, str(folder / "run_python.py"), "--seconds", "0.05"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found, problems = read_results(folder)
    assert len(found) == 8 and set(found["tool"]) == {"python"} and problems == []
    assert (found["latency_ms"] > 0).all()
    out = tmp_path / "fitted.parquet"
    result = runner.invoke(
        app,
        [
            *("tables", "fit", "--from-dir", str(folder), "--device", "my-cpu"),
            *("--space", "nbmacro", "--out", str(out)),
        ],
    )
    assert result.exit_code == 0, result.output
    table = load_table(out)
    assert table.meta.source == "fitted" and "8 whole-network timings" in table.meta.method
    assert "python" in table.meta.host


def test_results_of_trtexec_and_benchmark_app_are_parsed(tmp_path):
    folder = tmp_path / "bundle"
    write_bundle(get_space("nbmacro"), 32, 3, folder, seed=2)
    (folder / "results").mkdir()
    (folder / "results" / "0000.trtexec.txt").write_text(TRTEXEC)
    (folder / "results" / "0001.benchmark_app.txt").write_text(BENCHMARK_APP)
    (folder / "results" / "0002.trtexec.txt").write_text("[E] Engine could not be created")
    found, problems = read_results(folder)  # a failed network is named; the rest is read
    assert list(found["latency_ms"]) == [0.6125, 2.63]
    assert list(found["tool"]) == ["trtexec", "benchmark_app"]
    assert len(problems) == 1 and problems[0].startswith("network 0002: trtexec printed no")
    assert "[E] Engine could not be created" in problems[0]


def test_bad_folders_are_refused(tmp_path):
    with pytest.raises(RlnasError, match="is not a bundle"):
        read_results(tmp_path)
    folder = tmp_path / "bundle"
    write_bundle(get_space("nbmacro"), 32, 2, folder, seed=3)
    with pytest.raises(RlnasError, match="holds no timings; run one of"):
        read_results(folder)
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="folder of other files"):
        write_bundle(get_space("nbmacro"), 32, 2, other)
    assert (other / "notes.txt").read_text() == "keep me"


def test_cli_bundle_names_the_next_step(tmp_path):
    result = runner.invoke(
        app,
        ["bundle", "--device", "t4", "--space", "nbmacro", "--archs", "3", "--out", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    assert "rlnas tables fit --from-dir" in result.output
