"""A real local Ray cluster (a head and two worker nodes with different custom resources):
the profiling fleet and parallel evaluation."""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from rlnas.accuracy import scorer as scorer_module
from rlnas.accuracy.recipe import Recipe
from rlnas.accuracy.trained import TrainedAccuracy
from rlnas.accuracy.training import WEIGHTS
from rlnas.cli import app
from rlnas.cluster import connect, run_tasks
from rlnas.errors import RlnasError
from rlnas.hardware.endtoend import calibrate_table
from rlnas.hardware.fleet import FleetNetworkTimer
from rlnas.hardware.host import host_fit_path
from rlnas.hardware.profile import ProfileConfig, profile
from rlnas.hardware.table import load_table
from rlnas.hardware.timing import TimingConfig
from rlnas.model.arch import Architecture
from rlnas.model.layers import enumerate_layers
from rlnas.model.space import get_space
from rlnas.results.measure import MeasureConfig, measure_run
from rlnas.search.config import SearchConfig
from rlnas.search.run import run_search
from rlnas.search.strategies import EvolutionSettings, PPOSettings

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

pytestmark = pytest.mark.slow
# The workers cannot import this test module: its functions travel by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
FAST = TimingConfig(warmup=1, min_runs=3, min_time_ms=2)


@pytest.fixture(scope="module")
def cluster():
    """A head without CPUs for tasks, a node offering the `cpu` device, and one offering
    something else."""
    local = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    device = local.add_node(num_cpus=1, resources={"cpu": 1})
    other = local.add_node(num_cpus=1, resources={"other-device": 1})
    connect(local.address)
    yield local, device, other
    ray.shutdown()
    local.shutdown()


def _node() -> str:
    return ray.get_runtime_context().get_node_id()


def test_device_tasks_land_only_on_the_node_with_the_resource(cluster):
    local, device, other = cluster
    ray_module = connect(local.address)
    lines: list[str] = []
    tasks = run_tasks(ray_module, _node, [()] * 6, resource="cpu", status=lines.append)
    placed = [node for _, node in tasks]
    assert set(placed) == {device.node_id}
    anywhere = {node for _, node in run_tasks(ray_module, _node, [()] * 6)}
    assert anywhere <= {device.node_id, other.node_id}
    # The progress line counts the tasks done per node (the nodes share one address here,
    # so the node's ID tells them apart).
    assert lines[0] == "cluster: 0/6 tasks"
    assert re.fullmatch(rf"cluster: 6/6 tasks \([\d.]+#{device.node_id[:6]} 6\)", lines[-1])
    assert len(lines) == 7


def test_a_missing_resource_is_named_with_the_command(cluster, tmp_path):
    local, _, _ = cluster
    config = ProfileConfig(
        device="intel-cpu", space="nbmacro", out=tmp_path / "t.parquet", ray_address=local.address
    )
    with pytest.raises(RlnasError, match=r"offers resource 'intel-cpu'.*ray start"):
        profile(config)


def test_the_fleet_table_keys_what_a_local_profile_would(cluster, tmp_path):
    local, _, _ = cluster
    out = tmp_path / "fleet.parquet"
    config = ProfileConfig(
        device="cpu", space="nbmacro", out=out, timing=FAST, ray_address=local.address
    )
    result = profile(config)
    table = load_table(out)
    assert result.complete and result.measured == len(table)
    assert set(table.keys()) == set(enumerate_layers(get_space("nbmacro"), 32))
    assert table.meta.host_fingerprint and table.meta.source == "measured"


def test_a_worker_killed_mid_profile_loses_no_row_and_resume_fills_the_gap(tmp_path):
    local = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    device = local.add_node(num_cpus=1, resources={"cpu": 1})
    ray.shutdown()
    connect(local.address)
    try:
        out = tmp_path / "killed.parquet"
        config = ProfileConfig(
            device="cpu", space="nbmacro", out=out, timing=FAST, ray_address=local.address
        )
        killed = threading.Event()

        def kill_after_first_rows(done: int, todo: int, key: object) -> None:
            if not killed.is_set():
                killed.set()
                local.remove_node(device)

        with pytest.raises(RlnasError, match="no live node offers resource 'cpu'"):
            profile(config, progress=kill_after_first_rows)
        partial = Path(str(out) + ".journal").read_text().splitlines()[1:]
        assert 0 < len(partial) < 18
        local.add_node(num_cpus=1, resources={"cpu": 1})
        result = profile(config)
        table = load_table(out)
        assert result.complete and result.measured == 18 - len(partial)
        assert len(table) == len(set(table.keys())) == 18
    finally:
        ray.shutdown()
        local.shutdown()


def _node_after(seconds: float) -> str:
    time.sleep(seconds)
    return _node()


def test_a_node_that_leaves_is_reported_and_its_tasks_run_on_another():
    local = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    staying = local.add_node(num_cpus=1)
    leaving = local.add_node(num_cpus=1)
    ray.shutdown()
    ray_module = connect(local.address)
    try:
        notes: list[str] = []
        placed: dict[int, str] = {}
        for index, node in run_tasks(ray_module, _node_after, [(1.0,)] * 6, notify=notes.append):
            placed[index] = node
            if len(placed) == 1:
                local.remove_node(leaving)
        assert sorted(placed) == list(range(6))  # every task, the lost ones rerun
        # The leaving node ran one task, or two if both of its first results were in.
        assert sum(node == staying.node_id for node in placed.values()) >= 4
        assert len(notes) == 1
        assert re.fullmatch(r"node [\d.]+ left the cluster; Ray retries its tasks .*", notes[0])
    finally:
        ray.shutdown()
        local.shutdown()


@pytest.mark.parametrize("strategy", ["random", "evolution", "ppo"])
@pytest.mark.filterwarnings("ignore::rlnas.errors.ForeignTableWarning")
def test_a_search_on_the_cluster_evaluates_as_one_without_it(
    cluster, tmp_path, strategy, monkeypatch
):
    local, _, _ = cluster
    monkeypatch.setenv("RLNAS_HOME", str(tmp_path / "home"))
    config = SearchConfig.of(
        space="nbmacro",
        latency_ms=1.0,
        strategy=strategy,
        budget=40,
        seed=3,
        calibrate=False,
        proxy="synflow",  # the fastest proxy here that builds each network
        ppo=PPOSettings(parallel_episodes=5),
        evolution=EvolutionSettings(parallel_children=5),
    )
    serial = run_search(config, tmp_path / "serial").evaluations
    for cache in (tmp_path / "home").rglob("proxy_scores*.parquet"):
        cache.unlink()  # the parallel run computes every score again, on the cluster

    built = []
    build = scorer_module.build_network
    monkeypatch.setattr(
        scorer_module, "build_network", lambda *a, **k: built.append(a) or build(*a, **k)
    )
    parallel = run_search(config, tmp_path / "parallel", ray_address=local.address)
    assert parallel.evaluations.equals(serial)
    # Every proposal went to the cluster: random search's 32 at a time, evolution's and
    # PPO's first population, then 5 children or 5 episodes' at a time.
    assert not built


@pytest.mark.filterwarnings("ignore::rlnas.errors.ForeignTableWarning")
def test_measure_and_calibrate_time_on_the_device_node(cluster, tmp_path, monkeypatch):
    local, _, _ = cluster
    monkeypatch.setenv("RLNAS_HOME", str(tmp_path / "home"))
    config = SearchConfig.of(
        space="nbmacro",
        latency_ms=1.0,
        strategy="random",
        proxy="params",
        budget=4,
        seed=3,
        calibrate=False,
    )
    run = run_search(config, tmp_path / "run").out
    measure = MeasureConfig(
        top=2, baselines=False, passes=1, timing=FAST, ray_address=local.address
    )
    rows = measure_run(run, measure)
    assert list(rows["rank"]) == [1, 2] and (rows["measured_ms"] > 0).all()
    assert rows["host"].nunique() == 1 and rows["backend"].iloc[0] == "onnxruntime"

    # A table profiled on the fleet is adapted there (this host), into this host's folder.
    out = tmp_path / "fleet.parquet"
    profile(
        ProfileConfig(
            device="cpu", space="nbmacro", out=out, timing=FAST, ray_address=local.address
        )
    )
    timer = FleetNetworkTimer("cpu", "fp32", 1, FAST, local.address)
    before = out.read_bytes()
    result, stored = calibrate_table(out, 1, passes=1, timer=timer, min_archs=5, max_archs=5)
    assert stored == host_fit_path(load_table(out).meta) and out.read_bytes() == before
    assert result.fit.networks == 5 and load_table(stored).meta.source == "fitted"

    with pytest.raises(RlnasError, match="offers resource 'intel-cpu'"):
        measure_run(run, dataclasses.replace(measure, device="intel-cpu"))


def test_trainings_on_the_cluster_give_the_weights_of_trainings_here(
    cluster, tmp_path, shared_data
):
    local, _, _ = cluster
    data = shared_data / "cifar10" / "cifar10_subset.npz"
    recipe = Recipe(epochs=1, subset=256, batch_size=64)
    archs = [Architecture.from_index(4000, "nbmacro")]
    here = TrainedAccuracy(data, recipe, folder=tmp_path / "here", device="cpu")
    there = TrainedAccuracy(data, recipe, folder=tmp_path / "there", device="cpu")
    there.prefetch(archs, functools.partial(run_tasks, connect(local.address)))
    assert there.trained == 1
    for arch in archs:
        assert there.result(arch)["val_top1"] == here.result(arch)["val_top1"]
        ours, theirs = (
            load_file(source.training_folder(arch) / WEIGHTS) for source in (here, there)
        )
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert there.trained == 1 and here.trained == 1  # the fetched folder answered
    there.prefetch(archs, functools.partial(run_tasks, connect(local.address)))
    assert there.trained == 1  # nothing left to train

    # `rlnas train --ray-address`: the finished folder comes back, checkpoint included.
    out = tmp_path / "cli"
    args = ["train", str(archs[0]), "--space", "nbmacro", "--data", str(data), "--epochs", "1"]
    args += ["--subset", "256", "--batch-size", "64", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--ray-address", local.address])
    assert result.exit_code == 0, result.output
    assert "on the Ray cluster" in result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        p.name for p in here.training_folder(archs[0]).iterdir()
    )
    assert (
        json.loads((out / "result.json").read_text())["val_top1"]
        == here.result(archs[0])["val_top1"]
    )

    with pytest.raises(RlnasError, match="no node of the Ray cluster has a GPU"):
        list(run_tasks(connect(local.address), _node, [()], gpus=1))
