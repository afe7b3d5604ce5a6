"""The proxy registry, and the forward hook the activation-based proxies share.

A proxy is a function `(net, batch) -> float` registered with `@register_proxy`;
higher is better for all of them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from rlnas.accuracy.data import Batch
from rlnas.errors import ProxyError, unknown

ProxyFn = Callable[[nn.Module, Batch], float]


@dataclass(frozen=True)
class Proxy:
    """A registered proxy.

    Attributes:
        name: Registry name.
        fn: The scoring function; it must not change the network it is given.
        needs_data: Whether real images make a difference (False: data-free).
        reference: The paper that defines it.
        version: Bumped when its values change (a fix), so cached values of an
            earlier version are not reused.
    """

    name: str
    fn: ProxyFn
    needs_data: bool
    reference: str
    version: int = 1

    @property
    def cache_name(self) -> str:
        """Its name in the score cache: the name, with the version after the first."""
        return self.name if self.version == 1 else f"{self.name}@v{self.version}"


PROXIES: dict[str, Proxy] = {}


def register_proxy(
    name: str, needs_data: bool, reference: str, version: int = 1
) -> Callable[[ProxyFn], ProxyFn]:
    def decorate(fn: ProxyFn) -> ProxyFn:
        PROXIES[name] = Proxy(name, fn, needs_data, reference, version)
        return fn

    return decorate


def list_proxies(pattern: str = "*") -> list[str]:
    return [name for name in PROXIES if fnmatch.fnmatch(name, pattern)]


def get_proxy(name: str) -> Proxy:
    if name not in PROXIES:
        raise ProxyError(unknown("proxy", name, PROXIES))
    return PROXIES[name]


ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.SiLU)

Hook = Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], None]


def forward_hooked(net: nn.Module, modules: list[nn.Module], hook: Hook, x: torch.Tensor) -> None:
    """Runs `net(x)` in training mode without gradients with `hook` on the forward of
    `modules`, then removes it and restores the net's mode and buffers (batch-norm running
    statistics), so the net is left as it came: cheaper than a deep copy."""
    handles = [m.register_forward_hook(hook) for m in modules]
    buffers = {name: b.clone() for name, b in net.named_buffers()}
    modes = {m: m.training for m in net.modules()}
    try:
        with torch.no_grad():
            net.train()(x)
    finally:
        for handle in handles:
            handle.remove()
        with torch.no_grad():
            for name, b in net.named_buffers():
                b.copy_(buffers[name])
        for m, training in modes.items():
            m.training = training
