"""`rlnas verify RUN --truth`: a run checked against a benchmark's full-training accuracies."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import nb201_config
from typer.testing import CliRunner

from rlnas.cli import app
from rlnas.errors import RlnasError
from rlnas.model.nbmacro import from_code
from rlnas.results.truth import TRUTH, check_truth
from rlnas.search.config import SearchConfig
from rlnas.search.run import run_search
from rlnas.search.run_folder import RunFolder


@pytest.fixture(scope="module")
def nbmacro_run(shared_data, tmp_path_factory, session_calibrations):
    """A baseline-relative nbmacro search whose accuracy source is the benchmark itself."""
    bench = pd.read_parquet(shared_data / "nbmacro" / "nbmacro_cifar10.parquet")
    folder = tmp_path_factory.mktemp("truth")
    with pytest.MonkeyPatch.context() as env:  # the tests' own folders, as for every test
        env.setenv("RLNAS_HOME", str(folder / "home"))
        env.setenv("RLNAS_CALIBRATIONS", str(session_calibrations))
        _search(folder, bench)
    return folder / "run", shared_data / "nbmacro" / "nbmacro_cifar10.parquet", bench


def _search(folder, bench):
    accuracy = folder / "accuracy.parquet"
    strings = [str(from_code(code)) for code in bench["arch"]]
    pd.DataFrame({"arch_str": strings, "mean_acc": bench["mean_acc"]}).to_parquet(accuracy)
    a0 = strings[int(bench["mean_acc"].rank(method="first").sub(len(bench) // 2).abs().idxmin())]
    config = SearchConfig.of(
        space="nbmacro",
        strategy="evolution",
        accuracy_file=accuracy,
        accuracy_column="mean_acc",
        baseline=a0,
        accuracy_drop=0.01,
        budget=60,
    )
    run_search(config, folder / "run")


def _contents(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_run_on_the_benchmarks_own_accuracy_keeps_the_real_floor(nbmacro_run):
    out, file, bench = nbmacro_run
    run = RunFolder.open(out)
    before = _contents(out)
    check = check_truth(run, "nbmacro", file)
    baseline = run.provenance.baseline
    assert baseline is not None
    # The run's accuracy is the benchmark's (as a fraction), so its floor is the real one.
    assert check.floor == pytest.approx(100 * baseline.accuracy_floor)
    assert check.a0 == baseline.arch and check.a0_ms == pytest.approx(baseline.latency_ms)
    best = run.ranked().iloc[0]
    assert check.pick == best["arch"] and check.pick_ms == pytest.approx(best["latency_ms"])
    assert check.held is True and check.pick_accuracy >= check.floor
    assert check.speedup == pytest.approx(baseline.latency_ms / best["latency_ms"])
    # The fastest network that keeps the floor, found over all 6,561.
    assert 1 <= check.keep_floor <= check.networks_within_limit <= len(bench)
    assert check.fastest_keeping_ms <= check.pick_ms
    assert check.pick_rank_by_latency >= 1
    assert check.over_fastest == pytest.approx(check.pick_ms / check.fastest_keeping_ms)
    # Written beside the run; nothing else there changed.
    after = _contents(out)
    assert json.loads(after.pop(TRUTH))["pick"] == check.pick
    assert after == before


def test_a_run_for_a_latency_target_gets_its_rank_and_regret(shared_data, tmp_path):
    run_search(nb201_config(shared_data, "evolution", budget=30), tmp_path / "run")
    run = RunFolder.open(tmp_path / "run")
    check = check_truth(run, "nb201", shared_data / "nb201" / "nb201_cifar10_accuracy.parquet")
    assert check.floor is None and check.limit_ms == pytest.approx(6.44)
    assert check.pick_ms <= 6.44
    assert check.best_accuracy >= check.pick_accuracy
    assert check.regret == pytest.approx(check.best_accuracy - check.pick_accuracy)
    assert 1 <= check.pick_rank_by_accuracy <= check.networks_within_limit


def test_the_command_prints_the_check(nbmacro_run):
    out, file, _ = nbmacro_run
    result = CliRunner().invoke(
        app, ["verify", str(out), "--truth", "nbmacro", "--truth-file", str(file)]
    )
    assert result.exit_code == 0, result.output
    assert "real floor" in result.output and "held" in result.output
    assert str(out / TRUTH) in result.output


@pytest.mark.parametrize(
    ("truth", "file", "message"),
    [
        ("nbmacr", "bench", "--truth benchmark 'nbmacr' doesn't exist.*Did you mean 'nbmacro'"),
        ("nb201", "bench", "searched the nbmacro space; --truth nb201 knows only nb201"),
        ("nbmacro", "missing", "no nbmacro benchmark file at .*--truth-file"),
        ("nbmacro", "nb201", "is not the nbmacro benchmark file"),
    ],
)
def test_bad_truth_is_one_line_and_changes_nothing(nbmacro_run, tmp_path, truth, file, message):
    out, bench, _ = nbmacro_run
    files = {
        "bench": bench,
        "missing": tmp_path / "nothing.parquet",
        "nb201": bench.parents[1] / "nb201" / "nb201_cifar10_accuracy.parquet",
    }
    (out / TRUTH).unlink(missing_ok=True)
    before = _contents(out)
    with pytest.raises(RlnasError, match=message):
        check_truth(RunFolder.open(out), truth, files[file])
    result = CliRunner().invoke(
        app, ["verify", str(out), "--truth", truth, "--truth-file", str(files[file])]
    )
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert _contents(out) == before
