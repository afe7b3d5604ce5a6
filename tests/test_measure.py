"""End-to-end measurement, calibration, report and export."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import onnxruntime as ort
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from rlnas.cli import app
from rlnas.errors import CalibrationError, RlnasError
from rlnas.hardware.calibration import Calibration
from rlnas.hardware.catalog import locate_table
from rlnas.hardware.endtoend import NetworkTimer, calibrate_table
from rlnas.hardware.host import host_fit_path
from rlnas.hardware.profile import ProfileConfig, profile
from rlnas.hardware.table import load_table, save_table
from rlnas.hardware.timing import TimingConfig
from rlnas.model.arch import Architecture
from rlnas.model.network import build_network
from rlnas.model.space import get_space
from rlnas.results.export import export_run
from rlnas.results.measure import BASELINE_NAMES, MeasureConfig, measure_run
from rlnas.results.report import beaten, write_report
from rlnas.search.config import SearchConfig
from rlnas.search.run import run_search
from rlnas.search.run_folder import RunFolder

QUICK = TimingConfig(warmup=2, min_runs=5, min_time_ms=10.0, retries=0)


def cpu_table():
    return load_table(locate_table("cpu", "fp32", "mobilenet", 224)[1])


@pytest.fixture
def run_folder(tmp_path):
    """A finished tiny run on the shipped cpu fp32 table (params proxy: no network built)."""
    config = SearchConfig.of(latency_ms=8.0, strategy="random", proxy="params", budget=4, seed=3)
    return run_search(config, tmp_path / "run").out


def test_unreadable_calibration_names_the_fix():
    with pytest.raises(CalibrationError, match="rlnas tables calibrate"):
        Calibration.from_json("{not json")


def test_a_stored_legacy_calibration_is_applied_by_both_predictors(tmp_path):
    shipped = cpu_table()
    path = tmp_path / "t.parquet"
    save_table(dataclasses.replace(shipped.meta, calibration=""), shipped.frame, path)
    arch = Architecture.sample(np.random.default_rng(0))
    plain = load_table(path)
    assert plain.calibration is None
    raw = plain.predict_ms(arch)
    legacy = Calibration(1.5, 0.25, 3, 10.0, 1.0)  # as earlier releases stored it
    save_table(dataclasses.replace(plain.meta, calibration=legacy.to_json()), plain.frame, path)
    calibrated = load_table(path)
    assert calibrated.predict_ms(arch) == pytest.approx(1.5 * raw + 0.25)
    assert calibrated.raw_predict_ms(arch) == pytest.approx(raw)
    cost = calibrated.cost_model(arch.space)
    assert cost.total(arch.choices) == pytest.approx(calibrated.predict_ms(arch))
    assert len(calibrated) == len(plain)


def test_table_without_calibration_metadata_still_loads(tmp_path):
    shipped = cpu_table()
    path = tmp_path / "old.parquet"
    save_table(shipped.meta, shipped.frame, path)
    arrow = pq.read_table(path)
    metadata = {k: v for k, v in arrow.schema.metadata.items() if k != b"rlnas.calibration"}
    pq.write_table(arrow.replace_schema_metadata(metadata), path)
    assert load_table(path).calibration is None


def test_shipped_measured_tables_are_calibrated():
    table = cpu_table()
    assert table.calibration is not None
    assert 0.8 < table.calibration.scale < 1.5
    assert table.calibration.mape_loo_pct < table.calibration.mape_raw_pct


@pytest.fixture(scope="module")
def table_measured_here(tmp_path_factory):
    """The resnet space (21 layers) profiled on this machine: a table's fidelity and its
    calibration hold on the host that measured it, whatever host the shipped tables came from."""
    out = tmp_path_factory.mktemp("here") / "resnet_here.parquet"
    profile(ProfileConfig(space="resnet", out=out, timing=QUICK))
    return out


def test_prediction_matches_end_to_end_measurement_of_small_networks(table_measured_here):
    table = load_table(table_measured_here)
    timer = NetworkTimer("cpu", "fp32", timing=QUICK)
    space = get_space("resnet")
    rng = np.random.default_rng(7)
    archs = [Architecture.sample(rng, space) for _ in range(5)]
    ratios = [table.predict_ms(a) / timer.time(a, 224, passes=2).median_ms for a in archs]
    # Loose, and over the median of five: the machine is shared, and one network timed while
    # another job runs can be 50% off. BENCHMARKS.md has the real fidelity figures.
    assert float(np.median(ratios)) == pytest.approx(1.0, abs=0.35), ratios


def test_network_timer_refuses_a_device_that_is_not_here():
    with pytest.raises(RlnasError, match="xavier-nx"):
        NetworkTimer("xavier-nx", "fp16")


def test_measure_run_writes_results_and_report(run_folder):
    config = MeasureConfig(device="cpu", top=2, passes=1, timing=QUICK)
    frame = measure_run(run_folder, config)
    assert list(frame["name"]) == ["rank1", "rank2", *BASELINE_NAMES]
    assert (frame["measured_ms"] > 0).all()
    assert frame["predicted_ms"].notna().all()  # resnet18 is predicted from the resnet table
    stored = pd.read_parquet(run_folder / "measured.parquet")
    assert len(stored) == len(frame)
    evaluations = RunFolder.open(run_folder).ranked()
    assert frame["arch"].iloc[0] == evaluations["arch"].iloc[0]
    markdown = (run_folder / "report.md").read_text()
    for name in ["rank1", "rank2", *BASELINE_NAMES]:
        assert name in markdown
    assert (run_folder / "report.png").stat().st_size > 10_000
    # Measuring again replaces this device's rows instead of piling them up.
    measure_run(run_folder, dataclasses.replace(config, baselines=False))
    assert len(pd.read_parquet(run_folder / "measured.parquet")) == len(frame)


def test_beaten_needs_faster_and_at_least_as_good():
    candidate = pd.Series({"measured_ms": 5.0, "score": 0.6})
    baselines = pd.DataFrame(
        {
            "name": ["slow_worse", "slow_better", "fast_worse"],
            "measured_ms": [8.0, 9.0, 4.0],
            "score": [0.5, 0.7, 0.1],
        }
    )
    wins = beaten(candidate, baselines)
    assert list(wins["name"]) == ["slow_worse"]
    assert wins["improvement_pct"].iloc[0] == pytest.approx(37.5)
    assert wins["score_diff"].iloc[0] == pytest.approx(0.1)


def test_report_without_measurements_names_the_command(run_folder):
    with pytest.raises(RlnasError, match="rlnas measure"):
        write_report(run_folder)


def test_exported_onnx_runs_and_matches_torch(run_folder, tmp_path):
    path = export_run(run_folder, rank=1, fmt="onnx", out=tmp_path / "net.onnx")
    arch = RunFolder.open(run_folder).candidate(1)["arch"]
    torch.manual_seed(0)
    module = build_network(Architecture.decode(arch, "mobilenet"), 224)
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: x})
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(onnx_out, expected, rtol=1e-3, atol=1e-4)


def test_exported_torch_program_loads_and_gives_the_same_output(run_folder):
    path = export_run(run_folder, rank=2, fmt="torch")
    assert path == run_folder / "export" / "rank2.pt2"
    loaded = torch.export.load(str(path)).module()
    torch.manual_seed(0)
    arch = RunFolder.open(run_folder).candidate(2)["arch"]
    module = build_network(Architecture.decode(arch, "mobilenet"), 224)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), module(x))


def test_exported_json_describes_the_architecture(run_folder):
    description = json.loads(export_run(run_folder, rank=1, fmt="json").read_text())
    arch = Architecture.decode(description["arch"], description["space"])
    assert description["space_digest"] == arch.space.digest
    assert description["params"] == sum(p.numel() for p in build_network(arch).parameters())
    assert description["rank"] == 1


@pytest.mark.parametrize(
    ("rank", "fmt", "match"), [(99, "onnx", "rank 99 is out of range"), (1, "tflite", "onnx")]
)
def test_export_rejects_bad_rank_and_format(run_folder, rank, fmt, match):
    with pytest.raises(RlnasError, match=match):
        export_run(run_folder, rank=rank, fmt=fmt)


def test_cli_measure_report_export(run_folder):
    runner = CliRunner()
    result = runner.invoke(
        app, ["measure", str(run_folder), "--top", "1", "--no-baselines", "--passes", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "rank1" in result.output and "measured" in result.output
    result = runner.invoke(app, ["report", str(run_folder)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["export", str(run_folder), "--format", "json"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["export", str(run_folder / "nope")])
    assert result.exit_code == 2
    assert "not a run folder" in result.output


def test_calibrate_table_times_fits_and_stores_a_table_for_this_host(tmp_path, table_measured_here):
    shipped = load_table(table_measured_here)
    path = tmp_path / "resnet.parquet"
    save_table(dataclasses.replace(shipped.meta, calibration=""), shipped.frame, path)
    before = path.read_bytes()
    result, stored = calibrate_table(path, seconds=1, timing=QUICK, min_archs=5, max_archs=6)
    assert 5 <= len(result.frame) <= 6 and (result.frame["measured_ms"] > 0).all()
    assert result.floor_pct >= 0 and result.fit.networks == len(result.frame)
    assert path.read_bytes() == before  # the table itself is never rewritten
    assert stored == host_fit_path(shipped.meta)
    fitted = load_table(stored)
    assert fitted.meta.source == "fitted" and len(fitted) == len(shipped)
    assert fitted.meta.method.startswith(f"adapted to this host from {shipped.meta.name}")
    assert f"prior tables: {shipped.meta.name}" in fitted.meta.method
    line = result.summary()
    assert f"{len(result.frame)} networks timed" in line and "held-out error" in line
    assert ("at the floor" in line) != ("above the floor; for this host's own table" in line)


def test_a_table_from_another_host_is_adapted_here_once(tmp_path, table_measured_here, monkeypatch):
    import json
    import warnings

    from rlnas.errors import ForeignTableWarning
    from rlnas.hardware.endtoend import table_for_host
    from rlnas.hardware.host import busy_note, fingerprint

    monkeypatch.setenv("RLNAS_CALIBRATIONS", str(tmp_path / "calibrations"))
    here = load_table(table_measured_here)
    assert json.loads(here.meta.host_fingerprint) == fingerprint()
    assert table_for_host(table_measured_here).calibration.startswith("the table's own")

    path = tmp_path / "other.parquet"
    other = dataclasses.replace(here.meta, host="Some Other CPU", host_fingerprint="")
    save_table(other, here.frame, path)
    before = path.read_bytes()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plain = table_for_host(path, calibrate=False)
    assert any(issubclass(w.category, ForeignTableWarning) for w in caught)
    assert "rlnas tables calibrate" in str(caught[-1].message)
    assert "measured on another host" in plain.calibration

    first = table_for_host(path, seconds=1, timing=QUICK, max_archs=5)  # for real
    assert first.calibration.startswith("this host's") and "5 networks timed" in first.summary
    stored = host_fit_path(load_table(path).meta)
    # Timed while other work held the CPU: the summary says so, with the command to redo it.
    busy = (os.cpu_count() or 1) * 2.0
    monkeypatch.setattr(os, "getloadavg", lambda: (busy, busy, busy))
    assert busy_note(here.meta).startswith(f"; this host was busy as it timed (load {busy:.1f}")
    assert f"rlnas tables calibrate {here.meta.name}` when it is quiet" in busy_note(here.meta)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    assert busy_note(here.meta) == ""
    assert stored.exists() and path.read_bytes() == before  # the table file is untouched
    made = stored.stat().st_mtime_ns
    again = table_for_host(path, seconds=1, timing=QUICK, max_archs=5)
    assert stored.stat().st_mtime_ns == made and again.summary == ""  # read, not timed again
    arch = Architecture.sample(np.random.default_rng(0), get_space("resnet"))
    assert again.table.predict_ms(arch) == pytest.approx(first.table.predict_ms(arch))
    assert again.table.meta.source == "fitted"

    # A half-written or damaged adaptation is named with its fix, never silently replaced.
    stored.write_bytes(b"not parquet")
    with pytest.raises(RlnasError, match=r"unreadable .* delete that file"):
        table_for_host(path)
    stored.unlink()
    assert table_for_host(path, calibrate=False).table.meta.source == "measured"


def test_an_interrupted_adaptation_leaves_nothing_behind(
    tmp_path, table_measured_here, monkeypatch
):
    """kill -9 in the middle of a first use: nothing is written before the fit, so the next
    use starts again."""
    import subprocess
    import sys
    import time

    calibrations = tmp_path / "calibrations"
    path = tmp_path / "other.parquet"
    here = load_table(table_measured_here)
    save_table(dataclasses.replace(here.meta, host_fingerprint=""), here.frame, path)
    code = (
        "from rlnas.hardware.endtoend import table_for_host\n"
        f"table_for_host({str(path)!r}, seconds=600)\n"
    )
    env = {**os.environ, "RLNAS_CALIBRATIONS": str(calibrations)}
    child = subprocess.Popen([sys.executable, "-c", code], env=env)
    time.sleep(8)
    child.kill()
    child.wait()
    assert not calibrations.exists() or not list(calibrations.iterdir())


def test_a_table_of_another_runtime_version_warns_instead_of_failing(tmp_path, monkeypatch):
    import warnings

    from rlnas.errors import ForeignTableWarning
    from rlnas.hardware.endtoend import table_for_host

    monkeypatch.setenv("RLNAS_CALIBRATIONS", str(tmp_path / "calibrations"))
    shipped = load_table(locate_table("cpu", "fp32", "resnet", 224)[1])
    path = tmp_path / "old.parquet"
    save_table(dataclasses.replace(shipped.meta, backend_version="0.0.1"), shipped.frame, path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        host = table_for_host(path, seconds=1, timing=QUICK, max_archs=5)
    assert any(
        issubclass(w.category, ForeignTableWarning) and "0.0.1" in str(w.message) for w in caught
    )
    assert host.calibration.startswith("the table's own, measured elsewhere")
    assert not (tmp_path / "calibrations").exists()


def test_cli_tables_calibrate_says_in_one_line_how_far_it_got(tmp_path, table_measured_here):
    path = tmp_path / "other.parquet"
    here = load_table(table_measured_here)
    save_table(dataclasses.replace(here.meta, host_fingerprint=""), here.frame, path)
    result = CliRunner().invoke(
        app, ["tables", "calibrate", str(path), "--seconds", "1", "--archs", "5"]
    )
    assert result.exit_code == 0, result.output
    assert "adapted to this host: 5 networks timed in" in result.output
    assert "stored for this host in" in result.output
    shown = CliRunner().invoke(
        app,
        [
            "predict",
            "--space",
            "resnet",
            "--table",
            str(path),
            "--baseline",
            "resnet18",
            "--format",
            "json",
        ],
    )
    assert shown.exit_code == 0, shown.output
    assert "adapted to this host from" in shown.output


def test_a_gpu_table_is_recognised_on_its_own_gpu(tmp_path, table_measured_here, monkeypatch):
    """A GPU table's host is the GPU (nvidia-smi's name or a Jetson's model), not the CPU:
    on the same GPU it is this host's own; on another one it is adapted under its own name."""
    import json

    from rlnas.hardware import host

    here = load_table(table_measured_here)
    meta = dataclasses.replace(
        here.meta, device="cuda", host="NVIDIA H200", host_fingerprint='{"gpu": "NVIDIA H200"}'
    )
    monkeypatch.setattr(host, "gpu_names", lambda: ("NVIDIA H200",))
    assert host.fingerprint(gpu=True) == json.loads(meta.host_fingerprint)
    assert host.measured_here(meta)
    on_h200 = host.host_fit_path(meta)
    monkeypatch.setattr(host, "gpu_names", lambda: ("Tesla T4",))
    assert not host.measured_here(meta)
    assert host.host_fit_path(meta) != on_h200
    # The CPU's fingerprint never stands for a GPU table's host.
    cpu_meta = dataclasses.replace(meta, host_fingerprint=json.dumps(host.fingerprint()))
    assert not host.measured_here(cpu_meta)


def test_jetson_model_comes_from_the_device_tree(tmp_path, monkeypatch):
    from rlnas.hardware import devices

    model = tmp_path / "model"
    model.write_bytes(b"NVIDIA Jetson Xavier NX Developer Kit\x00")
    monkeypatch.setattr(devices, "DEVICE_TREE_MODEL", model)
    assert devices.jetson_model() == "NVIDIA Jetson Xavier NX Developer Kit"
    model.write_bytes(b"Raspberry Pi 4 Model B\x00")
    assert devices.jetson_model() == ""
