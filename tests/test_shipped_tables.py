"""The tables in tables/ (installed as rlnas.tables): valid, complete, honest metadata."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from rlnas.cli import app
from rlnas.hardware.catalog import find_tables, locate_table, shipped_tables_dir
from rlnas.hardware.table import load_table
from rlnas.model.baselines import BASELINES
from rlnas.model.layers import enumerate_layers
from rlnas.model.space import get_space

SHIPPED = sorted(p for origin, p in find_tables() if origin == "shipped")
EXPECTED = [
    f"{device}_{precision}_{space}_224_b1"
    for space in ("mobilenet", "resnet")
    for device, precision in [
        ("cpu", "fp32"),
        ("cpu", "int8"),
        ("intel-cpu", "fp32"),
        ("intel-cpu", "bf16"),
    ]
] + [f"{d}_{p}_mobilenet_224_b1" for d in ("t4", "xavier-nx") for p in ("fp16", "int8")]


def test_expected_tables_are_installed():
    assert shipped_tables_dir().is_dir()
    assert set(EXPECTED) <= {p.stem for p in SHIPPED}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_table_is_complete_and_labelled(path):
    table = load_table(path)
    meta = table.meta
    assert meta.name == path.stem
    assert meta.batch == 1
    if meta.device in ("t4", "xavier-nx"):
        # Nothing here can measure them: they must say they are estimates, and how.
        assert meta.source == "estimated"
        assert "estimated" in meta.host and "roofline" in meta.method
    else:
        assert meta.source == "measured"
        assert meta.host and meta.host != "unknown"
        assert meta.threads == 1
    space = get_space(meta.space)
    table.check_space(space)
    assert table.missing(enumerate_layers(space, meta.resolution)) == []
    assert (table.frame["latency_ms"] > 0).all()


@pytest.mark.parametrize("device", ["cpu", "intel-cpu"])
def test_baselines_predicted_in_plausible_order(device):
    predicted = {}
    for name, baseline in BASELINES.items():
        _, path = locate_table(device, "fp32", baseline.space, 224)
        predicted[name] = load_table(path).predict_ms(baseline.architecture())
    # On a CPU, EfficientNet-B0 (more FLOPs, SE, SiLU) is slower than MobileNetV2,
    # and ResNet-34 is slower than ResNet-18 (twice the blocks).
    assert predicted["efficientnet_b0"] > predicted["mobilenetv2"]
    assert predicted["resnet34"] > 1.5 * predicted["resnet18"]


def test_tables_list_shows_shipped():
    result = CliRunner().invoke(app, ["tables", "list"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    for name in EXPECTED:
        assert name in result.output
    assert "shipped" in result.output and "measured" in result.output


def test_predict_command_on_shipped_table():
    result = CliRunner().invoke(
        app,
        ["predict", "--baseline", "mobilenetv2", "--baseline", "resnet18"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "cpu_fp32_mobilenet_224_b1" in result.output
    assert "cpu_fp32_resnet_224_b1" in result.output
    assert "3,504,872" in result.output


def test_predict_without_table_says_how_to_make_one():
    result = CliRunner().invoke(
        app, ["predict", "--baseline", "resnet18", "--device", "t4", "--precision", "fp16"]
    )
    assert result.exit_code == 2
    assert "rlnas profile --device t4 --precision fp16 --space resnet" in result.stderr


def test_predict_takes_the_space_from_the_table_file():
    import numpy as np

    from rlnas.model.arch import Architecture

    arch = str(Architecture.sample(np.random.default_rng(0), "fbnet"))
    table = str(shipped_tables_dir() / "cpu_fp32_fbnet_32_b1.parquet")
    base = ["predict", arch, "--table", table, "--no-calibrate"]
    result = CliRunner().invoke(app, [*base, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert '"space": "fbnet"' in result.stdout
    other = CliRunner().invoke(app, [*base, "--space", "nb201"])
    assert other.exit_code != 0
    assert "is for space 'fbnet', not 'nb201'" in other.stderr


def test_a_search_takes_the_space_from_the_table_file(tmp_path):
    from rlnas.search.config import SearchConfig

    table = shipped_tables_dir() / "cpu_fp32_fbnet_32_b1.parquet"
    assert SearchConfig(latency_ms=5, table=table).space == "fbnet"
    assert SearchConfig(latency_ms=5, table=table, space="fbnet").space == "fbnet"
    assert SearchConfig(latency_ms=5).space == "mobilenet"
    out = tmp_path / "run"
    base = ["search", "--strategy", "random", "--latency-ms", "5", "--table", str(table)]
    other = CliRunner().invoke(app, [*base, "--space", "nb201", "--out", str(out)])
    assert other.exit_code == 2, other.output
    assert "is for space 'fbnet', not 'nb201'" in other.stderr
    assert len(other.stderr.strip().splitlines()) == 1
    assert not out.exists()
