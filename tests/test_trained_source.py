"""The `trained` accuracy source: real (tiny) trainings, cached by architecture, recipe, data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import small_images, tiny_space

from rlnas.accuracy import trained
from rlnas.accuracy.recipe import Recipe
from rlnas.accuracy.trained import TrainedAccuracy
from rlnas.accuracy.training import read_result
from rlnas.errors import RlnasError, RunError
from rlnas.model.arch import Architecture
from rlnas.search.config import SearchConfig
from rlnas.search.run import run_search


@pytest.fixture
def tiny(tmp_path, shared_data):
    """The tiny space and 600 training + 200 test images (16 px) of the shared subset."""
    space = tiny_space(tmp_path, widths=(8, 16))
    data = small_images(tmp_path, shared_data)
    return space, data


RECIPE = Recipe(epochs=2, batch_size=64, resolution=16, lr=0.05, subset=400)


def test_trains_once_then_reads_the_cache(tiny, tmp_path):
    space, data = tiny
    arch = Architecture.from_index(1, str(space))
    notices: list[str] = []
    source = TrainedAccuracy(
        data, RECIPE, tmp_path / "cache", "cpu", lambda a, what: notices.append(what)
    )
    top1 = source.accuracy(arch)
    assert 0 <= top1 <= 1 and source.trained == 1 and notices == ["training"]
    result = read_result(source.training_folder(arch))
    assert result is not None and result["val_top1"] == top1
    assert result["test_images"] == 200 and 0 <= result["test_top1"] <= 1
    assert result["val_images"] == 60  # 10% of 600 held out

    again = TrainedAccuracy(data, RECIPE, tmp_path / "cache", "cpu")
    assert again.accuracy(arch) == top1 and again.trained == 0  # read, not trained

    # Another seed, another recipe or another architecture is another entry.
    other_seed = TrainedAccuracy(data, Recipe(**{**RECIPE.__dict__, "seed": 1}), tmp_path / "cache")
    assert other_seed.key(arch) != source.key(arch)
    assert source.key(Architecture.from_index(0, str(space))) != source.key(arch)


def test_a_killed_training_in_the_cache_resumes(tiny, tmp_path):
    space, data = tiny
    arch = Architecture.from_index(0, str(space))
    source = TrainedAccuracy(data, RECIPE, tmp_path / "cache", "cpu")
    folder = source.training_folder(arch)
    # A training cut after its first epoch: its folder holds a checkpoint and no result.
    from rlnas.accuracy.training import Trainer

    one_epoch = Trainer(arch, data, RECIPE, folder, "cpu")
    start = one_epoch.open_folder()
    one_epoch.history.append(one_epoch._epoch(start, None))
    one_epoch._save_checkpoint(1)
    assert read_result(folder) is None
    notices: list[str] = []
    resumed = TrainedAccuracy(
        data, RECIPE, tmp_path / "cache", "cpu", lambda a, what: notices.append(what)
    )
    top1 = resumed.accuracy(arch)
    assert notices == ["resuming"]
    assert list(pd.read_parquet(folder / "history.parquet")["epoch"]) == [1, 2]
    fresh = TrainedAccuracy(data, RECIPE, tmp_path / "fresh", "cpu").accuracy(arch)
    assert top1 == fresh  # resuming changes nothing


def test_bad_input(tiny, tmp_path):
    space, data = tiny
    with pytest.raises(RlnasError, match="needs labelled images: pass --data"):
        TrainedAccuracy(None)
    source = TrainedAccuracy(data, RECIPE, tmp_path / "cache", "cpu")
    arch = Architecture.from_index(0, str(space))
    folder = source.training_folder(arch)
    folder.mkdir(parents=True)
    (folder / "result.json").write_text("{not json")
    with pytest.raises(RunError, match="is damaged; delete"):
        source.accuracy(arch)


def test_search_with_the_trained_source(tiny, tmp_path, monkeypatch):
    space, data = tiny
    monkeypatch.setattr(trained, "SHORT_RECIPE", RECIPE)
    latency = tmp_path / "ms.csv"  # measured end-to-end latencies of the two networks
    pd.DataFrame({"arch_index": [0, 1], "ms": [1.0, 2.0]}).to_csv(latency, index=False)
    config = SearchConfig.of(
        latency_ms=100,
        strategy="random",
        space=str(space),
        budget=2,
        accuracy="trained",
        data=data,
        reward="hard",
        latency_file=latency,
        latency_column="ms",
    )
    result = run_search(config, tmp_path / "run")
    assert len(result.evaluations) == 2
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert stored["accuracy_source"].startswith("trained (2 epochs, 400 images")
    # The scores are the cached trainings' validation top-1.
    cached = TrainedAccuracy(data, RECIPE, device="cpu")
    for arch_text, score in zip(
        result.evaluations["arch"], result.evaluations["accuracy"], strict=True
    ):
        arch = Architecture.decode(arch_text, str(space))
        assert score == pytest.approx(cached.accuracy(arch))
    assert cached.trained == 0
    assert config.score_name() == "validation top-1 after short training"


def test_export_with_trained_weights(tiny, tmp_path):
    import onnxruntime as ort
    import torch

    from rlnas.accuracy.training import Trainer
    from rlnas.model.network import build_network
    from rlnas.results.export import export_run

    space, data = tiny
    bench = tmp_path / "bench.csv"
    pd.DataFrame({"arch_index": [0, 1], "acc": [0.5, 0.6], "ms": [1.0, 2.0]}).to_csv(bench)
    config = SearchConfig.of(
        latency_ms=100,
        strategy="random",
        space=str(space),
        budget=2,
        reward="hard",
        accuracy_file=bench,
        accuracy_column="acc",
        latency_file=bench,
        latency_column="ms",
    )
    run = run_search(config, tmp_path / "run").out
    best = Architecture.decode(str(run_search(config, run).best["arch"]), str(space))
    assert best.index == 1
    folder = tmp_path / "trained"
    Trainer(best, data, RECIPE, folder).train()

    onnx_path = export_run(run, 1, "onnx", weights=folder)
    assert onnx_path.name == "rank1-trained.onnx"
    module = build_network(best, 32, num_classes=10)
    from safetensors.torch import load_file

    module.load_state_dict(load_file(folder / "weights.safetensors"))
    x = np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = module.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(session.run(None, {"input0": x})[0], expected, rtol=1e-4, atol=1e-4)
    untrained = session.run(None, {"input0": x})[0]
    plain = ort.InferenceSession(
        str(export_run(run, 1, "onnx")), providers=["CPUExecutionProvider"]
    )
    assert not np.allclose(plain.run(None, {"input0": x})[0], untrained)

    described = json.loads(export_run(run, 1, "json", weights=folder).read_text())
    assert described["trained"]["folder"] == str(folder)
    assert 0 <= described["trained"]["test_top1"] <= 1
    assert described["score_is"].startswith("accuracy (bench.csv:acc)")

    with pytest.raises(RunError, match=r"trained .*, not .*; train this one with"):
        export_run(run, 2, "onnx", weights=folder)
    with pytest.raises(RunError, match="is not a training folder"):
        export_run(run, 1, "onnx", weights=tmp_path)
