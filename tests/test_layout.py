"""The layout: stages as packages with imports only downwards, short modules, CLI = configs."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rlnas.cli import app
from rlnas.hardware.profile import ProfileConfig
from rlnas.results.measure import MeasureConfig
from rlnas.results.verify import VerifyConfig
from rlnas.search.baseline import parse_drop
from rlnas.search.config import SearchConfig
from rlnas.settings import flat_fields

ROOT = Path(__file__).resolve().parents[1] / "rlnas"
# Lower stages never import higher ones; rlnas.errors, rlnas.files, rlnas.settings and
# rlnas.cluster are shared by all.
STAGES = ["model", "hardware", "accuracy", "search", "results", "cli"]
SHARED = {"errors", "files", "settings", "cluster", ""}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rlnas"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("rlnas"))
    return found


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.mark.parametrize("path", sorted(ROOT.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_only_go_downwards(path):
    own = path.relative_to(ROOT).parts[0] if len(path.relative_to(ROOT).parts) > 1 else ""
    if own not in STAGES:
        return
    for module in _imports(path):
        stage = _stage(module)
        if stage in SHARED or stage in ("envs", "spaces", "tables"):
            continue
        assert STAGES.index(stage) <= STAGES.index(own), f"{path.name} imports {module}"


@pytest.mark.parametrize("path", sorted(ROOT.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_stay_short(path):
    assert len(path.read_text().splitlines()) <= 420


def _command_parameters(name: str) -> dict[str, object]:
    """Option name -> default of one command, as typer sees it."""
    command = typer.main.get_command(app).get_command(None, name)  # type: ignore[union-attr]
    return {p.name: p.default for p in command.params}


@pytest.mark.parametrize(
    ("command", "config", "excluded"),
    [
        # latency_min_ms is set by --latency-ms LO:HI.
        ("search", SearchConfig, ("latency_min_ms",)),
        ("train-controller", SearchConfig, ("strategy", "latency_min_ms")),
        ("profile", ProfileConfig, ()),
        ("measure", MeasureConfig, ()),
        ("verify", VerifyConfig, ()),
    ],
)
def test_every_config_field_is_reachable_with_its_default(command, config, excluded):
    params = _command_parameters(command)
    for field in flat_fields(config):
        if field.name in excluded:
            assert field.name not in params
            continue
        assert field.name in params, f"{command} has no option for {field.name}"
        if field.default is not dataclasses.MISSING:
            default = params[field.name]
            if field.name == "accuracy_drop":  # written as a percentage: 1%
                default = parse_drop(str(default))
            expected = field.default
            if isinstance(expected, tuple):
                expected = list(expected)
            if isinstance(expected, Path):
                expected = str(expected)
            assert default == expected, f"{command} --{field.name}: {default} != {expected}"


def test_a_mistyped_strategy_leaves_no_folder(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["search", "--latency-ms", "5", "--strategy", "evolutoin", "--out", str(out)]
    )
    assert result.exit_code == 2
    assert "Did you mean 'evolution'" in result.stderr
    assert not out.exists()


def test_nested_settings_reach_the_strategy(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "search", "--latency-ms", "8", "--strategy", "evolution", "--proxy", "params",
            "--budget", "6", "--evolution-population-size", "3", "--evolution-sample-size", "2",
            "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    from rlnas.search.run_folder import read_settings

    config, provenance = read_settings(out)
    assert config.evolution.population_size == 3 and config.evolution.sample_size == 2
    assert provenance.table is not None and provenance.proxy is not None
    assert provenance.proxy.proxy == "params"


def test_best_is_the_most_accurate_within_the_target_under_every_reward():
    import pandas as pd

    from rlnas.search.run_folder import ranked

    # Under mnas a network 2x over the target can have the top reward; it is not "best".
    frame = pd.DataFrame(
        {
            "step": [0, 1, 2],
            "arch": ["over", "fast", "within"],
            "accuracy": [0.9, 0.5, 0.6],
            "latency_ms": [12.0, 4.0, 5.5],
            "params": [1, 1, 1],
            "reward": [0.85, 0.52, 0.61],
            "feasible": [True, True, True],
        }
    )
    assert list(ranked(frame, 6.0)["arch"]) == ["within", "fast", "over"]
