"""The GPU path: the `cuda` device, its backend and `rlnas train --device cuda`.

Marked `cuda`; they skip where torch sees no CUDA GPU (this project's VM) and run in
`scripts/gpu_check.sh` on a lent GPU machine.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlnas.accuracy.recipe import Recipe
from rlnas.accuracy.training import Trainer
from rlnas.hardware.devices import DEVICES
from rlnas.hardware.endtoend import NetworkTimer
from rlnas.hardware.timing import TimingConfig
from rlnas.model.arch import Architecture
from rlnas.model.nbmacro import from_code
from rlnas.model.space import get_space

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA GPU here"),
]


def test_cuda_device_is_usable_here():
    assert DEVICES["cuda"].missing() is None


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_cuda_times_whole_networks_in_order_of_their_work(precision):
    timing = TimingConfig(warmup=5, min_runs=20, min_time_ms=20.0)
    timer = NetworkTimer("cuda", precision, timing=timing)
    small, large = from_code("00000000"), from_code("22222222")
    fast = timer.time(small, 32, passes=1).median_ms
    slow = timer.time(large, 32, passes=1).median_ms
    assert 0 < fast < slow


def test_training_on_cuda_uses_mixed_precision_and_resumes(tmp_path, shared_data):
    source = np.load(shared_data / "cifar10" / "cifar10_subset.npz")
    data = tmp_path / "small.npz"
    np.savez(data, x_train=source["x_train"][:1024], y_train=source["y_train"][:1024])
    arch = Architecture.sample(np.random.default_rng(0), get_space("nbmacro"))
    recipe = Recipe(epochs=2, batch_size=128, seed=1)
    trainer = Trainer(arch, data, recipe, tmp_path / "t", "cuda")
    assert trainer.scaler.is_enabled()
    assert next(trainer.model.parameters()).is_cuda
    history = trainer.train()
    assert len(history) == 2 and all(np.isfinite(e.train_loss) for e in history)
    again = Trainer(arch, data, recipe, tmp_path / "t", "cuda").train()
    assert [e.val_top1 for e in again] == [e.val_top1 for e in history]
