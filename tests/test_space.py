from __future__ import annotations

from pathlib import Path

import pytest

from rlnas.errors import SpaceError
from rlnas.model.cell import CellSpace
from rlnas.model.macro import MacroSpace
from rlnas.model.space import get_space, list_spaces

BUILTIN = Path(__file__).resolve().parents[1] / "rlnas" / "spaces"


def test_builtin_spaces_listed():
    assert list_spaces() == ["fbnet", "mobilenet", "nb201", "nbmacro", "resnet"]
    assert list_spaces("nb*") == ["nb201", "nbmacro"]


# Counted by hand from the space files: activations x widths x block choices per slot
# (22 blocks in a first slot, 23 with skip elsewhere; resnet: 1 block, 2 with skip).
SIZES = {
    "mobilenet": 2 * 3**7 * 22**7 * 23 ** (2 + 2 + 3 + 3 + 3),
    "resnet": 3**4 * 2 ** (2 + 3 + 5 + 2),
    "nb201": 5**6,
    "nbmacro": 3**8,  # NAS-Bench-Macro: 3 choices (two blocks, skip) in each of 8 layers
    "fbnet": 9**22,  # FBNet: 8 blocks and skip in each of 22 layers
}


@pytest.mark.parametrize("name", list_spaces())
def test_builtin_space_loads(name):
    space = get_space(name)
    assert space.name == name
    assert space.size == SIZES[name]
    assert get_space(name) is space  # cached


def test_nb201_size():
    space = get_space("nb201")
    assert isinstance(space, CellSpace)
    assert space.size == 15_625
    assert space.num_decisions == 6


def test_mobilenet_skip_only_after_first_slot():
    space = get_space("mobilenet")
    assert isinstance(space, MacroSpace)
    for decision in space.decisions:
        if decision.name.endswith(".slot1"):
            assert "skip" not in decision.tokens
        elif ".slot" in decision.name:
            assert decision.tokens[-1] == "skip"


def test_unknown_space_suggests():
    with pytest.raises(SpaceError, match="Did you mean 'mobilenet'"):
        get_space("mobilenett")


def test_user_copy_of_space(tmp_path):
    text = (
        (BUILTIN / "mobilenet.toml").read_text().replace("widths = [8, 16, 24]", "widths = [8, 16]")
    )
    path = tmp_path / "mine.toml"
    path.write_text(text)
    mine = get_space(path)
    default = get_space("mobilenet")
    assert mine != default
    assert mine.decisions[1].tokens == ("c8", "c16")
    assert mine.size * 3 == default.size * 2


def test_space_equality_by_content(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    text = (BUILTIN / "resnet.toml").read_text()
    (a / "r.toml").write_text(text)
    (b / "r.toml").write_text(text)
    assert get_space(a / "r.toml") == get_space(b / "r.toml")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("slots = 3", "slotz = 3", "unknown key 'slotz'.*Did you mean 'slots'"),
        ('activations = ["relu"]', 'activations = ["gelu"]', "'activations' = 'gelu'"),
        ("width = 64", "width = true", "'width' must be int, got True"),
        ("[blocks.basic]", "[blocks.bottleneck]", "unknown block family 'bottleneck'"),
        ("stride = 1\n", "stride = 3\n", "'stride' = 3 is not allowed"),
        ('kind = "macro"', 'kind = "macr"', "Did you mean 'macro'"),
        ("num_classes = 1000\n", "", "missing key 'num_classes'"),
        ("widths = [32, 48, 64]", "widths = [32, 32]", "repeated values"),
        ("name =", "name = = ", "not valid TOML"),
    ],
)
def test_invalid_space_file(tmp_path, old, new, message):
    text = (BUILTIN / "resnet.toml").read_text()
    assert old in text
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(SpaceError, match=message):
        get_space(path)


def test_missing_space_file(tmp_path):
    with pytest.raises(SpaceError, match="does not exist"):
        get_space(tmp_path / "nope.toml")


def test_corrupt_order_file(tmp_path):
    (tmp_path / "nb.toml").write_text((BUILTIN / "nb201.toml").read_text())
    (tmp_path / "nb201_order.txt").write_text("012340\n" * 10)
    with pytest.raises(SpaceError, match="each of the 15625 cells once"):
        get_space(tmp_path / "nb.toml")
