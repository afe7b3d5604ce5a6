"""Whole networks from architectures, and ONNX export of any module."""

from __future__ import annotations

import dataclasses
import io
import math
import warnings
from collections.abc import Callable, Sequence

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
        seed: Seed of the initial weights, drawn from a local generator (`init_weights`):
            the global torch random state is neither read nor changed, so a warm or
            cold score cache cannot change what a seeded search or PPO draws next.
        num_classes: Classifier outputs (default: the space's), e.g. 10 to train on CIFAR-10.
    """
    space = arch.space
    resolution = space.check_resolution(resolution)
    if num_classes is not None and num_classes != space.num_classes:
        space = dataclasses.replace(space, num_classes=num_classes)
    return seeded(lambda: space.build(arch.choices, resolution), seed).eval()


def seeded(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """`build()`'s module with its weights from `seed` alone.

    The module is built on the meta device (no memory, no random draws), given
    uninitialised CPU tensors of the same shapes (`materialize`), and initialised by
    `init_weights`.
    """
    with torch.device("meta"):
        module = build()
    return init_weights(materialize(module), seed)


def materialize(module: nn.Module) -> nn.Module:
    """`module.to_empty(device="cpu")` for a module built on the meta device, in place:
    each parameter and buffer becomes an uninitialised contiguous CPU tensor of its shape
    and type. `to_empty` does the same through the general `_apply`, which for meta tensors
    costs about as much as building the module (80 ms for a default-space network); the
    proxy scores build one network per architecture."""
    for layer in module.modules():
        for name, param in layer._parameters.items():
            if param is not None:
                empty = torch.empty(param.shape, dtype=param.dtype)
                layer._parameters[name] = nn.Parameter(empty, param.requires_grad)
        for name, buffer in layer._buffers.items():
            if buffer is not None:
                layer._buffers[name] = torch.empty(buffer.shape, dtype=buffer.dtype)
    return module


def init_weights(module: nn.Module, seed: int) -> nn.Module:
    """PyTorch's default initialisation of every layer, drawn from `torch.Generator(seed)`.

    Conv2d and Linear: weights Kaiming-uniform (a = sqrt(5)), biases uniform in
    +-1/sqrt(fan_in), as their `reset_parameters`; batch norm: ones, zeros and
    fresh running statistics.
    """
    generator = torch.Generator().manual_seed(seed)
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.Linear):
            with torch.no_grad():
                nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
                if layer.bias is not None:
                    fan_in = layer.weight[0].numel()
                    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                    layer.bias.uniform_(-bound, bound, generator=generator)
        elif isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.reset_parameters()
        elif any(True for _ in layer.parameters(recurse=False)):
            raise TypeError(f"init_weights does not know how to initialise {type(layer).__name__}")
    return module


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
