"""`rlnas train`: a real (tiny) training, its folder, ONNX equal to torch, resume after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch
from conftest import tiny_space
from safetensors.torch import load_file
from typer.testing import CliRunner

from rlnas.accuracy.recipe import Recipe, augment, lr_at
from rlnas.accuracy.training import Trainer, checkpoint_epoch
from rlnas.cli import app
from rlnas.model.arch import Architecture
from rlnas.model.network import build_network

CLI = [str(Path(sys.executable).parent / "rlnas")]


@pytest.fixture
def tiny(tmp_path, shared_data) -> tuple[Path, Path]:
    """The tiny space file and 600 CIFAR-10 images (16 px) from the shared subset."""
    space = tiny_space(tmp_path, widths=(8, 16))
    source = np.load(shared_data / "cifar10" / "cifar10_subset.npz")
    data = tmp_path / "small.npz"
    pick = np.random.default_rng(0).choice(len(source["y_train"]), 600, replace=False)
    np.savez(data, x_train=source["x_train"][pick], y_train=source["y_train"][pick])
    return space, data


def tiny_arch(space: Path) -> Architecture:
    return Architecture.from_index(1, str(space))


def recipe(epochs: int = 3) -> Recipe:
    return Recipe(epochs=epochs, batch_size=64, resolution=16, lr=0.05, seed=1)


def test_training_folder_and_onnx_match_torch(tiny, tmp_path):
    space, data = tiny
    out = tmp_path / "train"
    history = Trainer(tiny_arch(space), data, recipe(2), out).train()
    assert [h.epoch for h in history] == [1, 2]
    assert {p.name for p in out.iterdir()} >= {
        "recipe.json",
        "history.parquet",
        "checkpoint.safetensors",
        "weights.safetensors",
        "model.onnx",
    }
    stored = json.loads((out / "recipe.json").read_text())
    assert stored["recipe"]["epochs"] == 2 and len(stored["data_digest"]) == 16
    frame = pd.read_parquet(out / "history.parquet")
    assert list(frame["epoch"]) == [1, 2] and frame["images_per_s"].gt(0).all()
    assert frame["train_loss"].iloc[1] < frame["train_loss"].iloc[0]  # it learns

    module = build_network(tiny_arch(space), 16, num_classes=10)
    module.load_state_dict(load_file(out / "weights.safetensors"))
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        torch_out = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(onnx_out, torch_out, rtol=1e-4, atol=1e-4)

    # A finished folder is only read: nothing is evaluated or exported again.
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = Trainer(tiny_arch(space), data, recipe(2), out).train()
    assert [h.val_top1 for h in again] == [h.val_top1 for h in history]
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_same_seed_same_weights_and_settings_checked(tiny, tmp_path):
    space, data = tiny
    Trainer(tiny_arch(space), data, recipe(1), tmp_path / "a").train()
    Trainer(tiny_arch(space), data, recipe(1), tmp_path / "b").train()
    a, b = (
        load_file(tmp_path / "a" / "weights.safetensors"),
        load_file(tmp_path / "b" / "weights.safetensors"),
    )
    assert all(torch.equal(a[k], b[k]) for k in a)
    from rlnas.errors import RunError

    with pytest.raises(RunError, match="holds another training"):
        Trainer(tiny_arch(space), data, recipe(2), tmp_path / "a").open_folder()


def test_killed_training_resumes_to_the_same_weights(tiny, tmp_path):
    space, data = tiny
    args = [
        "train",
        str(tiny_arch(space)),
        "--space",
        str(space),
        "--data",
        str(data),
        "--epochs",
        "4",
        "--batch-size",
        "64",
        "--resolution",
        "16",
        "--lr",
        "0.05",
        "--seed",
        "1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    subprocess.run([*CLI, *args, "--out", str(whole)], env=env, check=True, capture_output=True)
    process = subprocess.Popen([*CLI, *args, "--out", str(cut)], env=env, stdout=subprocess.DEVNULL)
    marker = cut / "checkpoint.safetensors"
    while process.poll() is None:
        if marker.exists() and checkpoint_epoch(marker) >= 2:
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait()
    assert not (cut / "weights.safetensors").exists(), "the training finished before the kill"
    resumed = subprocess.run(
        [*CLI, *args, "--out", str(cut)], env=env, check=True, capture_output=True, text=True
    )
    assert "epoch 1/4" not in resumed.stdout  # resumed after the checkpointed epochs
    a = load_file(whole / "weights.safetensors")
    b = load_file(cut / "weights.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    frame = pd.read_parquet(cut / "history.parquet")
    assert list(frame["epoch"]) == [1, 2, 3, 4]


def test_augment_and_schedule():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.uint8).view(2, 3, 4, 4)
    out = augment(x, 1, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == torch.uint8
    flipped_or_not = augment(x, 0, torch.Generator().manual_seed(0))
    for i in range(2):
        assert torch.equal(flipped_or_not[i], x[i]) or torch.equal(flipped_or_not[i], x[i].flip(2))
    r = Recipe(epochs=4, warmup_epochs=1, lr=0.1)
    assert lr_at(0, 10, r) == pytest.approx(0.01)
    assert lr_at(9, 10, r) == pytest.approx(0.1)
    assert lr_at(39, 10, r) < 0.001


def test_cli_needs_one_architecture(tmp_path):
    result = CliRunner().invoke(app, ["train", "--data", "x.npz"])
    assert result.exit_code == 2
    assert "exactly one of ARCH" in result.stderr
