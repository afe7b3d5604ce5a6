"""Training a network of a space on image data (the recipe of `rlnas.accuracy.recipe`),
resumable, deterministic on CPU.

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
    result.json           written last: final validation top-1, and test top-1 where the
                          data holds held-out test images (`x_test`, `y_test` of an .npz)
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save

from rlnas import __version__
from rlnas.accuracy.data import ImageData, load_data, load_test_data
from rlnas.accuracy.recipe import (
    Recipe,
    augment,
    lr_at,
    parameter_groups,
    split_data,
    to_resolution,
)
from rlnas.errors import RlnasError, RunError
from rlnas.files import atomic_write_bytes, atomic_write_parquet, atomic_write_text
from rlnas.model.arch import Architecture
from rlnas.model.network import build_network, export_onnx

RECIPE = "recipe.json"
HISTORY = "history.parquet"
CHECKPOINT = "checkpoint.safetensors"
WEIGHTS = "weights.safetensors"
ONNX = "model.onnx"
RESULT = "result.json"


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


TRAIN_DEVICES = ("cpu", "cuda")


def check_train_device(device: str, flag: str = "--device") -> None:
    """Raises unless training can run on `device` here (cpu, or cuda where torch sees a GPU);
    the message names the option `flag` that set it."""
    if device not in TRAIN_DEVICES:
        raise RlnasError(f"{flag} must be cpu or cuda, got '{device}'")
    if device == "cuda" and not torch.cuda.is_available():
        raise RlnasError(f"{flag} cuda: torch sees no CUDA GPU here; use {flag} cpu")


class Trainer:
    """Trains one architecture with one recipe into a training folder (resuming it).

    Args:
        arch: The architecture.
        data_path: An `.npz` or an image folder.
        recipe: The recipe.
        out: The training folder.
        device: "cpu" or "cuda" (with AMP on CUDA). Both train in channels_last memory
            format: on the project's CPU a MobileNetV2 step at 32 px takes about half the
            time it takes in the default format (BENCHMARKS.md).
        data: The images of `data_path` where already loaded (saves reading them again).
    """

    def __init__(
        self,
        arch: Architecture,
        data_path: Path,
        recipe: Recipe,
        out: Path,
        device: str = "cpu",
        data: ImageData | None = None,
    ):
        check_train_device(device)
        self.arch, self.recipe, self.out, self.device = arch, recipe, Path(out), device
        arch.space.check_resolution(recipe.resolution)
        self.data = data or load_data(data_path)
        self.split = split_data(self.data, recipe)
        self.data_path = data_path
        # What makes two trainings the same (the data by its digest, not its path).
        self.identity = {
            "arch": str(arch),
            "space": arch.space.name,
            "space_digest": arch.space.digest,
            "data_digest": self.data.data_id,
            "num_classes": self.split.num_classes,
            "recipe": dataclasses.asdict(recipe),
        }
        self.model = build_network(
            arch, recipe.resolution, seed=recipe.seed, num_classes=self.split.num_classes
        ).to(device)
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
        self._norm: tuple[torch.Tensor, torch.Tensor] | None = None

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
            written = {**self.identity, "data": str(self.data_path), "rlnas_version": __version__}
            text = json.dumps(written, indent=2)
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
                # In the parameter's memory format, as the uninterrupted run's buffer is.
                buffer = torch.empty_like(parameter).copy_(tensors[key])
                self.optimizer.state[parameter]["momentum_buffer"] = buffer
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
        """Trains the remaining epochs, checkpointing after each; writes weights and ONNX (a
        finished folder, its result written last, is only read)."""
        start = self.open_folder()
        for epoch in range(start, self.recipe.epochs):
            result = self._epoch(epoch, progress)
            self.history.append(result)
            self._save_checkpoint(epoch + 1)
            if on_epoch is not None:
                on_epoch(result)
        finished = all((self.out / name).exists() for name in (WEIGHTS, ONNX, RESULT))
        if start < self.recipe.epochs or not finished:
            self._finish()
        return self.history

    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        if self._norm is None:
            self._norm = (self.split.mean.to(self.device), self.split.std.to(self.device))
        mean, std = self._norm
        x = x.to(self.device, non_blocking=True).float().div_(255.0)
        return ((x - mean) / std).contiguous(memory_format=torch.channels_last)

    def _epoch(self, epoch: int, progress: EpochProgress | None) -> EpochResult:
        recipe, split = self.recipe, self.split
        generator = torch.Generator().manual_seed(recipe.seed * 100_003 + epoch)
        order = torch.randperm(len(split.train_y), generator=generator)
        self.model.train()
        started = time.perf_counter()
        # Summed on the device and read once per epoch: a read per step would make the
        # host wait for the GPU at every step.
        total_loss = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        seen, lr = 0, 0.0
        for step in range(self.steps_per_epoch):
            index = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
            lr = lr_at(epoch * self.steps_per_epoch + step, self.steps_per_epoch, recipe)
            batch_loss, batch_correct = self.train_step(index, generator, lr)
            total_loss += batch_loss
            correct += batch_correct
            seen += len(index)
            if progress is not None:
                progress(epoch, step + 1, self.steps_per_epoch)
        seconds = time.perf_counter() - started
        val_loss, val_top1 = self.evaluate()
        return EpochResult(
            epoch + 1,
            float(total_loss) / seen,
            int(correct) / seen,
            val_loss,
            val_top1,
            lr,
            seconds,
            seen / seconds,
        )

    def train_step(
        self, index: torch.Tensor, generator: torch.Generator, lr: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on the training images at `index` (augmented with `generator`);
        returns the summed loss and the number of correct predictions, as tensors on the
        device (reading them waits for the step)."""
        x = self._inputs(augment(self.split.train_x[index], self.recipe.pad, generator))
        y = self.split.train_y[index].to(self.device)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast("cuda", enabled=self.device == "cuda"):
            logits = self.model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=self.recipe.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach().double() * len(y), (logits.argmax(1) == y).sum()

    @torch.no_grad()
    def evaluate(
        self, images: torch.Tensor | None = None, labels: torch.Tensor | None = None
    ) -> tuple[float, float]:
        """Loss (no smoothing) and top-1 on the validation images (or on `images`, `labels`)."""
        self.model.eval()
        images = self.split.val_x if images is None else images
        labels = self.split.val_y if labels is None else labels
        size = 512
        total_loss, correct = 0.0, 0
        for start in range(0, len(labels), size):
            x = self._inputs(images[start : start + size])
            y = labels[start : start + size].to(self.device)
            with torch.autocast("cuda", enabled=self.device == "cuda"):
                logits = self.model(x)
            total_loss += float(F.cross_entropy(logits.float(), y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
        return total_loss / len(labels), correct / len(labels)

    def _finish(self) -> None:
        result: dict[str, object] = {
            "epochs": self.recipe.epochs,
            "val_top1": self.history[-1].val_top1,
            "val_loss": self.history[-1].val_loss,
            "val_images": len(self.split.val_y),
            "train_images": len(self.split.train_y),
            "seconds": sum(e.seconds for e in self.history),
        }
        test = load_test_data(self.data_path)
        if test is not None:
            test_loss, test_top1 = self.evaluate(
                to_resolution(test, self.recipe.resolution), torch.from_numpy(test.labels)
            )
            result.update(test_top1=test_top1, test_loss=test_loss, test_images=len(test.labels))
        model = self.model.float().cpu()
        model = model.to(memory_format=torch.contiguous_format).eval()  # type: ignore[call-overload]
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        atomic_write_bytes(save(state), self.out / WEIGHTS)
        r = self.recipe.resolution
        atomic_write_bytes(export_onnx(model, [(1, 3, r, r)]), self.out / ONNX)
        atomic_write_text(json.dumps(result, indent=2) + "\n", self.out / RESULT)


def read_result(folder: Path) -> dict[str, float] | None:
    """The result.json of a finished training folder, or None where training has not finished."""
    path = Path(folder) / RESULT
    if not path.exists():
        return None
    try:
        result = json.loads(path.read_bytes().decode())
        return {str(k): float(v) for k, v in result.items()}
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError, AttributeError):
        raise RunError(f"{path} is damaged; delete {folder} to train again") from None


def trained_weights(folder: Path, arch: Architecture) -> tuple[dict[str, torch.Tensor], int]:
    """The final weights of a finished training folder of `arch`, and its number of classes.

    Raises:
        RunError: Not a finished training folder, or one of another architecture.
    """
    folder = Path(folder)
    stored, weights = folder / RECIPE, folder / WEIGHTS
    if not stored.is_file():
        raise RunError(
            f"{folder} is not a training folder (no {RECIPE}); pass the --out of `rlnas train`"
        )
    try:
        recipe = json.loads(stored.read_bytes().decode())
        trained_arch, digest = str(recipe["arch"]), str(recipe["space_digest"])
        num_classes = int(recipe["num_classes"])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError):
        raise RunError(f"{stored} is damaged; train again into another --out") from None
    if trained_arch != str(arch) or digest != arch.space.digest:
        raise RunError(
            f"training folder {folder} trained {trained_arch}, not {arch}; train this one with "
            "`rlnas train --run RUN --rank K`"
        )
    if not weights.is_file():
        raise RunError(
            f"training in {folder} has not finished (no {WEIGHTS}); rerun its `rlnas train` "
            "command to resume it"
        )
    try:
        return load_file(weights), num_classes
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise RunError(f"{weights} is unreadable ({exc}); train again") from None
