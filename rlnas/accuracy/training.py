"""Training a network of a space on image data: one recipe, resumable, deterministic on CPU.

The recipe: SGD with Nesterov momentum; a linear warm-up then a cosine decay
per step; cross-entropy with label smoothing; weight decay on weights only
(none on batch-norm parameters and biases); random crop (zero padding) and
horizontal flip, in torch ops. Data: an `.npz` or an image folder
(`rlnas.accuracy.data`), resized once to the training resolution, split by a
fixed seed into training and validation images, optionally cut to a subset.

Everything random comes from the recipe's seed: the initial weights
(`build_network(seed=)`) and, per epoch, a generator seeded by (seed, epoch)
for the shuffle and the augmentation. So an epoch depends only on the weights
and optimizer state at its start, and a run killed and resumed from its last
checkpoint ends with the same weights as an uninterrupted one (on CPU, with
the same threads).

The training folder:
    recipe.json           the recipe, the architecture, the data digest, rlnas version
    history.parquet       per epoch: train loss and top-1, validation loss and top-1,
                          learning rate, seconds, images per second
    checkpoint.safetensors  weights and optimizer state after the last finished epoch
    weights.safetensors   the final weights
    model.onnx            the trained network (batch 1, float input, eval mode)
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save
from torch import nn

from rlnas import __version__
from rlnas.accuracy.data import ImageData, load_data
from rlnas.errors import DataError, RlnasError, RunError
from rlnas.files import atomic_write_bytes, atomic_write_parquet, atomic_write_text
from rlnas.model.arch import Architecture
from rlnas.model.network import build_network, export_onnx

RECIPE = "recipe.json"
HISTORY = "history.parquet"
CHECKPOINT = "checkpoint.safetensors"
WEIGHTS = "weights.safetensors"
ONNX = "model.onnx"

# The validation split is fixed by this seed, whatever the training seed.
SPLIT_SEED = 2026


@dataclass(frozen=True)
class Recipe:
    """How a network is trained.

    Attributes:
        epochs: Passes over the training images.
        batch_size: Images per step.
        lr: Peak learning rate (reached after the warm-up).
        momentum: Nesterov momentum.
        weight_decay: L2 on conv and linear weights (not on batch norm or biases).
        label_smoothing: Cross-entropy label smoothing.
        warmup_epochs: Linear warm-up from 0, in epochs.
        resolution: Training and validation resolution in pixels.
        pad: Zero padding of the random crop, in pixels.
        subset: Use only this many training images (None: all).
        val_fraction: Share of the images held out for validation.
        seed: Seed of the weights, the shuffle and the augmentation.
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    warmup_epochs: float = 1.0
    resolution: int = 32
    pad: int = 4
    subset: int | None = None
    val_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise RlnasError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.subset is not None and self.subset < self.batch_size:
            raise RlnasError(
                f"subset must hold at least one batch ({self.batch_size}), got {self.subset}"
            )
        if not 0 < self.val_fraction < 1:
            raise RlnasError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        for name in ("lr", "weight_decay", "label_smoothing", "warmup_epochs", "pad"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise RlnasError(f"{name} must be a finite number >= 0, got {value}")
        if self.seed < 0:
            raise RlnasError(f"seed must be >= 0, got {self.seed}")


@dataclass(frozen=True)
class Split:
    """Training and validation tensors (uint8 NCHW) and their labels."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    num_classes: int


def split_data(data: ImageData, recipe: Recipe) -> Split:
    """Resizes the images to the recipe's resolution and splits them by `SPLIT_SEED`."""
    images = torch.from_numpy(data.images).permute(0, 3, 1, 2)
    r = recipe.resolution
    if images.shape[-2:] != (r, r):
        images = (
            F.interpolate(images.float(), size=(r, r), mode="bilinear", antialias=True)
            .round()
            .clamp(0, 255)
            .to(torch.uint8)
        )
    labels = torch.from_numpy(data.labels)
    order = torch.from_numpy(np.random.default_rng(SPLIT_SEED).permutation(len(labels)))
    n_val = max(1, round(len(labels) * recipe.val_fraction))
    val, train = order[:n_val], order[n_val:]
    if recipe.subset is not None:
        if recipe.subset > len(train):
            raise DataError(
                f"subset {recipe.subset} is larger than the {len(train)} training images"
            )
        train = train[: recipe.subset]
    if len(train) < recipe.batch_size:
        raise DataError(
            f"{len(train)} training images do not fill a batch of {recipe.batch_size}; "
            "lower --batch-size"
        )
    pixels = images[train].float() / 255.0
    mean = pixels.mean(dim=(0, 2, 3)).view(1, 3, 1, 1)
    std = pixels.std(dim=(0, 2, 3)).clamp_min(1e-3).view(1, 3, 1, 1)
    num_classes = int(data.labels.max()) + 1
    if len(np.unique(data.labels)) < 2 or data.labels.min() < 0:
        raise DataError("training needs labels 0..K-1 of at least 2 classes")
    return Split(images[train], labels[train], images[val], labels[val], mean, std, num_classes)


def augment(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Random crop of zero-padded images and random horizontal flip (uint8 NCHW in and out)."""
    n, _, h, w = x.shape
    if pad:
        padded = F.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :]
        batch = torch.arange(n)[:, None, None, None]
        channel = torch.arange(x.shape[1])[None, :, None, None]
        x = padded[batch, channel, rows, cols]
    flip = torch.rand(n, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def parameter_groups(module: nn.Module, weight_decay: float) -> list[dict[str, object]]:
    """Weight decay on conv and linear weights only; none on batch norm or biases."""
    decay: list[nn.Parameter] = []
    plain: list[nn.Parameter] = []
    for parameter in module.parameters():
        (decay if parameter.ndim > 1 else plain).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": plain, "weight_decay": 0.0},
    ]


def lr_at(step: int, steps_per_epoch: int, recipe: Recipe) -> float:
    """Linear warm-up to `lr` over `warmup_epochs` (at most a quarter of the run), then
    cosine decay to 0, per step."""
    total = recipe.epochs * steps_per_epoch
    warmup = min(recipe.warmup_epochs * steps_per_epoch, total / 4)
    if step < warmup:
        return recipe.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1.0, total - warmup)
    return recipe.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@dataclass(frozen=True)
class EpochResult:
    """One finished epoch (a row of history.parquet)."""

    epoch: int
    train_loss: float
    train_top1: float
    val_loss: float
    val_top1: float
    lr: float
    seconds: float
    images_per_s: float


def checkpoint_epoch(path: Path) -> int:
    """The epochs a checkpoint holds (from its safetensors metadata)."""
    with safe_open(str(path), "pt") as handle:
        return int((handle.metadata() or {})["epoch"])


EpochProgress = Callable[[int, int, int], None]  # (epoch, step in epoch, steps per epoch)


class Trainer:
    """Trains one architecture with one recipe into a training folder (resuming it).

    Args:
        arch: The architecture.
        data_path: An `.npz` or an image folder.
        recipe: The recipe.
        out: The training folder.
        device: "cpu" or "cuda" (AMP and channels_last on CUDA).
    """

    def __init__(
        self,
        arch: Architecture,
        data_path: Path,
        recipe: Recipe,
        out: Path,
        device: str = "cpu",
    ):
        if device not in ("cpu", "cuda"):
            raise RlnasError(f"device must be cpu or cuda, got '{device}'")
        if device == "cuda" and not torch.cuda.is_available():
            raise RlnasError("--device cuda: torch sees no CUDA GPU here; use --device cpu")
        self.arch, self.recipe, self.out, self.device = arch, recipe, Path(out), device
        arch.space.check_resolution(recipe.resolution)
        self.data = load_data(data_path)
        self.split = split_data(self.data, recipe)
        self.identity = {
            "arch": str(arch),
            "space": arch.space.name,
            "space_digest": arch.space.digest,
            "data": str(data_path),
            "data_digest": self.data.data_id,
            "num_classes": self.split.num_classes,
            "recipe": dataclasses.asdict(recipe),
        }
        self.model = build_network(
            arch, recipe.resolution, seed=recipe.seed, num_classes=self.split.num_classes
        ).to(device)
        if device == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.optimizer = torch.optim.SGD(
            parameter_groups(self.model, recipe.weight_decay),
            lr=recipe.lr,
            momentum=recipe.momentum,
            nesterov=True,
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=device == "cuda")
        self.steps_per_epoch = len(self.split.train_y) // recipe.batch_size
        self.history: list[EpochResult] = []

    # --- the folder ------------------------------------------------------------------------

    def open_folder(self) -> int:
        """Creates or resumes the folder; returns the first epoch still to train."""
        stored = self.out / RECIPE
        if stored.exists():
            try:
                previous = json.loads(stored.read_bytes().decode())
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise RunError(f"{stored} is not valid JSON; pass another --out") from None
            was = {k: previous.get(k) for k in self.identity}
            if was != json.loads(json.dumps(self.identity)):
                changed = [k for k in self.identity if previous.get(k) != self.identity[k]]
                raise RunError(
                    f"training folder {self.out} holds another training ({', '.join(changed)}); "
                    "pass another --out, or the same settings to resume it"
                )
        elif self.out.exists() and any(self.out.iterdir()):
            raise RunError(
                f"--out {self.out} is a folder of other files (no {RECIPE}); choose a new or "
                "empty folder"
            )
        else:
            text = json.dumps({**self.identity, "rlnas_version": __version__}, indent=2)
            atomic_write_text(text + "\n", stored)
        return self._load_checkpoint()

    def _load_checkpoint(self) -> int:
        path = self.out / CHECKPOINT
        if not path.exists():
            return 0
        try:
            tensors = load_file(path)
            epoch = checkpoint_epoch(path)
            history = pd.read_parquet(self.out / HISTORY)
        except Exception as exc:  # a damaged checkpoint: safetensors, JSON or Parquet errors
            raise RunError(
                f"checkpoint in {self.out} is unreadable ({exc}); pass another --out"
            ) from None
        model_state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        self.model.load_state_dict(model_state)
        buffers = [p for group in self.optimizer.param_groups for p in group["params"]]
        for i, parameter in enumerate(buffers):
            key = f"momentum.{i}"
            if key in tensors:
                self.optimizer.state[parameter]["momentum_buffer"] = tensors[key].to(self.device)
        rows = history.to_dict("records")
        self.history = [EpochResult(**{str(k): v for k, v in r.items()}) for r in rows][:epoch]
        return epoch

    def _save_checkpoint(self, epoch: int) -> None:
        tensors = {f"model.{k}": v.detach().cpu() for k, v in self.model.state_dict().items()}
        buffers = [p for group in self.optimizer.param_groups for p in group["params"]]
        for i, parameter in enumerate(buffers):
            momentum = self.optimizer.state.get(parameter, {}).get("momentum_buffer")
            if momentum is not None:
                tensors[f"momentum.{i}"] = momentum.detach().cpu()
        frame = pd.DataFrame([dataclasses.asdict(e) for e in self.history])
        # The history first, the checkpoint last: a checkpoint always has its history.
        atomic_write_parquet(pa.Table.from_pandas(frame, preserve_index=False), self.out / HISTORY)
        # The epoch lives in the checkpoint itself, so weights and epoch change together.
        data = save({k: v.contiguous() for k, v in tensors.items()}, {"epoch": str(epoch)})
        atomic_write_bytes(data, self.out / CHECKPOINT)

    # --- training --------------------------------------------------------------------------

    def train(
        self,
        progress: EpochProgress | None = None,
        on_epoch: Callable[[EpochResult], None] | None = None,
    ) -> list[EpochResult]:
        """Trains the remaining epochs, checkpointing after each; writes weights and ONNX."""
        start = self.open_folder()
        for epoch in range(start, self.recipe.epochs):
            result = self._epoch(epoch, progress)
            self.history.append(result)
            self._save_checkpoint(epoch + 1)
            if on_epoch is not None:
                on_epoch(result)
        self._finish()
        return self.history

    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True).float().div_(255.0)
        x = (x - self.split.mean.to(self.device)) / self.split.std.to(self.device)
        return x.contiguous(memory_format=torch.channels_last) if self.device == "cuda" else x

    def _epoch(self, epoch: int, progress: EpochProgress | None) -> EpochResult:
        recipe, split = self.recipe, self.split
        generator = torch.Generator().manual_seed(recipe.seed * 100_003 + epoch)
        order = torch.randperm(len(split.train_y), generator=generator)
        self.model.train()
        started = time.perf_counter()
        total_loss, correct, seen, lr = 0.0, 0, 0, 0.0
        for step in range(self.steps_per_epoch):
            index = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
            x = self._inputs(augment(split.train_x[index], recipe.pad, generator))
            y = split.train_y[index].to(self.device)
            lr = lr_at(epoch * self.steps_per_epoch + step, self.steps_per_epoch, recipe)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            with torch.autocast("cuda", enabled=self.device == "cuda"):
                logits = self.model(x)
                loss = F.cross_entropy(logits, y, label_smoothing=recipe.label_smoothing)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            total_loss += float(loss.detach()) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            if progress is not None:
                progress(epoch, step + 1, self.steps_per_epoch)
        seconds = time.perf_counter() - started
        val_loss, val_top1 = self.evaluate()
        return EpochResult(
            epoch + 1,
            total_loss / seen,
            correct / seen,
            val_loss,
            val_top1,
            lr,
            seconds,
            seen / seconds,
        )

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """Loss (no smoothing) and top-1 on the validation images."""
        self.model.eval()
        split, size = self.split, 512
        total_loss, correct = 0.0, 0
        for start in range(0, len(split.val_y), size):
            x = self._inputs(split.val_x[start : start + size])
            y = split.val_y[start : start + size].to(self.device)
            with torch.autocast("cuda", enabled=self.device == "cuda"):
                logits = self.model(x)
            total_loss += float(F.cross_entropy(logits.float(), y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
        return total_loss / len(split.val_y), correct / len(split.val_y)

    def _finish(self) -> None:
        model = self.model.float().cpu()
        model = model.to(memory_format=torch.contiguous_format).eval()  # type: ignore[call-overload]
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        atomic_write_bytes(save(state), self.out / WEIGHTS)
        r = self.recipe.resolution
        atomic_write_bytes(export_onnx(model, [(1, 3, r, r)]), self.out / ONNX)
