"""Benchmark: `rlnas train` images per second against a minimal hand-written PyTorch loop.

Usage:
    python scripts/bench_train.py [--baseline mobilenetv2] [--batch 128] [--steps 60]
        [--threads 2] [--resolution 32] [--device cpu] [--minimal-layout channels_last]
        [--data NPZ] [--json FILE]

Both train the same network (the baseline, 10 classes, weights from seed 0) on
the same CIFAR-10 subset images (`../shared/data/cifar10/cifar10_subset.npz`)
at the same batch size and threads, in one process. The minimal loop: SGD with
momentum, cross-entropy, pre-normalised float tensors, channels_last (the
faster layout here, which `rlnas train` also uses), no augmentation, no
schedule, no bookkeeping; on cuda, mixed precision (autocast and a gradient
scaler), as `rlnas train` uses there. `rlnas train`'s step (`Trainer.train_step`): the full
recipe (crop and flip augmentation from uint8, normalisation, per-step learning
rate, label smoothing, Nesterov, weight-decay groups, loss and top-1
bookkeeping).

This machine is shared and noisy, so the two loops are interleaved step by
step (which one goes first alternates), after 3 warm-up steps each, and each
step is timed on its own: noise hits both alike. The ratio is the median
minimal step time over the median `rlnas train` step time (images per second
of ours over the minimal loop's); the target is at least 0.90.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rlnas.accuracy.recipe import Recipe
from rlnas.accuracy.training import Trainer
from rlnas.model.baselines import get_baseline
from rlnas.model.network import build_network

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10" / "cifar10_subset.npz"


class Minimal:
    """The plainest training loop on the same network and images."""

    def __init__(
        self,
        arch,
        batch: int,
        resolution: int,
        device: str,
        layout: torch.memory_format,
        data: Path = DATA,
    ):
        archive = np.load(data)
        x = torch.from_numpy(archive["x_train"][: batch * 4]).permute(0, 3, 1, 2).float() / 255.0
        if resolution != x.shape[-1]:
            x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True)
        x = (x - x.mean((0, 2, 3), keepdim=True)) / x.std((0, 2, 3), keepdim=True)
        self.x = x.to(device).contiguous(memory_format=layout)
        self.y = torch.from_numpy(archive["y_train"][: batch * 4]).long().to(device)
        model = build_network(arch, resolution, seed=0, num_classes=10).to(device).train()
        self.model = model.to(memory_format=layout)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.batch, self.device = batch, device
        self.scaler = torch.amp.GradScaler("cuda", enabled=device == "cuda")

    def step(self, i: int) -> None:
        index = slice((i % 4) * self.batch, (i % 4 + 1) * self.batch)
        with torch.autocast("cuda", enabled=self.device == "cuda"):
            loss = F.cross_entropy(self.model(self.x[index]), self.y[index])
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()


def timed(step, device: str) -> float:
    started = time.perf_counter()
    step()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="mobilenetv2")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--minimal-layout", choices=("channels_last", "contiguous"), default="channels_last"
    )
    parser.add_argument("--data", type=Path, default=DATA, help="the CIFAR-10 subset (.npz)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    arch = get_baseline(args.baseline).architecture()
    layout = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}
    plain = Minimal(
        arch, args.batch, args.resolution, args.device, layout[args.minimal_layout], args.data
    )
    recipe = Recipe(epochs=1, batch_size=args.batch, resolution=args.resolution)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(arch, args.data, recipe, Path(tmp) / "t", args.device)
        trainer.model.train()
        generator = torch.Generator().manual_seed(0)
        order = torch.randperm(len(trainer.split.train_y), generator=generator)

        def ours(i: int) -> None:
            start = (i * args.batch) % (len(order) - args.batch)
            trainer.train_step(order[start : start + args.batch], generator, 0.01)

        for i in range(3):
            plain.step(i)
            ours(i)
        times: dict[str, list[float]] = {"minimal": [], "rlnas": []}
        for i in range(args.steps):
            pair = [("minimal", plain.step), ("rlnas", ours)]
            for name, step in pair if i % 2 == 0 else pair[::-1]:
                times[name].append(timed(lambda step=step, i=i: step(i), args.device))
    a = args.batch / statistics.median(times["rlnas"])
    b = args.batch / statistics.median(times["minimal"])
    spread = {k: (min(v), max(v)) for k, v in times.items()}
    print(
        f"{args.baseline} {args.resolution}px batch {args.batch}, {args.threads} threads, "
        f"{args.device}, minimal loop {args.minimal_layout}, {args.steps} interleaved steps "
        f"each: rlnas train {a:.0f} img/s, "
        f"minimal loop {b:.0f} img/s, ratio {a / b:.3f} (step seconds min..max: "
        + ", ".join(f"{k} {lo:.3f}..{hi:.3f}" for k, (lo, hi) in spread.items())
        + ")"
    )
    if args.json:
        figures = {
            "command": "python scripts/bench_train.py " + " ".join(sys.argv[1:]),
            "date": time.strftime("%Y-%m-%d"),
            "device": args.device,
            "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
            "rlnas_img_per_s": round(a, 1),
            "minimal_img_per_s": round(b, 1),
            "ratio": round(a / b, 4),
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
