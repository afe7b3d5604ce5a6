"""Whole networks from architectures, and ONNX export of any module."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import warnings
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from rlnas.model.arch import Architecture

# The TorchScript exporter targets 17; the dynamo exporter implements 18 and up only.
ONNX_OPSET = 17
ONNX_OPSET_DYNAMO = 18


def build_network(
    arch: Architecture, resolution: int | None = None, seed: int = 0, num_classes: int | None = None
) -> nn.Module:
    """The architecture as a torch module in eval mode, taking NCHW float input.

    Args:
        arch: The architecture.
        resolution: Input resolution (default: the space's).
        seed: Seed of the initial weights. They are drawn from a forked random state,
            so the caller's global torch state is left as it was (a warm or cold score
            cache cannot change what a seeded search or PPO draws next).
        num_classes: Classifier outputs (default: the space's), e.g. 10 to train on CIFAR-10.
    """
    space = arch.space
    resolution = space.check_resolution(resolution)
    if num_classes is not None and num_classes != space.num_classes:
        space = dataclasses.replace(space, num_classes=num_classes)
    with seeded_weights(seed):
        return space.build(arch.choices, resolution).eval()


@contextlib.contextmanager
def seeded_weights(seed: int) -> Iterator[None]:
    """Modules built inside draw their initial weights from `seed`, not from the global
    torch state, which is as it was once the block ends."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def count_params(module: nn.Module) -> int:
    """Trainable parameters (batch-norm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in module.parameters())


def export_onnx(
    module: nn.Module,
    shapes: Sequence[tuple[int, ...]],
    dynamo: bool = False,
    opset: int | None = None,
) -> bytes:
    """Serialises `module` to ONNX for inputs of the given shapes.

    Args:
        module: The module; exported in eval mode.
        shapes: One shape per input tensor.
        dynamo: Use torch's dynamo exporter instead of the TorchScript one. The
            TorchScript exporter is the default because it is about two orders
            of magnitude faster on single layers (see BENCHMARKS.md) and
            gives the same graphs for these ops.
        opset: ONNX opset version (default: 17, or 18 with dynamo).
    """
    module = module.eval()
    args = tuple(torch.zeros(shape) for shape in shapes)
    names = [f"input{i}" for i in range(len(shapes))]
    if dynamo:
        opset = ONNX_OPSET_DYNAMO if opset is None else opset
        program = torch.onnx.export(
            module,
            args,
            input_names=names,
            output_names=["output"],
            opset_version=opset,
            dynamo=True,
            verbose=False,
        )
        if program is None:
            raise RuntimeError("torch.onnx.export (dynamo) returned no program")
        return program.model_proto.SerializeToString()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of dynamo; we chose it on purpose.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        # The TorchScript exporter accepts a file-like object; its type stub names paths only.
        torch.onnx.export(
            module,
            args,
            buffer,  # type: ignore[arg-type]
            input_names=names,
            output_names=["output"],
            opset_version=ONNX_OPSET if opset is None else opset,
            dynamo=False,
            do_constant_folding=True,
        )
    return buffer.getvalue()
