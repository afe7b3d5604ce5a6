from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlnas.errors import MissingEntriesError, TableError
from rlnas.hardware.catalog import resolve_table
from rlnas.hardware.profile import ProfileConfig, profile
from rlnas.hardware.table import load_table, read_meta, save_table
from rlnas.hardware.timing import TimingConfig
from rlnas.model.arch import Architecture
from rlnas.model.layers import arch_layers, enumerate_layers
from rlnas.model.space import get_space

FAST = TimingConfig(warmup=1, min_runs=3, min_time_ms=1.0, retries=0)


@pytest.fixture(scope="module")
def nb201_table(tmp_path_factory) -> Path:
    """A real, complete cpu fp32 table of the nb201 space (17 layers)."""
    out = tmp_path_factory.mktemp("tables") / "nb201.parquet"
    profile(ProfileConfig(device="cpu", space="nb201", out=out, timing=FAST))
    return out


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_round_trip_and_metadata(nb201_table):
    table = load_table(nb201_table)
    meta = table.meta
    assert (meta.device, meta.backend, meta.precision, meta.space) == (
        "cpu",
        "onnxruntime",
        "fp32",
        "nb201",
    )
    assert meta.source == "measured"
    assert meta.resolution == 32 and meta.batch == 1 and meta.threads == 1
    assert meta.host and meta.backend_version and meta.created
    assert meta.overhead_ms > 0
    assert set(table.keys()) == set(enumerate_layers("nb201"))
    assert (table.frame["latency_ms"] > 0).all()
    assert (table.frame["p10_ms"] <= table.frame["p90_ms"]).all()


def test_predict_counts_overhead_once(nb201_table):
    table = load_table(nb201_table)
    arch = Architecture.from_index(123, "nb201")
    keys = arch_layers(arch)
    frame = table.frame.set_index(
        ["op", "cin", "cout", "h", "w", "kernel", "stride", "expand", "se", "act"]
    )
    expected = table.meta.overhead_ms
    for key in keys:
        row = frame.loc[tuple(key.as_dict().values())]
        expected += max(row["latency_ms"] - row["overhead_ms"], 0.0)
    assert table.predict_ms(arch) == pytest.approx(expected)
    naive = sum(table.layer_ms(k) for k in keys)
    assert table.predict_ms(arch) < naive


def test_missing_file(tmp_path):
    with pytest.raises(TableError, match="does not exist"):
        load_table(tmp_path / "none.parquet")


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.parquet"
    path.write_bytes(b"PAR1 this is not parquet at all")
    with pytest.raises(TableError, match="not a readable Parquet file"):
        load_table(path)


def test_truncated_table(tmp_path, nb201_table):
    path = tmp_path / "cut.parquet"
    path.write_bytes(nb201_table.read_bytes()[:-100])
    with pytest.raises(TableError, match="rebuild it"):
        load_table(path)


def test_foreign_parquet(tmp_path):
    path = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), path)
    with pytest.raises(TableError, match="not an rlnas table"):
        load_table(path)


def rewrite(source: Path, target: Path, change_meta=None, change_table=None) -> Path:
    arrow = pq.read_table(source)
    metadata = dict(arrow.schema.metadata)
    if change_meta:
        metadata.update(change_meta)
    if change_table:
        arrow = change_table(arrow)
    pq.write_table(arrow.replace_schema_metadata(metadata), target)
    return target


def test_wrong_schema_version(tmp_path, nb201_table):
    path = rewrite(nb201_table, tmp_path / "v9.parquet", {b"rlnas.schema_version": b"9"})
    with pytest.raises(TableError, match="schema version 9; this rlnas reads version 1"):
        load_table(path)


def test_missing_column(tmp_path, nb201_table):
    path = rewrite(
        nb201_table, tmp_path / "nocol.parquet", change_table=lambda t: t.drop_columns(["p90_ms"])
    )
    with pytest.raises(TableError, match="missing column 'p90_ms'"):
        load_table(path)


def test_wrong_column_type(tmp_path, nb201_table):
    def to_float(t):
        index = t.schema.get_field_index("cin")
        return t.set_column(index, "cin", t.column("cin").cast(pa.float64()))

    path = rewrite(nb201_table, tmp_path / "type.parquet", change_table=to_float)
    with pytest.raises(TableError, match="column 'cin' is double, expected int32"):
        load_table(path)


def test_bad_metadata_value(tmp_path, nb201_table):
    path = rewrite(nb201_table, tmp_path / "meta.parquet", {b"rlnas.batch": b"one"})
    with pytest.raises(TableError, match=r"'rlnas\.batch' = 'one' is not a int"):
        load_table(path)


def test_table_of_another_space(nb201_table):
    table = load_table(nb201_table)
    with pytest.raises(TableError, match=r"is for space 'nb201'.*not space 'mobilenet'"):
        table.check_space(get_space("mobilenet"))
    with pytest.raises(TableError, match=r"at 32px, not space 'nb201'.* at 64px"):
        table.check_space(get_space("nb201"), 64)
    with pytest.raises(TableError, match="is for space 'nb201'"):
        table.predict_ms(Architecture.sample(__import__("numpy").random.default_rng(0)))


def test_missing_keys_named_with_command(tmp_path, nb201_table):
    table = load_table(nb201_table)
    frame = table.frame[table.frame["op"] != "avg_pool"]
    path = tmp_path / "partial.parquet"
    save_table(table.meta, frame, path)
    partial = load_table(path)
    arch = Architecture.decode("|avg_pool_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "nb201")
    with pytest.raises(MissingEntriesError) as info:
        partial.predict_ms(arch)
    message = str(info.value)
    assert "lacks 3 layer(s): op=avg_pool" in message
    assert (
        "rlnas profile --device cpu --precision fp32 --space nb201 --resolution 32 --batch 1 "
        f"--out {path}" in message
    )
    assert len(info.value.missing) == 3


def test_resolve_table_by_name(tmp_path, monkeypatch, nb201_table):
    monkeypatch.setenv("RLNAS_HOME", str(tmp_path))
    (tmp_path / "tables").mkdir()
    target = tmp_path / "tables" / "cpu_fp32_nb201_32_b1.parquet"
    target.write_bytes(nb201_table.read_bytes())
    assert resolve_table("cpu_fp32_nb201_32_b1") == target
    with pytest.raises(TableError, match="Did you mean 'cpu_fp32_nb201_32_b1'"):
        resolve_table("cpu_fp32_nb201_32_b2")


def test_save_is_atomic_and_sorted(tmp_path, nb201_table):
    table = load_table(nb201_table)
    path = tmp_path / "t.parquet"
    save_table(table.meta, table.frame.sample(frac=1.0, random_state=0), path)
    again = load_table(path)
    assert list(again.frame["op"]) == sorted(again.frame["op"])
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]
    assert read_meta(path) == table.meta
    assert dataclasses.asdict(read_meta(path)) == dataclasses.asdict(table.meta)
    pd.testing.assert_frame_equal(
        again.frame.sort_values("latency_ms").reset_index(drop=True),
        table.frame.sort_values("latency_ms").reset_index(drop=True),
    )
