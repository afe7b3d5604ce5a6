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
from rlnas.hardware.catalog import locate_table, shipped_tables_dir
from rlnas.hardware.features import (
    PriorTable,
    cache_sizes,
    feature_models,
    operators,
    prior_tables,
)
from rlnas.hardware.fit import ADAPTATION_MODELS as ADAPTATION
from rlnas.hardware.fit import fit_latencies, read_timings
from rlnas.hardware.table import load_table
from rlnas.model.arch import Architecture
from rlnas.model.fbnet import from_arch_str
from rlnas.model.layers import arch_layers, enumerate_layers
from rlnas.model.ops import LayerKey
from rlnas.model.space import get_space

runner = CliRunner()
NBMACRO_TABLE = shipped_tables_dir() / "cpu_fp32_nbmacro_32_b1.parquet"


@pytest.fixture(scope="module")
def fbnet(shared_data) -> pd.DataFrame:
    return pd.read_parquet(shared_data / "fbnet" / "fbnet_latency.parquet")


def test_operators_count_primitive_operations_and_what_they_write():
    # grouped expansion (BN and ReLU fused), shuffle, depthwise, grouped projection, residual
    ops, written = operators(LayerKey("irf_g2", 24, 24, 8, 8, 3, 1, 1, act="relu"))
    assert ops == 5
    assert written == 5 * 24 * 64
    # a stride-2 block has no residual sum; SiLU is a kernel of its own
    assert operators(LayerKey("irf", 24, 32, 8, 8, 3, 2, 6, act="relu"))[0] == 3
    assert operators(LayerKey("irf", 24, 32, 8, 8, 3, 2, 6, act="silu"))[0] == 5
    # ops without primitives (NAS-Bench-201's) are counted on their torch module
    assert operators(LayerKey("relu_conv_bn", 16, 16, 8, 8, 3, 1))[0] == 3


def test_a_sum_of_layers_is_recovered():
    """Timings that are exactly a table's sums are fitted back to within 1%."""
    table = load_table(NBMACRO_TABLE)
    space = get_space("nbmacro")
    rng = np.random.default_rng(0)
    archs = [Architecture.from_index(int(i), space) for i in rng.choice(space.size, 160, False)]
    truth = np.array([table.raw_predict_ms(a) for a in archs])
    result = fit_latencies(archs[:100], truth[:100], 32)
    predicted = np.array([result.predict_ms(a, 32) for a in archs[100:]])
    assert np.abs(predicted / truth[100:] - 1).max() < 0.01
    assert result.priors == () and result.model in ("work", "all")


def test_a_table_must_earn_its_place_over_the_work_of_the_layers():
    """A prior table that explains nothing the layers' work does not is not chosen: the work
    alone comes first, and a later model must beat it by more than one standard error."""
    space = get_space("nbmacro")
    table = load_table(NBMACRO_TABLE)
    rng = np.random.default_rng(3)
    archs = [Architecture.from_index(int(i), space) for i in rng.choice(space.size, 60, False)]
    y = np.array([table.raw_predict_ms(a) for a in archs]) * rng.normal(1, 0.02, 60)
    noise = PriorTable(
        "noise", dict(zip(table.keys(), rng.random(len(table)).tolist(), strict=True))
    )
    result = fit_latencies(archs, y, 32, [noise])
    assert result.model == "work" and result.priors == ("noise",)
    assert result.cv_models.keys() == {"work", "all"}
    assert result.cv_within10 == 1.0
    assert all(v >= 0 for v in result.latency.values()) and result.fixed_ms >= 0


def test_real_device_timings_from_100_networks(fbnet):
    """HELP's Xeon Silver 4114 timings of FBNet networks: fitted on 100, held out on 1,000."""
    archs = [from_arch_str(s) for s in fbnet["arch_str"][:1100]]
    y = fbnet["silver_4114_ms"].to_numpy()[:1100]
    result = fit_latencies(archs[:100], y[:100], 32)
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
        fit_latencies(archs[:3], [1.0, 2.0, 3.0], 32)
    for bad in (np.nan, 0.0, -1.0):
        with pytest.raises(RlnasError, match=rf"latency {bad} ms of network .* \(row 3\)"):
            fit_latencies(archs, [1.0, 2.0, bad, 1, 1, 1], 32)


def test_prior_tables_serve_the_space_and_resolution():
    space = get_space("nbmacro")
    (prior,) = prior_tables([str(NBMACRO_TABLE)], space, 32)
    assert prior.name == "cpu_fp32_nbmacro_32_b1" and all(v >= 0 for v in prior.latency.values())
    with pytest.raises(TableError, match=r"prior table .* is for space 'nbmacro' at 32px"):
        prior_tables([str(NBMACRO_TABLE)], get_space("fbnet"), 32)
    with pytest.raises(TableError, match="not 'nbmacro' at 64px"):
        prior_tables([str(NBMACRO_TABLE)], space, 64)
    # auto: every known table of the space at that resolution, and nothing else
    assert [p.name for p in prior_tables(["auto"], space, 32)] == ["cpu_fp32_nbmacro_32_b1"]
    assert prior_tables(["auto"], space, 64) == [] and prior_tables(["macs"], space, 32) == []
    mobilenet = prior_tables(["auto"], get_space("mobilenet"), 224)
    assert len(mobilenet) >= 8 and "t4_fp16_mobilenet_224_b1" in [p.name for p in mobilenet]


def _kind_timings(table, archs, scales, fixed=0.3):
    """What a host whose layer kinds run at `scales` x the table (1.1x by default) measures."""
    from rlnas.hardware.calibration import layer_kind

    out = []
    for arch in archs:
        keys = arch_layers(arch, table.meta.resolution)
        net = sum(scales.get(layer_kind(k), 1.1) * table.net_latency[table.index[k]] for k in keys)
        out.append(net + 1.1 * table.meta.overhead_ms + fixed)
    return np.array(out)


def test_a_host_that_scales_the_table_is_an_affine_special_case():
    table = load_table(locate_table("cpu", "fp32", "mobilenet", 224)[1])
    rng = np.random.default_rng(0)
    archs = [Architecture.sample(rng) for _ in range(60)]
    y = 1.3 * np.array([table.raw_predict_ms(a) for a in archs]) + 0.2
    result = fit_latencies(archs[:20], y[:20], 224, [PriorTable.of(table)], models=ADAPTATION)
    assert result.model == "scale" and np.isinf(result.lam)
    assert result.weights["cpu_fp32_mobilenet_224_b1"] == pytest.approx(1.3, rel=0.01)
    predicted = np.array([result.predict_ms(a, 224) for a in archs[20:]])
    assert np.abs(predicted / y[20:] - 1).max() < 0.005


def test_a_host_with_other_relative_speeds_per_kind_is_found_from_30_networks():
    """SE blocks at 1.5x their table figures, everything else 1.1x: the common scale cannot
    follow it, a scale per kind (or a combination that holds one) can."""
    table = load_table(locate_table("cpu", "fp32", "mobilenet", 224)[1])
    rng = np.random.default_rng(1)
    archs = [Architecture.sample(rng) for _ in range(130)]
    y = _kind_timings(table, archs, {"ir_se": 1.5})
    result = fit_latencies(archs[:30], y[:30], 224, [PriorTable.of(table)], models=ADAPTATION)
    assert result.model in ("kinds", "all")
    assert result.cv_models["kinds"] < result.cv_models["scale"] / 3
    predicted = np.array([result.predict_ms(a, 224) for a in archs[30:]])
    assert np.mean(np.abs(predicted / y[30:] - 1) <= 0.01) > 0.95
    if result.model == "kinds":
        assert result.weights["cpu_fp32_mobilenet_224_b1[ir_se]"] == pytest.approx(1.5, rel=0.03)


def test_a_prior_table_that_lacks_layers_is_completed_from_its_work():
    keys = enumerate_layers(get_space("nbmacro"), 32)
    table = load_table(NBMACRO_TABLE)
    half = {k: float(table.net_latency[table.index[k]]) for k in keys[::2]}
    models = feature_models(keys, [PriorTable("half", half)])
    column = models["scale"][1][:, 0]
    assert np.isfinite(column).all() and (column > 0).any()
    assert column[0] == half[keys[0]]  # known layers keep their figure
    # a table sharing fewer than 3 layers is no prior at all
    assert "scale" not in feature_models(keys, [PriorTable("tiny", dict(list(half.items())[:2]))])


def test_cache_sizes_and_the_memory_features_follow_the_fingerprint():
    sizes = cache_sizes("L1d 32K, L1i 32K, L2 1024K, L3 32768K")
    assert sizes == {"L1": 32 * 2**10, "L2": 2**20, "L3": 32 * 2**20}
    keys = enumerate_layers(get_space("mobilenet"), 224)
    names, features = feature_models(keys, caches="L2 1024K, L3 32768K")["all"]
    assert names[-2:] == ["bytes_beyond_L2", "bytes_beyond_L3"]
    assert (features[:, -2] >= features[:, -1]).all() and (features[:, -2] > 0).any()
    assert "bytes_beyond_L2" not in feature_models(keys)["all"][0]


def test_duplicate_timings_are_refused_unless_asked_for_their_median(tmp_path):
    space = get_space("nbmacro")
    archs = [str(Architecture.from_index(i, space)) for i in range(6)]
    path = tmp_path / "t.csv"
    pd.DataFrame({"arch": [*archs, archs[1]], "latency_ms": [1, 2, 3, 4, 5, 6, 2.4]}).to_csv(path)
    with pytest.raises(RlnasError, match=r"rows 2, 7 time the same network .* --duplicates"):
        read_timings(path, space)
    found, latency = read_timings(path, space, duplicates="median")
    assert len(found) == 6 and latency[1] == pytest.approx(2.2)
    pd.DataFrame({"arch": archs, "latency_ms": [1, 2, 0, 4, 5, 6]}).to_csv(path)
    with pytest.raises(RlnasError, match="row 3: latency 0 ms is not a positive number"):
        read_timings(path, space)


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
    assert len(table) == len(enumerate_layers(get_space("fbnet"), 32))
    # the default prior is every fbnet table rlnas knows, and `tables show` says so
    assert "prior tables: cpu_fp32_fbnet_32_b1" in table.meta.method
    shown = runner.invoke(app, ["tables", "show", str(out)], env={"COLUMNS": "400"})
    assert (
        "prior tables: cpu_fp32_fbnet_32_b1" in shown.output and "cross-validation" in shown.output
    )
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


def test_a_users_table_hides_the_shipped_one_of_its_name_among_the_priors():
    from rlnas.hardware.catalog import user_tables_dir
    from rlnas.hardware.table import save_table

    shipped = load_table(NBMACRO_TABLE)
    mine = shipped.frame.copy()
    mine["latency_ms"] *= 2
    user_tables_dir().mkdir(parents=True, exist_ok=True)
    save_table(shipped.meta, mine, user_tables_dir() / NBMACRO_TABLE.name)
    (prior,) = prior_tables(["auto"], get_space("nbmacro"), 32)
    key = next(iter(prior.latency))
    assert prior.latency[key] > 1.5 * shipped.net_latency[shipped.index[key]]
