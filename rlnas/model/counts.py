"""Parameter and multiply-accumulate counts of one layer, from its key alone.

Closed forms of the modules in `rlnas.model.blocks` (checked against the built
modules for every layer of every built-in space in the tests), so that
per-architecture counts cost microseconds through `rlnas.model.costs.AdditiveCost`.
MACs count convolutions and linear layers, as `rlnas.accuracy.proxies.count_macs` does.
"""

from __future__ import annotations

from rlnas.model.layers import LayerKey, out_size


def _se(channels: int, squeezed: int) -> tuple[int, int]:
    """(params, MACs) of squeeze-and-excitation on `channels` channels."""
    return 2 * channels * squeezed + squeezed + channels, 2 * channels * squeezed


def layer_params(key: LayerKey) -> int:
    """Trainable parameters of the layer's module."""
    k2, cin, cout = key.kernel * key.kernel, key.cin, key.cout
    if key.op == "conv":
        return k2 * cin * cout + 2 * cout
    if key.op in ("ir", "er"):
        hidden = cin * key.expand
        if key.op == "ir":
            total = (cin * hidden + 2 * hidden if key.expand != 1 else 0) + k2 * hidden + 2 * hidden
        else:
            hidden = hidden if key.expand != 1 else cout
            total = k2 * cin * hidden + 2 * hidden
        if key.se:
            total += _se(hidden, max(1, cin // 4))[0]
        if key.op == "ir" or key.expand != 1:
            total += hidden * cout + 2 * cout
        return total
    if key.op == "basic":
        total = k2 * cin * cout + k2 * cout * cout + 4 * cout
        if key.stride != 1 or cin != cout:
            total += cin * cout + 2 * cout
        return total
    if key.op == "classifier":
        return cin * cout + cout
    if key.op == "relu_conv_bn":
        return k2 * cin * cout + 2 * cout
    if key.op == "nb201_reduce":
        return 9 * cin * cout + 9 * cout * cout + 4 * cout + cin * cout
    if key.op == "bn_act":
        return 2 * cin
    return 0  # maxpool, avg_pool, add


def layer_macs(key: LayerKey) -> int:
    """Multiply-accumulates of the layer's convolutions and linear layers, batch 1."""
    k2, cin, cout = key.kernel * key.kernel, key.cin, key.cout
    pixels_in = key.h * key.w
    pixels = out_size(key.h, key.stride) * out_size(key.w, key.stride)
    if key.op in ("conv", "relu_conv_bn"):
        return pixels * cout * cin * k2
    if key.op in ("ir", "er"):
        hidden = cin * key.expand
        if key.op == "ir":
            total = (pixels_in * hidden * cin if key.expand != 1 else 0) + pixels * hidden * k2
        else:
            hidden = hidden if key.expand != 1 else cout
            total = pixels * hidden * cin * k2
        if key.se:
            total += _se(hidden, max(1, cin // 4))[1]
        if key.op == "ir" or key.expand != 1:
            total += pixels * cout * hidden
        return total
    if key.op == "basic":
        total = pixels * cout * cin * k2 + pixels * cout * cout * k2
        if key.stride != 1 or cin != cout:
            total += pixels * cout * cin
        return total
    if key.op == "classifier":
        return cin * cout
    if key.op == "nb201_reduce":
        pooled = (key.h // 2) * (key.w // 2)
        return pixels * cout * cin * 9 + pixels * cout * cout * 9 + pooled * cout * cin
    return 0
