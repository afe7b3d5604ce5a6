"""The baseline-relative search (`--baseline A0 --accuracy-drop D`) and `rlnas verify`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import small_images, tiny_space

from rlnas.errors import RlnasError
from rlnas.model.arch import Architecture
from rlnas.model.baselines import get_baseline
from rlnas.model.nbmacro import from_code
from rlnas.model.space import get_space
from rlnas.results.verified_report import write_verified_report
from rlnas.results.verify import VerifyConfig, held_at_both, settles_epochs, verify_run
from rlnas.search.baseline import parse_drop, resolve_baseline
from rlnas.search.config import SearchConfig
from rlnas.search.rewards import RewardConfig
from rlnas.search.run import run_search
from rlnas.search.run_folder import VERIFIED, VERIFIED_PLOT, VERIFIED_REPORT, RunFolder


def test_reward_under_an_accuracy_floor():
    config = RewardConfig("hard", target_ms=10.0, accuracy_floor=0.8)
    # Feasible: the faster the better, whatever the accuracy above the floor.
    assert config.reward(0.81, 5.0) == pytest.approx(0.5)
    assert config.reward(0.81, 4.0) > config.reward(0.99, 5.0)
    assert config.feasible(5.0, 0, 0.8) and not config.feasible(5.0, 0, 0.79)
    assert not config.feasible(11.0, 0, 0.9)
    # Every infeasible one below every feasible one; closer to the limits is higher.
    assert config.reward(0.79, 1.0) < config.reward(0.8, 10.0)
    assert config.reward(0.9, 10.5) < 0
    assert config.reward(0.7, 5.0) < config.reward(0.79, 5.0) < 0
    assert config.reward(0.9, 15.0) < config.reward(0.9, 12.0)
    with pytest.raises(RlnasError, match="use mode hard"):
        RewardConfig("mnas", accuracy_floor=0.5)
    with pytest.raises(RlnasError, match="must be > 0"):
        RewardConfig("hard", accuracy_floor=0.0)


def test_parse_drop():
    assert parse_drop("1%") == pytest.approx(0.01)
    assert parse_drop(" 2.5% ") == pytest.approx(0.025)
    assert parse_drop("0.01") == pytest.approx(0.01)
    with pytest.raises(RlnasError, match="'one' is not a number"):
        parse_drop("one")


def test_resolve_baseline(tmp_path):
    space = get_space("mobilenet")
    assert resolve_baseline("mobilenetv2", space) == get_baseline("mobilenetv2").architecture()
    text = str(get_baseline("efficientnet_b0").architecture())
    assert str(resolve_baseline(text, space)) == text
    export = tmp_path / "a0.json"
    export.write_text(json.dumps({"arch": text, "space_digest": space.digest}))
    assert str(resolve_baseline(str(export), space)) == text
    with pytest.raises(RlnasError, match="member of the resnet space"):
        resolve_baseline("resnet18", space)
    with pytest.raises(RlnasError, match="no baseline name"):
        resolve_baseline("mobilenetv3", space)
    with pytest.raises(RlnasError, match="does not exist"):
        resolve_baseline(str(tmp_path / "missing.json"), space)
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(RlnasError, match="not an architecture export"):
        resolve_baseline(str(tmp_path / "bad.json"), space)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give a latency target"),
        ({"baseline": "mobilenetv2"}, "a proxy score is a percentile"),
        ({"baseline": "mobilenetv2", "predictor": "p.parquet", "reward": "mnas"}, "drop --reward"),
        ({"baseline": "mobilenetv2", "predictor": "p.parquet", "accuracy_drop": 1.5}, "fraction"),
    ],
)
def test_bad_baseline_settings(kwargs, message):
    with pytest.raises(RlnasError, match=message):
        SearchConfig.of(**kwargs)


@pytest.fixture(scope="module")
def nbmacro_accuracy(shared_data, tmp_path_factory):
    """NAS-Bench-Macro's 3-seed mean accuracy keyed by canonical string."""
    bench = pd.read_parquet(shared_data / "nbmacro" / "nbmacro_cifar10.parquet")
    path = tmp_path_factory.mktemp("nbmacro") / "accuracy.parquet"
    strings = [str(from_code(code)) for code in bench["arch"]]
    pd.DataFrame({"arch_str": strings, "mean_acc": bench["mean_acc"]}).to_parquet(path)
    return path, dict(zip(strings, bench["mean_acc"] / 100, strict=True))


@pytest.mark.parametrize("strategy", ["evolution", "ppo"])
def test_search_starts_at_a0_and_keeps_its_accuracy(nbmacro_accuracy, tmp_path, strategy):
    path, truth = nbmacro_accuracy
    a0 = sorted(truth, key=truth.get)[len(truth) // 2]  # a network of middling accuracy
    config = SearchConfig.of(
        space="nbmacro",
        strategy=strategy,
        accuracy_file=path,
        accuracy_column="mean_acc",
        baseline=a0,
        accuracy_drop=0.01,
        budget=40,
    )
    result = run_search(config, tmp_path / "run")
    target = result.baseline
    assert target is not None and target.arch == a0
    assert target.accuracy == pytest.approx(truth[a0])
    assert target.accuracy_floor == pytest.approx(0.99 * truth[a0])
    assert target.target_ms == target.latency_ms  # no --latency-ms: a0's latency is the limit
    frame = result.evaluations
    space = get_space("nbmacro")
    assert frame["arch"].iloc[0] == a0  # the search starts at a0 ...
    first = [Architecture.decode(a, space).choices for a in frame["arch"].head(10)]
    edits = [sum(x != y for x, y in zip(c, first[0], strict=True)) for c in first]
    assert max(edits) <= 3  # ... and its starting population is a0's neighbourhood
    feasible = (frame["accuracy"] >= target.accuracy_floor) & (
        frame["latency_ms"] <= target.target_ms
    )
    assert list(frame["feasible"]) == list(feasible)
    best = result.best
    assert best["feasible"] and best["latency_ms"] == frame[feasible]["latency_ms"].min()
    # Stored with the run and read back; the same command resumes the run.
    run = RunFolder.open(tmp_path / "run")
    assert run.provenance.baseline == target and run.config.target_ms == target.target_ms
    assert run.ranked()["arch"].iloc[0] == best["arch"]
    again = run_search(config, tmp_path / "run")
    assert again.replayed == len(frame) and again.best["arch"] == best["arch"]


@pytest.fixture
def tiny_run(tmp_path, shared_data):
    """A baseline-relative run in the tiny space (3 networks) with 600 + 200 images."""
    space = tiny_space(tmp_path)
    data = small_images(tmp_path, shared_data)
    accuracy, latency = tmp_path / "acc.csv", tmp_path / "ms.csv"
    pd.DataFrame({"arch_index": [0, 1, 2], "acc": [80.0, 85.0, 90.0]}).to_csv(accuracy)
    pd.DataFrame({"arch_index": [0, 1, 2], "ms": [1.0, 2.0, 3.0]}).to_csv(latency)
    a0 = str(Architecture.from_index(2, str(space)))
    config = SearchConfig.of(
        space=str(space),
        strategy="random",
        budget=3,
        accuracy_file=accuracy,
        accuracy_column="acc",
        latency_file=latency,
        latency_column="ms",
        baseline=a0,
        accuracy_drop=0.1,
        data=data,
    )
    run_search(config, tmp_path / "run")
    return tmp_path / "run", space


def test_ranked_fastest_above_the_floor(tiny_run):
    run = RunFolder.open(tiny_run[0])
    order = run.ranked()
    # floor 0.81: index 1 (0.85, 2 ms) first, then a0 (0.90, 3 ms); index 0 (0.80) misses it
    assert list(order["accuracy"]) == pytest.approx([0.85, 0.90, 0.80])
    assert list(order["feasible"]) == [True, True, False]


@pytest.mark.slow
def test_verify_trains_times_and_resumes(tiny_run):
    path, _ = tiny_run
    trainings: list[str] = []
    config = VerifyConfig(top=2, seeds=2, epochs=1, passes=1, baselines=())
    frame = verify_run(path, config, notice=lambda arch, what: trainings.append(what))
    # a0 and ranks 1-2 (rank 2 is a0 itself: trained once per seed), 2 seeds each, at 1 and
    # at 2 epochs
    assert len(trainings) == 8
    assert list(frame["name"]) == ["a0", "rank1", "rank2"]
    assert list(frame["seeds"]) == [2, 2, 2] and set(frame["top1_split"]) == {"test"}
    assert list(frame["long_seeds"]) == [2, 2, 2]
    assert set(frame["epochs"]) == {1} and set(frame["long_epochs"]) == {2}
    assert frame["is_a0"].tolist() == [True, False, False]
    assert frame["top1_mean"].iloc[0] == frame["top1_mean"].iloc[2]  # the same trainings
    assert frame["long_top1_mean"].iloc[0] == frame["long_top1_mean"].iloc[2]
    assert frame["constraint_held"].iloc[0] is None
    # a0 keeps 0.9x itself at both budgets
    assert frame["held_short"].iloc[2] is True and frame["held_long"].iloc[2] is True
    assert frame["constraint_held"].iloc[2] is True
    assert (frame["measured_ms"] > 0).all()
    stored = pd.read_parquet(path / VERIFIED)
    assert len(json.loads(stored["top1_seeds"].iloc[1])) == 2
    report = (path / VERIFIED_REPORT).read_text()
    assert "## The constraint, for real" in report and "candidates kept the floor" in report
    assert "## Did the regime settle?" in report and "The search's pick, rank 1" in report
    assert (path / VERIFIED_PLOT).stat().st_size > 0
    # A rerun trains nothing (every training is cached) and writes the same table.
    trainings.clear()
    again = verify_run(path, config, notice=lambda arch, what: trainings.append(what))
    assert trainings == []
    assert again["top1_mean"].tolist() == frame["top1_mean"].tolist()


def test_verify_bad_input(tiny_run, tmp_path):
    with pytest.raises(RlnasError, match="--seeds must be >= 1"):
        VerifyConfig(seeds=0)
    with pytest.raises(RlnasError, match="choose from"):
        VerifyConfig(baselines=("mobilenetv9",))
    with pytest.raises(RlnasError, match="is not a run folder"):
        verify_run(tmp_path / "nowhere", VerifyConfig())
    path, _ = tiny_run
    with pytest.raises(RlnasError, match=r"has no verified\.parquet; run `rlnas verify"):
        write_verified_report(path)
    (path / VERIFIED).write_bytes(b"not parquet")
    with pytest.raises(RlnasError, match=r"is unreadable .*rerun `rlnas verify"):
        write_verified_report(path)
    assert (path / VERIFIED).read_bytes() == b"not parquet"  # never overwritten


def test_verify_on_a_gpu_where_none_is(tiny_run, monkeypatch):
    with pytest.raises(RlnasError, match="--train-device must be cpu or cuda, got 'gpu'"):
        VerifyConfig(train_device="gpu")
    if torch.cuda.is_available():
        pytest.skip("torch sees a CUDA GPU here")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    path, _ = tiny_run
    before = sorted(p.name for p in path.iterdir())
    with pytest.raises(RlnasError, match="--train-device cuda: torch sees no CUDA GPU here"):
        verify_run(path, VerifyConfig(train_device="cuda", passes=1))
    assert sorted(p.name for p in path.iterdir()) == before  # nothing timed or written


def test_a0_reference_must_be_a_percentage():
    for bad in (0.0, -3.0, 120.0):
        with pytest.raises(RlnasError, match="--a0-reference is a top-1 in percent"):
            VerifyConfig(a0_reference=bad)
    assert VerifyConfig(a0_reference=94.1).a0_reference == 94.1


def test_the_settling_budget_comes_from_the_curve(tmp_path):
    # a - b exp(-e / tau) reaches 1% of a at tau ln(b / (0.01 a)): 5 ln(40 / 0.9) = 19.0
    epochs = np.arange(1, 11)
    histories = []
    for seed, noise in enumerate((0.001, -0.001)):
        path = tmp_path / f"history{seed}.parquet"
        pd.DataFrame({"val_top1": 0.9 - 0.4 * np.exp(-epochs / 5) + noise}).to_parquet(path)
        histories.append(path)
    assert settles_epochs(histories) == pytest.approx(5 * np.log(0.4 / 0.009), rel=0.02)
    # Too short a curve, or a falling one, gives no estimate.
    pd.DataFrame({"val_top1": [0.5, 0.6, 0.7]}).to_parquet(tmp_path / "short.parquet")
    assert np.isnan(settles_epochs([tmp_path / "short.parquet"]))
    pd.DataFrame({"val_top1": 0.2 + 0.4 * np.exp(-epochs / 5)}).to_parquet(tmp_path / "f.parquet")
    assert np.isnan(settles_epochs([tmp_path / "f.parquet"]))
    assert np.isnan(settles_epochs([]))


@pytest.mark.parametrize(
    ("short", "long", "both"),
    [(True, True, True), (True, False, False), (False, True, False), (True, None, None)],
)
def test_held_only_where_it_holds_at_both_budgets(short, long, both):
    assert held_at_both(short, long) is both


def _write_verified(path, rows, settles_epochs=37.0, std=0.01) -> str:
    """Writes a verified.parquet of `rows` (name, kind, rank, is_a0, top-1 at E, at 2E,
    held at E, at 2E, both) into the run at `path`, and returns its report."""
    a0 = RunFolder.open(path).provenance.baseline.arch
    frame = pd.DataFrame(
        [
            {
                "name": name,
                "kind": kind,
                "rank": rank,
                "is_a0": is_a0,
                "arch": a0,
                "device": "cpu",
                "precision": "fp32",
                "score": 0.9,
                "predicted_ms": 1.0,
                "measured_ms": 1.0 + i,
                "params": 1e4,
                "macs": 1e6,
                "seeds": 2,
                "top1_split": "test",
                "top1_mean": short,
                "top1_std": std,
                "epochs": 10,
                "long_seeds": 2,
                "long_top1_mean": long,
                "long_top1_std": std,
                "long_epochs": 20,
                "a0_settles_epochs": settles_epochs,
                "a0_reference": 94.0,
                "held_short": held_short,
                "held_long": held_long,
                "constraint_held": both,
            }
            for i, (name, kind, rank, is_a0, short, long, held_short, held_long, both) in enumerate(
                rows
            )
        ]
    )
    frame.to_parquet(path / VERIFIED)
    write_verified_report(path)
    return (path / VERIFIED_REPORT).read_text()


def test_a_margin_within_the_seed_noise_is_said(tiny_run):
    rows = [
        ("a0", "baseline", None, True, 0.50, 0.60, None, None, None),
        ("rank1", "candidate", 1, False, 0.455, 0.70, True, True, True),
    ]
    report = _write_verified(tiny_run[0], rows)
    # The tiny run allows a 10% drop. 10 epochs: 0.455 - 0.9 x 0.50 = +0.5 points; two
    # standard errors of the difference, 2 x sqrt(0.01^2 / 2 + (0.9 x 0.01)^2 / 2) = 1.90
    # points; 4 x (0.01^2 + 0.009^2) / 0.005^2 = 28.96 seeds.
    assert (
        "At 10 epochs the pick's margin over the floor (+0.50 points) is within two standard "
        "errors of the seeds' spread (1.90 points): these seeds cannot tell whether it holds; "
        "about 29 seeds each would" in report
    )
    assert "At 20 epochs the pick's margin" not in report  # +16 points: the seeds tell
    one_seed = _write_verified(tiny_run[0], rows, std=float("nan"))
    assert "the pick's margin over the floor" not in one_seed


def test_an_unsettled_regime_claims_no_hold(tiny_run):
    rows = [
        ("a0", "baseline", None, True, 0.50, 0.70, None, None, None),
        ("rank1", "candidate", 1, False, 0.60, 0.66, True, True, True),
        ("rank2", "candidate", 2, False, 0.55, 0.50, True, False, False),
    ]
    report = _write_verified(tiny_run[0], rows)
    assert "## Did the regime settle? **No**" in report
    assert "1 verdict(s) changed (rank2)" in report and "order of the networks changed" in report
    assert "after about **37 epochs**" in report and "`--epochs 37`" in report
    assert "a0's reference top-1: 94.00%" in report
    assert "none is claimed to hold" in report and "only those count as held" not in report
    assert "| yes at both, regime not settled |" in report
    assert "The search's pick, rank 1 (rank1): held at both budgets, but the regime" in report


@pytest.mark.parametrize(("plateau", "still_learning"), [(37.0, True), (15.0, False)])
def test_same_verdicts_while_a0_still_learns_is_not_settled_accuracy(
    tiny_run, plateau, still_learning
):
    rows = [
        ("a0", "baseline", None, True, 0.50, 0.70, None, None, None),
        ("rank1", "candidate", 1, False, 0.60, 0.76, True, True, True),
    ]
    report = _write_verified(tiny_run[0], rows, settles_epochs=plateau)
    heading = "## Did the regime settle? In its verdicts and order, yes; in accuracy, **not yet**"
    assert (heading in report) is still_learning
    assert ("## Did the regime settle? Yes" in report) is not still_learning
    assert ("a0 is still learning at 20 epochs" in report) is still_learning
    assert "only those count as held" in report
