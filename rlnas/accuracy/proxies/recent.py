"""Zero-cost proxies of 2023-2024: ZiCo, MeCo, SWAP and AZ-NAS's expressivity and
progressivity, written from their papers' definitions (registered in `PROXIES` on import).

- ZiCo (Li et al., ICLR 2023): per layer, the gradients' inverse coefficient of
  variation across batches, sum_theta E|g| / std(g), logged and summed over layers.
  The proxy batch is split into two halves, the two "batches" of the paper.
- MeCo (Jiang et al., NeurIPS 2023), in its cheaper `MeCo_opt` form: per
  convolution, the minimum eigenvalue of the Pearson correlation matrix of the
  feature map's channels (one image, 8 seeded channels), times channels / 8,
  summed over layers.
- SWAP (Peng et al., ICLR 2024): the number of distinct sample-wise activation
  patterns: for every rectifier unit, the vector of its on/off states over the
  batch's images; counted over the whole network.
- AZ-NAS (Lee & Ham, CVPR 2024): expressivity, the entropy of the normalised
  eigenvalues of the channel covariance of each block's output features, summed
  over blocks; progressivity, the smallest increase of that entropy from one
  block to the next. (Its trainability and complexity terms are not here; FLOPs
  is the `flops` proxy.)

Blocks are the top-level children of the network (stem, one per layer of the
space, head), the classifier excluded.
"""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlnas.accuracy.data import Batch
from rlnas.accuracy.proxies.base import ACTIVATIONS, forward_hooked, register_proxy


@register_proxy(
    "zico",
    needs_data=True,
    reference="Li et al., ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on "
    "Gradients, ICLR 2023",
)
def zico(net: nn.Module, batch: Batch) -> float:
    """sum over layers of log(sum over weights of mean|g| / std(g)), g over two half-batches."""
    net = copy.deepcopy(net).train()
    layers = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    half = len(batch.x) // 2
    grads: list[list[torch.Tensor]] = [[] for _ in layers]
    for part in (slice(0, half), slice(half, 2 * half)):
        net.zero_grad()
        F.cross_entropy(net(batch.x[part]), batch.y[part]).backward()
        for store, layer in zip(grads, layers, strict=True):
            if layer.weight.grad is not None:
                store.append(layer.weight.grad.detach().flatten().double().clone())
    total = 0.0
    for store in grads:
        if len(store) < 2:
            continue
        g = torch.stack(store)
        std = g.std(dim=0, unbiased=False)
        keep = std > 0
        ratio = float((g.abs().mean(dim=0)[keep] / std[keep]).sum())
        if ratio > 0:
            total += math.log(ratio)
    return total


@register_proxy(
    "meco",
    needs_data=True,
    reference="Jiang et al., Zero-Shot NAS via the Minimum Eigenvalue of Pearson Correlation "
    "Matrix of Features (MeCo_opt), NeurIPS 2023",
)
def meco(net: nn.Module, batch: Batch) -> float:
    """sum over convolutions of (C / 8) * lambda_min of the Pearson correlation of 8 seeded
    channels of the feature map of the batch's first image (maps of one pixel skipped); the
    batch goes through in train mode, so batch norm uses the batch's statistics."""
    generator = torch.Generator().manual_seed(0)
    total = 0.0

    def hook(_module: nn.Module, _inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        channels, pixels = out.shape[1], out.shape[2] * out.shape[3]
        if pixels < 2:
            return
        n = min(8, channels)
        pick = torch.randperm(channels, generator=generator)[:n]
        features = out[0, pick].reshape(n, pixels).double().numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            correlation = np.nan_to_num(np.corrcoef(features), nan=0.0)
        total += channels / n * float(np.linalg.eigvalsh(np.atleast_2d(correlation))[0])

    # The whole batch goes through, so that train-mode batch norm has statistics.
    forward_hooked(net, [m for m in net.modules() if isinstance(m, nn.Conv2d)], hook, batch.x)
    return total


@register_proxy(
    "swap",
    needs_data=True,
    reference="Peng et al., SWAP-NAS: Sample-Wise Activation Patterns for Ultra-fast NAS, "
    "ICLR 2024",
)
def swap(net: nn.Module, batch: Batch) -> float:
    """Distinct sample-wise activation patterns: for each rectifier unit, which of the batch's
    images switch it on (its input > 0); the number of distinct patterns over the network."""
    patterns: list[np.ndarray] = []

    def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> None:
        on = (inputs[0].reshape(len(inputs[0]), -1) > 0).T.numpy()  # units x images
        patterns.append(np.unique(np.packbits(on, axis=1), axis=0))

    forward_hooked(net, [m for m in net.modules() if isinstance(m, ACTIVATIONS)], hook, batch.x)
    if not patterns:
        return 0.0
    return float(len(np.unique(np.concatenate(patterns), axis=0)))


def _block_entropies(net: nn.Module, batch: Batch) -> list[float]:
    """Per block, the entropy of the normalised eigenvalues of the output channels'
    covariance over images and positions."""
    blocks = [b for b in net.children() if not any(isinstance(m, nn.Linear) for m in b.modules())]
    entropies: list[float] = []

    def hook(_module: nn.Module, _inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        features = out.detach().double().transpose(0, 1).reshape(out.shape[1], -1)
        features = features - features.mean(dim=1, keepdim=True)
        covariance = features @ features.T / max(1, features.shape[1] - 1)
        eigenvalues = torch.linalg.eigvalsh(covariance).clamp_min(0)
        if float(eigenvalues.sum()) <= 0:
            entropies.append(0.0)
            return
        p = eigenvalues / eigenvalues.sum()
        p = p[p > 0]
        entropies.append(float(-(p * p.log()).sum()))

    forward_hooked(net, blocks, hook, batch.x)
    return entropies


@register_proxy(
    "az_expressivity",
    needs_data=True,
    reference="Lee & Ham, AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture "
    "Search, CVPR 2024 (expressivity)",
)
def az_expressivity(net: nn.Module, batch: Batch) -> float:
    """Sum over blocks of the entropy of the normalised channel-covariance eigenvalues."""
    return float(sum(_block_entropies(net, batch)))


@register_proxy(
    "az_progressivity",
    needs_data=True,
    reference="Lee & Ham, AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture "
    "Search, CVPR 2024 (progressivity)",
)
def az_progressivity(net: nn.Module, batch: Batch) -> float:
    """The smallest increase of the block entropy from one block to the next."""
    entropies = _block_entropies(net, batch)
    if len(entropies) < 2:
        return 0.0
    return float(min(b - a for a, b in itertools.pairwise(entropies)))
