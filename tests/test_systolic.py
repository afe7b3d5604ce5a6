"""The systolic-array device: U-Boost's formulas, its tables, and utilization in the search."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from rlnas.cli import app
from rlnas.errors import DeviceError, RlnasError, TableError
from rlnas.hardware.devices import get_device, measuring_host
from rlnas.hardware.estimate import systolic_table
from rlnas.hardware.systolic import SystolicArray, conv_cost, layer_cost, parse_array
from rlnas.hardware.table import load_table
from rlnas.hardware.utilization import Utilization, arch_utilization
from rlnas.model.arch import Architecture
from rlnas.model.layers import arch_layers
from rlnas.model.nbmacro import from_code
from rlnas.model.ops import LayerKey, layer_macs
from rlnas.model.space import get_space
from rlnas.search.config import SearchConfig
from rlnas.search.rewards import RewardConfig
from rlnas.search.run import run_search

A128 = SystolicArray(128, 128)
A32 = SystolicArray(32, 32)


def test_a_dense_convolution_follows_the_runtime_formula():
    # 3x3, 64 -> 128 channels, 16x16 output on 32x32: ceil(576/32) * ceil(128/32) = 72 tiles.
    cost = conv_cost(3, 64, 128, 16 * 16, A32)
    assert cost.cycles == 18 * 4 * 256
    assert cost.macs == 576 * 128 * 256
    assert cost.utilization == 1.0
    # The RGB stem on 128x128: 27 rows of 128 and 32 columns of 128 are used.
    stem = conv_cost(3, 3, 32, 112 * 112, A128, batch=2)
    assert stem.cycles == 1 * 1 * 112 * 112 * 2
    assert stem.utilization == pytest.approx(27 * 32 / (128 * 128))


@pytest.mark.parametrize("seed", range(5))
def test_dense_runtime_and_utilization_match_uboost_on_random_layers(seed):
    rng = np.random.default_rng(seed)
    k, c, f, hw, b = (int(v) for v in rng.integers([1, 1, 1, 1, 1], [8, 600, 600, 60, 4]))
    s1, s2 = (int(v) for v in rng.integers(4, 200, 2))
    cost = conv_cost(k, c, f, hw * hw, SystolicArray(s1, s2), batch=b)
    tiles = math.ceil(k * k * c / s1) * math.ceil(f / s2)
    assert cost.cycles == tiles * hw * hw * b
    assert cost.utilization == pytest.approx(k * k * c * f / (s1 * s2 * tiles))


def test_a_depthwise_convolution_runs_at_about_one_over_s1():
    # 128 channels, 3x3: block-diagonal, 9 row tiles each in one column tile: 1/128.
    depthwise = conv_cost(3, 128, 128, 100, A128, groups=128)
    assert depthwise.cycles == 9 * 100
    assert depthwise.utilization == pytest.approx(1 / 128)
    # Groups in sequence: one 9x1 product per channel.
    per_group = conv_cost(
        3, 128, 128, 100, SystolicArray(128, 128, mapping="per-group"), groups=128
    )
    assert per_group.cycles == 128 * 100
    assert per_group.utilization == pytest.approx(9 / (128 * 128))
    # A 1x1 convolution of the same channels fills the array.
    assert conv_cost(1, 128, 128, 100, A128).utilization == 1.0


def test_grouped_convolutions_under_both_mappings():
    # 1x1, 64 -> 64 in 2 groups on 128x128: both blocks fit one tile (block-diagonal), or
    # two tiles in sequence (per group).
    block = conv_cost(1, 64, 64, 10, A128, groups=2)
    assert block.cycles == 10
    assert block.utilization == pytest.approx(32 * 64 / 128**2)
    grouped = conv_cost(1, 64, 64, 10, SystolicArray(128, 128, mapping="per-group"), groups=2)
    assert grouped.cycles == 20
    # On 32x32 the two blocks sit on the diagonal tiles either way, at full use.
    assert conv_cost(1, 64, 64, 10, A32, groups=2).utilization == 1.0


def test_layers_count_the_macs_of_their_convolutions():
    key = LayerKey("ir", 32, 64, 28, 28, 5, 2, 6, False, "relu6")
    cost = layer_cost(key, A128)
    assert cost.macs == layer_macs(key)
    assert 0 < cost.utilization < 1
    assert layer_cost(key, A128, model="flops").utilization == 1.0
    # Full utilization never takes longer than the analytic mapping.
    assert layer_cost(key, A128, model="flops").cycles <= cost.cycles


@pytest.mark.parametrize(("text", "size"), [("128x128", (128, 128)), ("32X16", (32, 16))])
def test_array_sizes_parse(text, size):
    assert parse_array(text) == size


@pytest.mark.parametrize("text", ["128", "0x4", "axb", "12x"])
def test_bad_array_sizes_are_named(text):
    with pytest.raises(RlnasError, match=f"'{text}'.*--array 128x128"):
        parse_array(text)


def test_a_bad_mapping_is_named():
    with pytest.raises(RlnasError, match="diagonal"):
        SystolicArray(mapping="diagonal")


@pytest.fixture(scope="module")
def nbmacro_table(tmp_path_factory):
    return systolic_table(A32, space="nbmacro", out=tmp_path_factory.mktemp("sys") / "t.parquet")


def test_a_table_sums_layers_and_weights_utilization_by_macs(nbmacro_table):
    table = load_table(nbmacro_table)
    assert table.meta.device == "systolic" and table.meta.source == "estimated"
    assert "analytic systolic" in table.meta.method and "32x32" in table.meta.method
    space = get_space("nbmacro")
    arch = Architecture.sample(np.random.default_rng(0), space)
    costs = [layer_cost(k, A32) for k in arch_layers(arch, 32)]
    cycles = sum(c.cycles for c in costs)
    assert table.predict_ms(arch) == pytest.approx(cycles / (A32.clock_mhz * 1e3))
    expected = sum(c.macs for c in costs) / sum(c.slots for c in costs)
    assert arch_utilization(table, arch) == pytest.approx(expected)
    assert Utilization(table, space).of(arch.choices) == pytest.approx(expected)


def test_a_table_with_invalid_utilization_is_refused(nbmacro_table, tmp_path):
    arrow = pq.read_table(nbmacro_table)
    frame = arrow.to_pandas()
    frame.loc[0, "utilization"] = np.nan
    bad = tmp_path / "bad.parquet"
    pq.write_table(arrow.from_pandas(frame, schema=arrow.schema, preserve_index=False), bad)
    with pytest.raises(TableError, match="invalid utilization"):
        load_table(bad)


def test_the_device_is_listed_and_cannot_be_profiled():
    result = CliRunner().invoke(app, ["devices", "--format", "csv"])
    assert result.exit_code == 0 and "systolic" in result.output
    with pytest.raises(DeviceError, match=r"analytic.*tables estimate --device systolic"):
        measuring_host(get_device("systolic"), action="profile")
    # The command says so in one line, before any plan or progress bar (and writes nothing).
    result = CliRunner().invoke(app, ["profile", "--device", "systolic", "--dry-run"])
    assert result.exit_code != 0
    assert result.output.splitlines() == [
        "error: device 'systolic' is an analytic model with nothing to profile; write its "
        "table with `rlnas tables estimate --device systolic --array 128x128`"
    ]


def test_tables_estimate_writes_a_systolic_table(tmp_path):
    out = tmp_path / "s.parquet"
    args = ["tables", "estimate", "--device", "systolic", "--array", "16x8", "--space",
            "nbmacro", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert load_table(out).has_utilization and "16x8" in load_table(out).meta.host
    again = CliRunner().invoke(app, args)  # never overwrites without --force
    assert again.exit_code != 0 and "--force" in again.output
    bad = CliRunner().invoke(app, [*args[:4], "--array", "16", "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "'16'" in bad.output


def test_the_utilization_term_and_limit_in_every_mode():
    for mode in ("hard", "mnas", "tunas"):
        plain = RewardConfig(mode=mode, target_ms=1.0)
        weighted = RewardConfig(mode=mode, target_ms=1.0, utilization_weight=0.5)
        assert weighted.reward(0.8, 0.9, utilization=0.4) == pytest.approx(
            plain.reward(0.8, 0.9) + 0.2
        )
        limited = RewardConfig(mode=mode, target_ms=1.0, min_utilization=0.3)
        assert not limited.feasible(0.9, 0, 0.8, utilization=0.2)
        assert limited.feasible(0.9, 0, 0.8, utilization=0.3)
        # Below the limit scores below any network within it.
        assert limited.reward(0.99, 0.9, utilization=0.29) < limited.reward(
            0.0, 0.9, utilization=0.3
        )
    # Outside a hard latency limit the term lifts nothing.
    hard = RewardConfig(mode="hard", target_ms=1.0, utilization_weight=2.0)
    assert hard.reward(1.0, 1.5, utilization=1.0) < hard.reward(0.0, 0.9, utilization=0.0)
    with pytest.raises(RlnasError, match="table with utilization"):
        hard.reward(0.5, 0.5)


def _search(tmp_path, table, name, shared, **settings):
    accuracy = tmp_path / "acc.csv"
    if not accuracy.exists():
        bench = pd.read_parquet(shared / "nbmacro" / "nbmacro_cifar10.parquet")
        strings = [str(from_code(code)) for code in bench["arch"]]
        pd.DataFrame({"arch_str": strings, "acc": bench["mean_acc"]}).to_csv(accuracy, index=False)
    config = SearchConfig.of(space="nbmacro", device="systolic", table=table, strategy="random",
                          accuracy_file=accuracy, accuracy_column="acc", latency_ms=10.0,
                          budget=40, seed=1, precision="int8", **settings)  # fmt: skip
    return run_search(config, tmp_path / name)


@pytest.mark.filterwarnings("ignore::rlnas.errors.EstimatedTableWarning")
def test_a_search_records_utilization_and_keeps_its_limit(tmp_path, nbmacro_table, shared_data):
    space = get_space("nbmacro")
    table = load_table(nbmacro_table)
    plain = _search(tmp_path, nbmacro_table, "plain", shared_data).evaluations
    for _, row in plain.head(5).iterrows():
        arch = Architecture.decode(row["arch"], space)
        assert row["utilization"] == pytest.approx(arch_utilization(table, arch))
    limit = float(plain["utilization"].median())
    limited = _search(
        tmp_path, nbmacro_table, "limited", shared_data, min_utilization=limit
    ).evaluations
    assert (limited["feasible"] == (limited["utilization"] >= limit)).all()
    assert limited["feasible"].any() and not limited["feasible"].all()


def test_utilization_needs_a_table_that_has_it(tmp_path):
    with pytest.raises(RlnasError, match=r"need a table with utilization.*--device systolic"):
        run_search(
            SearchConfig(
                space="nbmacro",
                device="cpu",
                latency_ms=1.0,
                strategy="random",
                budget=5,
                utilization_weight=0.1,
            ),
            tmp_path / "run",
        )
