"""Latency targets relative to a baseline (`--latency-ms 0.6x:mobilenetv2`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from rlnas.cli import app
from rlnas.errors import RlnasError
from rlnas.model.baselines import get_baseline
from rlnas.model.costs import AdditiveCost
from rlnas.model.space import get_space
from rlnas.search.config import SearchConfig
from rlnas.search.run import run_search
from rlnas.search.run_folder import CONFIG, RunFolder
from rlnas.search.sources import latency_source

pytestmark = pytest.mark.filterwarnings("ignore::rlnas.errors.ForeignTableWarning")


@pytest.mark.parametrize("name", ["nbmacro", "resnet", "nb201"])
def test_the_cheapest_network_is_the_least_of_all(name):
    space = get_space(name)
    rng = np.random.default_rng(0)
    costs: dict[object, float] = {}
    model = AdditiveCost(space, space.resolution, lambda k: costs.setdefault(k, rng.random()))
    cheapest = model.cheapest()
    assert cheapest is not None
    totals = [model.total(space.from_index(i)) for i in range(space.size)]
    assert cheapest[0] == pytest.approx(min(totals))
    assert model.total(cheapest[1]) == pytest.approx(cheapest[0])


def test_the_cheapest_network_of_a_large_space_beats_every_sample():
    space = get_space("mobilenet")
    rng = np.random.default_rng(1)
    costs: dict[object, float] = {}
    model = AdditiveCost(space, space.resolution, lambda k: costs.setdefault(k, rng.random()))
    cheapest = model.cheapest()
    assert cheapest is not None
    assert all(model.total(space.sample(rng)) >= cheapest[0] for _ in range(500))
    assert model.cheapest(max_states=1) is None  # too many states: cannot tell


def _config(**kwargs):
    settings = dict(strategy="random", budget=3, calibrate=False, proxy="params")
    return SearchConfig.of(**{**settings, **kwargs})


def test_a_relative_target_resolves_on_the_run_table_and_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("RLNAS_HOME", str(tmp_path / "home"))
    config = _config(latency_factor=0.6, latency_reference="mobilenetv2")
    notes: list[str] = []
    result = run_search(config, tmp_path / "run", notify=notes.append)
    relative = RunFolder.open(tmp_path / "run").provenance.relative
    assert relative is not None and relative.reference == "mobilenetv2"
    mbv2 = get_baseline("mobilenetv2").architecture()
    table = latency_source(config.resolved(), get_space("mobilenet"))
    assert relative.reference_ms == pytest.approx(table.latency_ms(mbv2))
    assert relative.target_ms == pytest.approx(0.6 * relative.reference_ms)
    assert result.config is not None and result.config.target_ms == relative.target_ms
    assert RunFolder.open(tmp_path / "run").config.target_ms == relative.target_ms
    assert any(f"{relative.target_ms:.3f} ms" in n for n in notes)  # printed
    stored = json.loads((tmp_path / "run" / CONFIG).read_text())
    assert stored["search"]["latency_factor"] == 0.6
    assert stored["latency_target"]["target_ms"] == pytest.approx(relative.target_ms)
    assert relative.fastest_ms is not None and relative.fastest_ms < relative.target_ms
    again = run_search(config, tmp_path / "run")  # the same command resumes it
    assert again.replayed == 3


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("0.6x:mobilenetv3", "latency baseline 'mobilenetv3' doesn't exist"),
        ("0.6x:resnet18", "is a member of the resnet space"),
        ("0x:mobilenetv2", "must be finite and > 0, got 0"),
        ("infx:mobilenetv2", "must be finite and > 0, got inf"),
        ("-0.5x:mobilenetv2", "must be finite and > 0"),
        ("0.6x", "not a relative target"),
        ("0.01x:mobilenetv2", "below the fastest network of the space"),
    ],
)
def test_bad_relative_targets_get_one_line_and_no_run_folder(tmp_path, target, message):
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["search", "--strategy", "random", "--budget", "3", "--no-calibrate", "--proxy",
         "params", "--latency-ms", target, "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code != 0
    errors = [line for line in result.output.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert not out.exists()


def test_the_fastest_latency_is_named_and_the_least_factor_works(tmp_path):
    with pytest.raises(RlnasError, match=r"give a factor of at least ([\d.]+)") as caught:
        run_search(_config(latency_factor=0.01, latency_reference="mobilenetv2"), tmp_path / "a")
    least = float(caught.value.args[0].rsplit(" ", 1)[-1])
    result = run_search(
        _config(latency_factor=least, latency_reference="mobilenetv2"), tmp_path / "b"
    )
    assert result.config is not None and result.config.latency_ms is not None


def test_relative_settings_are_checked_on_creation():
    with pytest.raises(RlnasError, match="not both"):
        SearchConfig(latency_ms=6, latency_factor=0.6, latency_reference="mobilenetv2")
    with pytest.raises(RlnasError, match="needs a factor and a baseline"):
        SearchConfig(latency_factor=0.6)
