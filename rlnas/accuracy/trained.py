"""The `trained` accuracy: validation top-1 after a short, fixed recipe, cached on disk.

Each architecture is trained once per (architecture, space, recipe, data
digest, device) into its own training folder under the cache
(`~/.rlnas/cache/trained_v1/<key>/`), so the folder is the cache entry: a
finished folder answers at once, and a killed training resumes from its last
epoch the next time the architecture is asked for. The score is the
validation top-1 (images split off the training set), never the test top-1,
so that a search choosing by it does not choose on the test images.

The short recipe (`SHORT_RECIPE`): 10 epochs on all training images (less the
10% validation split) at 32 px, batch 128, otherwise the defaults of `Recipe`.
On a 10,000-image set and the project's 2-core CPU that is about 1-3 minutes
per network of the default space (BENCHMARKS.md), so the source is meant for
final candidates, for ground truth and for GPU machines, not for thousands of
proposals.

On a Ray cluster (`prefetch`), a batch of architectures is trained as parallel
tasks (on nodes with a GPU where the device is cuda), each in a folder of its
own node, with the driver's torch thread count so that a CPU training gives the
weights it would give here; the finished folder's files come back and are
written into this cache (result.json last), so nothing assumes a shared disk.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch

from rlnas.accuracy.data import ImageData, load_data
from rlnas.accuracy.recipe import Recipe
from rlnas.accuracy.score_cache import default_cache_path
from rlnas.accuracy.scorer import ProxyConfig
from rlnas.accuracy.training import RESULT, Trainer, read_result
from rlnas.cluster import TaskPool
from rlnas.errors import RlnasError
from rlnas.files import atomic_write_bytes
from rlnas.model.arch import Architecture

SHORT_RECIPE = Recipe(epochs=10)
CACHE_VERSION = 1

# Called with (architecture, what happens) when training starts or resumes.
Notice = Callable[[Architecture, str], None]


def default_trained_dir() -> Path:
    """Where trained folders are cached (next to the proxy score cache)."""
    return default_cache_path().parent / f"trained_v{CACHE_VERSION}"


def default_train_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


class TrainedAccuracy:
    """Validation top-1 of an architecture after `recipe` on `data`.

    Args:
        data: An .npz or image folder (required: training needs labelled images).
        recipe: The recipe (default `SHORT_RECIPE`).
        folder: The cache of training folders (default `default_trained_dir()`).
        device: cpu or cuda (default: cuda where torch sees a GPU).
        notice: Told when a training starts or resumes (for progress output).
    """

    proxy: ProxyConfig | None = None

    def __init__(
        self,
        data: Path | None,
        recipe: Recipe = SHORT_RECIPE,
        folder: Path | None = None,
        device: str | None = None,
        notice: Notice | None = None,
    ):
        if data is None:
            raise RlnasError(
                "the trained accuracy source needs labelled images: pass --data (an .npz "
                "with x_train/y_train, or a folder of class folders)"
            )
        self.data_path = Path(data)
        self.data = load_data(self.data_path)
        self.recipe = recipe
        self.folder = Path(folder) if folder is not None else default_trained_dir()
        self.device = device or default_train_device()
        self.notice = notice
        self.trained = 0
        self.description = (
            f"trained ({recipe.epochs} epochs, {recipe.subset or 'all'} images, "
            f"{recipe.resolution}px, {self.device}) on {self.data_path}"
        )

    def key(self, arch: Architecture) -> str:
        """The cache key: a digest of everything the trained weights depend on."""
        identity = {
            "arch": str(arch),
            "space_digest": arch.space.digest,
            "recipe": dataclasses.asdict(self.recipe),
            "data_digest": self.data.data_id,
            "device": self.device,
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]

    def training_folder(self, arch: Architecture) -> Path:
        return self.folder / self.key(arch)

    def result(self, arch: Architecture) -> dict[str, float]:
        """The finished training's result.json (training it first where needed)."""
        out = self.training_folder(arch)
        result = read_result(out)
        if result is None:
            if self.notice is not None:
                self.notice(arch, "resuming" if out.exists() else "training")
            trainer = Trainer(arch, self.data_path, self.recipe, out, self.device, self.data)
            trainer.train()
            self.trained += 1
            result = read_result(out)
            assert result is not None
        return result

    def accuracy(self, arch: Architecture) -> float:
        return self.result(arch)["val_top1"]

    def columns(self, archs: Sequence[Architecture]) -> dict[str, list[float]]:
        return {}

    def flush(self) -> None:
        """Nothing kept in memory: each training folder is written as it finishes."""

    def prefetch(self, archs: Sequence[Architecture], pool: TaskPool) -> None:
        """Trains the architectures without a finished training folder as parallel tasks of
        `pool` and writes their folders into the cache (see the module docstring)."""
        todo = list(
            {self.key(a): a for a in archs if read_result(self.training_folder(a)) is None}.values()
        )
        if not todo:
            return
        for arch in todo:
            if self.notice is not None:
                self.notice(arch, "training on the cluster")
        jobs = [(a, self.training_folder(a)) for a in todo]
        for _ in train_on_cluster(pool, jobs, self.data_path, self.recipe, self.device, self.data):
            self.trained += 1


def train_on_cluster(
    pool: TaskPool,
    jobs: Sequence[tuple[Architecture, Path]],
    data_path: Path,
    recipe: Recipe,
    device: str,
    data: ImageData | None = None,
) -> Iterator[Path]:
    """Trains each (architecture, folder) as a task of `pool`, in a folder of the task's own
    node with this process's torch thread count (on a node with a GPU for cuda); writes
    the finished files into the folder here (result.json last) and yields
    the folder as each finishes."""
    data = data or load_data(data_path)
    threads = torch.get_num_threads()
    arguments = [(arch, data_path, data, recipe, device, threads) for arch, _ in jobs]
    gpus = 1 if device == "cuda" else 0
    for index, files in pool(_train_in_a_folder_of_its_own, arguments, gpus=gpus):
        out = jobs[index][1]
        for name in sorted(files, key=lambda n: n == RESULT):  # result.json last
            atomic_write_bytes(files[name], out / name)
        yield out


def _train_in_a_folder_of_its_own(
    arch: Architecture,
    data_path: Path,
    data: ImageData,
    recipe: Recipe,
    device: str,
    threads: int,
) -> dict[str, bytes]:
    """Trains where this task runs; returns the finished folder's files (its last checkpoint
    too, so that the folder here is a finished one in every respect)."""
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as folder:
        Trainer(arch, data_path, recipe, Path(folder), device, data).train()
        return {path.name: path.read_bytes() for path in Path(folder).iterdir() if path.is_file()}
