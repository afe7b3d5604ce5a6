from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from rlnas.accuracy.data import Batch, load_data, make_batch
from rlnas.accuracy.normalize import Normalizer
from rlnas.accuracy.proxies import PROXIES, count_macs, get_proxy, list_proxies
from rlnas.accuracy.scorer import ENSEMBLE, ProxyConfig, ProxyScorer
from rlnas.errors import DataError, ProxyError
from rlnas.model.arch import Architecture
from rlnas.model.baselines import get_baseline
from rlnas.model.network import build_network


def ones_batch(shape: tuple[int, ...], n: int = 4) -> Batch:
    return Batch(torch.ones((n, *shape)), torch.zeros(n, dtype=torch.long))


def tiny_conv_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    )


def test_params_hand_computed():
    # conv 3*8*3*3 = 216, batch norm 2*8 = 16, linear 8*10 + 10 = 90
    assert PROXIES["params"].fn(tiny_conv_net(), ones_batch((3, 5, 5))) == 322


def test_flops_hand_computed():
    # conv: 8 x 5 x 5 outputs, each 3*3*3 MACs = 5400; linear 8 * 10 = 80
    assert PROXIES["flops"].fn(tiny_conv_net(), ones_batch((3, 5, 5))) == 5480
    strided = nn.Sequential(nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=4, bias=False))
    # depthwise, 4 x 3 x 3 outputs, 9 MACs each
    assert count_macs(strided, (4, 6, 6)) == 4 * 3 * 3 * 9


def test_flops_of_published_networks():
    macs = count_macs(build_network(get_baseline("mobilenetv2").architecture()), (3, 224, 224))
    assert 295e6 < macs < 305e6  # published: 300M multiply-adds


def test_synflow_closed_form_on_linear_net():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, bias=False), nn.Linear(3, 2, bias=False))
    w1 = net[1].weight.detach().abs().double()
    w2 = net[2].weight.detach().abs().double()
    r = float(torch.ones(2, dtype=torch.float64) @ w2 @ w1 @ torch.ones(4, dtype=torch.float64))
    # R is linear in each layer's weights, so each layer's sum of theta * dR/dtheta equals R.
    assert PROXIES["synflow"].fn(net, ones_batch((4, 1, 1))) == pytest.approx(2 * r, rel=1e-12)
    assert (net[1].weight < 0).any()  # the caller's network is left unchanged


@pytest.mark.parametrize("name", list_proxies())
def test_every_proxy_is_finite_and_deterministic(name, shared_data):
    data = load_data(shared_data / "cifar10" / "cifar10_subset.npz")
    batch = make_batch(data, 16, 32, seed=0, num_classes=10)
    arch = Architecture.from_index(7, "nb201")
    values = []
    for _ in range(2):
        torch.manual_seed(0)
        values.append(get_proxy(name).fn(build_network(arch), batch))
    assert math.isfinite(values[0])
    assert values[0] == values[1]


def test_unknown_proxy():
    with pytest.raises(ProxyError, match="Did you mean 'synflow'"):
        get_proxy("synflo")
    with pytest.raises(ProxyError, match="Did you mean 'ensemble'"):
        ProxyScorer("nb201", ProxyConfig(proxy="ensembel"))


def test_scorer_same_seed_same_score():
    config = ProxyConfig(reference_size=8)
    arch = Architecture.from_index(99, "nb201")
    a = ProxyScorer("nb201", config).score(arch)
    b = ProxyScorer("nb201", config).score(arch)
    assert a == b
    assert 0 < a < 1


def test_cache_hit_computes_nothing(tmp_path):
    config = ProxyConfig(reference_size=4, cache=tmp_path / "scores.parquet")
    archs = [Architecture.from_index(i, "nb201") for i in range(5)]
    first = ProxyScorer("nb201", config)
    scores = [first.score(a) for a in archs]
    first.flush()
    assert first.computed == 5 + 4
    second = ProxyScorer("nb201", config)
    assert [second.score(a) for a in archs] == scores
    assert second.computed == 0


def test_data_proxy_without_data_warns():
    with pytest.warns(UserWarning, match="scores seeded noise images without data"):
        ProxyScorer("nb201", ProxyConfig(proxy="jacob_cov"))


def test_ensemble_is_mean_of_normalised_members(shared_data):
    config = ProxyConfig(
        proxy="ensemble",
        data=shared_data / "cifar10" / "cifar10_subset.npz",
        batch_size=16,
        reference_size=6,
    )
    scorer = ProxyScorer("nb201", config)
    arch = Architecture.from_index(3, "nb201")
    raw = scorer.raw(arch)
    assert set(raw) == set(ENSEMBLE)
    expected = np.mean([scorer.normalizer(p)(raw[p]) for p in ENSEMBLE])
    assert scorer.score(arch) == pytest.approx(expected)


def test_normalizer_bounded_monotone():
    norm = Normalizer.fit([1e30, 1e40, 1e50, 1e60])
    values = norm(np.array([0.0, 1e29, 1e30, 1e45, 1e60, 1e61, 1e70, np.inf, np.nan]))
    assert np.all((values >= 0) & (values <= 1))
    assert np.all(np.diff(values[:7]) > 0)  # strictly increasing, also past the reference
    assert values[3] == pytest.approx(0.5)  # between the 2nd and 3rd of 4 reference values
    assert 0.8 < values[5] < values[6] < 1.0  # beyond the best reference: still ordered
    assert values[7] == 1.0  # overflow ranks at the top
    assert values[8] == 0.0  # a failed score ranks at the bottom
    negative = Normalizer.fit([-5000.0, -300.0, -60.0])
    assert negative(-4000.0) < negative(-100.0)
    with pytest.raises(Exception, match="at least 2 finite"):
        Normalizer.fit([1.0, float("nan")])


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"images": np.zeros((2, 8, 8, 3), np.uint8)}, "expected 'x_train' and 'y_train'"),
        ({"x": np.zeros((2, 8, 8, 3), np.float32), "y": np.zeros(2, np.int64)}, "must be uint8"),
        ({"x": np.zeros((2, 8, 8), np.uint8), "y": np.zeros(2, np.int64)}, r"N x H x W x 3"),
        ({"x": np.zeros((2, 8, 8, 3), np.uint8), "y": np.zeros(3, np.int64)}, "must be 2 integers"),
    ],
)
def test_bad_npz(tmp_path, arrays, message):
    with pytest.raises(DataError, match=message):
        load_data(write_npz(tmp_path / "d.npz", **arrays))


def test_bad_data_paths(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_data(tmp_path / "nothing.npz")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match=r"is not an \.npz"):
        load_data(tmp_path / "notes.txt")
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"not a readable \.npz"):
        load_data(tmp_path / "broken.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class sub-folders"):
        load_data(tmp_path / "empty")


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for i in range(3):
            pixels = rng.integers(0, 255, (10, 12, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / label / f"{i}.png")
    (tmp_path / "dog" / "bad.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="cannot read image"):
        load_data(tmp_path)
    (tmp_path / "dog" / "bad.png").unlink()
    data = load_data(tmp_path)
    assert data.images.shape == (6, 10, 12, 3)
    assert list(data.labels) == [0, 0, 0, 1, 1, 1]
    batch = make_batch(data, 4, 16, seed=1, num_classes=2)
    assert batch.x.shape == (4, 3, 16, 16)
    again = make_batch(data, 4, 16, seed=1, num_classes=2)
    assert torch.equal(batch.x, again.x)
    with pytest.raises(DataError, match="a batch needs 8"):
        make_batch(data, 8, 16, seed=1, num_classes=2)


@pytest.mark.parametrize("name", ["params", "flops"])
def test_closed_form_proxies_equal_built_networks(name):
    scorer = ProxyScorer("mobilenet", ProxyConfig(proxy=name))
    rng = np.random.default_rng(3)
    for _ in range(3):
        arch = Architecture.sample(rng, "mobilenet")
        batch = make_batch(None, 1, scorer.config.resolution, 0, 1000)
        built = PROXIES[name].fn(build_network(arch, scorer.config.resolution), batch)
        assert scorer.raw(arch)[name] == built


def test_synflow_sees_through_relu6():
    """ReLU6 clips synflow's all-ones flow at 6 (gradient 0): the network is linearised, so a
    ReLU6 network scores as the same network with SiLU, and MobileNetV2 is not floored."""
    mobilenetv2 = Architecture.decode(get_baseline("mobilenetv2").arch, "mobilenet")
    assert mobilenetv2.tokens[mobilenetv2.space.decisions[0].name] == "relu6"
    silu = Architecture(mobilenetv2.space, (1 - mobilenetv2.choices[0], *mobilenetv2.choices[1:]))
    batch = Batch(torch.zeros(1, 3, 32, 32), torch.zeros(1, dtype=torch.long))
    relu6_score = PROXIES["synflow"].fn(build_network(mobilenetv2, 32), batch)
    silu_score = PROXIES["synflow"].fn(build_network(silu, 32), batch)
    assert relu6_score == pytest.approx(silu_score, rel=1e-9)
    assert relu6_score > 1e20  # clipped, it was about 1e5
    assert PROXIES["synflow"].cache_name == "synflow@v2"


def test_naswot_hand_computed():
    # Two rectifier units over three images: codes (1, 1), (0, 0), (1, 0). Agreements
    # K[i, j] = units where images i and j are both on or both off.
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU())
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(2))
    x = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])
    kernel = np.array([[2, 0, 1], [0, 2, 1], [1, 1, 2]], dtype=float)
    expected = np.linalg.slogdet(kernel)[1]
    value = PROXIES["naswot"].fn(net, Batch(x, torch.zeros(3, dtype=torch.long)))
    assert value == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("name", ["naswot", "swap", "meco", "az_expressivity"])
def test_forward_proxies_leave_the_network_unchanged(name, shared_data):
    data = load_data(shared_data / "cifar10" / "cifar10_subset.npz")
    batch = make_batch(data, 16, 32, seed=0, num_classes=10)
    net = build_network(Architecture.from_index(7, "nb201"), seed=0).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    first = get_proxy(name).fn(net, batch)
    assert not net.training
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running statistics too
    assert get_proxy(name).fn(net, batch) == first


@pytest.mark.parametrize("space", ["mobilenet", "fbnet", "nb201", "nbmacro", "resnet"])
@pytest.mark.parametrize("name", ["naswot", "jacob_cov", "synflow"])
def test_the_scorers_memory_layout_changes_values_only_by_rounding(space, name):
    """The scorer runs networks channels-last for speed: its raw values are those of the
    network built as `build_network` gives it (NCHW), up to float rounding."""
    scorer = ProxyScorer(space, ProxyConfig(proxy=name, batch_size=8))
    arch = Architecture.sample(np.random.default_rng(3), scorer.space)
    plain = build_network(arch, scorer.config.resolution, seed=scorer.config.seed)
    nchw = Batch(scorer.batch.x.contiguous(), scorer.batch.y)
    expected = get_proxy(name).fn(plain, nchw)
    assert scorer.raw(arch)[name] == pytest.approx(expected, rel=1e-4, abs=1e-6)
