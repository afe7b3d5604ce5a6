"""End-to-end measurement, calibration, report and export."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnxruntime as ort
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from rlnas.cli import app
from rlnas.errors import CalibrationError, RlnasError
from rlnas.hardware.calibration import Calibration, fit_calibration
from rlnas.hardware.catalog import locate_table
from rlnas.hardware.endtoend import NetworkTimer, calibrate_table, kind_parts
from rlnas.hardware.profile import ProfileConfig, profile
from rlnas.hardware.table import load_table, save_calibration, save_table
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
    config = SearchConfig(latency_ms=8.0, strategy="random", proxy="params", budget=4, seed=3)
    return run_search(config, tmp_path / "run").out


def test_calibration_recovers_an_affine_map():
    raw = np.array([2.0, 4.0, 7.0, 9.0, 12.0])
    fitted = fit_calibration(raw, 1.2 * raw + 0.5)
    assert fitted.scale == pytest.approx(1.2)
    assert fitted.offset_ms == pytest.approx(0.5)
    assert fitted.mape_loo_pct == pytest.approx(0.0, abs=1e-9)
    assert fitted.mape_raw_pct > 10
    assert Calibration.from_json(fitted.to_json()) == fitted


def test_calibration_never_predicts_a_negative_latency():
    # The free fit of these would be 1.5 x raw - 0.3 ms: negative below 0.2 ms raw.
    raw = np.array([0.8, 1.0, 1.2, 1.5, 2.0])
    fitted = fit_calibration(raw, 1.5 * raw - 0.3)
    assert fitted.offset_ms == 0.0
    assert fitted.apply(0.01) > 0
    assert 1.2 < fitted.scale < 1.5


@pytest.mark.parametrize(
    ("raw", "measured", "match"),
    [([1.0, 2.0], [1.0, 2.0], "at least 3"), ([1.0, 2.0, -1.0], [1.0, 2.0, 3.0], "positive")],
)
def test_calibration_rejects_bad_input(raw, measured, match):
    with pytest.raises(CalibrationError, match=match):
        fit_calibration(raw, measured)


def test_unreadable_calibration_names_the_fix():
    with pytest.raises(CalibrationError, match="rlnas tables calibrate"):
        Calibration.from_json("{not json")


def test_calibration_is_stored_and_applied_by_both_predictors(tmp_path):
    shipped = cpu_table()
    path = tmp_path / "t.parquet"
    save_table(dataclasses.replace(shipped.meta, calibration=""), shipped.frame, path)
    arch = Architecture.sample(np.random.default_rng(0))
    plain = load_table(path)
    assert plain.calibration is None
    raw = plain.predict_ms(arch)
    save_calibration(path, Calibration(1.5, 0.25, 3, 10.0, 1.0))
    calibrated = load_table(path)
    assert calibrated.predict_ms(arch) == pytest.approx(1.5 * raw + 0.25)
    assert calibrated.raw_predict_ms(arch) == pytest.approx(raw)
    cost = calibrated.cost_model(arch.space)
    assert cost.total(arch.choices) == pytest.approx(calibrated.predict_ms(arch))
    assert len(calibrated) == len(plain)


def test_a_calibration_per_layer_kind_is_found_kept_and_applied_by_both_predictors(tmp_path):
    """Networks whose SE blocks run 1.5x their table figures and everything else 1.1x (as on
    a host with other relative speeds): the fit finds the kinds' scales, keeps them over the
    common scale, and both predictors apply them layer by layer."""
    shipped = cpu_table()
    path = tmp_path / "t.parquet"
    save_table(dataclasses.replace(shipped.meta, calibration=""), shipped.frame, path)
    table = load_table(path)
    rng = np.random.default_rng(0)
    archs = [Architecture.sample(rng) for _ in range(30)]
    parts = [kind_parts(table, a) for a in archs]
    truth = {"ir_se": 1.5}
    measured = [
        sum(truth.get(k, 1.1) * v for k, v in p.items()) + 1.1 * table.meta.overhead_ms + 0.3
        for p in parts
    ]
    raw = [table.raw_predict_ms(a) for a in archs]
    fitted = fit_calibration(raw, measured, parts=parts, overhead_ms=table.meta.overhead_ms)
    assert fitted.kind_scales["ir_se"] == pytest.approx(1.5, abs=0.03)
    assert fitted.kind_scales["ir"] == pytest.approx(1.1, abs=0.03)
    assert fitted.mape_loo_pct < 0.5 < fitted.mape_raw_pct
    assert "ir_se 1.50" in fitted.describe()
    assert Calibration.from_json(fitted.to_json()) == fitted
    with pytest.raises(CalibrationError, match="per layer"):
        fitted.apply(5.0)

    save_calibration(path, fitted)
    calibrated = load_table(path)
    other = Architecture.sample(rng)
    expected = sum(truth.get(k, 1.1) * v for k, v in kind_parts(table, other).items())
    predicted = calibrated.predict_ms(other)
    assert predicted == pytest.approx(expected + 1.1 * table.meta.overhead_ms + 0.3, rel=0.01)
    assert calibrated.cost_model(other.space).total(other.choices) == pytest.approx(predicted)

    # Where one scale explains the timings, the common scale is kept.
    alike = [1.2 * r + 0.4 for r in raw]
    assert not fit_calibration(raw, alike, parts=parts, overhead_ms=0.01).kind_scales


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
    for _ in range(3):
        arch = Architecture.sample(rng, space)
        measured = timer.time(arch, 224, passes=1).median_ms
        # Loose: the machine is shared; BENCHMARKS.md has the real fidelity figures.
        assert table.predict_ms(arch) / measured == pytest.approx(1.0, abs=0.35)


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


def test_calibrate_table_measures_and_stores_a_calibration(tmp_path, table_measured_here):
    shipped = load_table(table_measured_here)
    path = tmp_path / "resnet.parquet"
    save_table(dataclasses.replace(shipped.meta, calibration=""), shipped.frame, path)
    result = calibrate_table(path, archs=3, passes=1, timing=QUICK)
    assert len(result.frame) == 3 and (result.frame["measured_ms"] > 0).all()
    stored = load_table(path)
    assert stored.calibration == result.calibration
    assert len(stored) == len(shipped)


def test_a_table_from_another_host_is_calibrated_here_once(
    tmp_path, table_measured_here, monkeypatch
):
    import json
    import warnings

    from rlnas.errors import ForeignTableWarning
    from rlnas.hardware.endtoend import table_for_host
    from rlnas.hardware.host import calibration_path, fingerprint

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

    first = table_for_host(path, archs=3, timing=QUICK)  # calibrates here, for real
    assert first.calibration.startswith("this host's")
    stored = calibration_path(load_table(path).meta)
    assert stored.exists() and path.read_bytes() == before  # the table file is untouched
    made = stored.stat().st_mtime_ns
    again = table_for_host(path, archs=3, timing=QUICK)
    assert stored.stat().st_mtime_ns == made  # read, not measured again
    assert again.table.calibration == first.table.calibration
    arch = Architecture.sample(np.random.default_rng(0), get_space("resnet"))
    assert again.table.predict_ms(arch) == pytest.approx(
        first.table.calibration.apply(load_table(path).raw_predict_ms(arch))
    )
    # `tables calibrate` on a table measured elsewhere writes the host file too.
    result = calibrate_table(path, archs=3, passes=1, timing=QUICK)
    assert result.stored_at == stored and path.read_bytes() == before


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
        host = table_for_host(path, archs=3, timing=QUICK)
    assert any(
        issubclass(w.category, ForeignTableWarning) and "0.0.1" in str(w.message) for w in caught
    )
    assert host.calibration.startswith("the table's own, measured elsewhere")
    assert not (tmp_path / "calibrations").exists()
