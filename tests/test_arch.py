from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlnas.errors import ArchitectureError
from rlnas.model.arch import Architecture
from rlnas.model.baselines import BASELINES
from rlnas.model.space import get_space, list_spaces


def choices_of(name: str) -> st.SearchStrategy[tuple[int, ...]]:
    counts = get_space(name).choice_counts
    return st.tuples(*(st.integers(0, n - 1) for n in counts))


@pytest.mark.parametrize("name", list_spaces())
@given(data=st.data())
def test_round_trip(name, data):
    space = get_space(name)
    arch = Architecture(space, data.draw(choices_of(name)))
    text = str(arch)
    again = Architecture.decode(text, name)
    assert again == arch
    assert str(again) == text
    assert Architecture.from_index(arch.index, name) == arch


@pytest.mark.parametrize("name", list_spaces())
def test_sample_is_seeded(name):
    a = [Architecture.sample(np.random.default_rng(7), name) for _ in range(2)]
    assert a[0] == a[1]
    b = Architecture.sample(np.random.default_rng(8), name)
    c = Architecture.sample(np.random.default_rng(9), name)
    assert len({a[0], b, c}) > 1


def test_unknown_token_named_with_position():
    text = BASELINES["mobilenetv2"].arch.replace("ir_k3_e1", "ir_k9_e1")
    with pytest.raises(ArchitectureError) as info:
        Architecture.decode(text, "mobilenet")
    message = str(info.value)
    assert "'ir_k9_e1'" in message
    assert "position 2 (stage1.slot1)" in message
    assert "ir_k3_e1" in message  # the allowed tokens are listed


def test_skip_refused_in_first_slot():
    text = BASELINES["mobilenetv2"].arch.replace("c16:ir_k3_e1", "c16:skip")
    with pytest.raises(ArchitectureError, match="unknown token 'skip' at position 2"):
        Architecture.decode(text, "mobilenet")


def test_out_of_space_width():
    text = BASELINES["mobilenetv2"].arch.replace("c320", "c1024")
    with pytest.raises(ArchitectureError, match=r"'c1024' at position 26 \(stage7.width\)"):
        Architecture.decode(text, "mobilenet")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("relu6|c16:ir_k3_e1", "has 2 '|'-separated groups"),
        ("", "has 1 '|'-separated groups"),
    ],
)
def test_malformed_macro(text, message):
    with pytest.raises(ArchitectureError, match=message):
        Architecture.decode(text, "mobilenet")


def test_wrong_slot_count():
    text = BASELINES["resnet18"].arch.replace("basic_k3,basic_k3,skip|", "basic_k3|", 1)
    with pytest.raises(ArchitectureError, match=r"stage 1 group 'c64:basic_k3'.* 3 comma"):
        Architecture.decode(text, "resnet")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown token 'conv' at position 0"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "token 'none~1'.*'op~0'"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node group 2"),
        ("|none~0|", "has 1 '\\+'-separated node groups"),
    ],
)
def test_malformed_cell(text, message):
    with pytest.raises(ArchitectureError, match=message):
        Architecture.decode(text, "nb201")


def test_choice_out_of_range():
    with pytest.raises(ArchitectureError, match=r"choice 5 at position 0 \(edge 0->1\)"):
        Architecture(get_space("nb201"), (5, 0, 0, 0, 0, 0))
    with pytest.raises(ArchitectureError, match="takes 6 choices, got 2"):
        Architecture(get_space("nb201"), (0, 0))


def test_index_bounds():
    with pytest.raises(ArchitectureError, match="index 15625 is outside"):
        Architecture.from_index(15_625, "nb201")


def test_nb201_benchmark_strings_and_order(shared_data):
    frame = pd.read_parquet(shared_data / "nb201" / "nb201_cifar10_accuracy.parquet")
    assert len(frame) == 15_625
    space = get_space("nb201")
    for index, text in zip(frame["arch_index"], frame["arch_str"], strict=True):
        arch = Architecture.decode(text, space)
        assert str(arch) == text
        assert arch.index == index
        assert Architecture.from_index(int(index), space) == arch
