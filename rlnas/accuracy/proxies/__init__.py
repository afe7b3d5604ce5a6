"""Zero-cost accuracy proxies: a score of an untrained network from one minibatch.

Each proxy is a function `(net, batch) -> float` registered with
`@register_proxy` (`base`); higher is better for all of them. `classic` holds
the proxies of 2019-2021 (definitions after Abdelfattah et al., "Zero-Cost
Proxies for Lightweight NAS", ICLR 2021), `recent` those of 2023-2024 (ZiCo,
MeCo, SWAP, AZ-NAS). Importing this package registers them all.

Raw values are not comparable across proxies and span many orders of
magnitude; `rlnas.accuracy.normalize` maps them onto [0, 1] before any reward sees them.
"""

from __future__ import annotations

from rlnas.accuracy.proxies import classic, recent
from rlnas.accuracy.proxies.base import (
    ACTIVATIONS,
    PROXIES,
    Proxy,
    ProxyFn,
    forward_hooked,
    get_proxy,
    list_proxies,
    register_proxy,
)
from rlnas.accuracy.proxies.classic import count_macs

__all__ = [
    "ACTIVATIONS",
    "PROXIES",
    "Proxy",
    "ProxyFn",
    "classic",
    "count_macs",
    "forward_hooked",
    "get_proxy",
    "list_proxies",
    "recent",
    "register_proxy",
]
