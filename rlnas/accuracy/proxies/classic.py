"""The proxies of 2019-2021: synflow, grad_norm, snip, jacob_cov, naswot, and the params and
flops baselines.

Definitions follow Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS"
(ICLR 2021), which evaluated them on NAS-Bench-201, and the papers each one
comes from: the per-layer metrics are summed over the weights of every
convolution and linear layer.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlnas.accuracy.data import Batch
from rlnas.accuracy.proxies.base import ACTIVATIONS, forward_hooked, register_proxy
from rlnas.errors import ProxyError
from rlnas.model.network import count_params


def _weighted_layers(net: nn.Module) -> list[nn.Conv2d | nn.Linear]:
    return [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def _layer_sum(
    net: nn.Module, metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
) -> float:
    """Sum of `metric(weight, gradient)` over the convolution and linear layers."""
    with torch.no_grad():
        return float(
            sum(
                metric(layer.weight, layer.weight.grad)
                for layer in _weighted_layers(net)
                if layer.weight.grad is not None
            )
        )


def _loss_gradients(net: nn.Module, batch: Batch) -> nn.Module:
    """A train-mode copy of `net` holding the cross-entropy gradients of one batch."""
    net = copy.deepcopy(net).train()
    net.zero_grad()
    F.cross_entropy(net(batch.x), batch.y).backward()
    return net


@register_proxy(
    "synflow",
    needs_data=False,
    reference="Tanaka et al., Pruning neural networks without any data by "
    "iteratively conserving synaptic flow, NeurIPS 2020",
    version=2,
)
def synflow(net: nn.Module, batch: Batch) -> float:
    """Sum over weights of |theta * dR/dtheta|, R = sum of the output of the linearised
    network: all parameters replaced by their absolute values, an all-ones input, batch norm
    removed (as Abdelfattah et al. do), in float64 to delay overflow.

    Linearised means every activation passes its input: with positive weights and inputs,
    ReLU already does, but ReLU6 clips at 6, where its gradient is 0. Left in, it cut the
    flow to every layer but the last few of any ReLU6 network: all ReLU6 networks of the
    default space scored about 1e5 against 1e21-1e31 for SiLU ones, and MobileNetV2 ranked
    at the 7th percentile of random networks (82nd once linearised). So ReLU6, SiLU and
    hardswish become the identity here (version 2; the gates of squeeze-and-excitation
    stay sigmoids, which pass their input's scale)."""
    # float64 convolutions have no oneDNN kernel: NCHW is their faster layout
    net = copy.deepcopy(net).to(torch.float64, memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    net.eval()
    _remove_batch_norm(net)
    _linearise(net)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.abs_()
    net.zero_grad()
    ones = torch.ones((1, *batch.x.shape[1:]), dtype=torch.float64)
    net(ones).sum().backward()
    return _layer_sum(net, lambda w, g: (w * g).abs().sum())


def _linearise(net: nn.Module) -> None:
    for name, child in net.named_children():
        if isinstance(child, nn.ReLU | nn.ReLU6 | nn.SiLU | nn.Hardswish):
            setattr(net, name, nn.Identity())
        else:
            _linearise(child)


def _remove_batch_norm(net: nn.Module) -> None:
    for name, child in net.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(net, name, nn.Identity())
        else:
            _remove_batch_norm(child)


@register_proxy(
    "grad_norm",
    needs_data=True,
    reference="Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021",
)
def grad_norm(net: nn.Module, batch: Batch) -> float:
    """Sum over layers of the Euclidean norm of the loss gradient of the layer's weights."""
    return _layer_sum(_loss_gradients(net, batch), lambda w, g: g.norm())


@register_proxy(
    "snip",
    needs_data=True,
    reference="Lee et al., SNIP: Single-shot network pruning based on connection "
    "sensitivity, ICLR 2019",
)
def snip(net: nn.Module, batch: Batch) -> float:
    """Sum over weights of the connection sensitivity |theta * dL/dtheta|."""
    return _layer_sum(_loss_gradients(net, batch), lambda w, g: (w * g).abs().sum())


@register_proxy(
    "jacob_cov",
    needs_data=True,
    reference="Mellor et al., Neural Architecture Search without Training, "
    "arXiv:2006.04647v1 (2020)",
)
def jacob_cov(net: nn.Module, batch: Batch) -> float:
    """-sum(log(l + k) + 1/(l + k)), l the eigenvalues of the correlation matrix of the
    per-sample input Jacobians of the summed output, k = 1e-5."""
    net = copy.deepcopy(net).train()
    x = batch.x.clone().requires_grad_(True)
    net(x).sum().backward()
    if x.grad is None:
        raise ProxyError("jacob_cov: the network's output does not depend on its input")
    jacobians = x.grad.reshape(len(x), -1).numpy().astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.corrcoef(jacobians)
    if not np.isfinite(correlation).all():
        return -1e8  # a constant Jacobian (dead network): the worst possible score
    eigenvalues = np.linalg.eigvalsh(correlation)
    k = 1e-5
    return float(-np.sum(np.log(eigenvalues + k) + 1.0 / (eigenvalues + k)))


@register_proxy(
    "naswot",
    needs_data=True,
    reference="Mellor et al., Neural Architecture Search without Training, ICML 2021",
)
def naswot(net: nn.Module, batch: Batch) -> float:
    """log|det K|, K[i, j] = number of rectifier units on which samples i and j agree
    (both active or both inactive), over every activation of the network."""
    n = len(batch.x)
    kernel = torch.zeros((n, n), dtype=torch.float64)

    def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> None:
        # agreements = units - on_i - on_j + 2 * both_on; float32 sums of 0/1 are exact
        # below 2**24, hence the chunks
        for code in (inputs[0].reshape(n, -1) > 0).float().split(1 << 23, dim=1):
            both = (code @ code.T).double()
            on = both.diagonal()
            kernel.add_(code.shape[1] - on[:, None] - on[None, :] + 2 * both)

    forward_hooked(net, [m for m in net.modules() if isinstance(m, ACTIVATIONS)], hook, batch.x)
    _, logdet = np.linalg.slogdet(kernel.numpy())
    return float(logdet)


@register_proxy("params", needs_data=False, reference="parameter count (baseline)")
def params(net: nn.Module, batch: Batch) -> float:
    """Trainable parameters."""
    return float(count_params(net))


@register_proxy("flops", needs_data=False, reference="multiply-accumulates (baseline)")
def flops(net: nn.Module, batch: Batch) -> float:
    """Multiply-accumulate operations of convolutions and linear layers for one image at the
    batch's resolution (the figure papers call FLOPs, e.g. 300M for MobileNetV2 at 224)."""
    return float(count_macs(net, tuple(batch.x.shape[1:])))


def count_macs(net: nn.Module, image_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of Conv2d and Linear layers for one input of `image_shape` (CHW)."""
    total = 0

    def conv_hook(module: nn.Module, _inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(module, nn.Conv2d)
        kh, kw = module.kernel_size
        total += out.numel() * (module.in_channels // module.groups) * kh * kw

    def linear_hook(
        module: nn.Module, _inputs: tuple[torch.Tensor, ...], out: torch.Tensor
    ) -> None:
        nonlocal total
        assert isinstance(module, nn.Linear)
        total += out.numel() * module.in_features

    handles = []
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            net.eval()(torch.zeros((1, *image_shape)))
    finally:
        for handle in handles:
            handle.remove()
    return total
