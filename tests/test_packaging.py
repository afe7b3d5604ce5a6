"""The package installs everything it has (a non-editable install copies only what is listed)."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_pyproject():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    found = {
        ".".join(("rlnas", *init.parent.relative_to(ROOT / "rlnas").parts))
        for init in (ROOT / "rlnas").rglob("__init__.py")
    }
    mapped = set(setuptools["package-dir"]) - {"rlnas"}  # tables/ and envs/ at the root
    assert listed == found | mapped


def test_package_data_is_installed():
    spaces = {p.name for p in resources.files("rlnas.spaces").iterdir()}
    assert {"mobilenet.toml", "nb201.toml", "resnet.toml", "nb201_order.txt"} <= spaces
    assert any(p.name.endswith(".parquet") for p in resources.files("rlnas.tables").iterdir())
