"""Accuracy and latency sources are records: adding one is one module and one registry line."""

from __future__ import annotations

import dataclasses
import importlib
import sys
import textwrap

import pandas as pd
import pytest
from conftest import nb201_config

from rlnas.errors import RlnasError
from rlnas.search import sources
from rlnas.search.config import SearchConfig
from rlnas.search.run import run_search
from rlnas.search.run_folder import RunFolder

TOY = '''
"""A toy accuracy source: a network's score is its NAS-Bench-201 index modulo 97, / 96."""

from rlnas.search.sources.base import AccuracyKind, unscored


class ToyAccuracy:
    description = "toy (index modulo 97)"
    proxy = None

    def accuracy(self, arch):
        return (arch.index % 97) / 96

    def prefetch(self, archs, pool):
        pass

    def columns(self, archs):
        return {"toy_index": [float(a.index) for a in archs]}

    def flush(self):
        pass


KIND = AccuracyKind(
    name="toy",
    make=lambda config, space: ToyAccuracy(),
    score_name=lambda config: "toy score (not an accuracy)",
    is_accuracy=False,
    score_baselines=unscored,
)
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """The toy source, written as a module of its own and registered by one line."""
    folder = tmp_path / "toy_module"
    folder.mkdir()
    (folder / "toy_accuracy.py").write_text(textwrap.dedent(TOY))
    monkeypatch.syspath_prepend(str(folder))
    module = importlib.import_module("toy_accuracy")
    monkeypatch.setitem(sources.ACCURACY_SOURCES, "toy", module.KIND)
    yield module
    monkeypatch.delitem(sys.modules, "toy_accuracy", raising=False)


def test_a_toy_source_in_its_own_module_drives_a_search(toy, tmp_path, shared_data):
    config = dataclasses.replace(nb201_config(shared_data, "evolution", budget=30), accuracy="toy")
    result = run_search(config, out=tmp_path / "run")
    frame = pd.read_parquet(tmp_path / "run" / "evaluations.parquet")
    indices = frame["toy_index"].astype(int)
    assert (frame["accuracy"] == (indices % 97) / 96).all()
    assert len(frame) == 30
    run = RunFolder.open(tmp_path / "run")
    assert run.config.score_name() == "toy score (not an accuracy)"
    assert run.provenance.accuracy_source == "toy (index modulo 97)"
    assert result.best["accuracy"] == frame[frame["feasible"]]["accuracy"].max()


def test_a_toy_source_that_is_no_accuracy_cannot_carry_a_baseline(toy, shared_data):
    with pytest.raises(RlnasError, match="--baseline needs accuracies"):
        dataclasses.replace(
            nb201_config(shared_data, "evolution"), accuracy="toy", baseline="mobilenetv2"
        )


@pytest.mark.parametrize(
    ("settings", "source"),
    [
        ({}, "proxy"),
        ({"accuracy_file": "a.parquet"}, "benchmark"),
        ({"predictor": "p.json", "accuracy_file": "a.parquet"}, "predictor"),
        ({"accuracy": "trained"}, "trained"),
    ],
)
def test_the_source_is_picked_by_the_files_given(settings, source):
    config = SearchConfig.of(latency_ms=6, **settings)
    assert config.accuracy_kind() == source
    assert sources.accuracy_kind(config).name == source


def test_an_unknown_source_is_refused_with_a_suggestion():
    with pytest.raises(RlnasError, match=r"accuracy source 'proxyy'.*'proxy'"):
        SearchConfig(latency_ms=6, accuracy="proxyy")
    with pytest.raises(RlnasError, match=r"latency source 'tabel'.*'table'"):
        SearchConfig(latency_ms=6, latency="tabel")
