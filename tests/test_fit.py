"""Tables fitted from whole-network timings: the fit, the table it writes, and its errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from rlnas.cli import app
from rlnas.errors import ArchitectureError, RlnasError, TableError
from rlnas.hardware.catalog import shipped_tables_dir
from rlnas.hardware.fit import fit_latencies, macs_prior, operators, prior_costs, read_timings
from rlnas.hardware.table import load_table
from rlnas.model.arch import Architecture
from rlnas.model.fbnet import from_arch_str
from rlnas.model.ops import LayerKey
from rlnas.model.space import get_space

runner = CliRunner()
NBMACRO_TABLE = shipped_tables_dir() / "cpu_fp32_nbmacro_32_b1.parquet"


@pytest.fixture(scope="module")
def fbnet(shared_data) -> pd.DataFrame:
    return pd.read_parquet(shared_data / "fbnet" / "fbnet_latency.parquet")


def test_operators_count_modules_and_the_residual_sum():
    # expansion conv+BN+ReLU, shuffle, depthwise conv+BN+ReLU, projection conv+BN, residual
    ops, written = operators(LayerKey("irf_g2", 24, 24, 8, 8, 3, 1, 1, act="relu"))
    assert ops == 3 + 1 + 3 + 2 + 1
    assert written == 10 * 24 * 64
    # a stride-2 block has no residual sum; a projection without activation has no ReLU
    assert operators(LayerKey("irf", 24, 32, 8, 8, 3, 2, 6, act="relu"))[0] == 8
    assert operators(LayerKey("conv", 32, 64, 8, 8, 1, 2, act="none"))[0] == 2


def test_a_sum_of_layers_is_recovered():
    """Timings that are exactly a table's sums are fitted back to within 1%."""
    table = load_table(NBMACRO_TABLE)
    space = get_space("nbmacro")
    rng = np.random.default_rng(0)
    archs = [Architecture.from_index(int(i), space) for i in rng.choice(space.size, 160, False)]
    truth = np.array([table.raw_predict_ms(a) for a in archs])
    result = fit_latencies(archs[:100], truth[:100], 32, macs_prior(space, 32))
    predicted = np.array([result.predict_ms(a, 32) for a in archs[100:]])
    assert np.abs(predicted / truth[100:] - 1).max() < 0.01
    assert result.cv_within10 == 1.0
    assert all(v >= 0 for v in result.latency.values()) and result.fixed_ms >= 0


def test_real_device_timings_from_100_networks(fbnet):
    """HELP's Xeon Silver 4114 timings of FBNet networks: fitted on 100, held out on 1,000."""
    archs = [from_arch_str(s) for s in fbnet["arch_str"][:1100]]
    y = fbnet["silver_4114_ms"].to_numpy()[:1100]
    result = fit_latencies(archs[:100], y[:100], 32, macs_prior(get_space("fbnet"), 32))
    predicted = np.array([result.predict_ms(a, 32) for a in archs[100:]])
    within = np.mean(np.abs(predicted / y[100:] - 1) <= 0.10)
    assert within >= 0.9
    assert stats.spearmanr(predicted, y[100:])[0] >= 0.8
    # the cross-validated figures in the metadata describe held-out networks honestly
    assert abs(result.cv_within10 - within) < 0.1


def test_bad_timings_are_refused():
    space = get_space("nbmacro")
    archs = [Architecture.from_index(i, space) for i in range(6)]
    with pytest.raises(RlnasError, match="at least 5 timed networks"):
        fit_latencies(archs[:3], [1.0, 2.0, 3.0], 32, macs_prior(space, 32))
    with pytest.raises(RlnasError, match="latency nan ms of network"):
        fit_latencies(archs, [1.0, 2.0, np.nan, 1, 1, 1], 32, macs_prior(space, 32))


def test_prior_table_must_serve_the_space():
    costs, name = prior_costs(str(NBMACRO_TABLE), get_space("nbmacro"), 32)
    assert name == "cpu_fp32_nbmacro_32_b1" and all(v >= 0 for v in costs.values())
    with pytest.raises(TableError, match="is for space 'nbmacro'"):
        prior_costs(str(NBMACRO_TABLE), get_space("fbnet"), 32)


def test_read_timings_names_the_problem(tmp_path):
    space = get_space("nbmacro")
    good = str(Architecture.from_index(5, space))
    path = tmp_path / "t.csv"
    pd.DataFrame({"arch": [good], "ms": [1.0]}).to_csv(path, index=False)
    with pytest.raises(RlnasError, match=r"lack column.*latency_ms"):
        read_timings(path, space)
    pd.DataFrame({"arch": [good, "relu|c64:oops"], "latency_ms": [1.0, 2.0]}).to_csv(path)
    with pytest.raises(ArchitectureError, match="row 2"):
        read_timings(path, space)
    with pytest.raises(RlnasError, match="does not exist"):
        read_timings(tmp_path / "none.csv", space)


def _timings(fbnet: pd.DataFrame, path: Path, rows: int = 40) -> Path:
    frame = fbnet.head(rows)
    pd.DataFrame(
        {
            "arch": [str(from_arch_str(s)) for s in frame["arch_str"]],
            "latency_ms": frame["1080ti_1_ms"],
        }
    ).to_csv(path, index=False)
    return path


def test_cli_writes_a_fitted_table_that_search_and_predict_use(fbnet, tmp_path):
    timings = _timings(fbnet, tmp_path / "timings.csv")
    out = tmp_path / "gtx.parquet"
    args = ["tables", "fit", str(timings), "--device", "gtx-1080ti", "--space", "fbnet"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "source: fitted" in result.output
    table = load_table(out)
    assert table.meta.source == "fitted" and table.meta.device == "gtx-1080ti"
    assert "40 whole-network timings" in table.meta.method
    assert len(table) == len(macs_prior(get_space("fbnet"), 32))
    # never replaced unasked
    before = out.read_bytes()
    again = runner.invoke(app, [*args, "--out", str(out)])
    assert again.exit_code != 0 and "exists; pass --force" in again.output
    assert out.read_bytes() == before
    arch = str(from_arch_str(fbnet["arch_str"][0]))
    predicted = runner.invoke(
        app,
        ["predict", "--device", "gtx-1080ti", "--table", str(out), "--space", "fbnet", arch],
        env={"COLUMNS": "400"},
    )
    assert predicted.exit_code == 0, predicted.output
    search = runner.invoke(
        app,
        [
            "search",
            "--space", "fbnet",
            "--device", "gtx-1080ti",
            "--table", str(out),
            "--latency-ms", "12",
            "--budget", "6",
            "--strategy", "random",
            "--out", str(tmp_path / "run"),
        ],
    )  # fmt: skip
    assert search.exit_code == 0, search.output
    assert "6 architectures evaluated" in search.output


def test_cli_refuses_a_device_name_that_cannot_name_a_file(fbnet, tmp_path):
    timings = _timings(fbnet, tmp_path / "timings.csv", rows=6)
    result = runner.invoke(
        app, ["tables", "fit", str(timings), "--device", "My GPU", "--space", "fbnet"]
    )
    assert result.exit_code != 0
    assert "--device 'My GPU' must be lower-case" in result.output
