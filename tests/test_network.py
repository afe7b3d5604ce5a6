from __future__ import annotations

import importlib.util

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from rlnas.errors import ArchitectureError
from rlnas.model.arch import Architecture
from rlnas.model.baselines import BASELINES, get_baseline
from rlnas.model.layers import arch_layers, enumerate_layers
from rlnas.model.network import build_network, count_params, export_onnx
from rlnas.model.ops import LAYER_OPS, build_layer, input_shapes
from rlnas.model.space import list_spaces


def randomize_norms(module: nn.Module, seed: int) -> nn.Module:
    """Non-trivial batch-norm statistics, so that a wrong fold would show in the outputs."""
    generator = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=generator) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=generator) * 0.1)
    return module.eval()


def run_onnx(model: bytes, inputs: list[torch.Tensor]) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    feeds = {f"input{i}": x.numpy() for i, x in enumerate(inputs)}
    return session.run(None, feeds)[0]


def assert_onnx_matches_torch(module: nn.Module, inputs: list[torch.Tensor]) -> None:
    with torch.no_grad():
        expected = module(*inputs).numpy()
    got = run_onnx(export_onnx(module, [tuple(x.shape) for x in inputs]), inputs)
    assert got.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("name", list_spaces())
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_architecture_forward_and_onnx(name, seed):
    rng = np.random.default_rng(seed)
    arch = Architecture.sample(rng, name)
    resolution = arch.space.resolution
    net = randomize_norms(build_network(arch), seed)
    x = torch.from_numpy(rng.standard_normal((1, 3, resolution, resolution)).astype(np.float32))
    with torch.no_grad():
        y = net(x)
    assert y.shape == (1, arch.space.num_classes)
    assert torch.isfinite(y).all()
    assert_onnx_matches_torch(net, [x])


def representative_layers():
    """The first and last enumerated key of each op, over all built-in spaces at low resolution."""
    by_op: dict[str, list] = {}
    for name in list_spaces():
        for key in enumerate_layers(name, 32 if name != "nb201" else None):
            by_op.setdefault(key.op, []).append(key)
    keys = [k for op in sorted(by_op) for k in {by_op[op][0], by_op[op][-1]}]
    return sorted(keys)


def test_every_op_is_represented():
    assert {k.op for k in representative_layers()} == set(LAYER_OPS)


@pytest.mark.parametrize("key", representative_layers(), ids=str)
def test_layer_onnx_matches_torch(key):
    rng = np.random.default_rng(0)
    module = randomize_norms(build_layer(key), 0)
    inputs = [
        torch.from_numpy(rng.standard_normal(s).astype(np.float32)) for s in input_shapes(key)
    ]
    with torch.no_grad():
        out = module(*inputs)
    assert out.shape[1] == key.cout
    if out.ndim == 4:
        assert out.shape[2] == key.h_out
    assert_onnx_matches_torch(module, inputs)


@pytest.mark.parametrize("name", list(BASELINES))
def test_baseline_parameter_counts(name):
    baseline = get_baseline(name)
    net = build_network(baseline.architecture())
    assert count_params(net) == baseline.published_params


def test_network_layers_are_the_table_keys():
    """The network of a macro architecture is exactly its layer keys' modules, in order."""
    arch = BASELINES["efficientnet_b0"].architecture()
    net = build_network(arch)
    keys = arch_layers(arch)
    assert len(net) == len(keys)
    assert sum(count_params(build_layer(k)) for k in keys) == count_params(net)


def test_unknown_baseline():
    with pytest.raises(ArchitectureError, match="Did you mean 'resnet18'"):
        get_baseline("resnet-18")


@pytest.mark.skipif(
    importlib.util.find_spec("onnxscript") is None,
    reason="the dynamo exporter needs onnxscript (dev extra)",
)
def test_dynamo_export_agrees():
    key = representative_layers()[0]
    module = build_layer(key)
    model = export_onnx(module, input_shapes(key), dynamo=True)
    x = [torch.ones(s) for s in input_shapes(key)]
    with torch.no_grad():
        np.testing.assert_allclose(run_onnx(model, x), module(*x).numpy(), rtol=1e-4, atol=1e-5)


def test_seeded_build_leaves_the_global_random_state_alone():
    import torch

    from rlnas.model.baselines import get_baseline

    arch = get_baseline("mobilenetv2").architecture()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = build_network(arch, 32, seed=5)
    assert torch.equal(torch.rand(3), expected)
    second = build_network(arch, 32, seed=5)
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)
