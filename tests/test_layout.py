"""The layout: stages as packages with imports only downwards, short modules, CLI = configs."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path
from typing import ClassVar

import pytest
import typer
from typer.testing import CliRunner

from rlnas.cli import app
from rlnas.hardware.profile import ProfileConfig
from rlnas.results.measure import MeasureConfig
from rlnas.results.verify import VerifyConfig
from rlnas.search.baseline import parse_drop
from rlnas.search.config import SearchConfig
from rlnas.settings import flat_fields, from_json, to_json

REPO = Path(__file__).resolve().parents[1]
ROOT = REPO / "rlnas"
# The environments sit at the repository root (the layout CONVENTIONS.md fixes), are
# installed as `rlnas.envs` (pyproject.toml), and belong to the search stage: they may
# import what search may, and only search imports them.
ENVS = REPO / "envs"
# Lower stages never import higher ones; rlnas.errors, rlnas.files, rlnas.settings and
# rlnas.cluster are shared by all.
STAGES = ["model", "hardware", "accuracy", "search", "results", "cli"]
SHARED = {"errors", "files", "settings", "cluster", ""}
DATA = {"spaces", "tables"}  # packages of data files, no code
SOURCES = sorted([*ROOT.rglob("*.py"), *ENVS.glob("*.py")])


def _name(path: Path) -> str:
    """The module's dotted name as installed."""
    base, prefix = (ENVS, "rlnas.envs") if path.is_relative_to(ENVS) else (ROOT, "rlnas")
    parts = [p for p in path.relative_to(base).with_suffix("").parts if p != "__init__"]
    return ".".join([prefix, *parts])


def _stage(module: str) -> str:
    parts = module.split(".")
    stage = parts[1] if len(parts) > 1 else ""
    return "search" if stage == "envs" else stage


def _guarded(tree: ast.AST) -> set[int]:
    """Ids of the nodes inside `if TYPE_CHECKING:` blocks (imports for annotations only)."""
    return {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }


def _imports(path: Path, modules: frozenset[str] = frozenset()) -> set[str]:
    """The rlnas modules `path` imports at run time, in functions too (not under
    TYPE_CHECKING); `from a import b` counts as a.b where that is one of `modules`."""
    tree = ast.parse(path.read_text())
    guarded = _guarded(tree)
    found = set()
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rlnas"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("rlnas"))
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_imports_only_go_downwards(path):
    own = _stage(_name(path))
    if own not in STAGES:
        return
    for module in _imports(path):
        stage = _stage(module)
        if stage in SHARED or stage in DATA:
            continue
        assert STAGES.index(stage) <= STAGES.index(own), f"{path.name} imports {module}"


def _loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import loops of `graph`: its strongly connected components of two or more
    modules (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    loops = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == module:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    return loops


def test_no_import_loops_outside_type_checking():
    paths = {_name(p): p for p in SOURCES}
    modules = frozenset(paths)
    graph = {
        name: {m for m in _imports(path, modules) if m in modules and m != name}
        for name, path in paths.items()
    }
    assert _loops(graph) == []


def test_the_loop_check_sees_a_loop():
    assert _loops({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_modules_stay_short(path):
    assert len(path.read_text().splitlines()) <= 400


def _body_lines(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function's body, after its docstring."""
    body = function.body
    first = body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and len(body) > 1:
        first = body[1]
    return (function.end_lineno or first.lineno) - first.lineno + 1


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_functions_stay_short(path):
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    long = {
        node.name: _body_lines(node)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, functions) and _body_lines(node) > 60
    }
    assert long == {}


def _command_parameters(name: str) -> dict[str, object]:
    """Option name -> default of one command, as typer sees it."""
    command = typer.main.get_command(app).get_command(None, name)  # type: ignore[union-attr]
    return {p.name: p.default for p in command.params}


_LATENCY_FORMS = ("latency_min_ms", "latency_factor", "latency_reference")


@pytest.mark.parametrize(
    ("command", "config", "excluded"),
    [
        # latency_min_ms is set by --latency-ms LO:HI, the relative target's fields by
        # --latency-ms FACTORx:BASELINE.
        ("search", SearchConfig, _LATENCY_FORMS),
        ("train-controller", SearchConfig, ("strategy", *_LATENCY_FORMS)),
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


def test_groups_keep_their_fields_names_on_the_command_line_and_in_json():
    """The sources' and strategies' settings are groups in Python (`config.sources.proxy`),
    but their options and `config.json` keys are the flat names users write."""
    config = SearchConfig.of(latency_ms=6, proxy="synflow", calibrate=False, ppo_n_epochs=2)
    assert config.sources.proxy.proxy == "synflow"
    assert not config.sources.table.calibrate
    assert config.strategies.ppo.n_epochs == 2
    data = to_json(config)
    assert data["proxy"] == "synflow" and data["calibrate"] is False
    assert data["ppo"]["n_epochs"] == 2 and "sources" not in data and "strategies" not in data
    assert from_json(SearchConfig, data, "config.json") == config
    with pytest.raises(TypeError, match=r"no setting.*proxxy"):
        SearchConfig.of(latency_ms=6, proxxy="synflow")


@dataclasses.dataclass(frozen=True)
class _Group:
    INLINE: ClassVar[bool] = True
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class _Twice:
    seed: int = 0
    group: _Group = dataclasses.field(default_factory=_Group)


def test_a_flat_name_used_twice_is_refused():
    with pytest.raises(TypeError, match="used twice: seed"):
        flat_fields(_Twice)


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
    assert config.strategies.evolution.population_size == 3
    assert config.strategies.evolution.sample_size == 2
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


def _readme_table(heading: str) -> list[list[str]]:
    """The rows (cells) of the first table under a README heading."""
    text = (REPO / "README.md").read_text().split(f"\n## {heading}\n", 1)[1]
    lines = [line for line in text.split("\n## ", 1)[0].splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[2:]]


def test_every_path_the_extending_table_names_exists():
    rows = _readme_table("Extending rlnas")
    named = [p for row in rows for p in re.findall(r"`([\w./]+/[\w./]*)`", " ".join(row))]
    assert len(rows) >= 6 and len(named) >= 10, rows
    missing = [p for p in named if not (REPO / p).exists()]
    assert not missing, f"README's Extending table names paths that do not exist: {missing}"


def test_the_layout_table_names_every_module():
    rows = {row[0].strip("`"): row[1] for row in _readme_table("Layout")}
    assert "rlnas/search/" in rows, rows
    missing = []
    for folder, cell in rows.items():
        base = REPO / folder
        for path in sorted(base.rglob("*.py")) if folder != "rlnas/" else base.glob("*.py"):
            if path.name != "__init__.py" and f"`{path.stem}`" not in cell:
                missing.append(str(path.relative_to(REPO)))
    assert not missing, f"README's Layout table leaves out {missing}"
