"""Estimated tables for devices without measurements: zoo, roofline model, calibration."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from typer.testing import CliRunner

from rlnas.cli import app
from rlnas.errors import RlnasError
from rlnas.hardware.catalog import locate_table
from rlnas.hardware.estimate import calibrate, estimate_table, fit_model, load_published
from rlnas.hardware.profile import ProfileConfig, plan_profile
from rlnas.hardware.roofline import SPECS, CostModel, OpArrays
from rlnas.hardware.table import load_table
from rlnas.model.baselines import get_baseline
from rlnas.model.ops import LayerKey, layer_primitives
from rlnas.model.zoo import NETWORKS, network_ops

ESTIMATED = [(d, p) for d in ("t4", "xavier-nx") for p in ("fp16", "int8")]


@pytest.mark.parametrize(
    ("name", "params"),
    [
        # Published counts (torchvision documentation); ours omit biases and batch norm.
        ("ResNet18", 11_689_512),
        ("ResNet50", 25_557_032),
        ("VGG16", 138_357_544),
        ("MobileNet_v2", 3_504_872),
        ("MobileNet_v3_L", 5_483_032),
        ("EfficientNet_B0", 5_288_548),
        ("DenseNet121", 7_978_856),
        ("GoogleNet_v1", 6_624_904),
    ],
)
def test_published_networks_have_their_published_size(name, params):
    weights = sum(op.weights for op in network_ops(name))
    assert weights == pytest.approx(params, rel=0.06)


def test_every_published_network_can_be_written_out():
    for name in NETWORKS:
        ops = network_ops(name)
        assert ops and all(op.macs >= 0 and op.out_elems >= 0 for op in ops)


def test_fused_activations_remove_only_activation_kernels():
    separate = network_ops("EfficientNet_B0")
    fused = network_ops("EfficientNet_B0", fused_activations=True)
    assert len(fused) < len(separate)
    assert [o for o in separate if not o.activation] == fused
    assert network_ops("ResNet18") == network_ops("ResNet18", fused_activations=True)


@pytest.mark.parametrize(("device", "precision"), ESTIMATED)
def test_shipped_estimated_table_has_the_keys_profile_enumerates(device, precision, tmp_path):
    origin, path = locate_table(device, precision, "mobilenet", 224)
    assert origin == "shipped"
    table = load_table(path)
    plan = plan_profile(
        ProfileConfig(device=device, precision=precision, out=tmp_path / "new.parquet")
    )
    assert set(table.keys()) == set(plan.todo)
    assert table.meta.source == "estimated"
    assert "leave-one-out" in table.meta.method
    assert "estimated" in table.meta.host


def test_space_layers_decompose_like_the_published_network():
    """MobileNetV2 from the table's layer entries equals the zoo's MobileNetV2 op list."""
    table = load_table(locate_table("xavier-nx", "int8", "mobilenet", 224)[1])
    model = calibrate("xavier-nx").model
    zoo = model.network_ms(OpArrays.of(network_ops("MobileNet_v2")), "int8")
    assert table.predict_ms(get_baseline("mobilenetv2").architecture()) == pytest.approx(zoo)


def test_fit_recovers_a_known_model():
    spec = SPECS["t4"]
    truth = dataclasses.replace(
        CostModel.prior(spec),
        efficiency={**CostModel.prior(spec).efficiency, "conv": 0.25, "conv1x1": 0.6},
        fixed_ms=0.02,
    )
    networks = {name: OpArrays.of(network_ops(name)) for name in NETWORKS}
    published = {name: truth.best_ms(ops) for name, ops in networks.items()}
    fitted = fit_model(spec, networks, published)
    for name, ops in networks.items():
        assert fitted.best_ms(ops) == pytest.approx(published[name], rel=0.05)


@pytest.mark.parametrize("device", ["t4", "xavier-nx"])
def test_calibration_reports_leave_one_out_errors(device):
    calibrated = calibrate(device)
    assert len(calibrated.errors) == len(load_published(device))
    fitted_error = np.median(
        np.abs(calibrated.errors["fitted_ms"] / calibrated.errors["published_ms"] - 1)
    )
    # Left-out networks are predicted worse than fitted ones, and still usefully.
    assert calibrated.loo_mdape_pct >= fitted_error * 100 - 1e-9
    assert calibrated.loo_mdape_pct < 30
    assert calibrated.loo_kendall_tau > 0.6


def test_layer_ops_refuse_ops_without_a_decomposition():
    key = LayerKey("nb201_reduce", 16, 32, 32, 32, 3, 2, 1, False, "relu")
    with pytest.raises(RlnasError, match="no decomposition"):
        layer_primitives(key)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"device": "t4", "precision": "fp32"}, "fp16 or int8"),
        ({"device": "t4", "precision": "fp16", "batch": 4}, "batch-1"),
        ({"device": "cpu", "precision": "fp16"}, "t4, xavier-nx"),
    ],
)
def test_estimate_rejects_what_it_cannot_estimate(kwargs, match, tmp_path):
    with pytest.raises(RlnasError, match=match):
        estimate_table(out=tmp_path / "t.parquet", **kwargs)


def test_published_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "p.csv"
    bad.write_text("device,model\nt4,ResNet18\n")
    with pytest.raises(RlnasError, match="lacks column"):
        load_published("t4", bad)
    bad.write_text("device,model,latency_ms,notes\nt4,ResNet18,0.6,baseline\n")
    with pytest.raises(RlnasError, match="at least 4"):
        load_published("t4", bad)


def test_search_on_xavier_uses_the_estimated_table_and_says_so_once(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "search",
            "--device",
            "xavier-nx",
            "--latency-ms",
            "3",
            "--budget",
            "5",
            "--proxy",
            "params",
            "--out",
            str(tmp_path / "run"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("estimated table") == 1
    assert "xavier-nx_fp16_mobilenet_224_b1" in result.output
    config = (tmp_path / "run" / "config.json").read_text()
    assert '"precision": "fp16"' in config and '"source": "estimated"' in config


def test_tables_list_shows_estimated_tables():
    result = CliRunner().invoke(app, ["tables", "list"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    assert "estimated" in result.output
