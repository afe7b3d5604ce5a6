"""The few-shot accuracy predictor on NAS-Bench-Macro's true accuracies."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy import stats

from rlnas.accuracy.predictor import Predictor, choose_model, encode
from rlnas.errors import RlnasError, RunError
from rlnas.model.arch import Architecture
from rlnas.model.nbmacro import from_code


@pytest.fixture(scope="module")
def macro(shared_data):
    frame = pd.read_parquet(shared_data / "nbmacro" / "nbmacro_cifar10.parquet")
    return [from_code(c) for c in frame["arch"]], frame["mean_acc"].to_numpy()


def test_fifty_architectures_rank_the_rest(macro):
    archs, accuracy = macro
    order = np.random.default_rng(5).permutation(len(archs))
    train, test = order[:50], order[50:1050]
    predictor = Predictor([archs[i] for i in train], accuracy[train])
    mean, std = predictor.predict([archs[i] for i in test])
    assert stats.spearmanr(mean, accuracy[test]).statistic > 0.85
    assert (std > 0).all()
    # The uncertainty means something: most true values lie within 2 std.
    assert np.mean(np.abs(mean - accuracy[test]) <= 2 * std) > 0.8


def test_a_forest_learns_what_a_line_cannot_and_knows_its_error(macro):
    archs = macro[0][:1000]
    # Made-up truth: accuracy peaks where a proxy is 0 and falls off on both sides, as a
    # proxy that saturates might; the architecture itself says nothing.
    p = np.random.default_rng(0).normal(0, 1, len(archs))
    accuracy = 90 - 3 * p**2 + np.random.default_rng(1).normal(0, 0.3, len(archs))
    proxy = {"p": list(p)}
    train, test = np.arange(50), np.arange(50, len(archs))

    def fit(model: str) -> float:
        fitted = Predictor([archs[i] for i in train], accuracy[train], _at(proxy, train), model)
        mean, std = fitted.predict([archs[i] for i in test], _at(proxy, test))
        assert (std > 0).all()
        if model == "forest":  # the trees' spread and the out-of-bag error: most within 2 std
            assert np.mean(np.abs(mean - accuracy[test]) <= 2 * std) > 0.8
        return float(stats.spearmanr(mean, accuracy[test]).statistic)

    assert fit("forest") > 0.8 > 0.3 > fit("ridge")
    # Cross-validation on the known networks finds that too; on the encoding of
    # NAS-Bench-Macro, where the accuracy is nearly additive, it keeps the ridge.
    known = [archs[i] for i in train]
    assert choose_model(known, accuracy[train], _at(proxy, train))[0] == "forest"
    drawn = np.random.default_rng(5).permutation(len(macro[0]))[:50]
    chosen, scores = choose_model([macro[0][i] for i in drawn], macro[1][drawn])
    assert chosen == "ridge" and scores["ridge"] > scores["forest"]
    assert choose_model(known[:9], accuracy[:9]) == ("ridge", {})  # too few to choose
    with pytest.raises(RlnasError, match="unknown predictor model 'gp'"):
        Predictor(archs[:5], accuracy[:5], model="gp")


def test_a_forest_predicts_what_its_trees_predict(macro):
    """The forest reads each tree's leaf itself (fast, one network at a time): the same
    numbers as scikit-learn's own per-tree predictions."""
    archs, accuracy = macro
    fitted = Predictor(archs[:40], accuracy[:40], model="forest")
    mean, std = fitted.predict(archs[40:90])
    forest, noise = fitted.models[0]
    x = (encode(archs[40:90], {}, fitted.floors) - fitted.mean) / fitted.scale
    per_tree = np.stack([tree.predict(x) for tree in forest.estimators_])
    np.testing.assert_array_equal(mean, per_tree.mean(axis=0))
    np.testing.assert_array_equal(std, np.sqrt(per_tree.var(axis=0) + noise))


def _at(proxy: dict[str, list[float]], rows: np.ndarray) -> dict[str, list[float]]:
    return {k: [v[i] for i in rows] for k, v in proxy.items()}


@pytest.mark.parametrize("model", ["ridge", "forest", "blend"])
def test_saved_predictor_predicts_the_same(macro, tmp_path, model):
    archs, accuracy = macro
    predictor = Predictor(archs[:20], accuracy[:20], {"p": list(range(20))}, model)
    predictor.save(tmp_path / "p.parquet")
    again = Predictor.load(tmp_path / "p.parquet")
    proxies = {"p": [1.0, 2.0, 3.0]}
    a, b = predictor.predict(archs[30:33], proxies), again.predict(archs[30:33], proxies)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert again.kind == model
    assert predictor.with_known(archs[40:41], [90.0], {"p": [4.0]}).kind == model


def test_encoding_and_bad_input(macro, tmp_path):
    archs, accuracy = macro
    x = encode(archs[:4])
    assert x.shape == (4, 8 * 2 + 2)  # two indicators per layer, log params, log MACs
    with pytest.raises(RlnasError, match="at least 3 architectures"):
        Predictor(archs[:2], accuracy[:2])
    with pytest.raises(RlnasError, match="one space at a time"):
        Predictor([*archs[:3], Architecture.from_index(0, "nb201")], [1.0, 2, 3, 4])
    with pytest.raises(RlnasError, match="fitted with proxies"):
        Predictor(archs[:5], accuracy[:5]).predict(archs[:1], {"synflow": [1.0]})
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(RunError, match="is not a predictor file"):
        Predictor.load(tmp_path / "bad.parquet")
    Predictor(archs[:5], accuracy[:5]).save(tmp_path / "p.parquet")
    table = pq.read_table(tmp_path / "p.parquet")
    meta = json.loads(table.schema.metadata[b"rlnas_predictor"])
    newer = table.replace_schema_metadata({"rlnas_predictor": json.dumps({**meta, "model": "gp"})})
    pq.write_table(newer, tmp_path / "newer.parquet")
    with pytest.raises(RunError, match="holds a 'gp' predictor, unknown to this rlnas"):
        Predictor.load(tmp_path / "newer.parquet")
    del meta["model"]  # a file written before the forest is a ridge
    older = table.replace_schema_metadata({"rlnas_predictor": json.dumps(meta)})
    pq.write_table(older, tmp_path / "older.parquet")
    assert Predictor.load(tmp_path / "older.parquet").kind == "ridge"


def test_fit_from_a_benchmark_file_and_search_with_it(shared_data, tmp_path):
    from typer.testing import CliRunner

    from rlnas.cli import app
    from rlnas.search.config import SearchConfig
    from rlnas.search.run import run_search
    from rlnas.search.sources.predictor import PredictorAccuracy

    folder = shared_data / "nb201"
    out = tmp_path / "p.parquet"
    args = ["predictor", "fit", "--space", "nb201", "--out", str(out), "--sample", "30"]
    args += ["--from-file", str(folder / "nb201_cifar10_accuracy.parquet")]
    result = CliRunner().invoke(app, [*args, "--column", "cifar10_test_acc"])
    assert result.exit_code == 0, result.output
    assert "K = 30 architectures of nb201" in result.output
    again = CliRunner().invoke(app, [*args, "--column", "cifar10_test_acc"])
    assert again.exit_code == 2 and "--force" in again.stderr  # never overwritten unasked

    config = SearchConfig.of(
        latency_ms=6.44,
        strategy="random",
        space="nb201",
        reward="hard",
        budget=10,
        predictor=out,
        latency_file=folder / "nb201_latency.parquet",
        latency_column="pixel3_ms",
    )
    assert config.accuracy_kind() == "predictor"
    run = run_search(config, tmp_path / "run")
    source = PredictorAccuracy(out, _nb201(), None)
    for text, score in zip(run.evaluations["arch"], run.evaluations["accuracy"], strict=True):
        assert score == pytest.approx(source.accuracy(Architecture.decode(text, "nb201")))
    # Where a pick's margin over the floor is less than the predictor's own standard
    # deviation for it, the search says so.
    from rlnas.search.baseline import BaselineTarget, margin_note
    from rlnas.search.sources.predictor import score_spread

    text = run.evaluations["arch"].iloc[0]
    score = source.accuracy(Architecture.decode(text, "nb201"))
    error = score_spread(config, Architecture.decode(text, "nb201"))
    assert 0 < error < 1

    def floor_at(floor: float) -> BaselineTarget:
        return BaselineTarget("a0", text, floor, 6.0, 0.01, floor, 6.44, "predictor")

    note = margin_note(config, floor_at(score - error / 2), text, score)
    assert note and (
        f"margin over the floor ({error / 2 * 100:+.2f} points) is less than the predictor's "
        f"standard deviation for it ({error * 100:.2f} points)" in note
    )
    assert margin_note(config, floor_at(score - 2 * error), text, score) is None
    # A newly trained architecture refits it.
    arch = Architecture.from_index(7, "nb201")
    source.add(arch, 93.0)
    assert len(source.predictor.archs) == 31


def test_fit_a_forest_from_the_command_line(shared_data, tmp_path):
    from typer.testing import CliRunner

    from rlnas.cli import app

    out = tmp_path / "forest.parquet"
    args = ["predictor", "fit", "--space", "nb201", "--out", str(out), "--sample", "30"]
    args += ["--from-file", str(shared_data / "nb201" / "nb201_cifar10_accuracy.parquet")]
    args += ["--column", "cifar10_test_acc"]
    bad = CliRunner().invoke(app, [*args, "--model", "gp"])
    assert bad.exit_code != 0 and "unknown --model 'gp'" in bad.output and not out.exists()
    result = CliRunner().invoke(app, [*args, "--model", "forest"])
    assert result.exit_code == 0, result.output
    assert "a forest predictor from K = 30" in result.output
    assert Predictor.load(out).kind == "forest"
    chosen = CliRunner().invoke(app, [*args, "--force"])  # the default: auto
    assert chosen.exit_code == 0, chosen.output
    assert "Spearman on 5 held-out folds of the known networks: ridge " in chosen.output
    assert f"a {Predictor.load(out).kind} predictor from K = 30" in chosen.output


def _nb201():
    from rlnas.model.space import get_space

    return get_space("nb201")


def test_fit_from_trainings(tmp_path, shared_data):
    from conftest import tiny_space

    from rlnas.accuracy.recipe import Recipe
    from rlnas.accuracy.training import Trainer
    from rlnas.model.space import get_space
    from rlnas.search.sources.predictor import known_from_trainings

    space = get_space(str(tiny_space(tmp_path, widths=(8, 12, 16))))
    source = np.load(shared_data / "cifar10" / "cifar10_subset.npz")
    data = tmp_path / "d.npz"
    pick = np.random.default_rng(0).choice(len(source["y_train"]), 300, replace=False)
    np.savez(data, x_train=source["x_train"][pick], y_train=source["y_train"][pick])
    recipe = Recipe(epochs=1, batch_size=64, resolution=16)
    with pytest.raises(RlnasError, match="holds 0 finished trainings"):
        known_from_trainings(space, tmp_path / "runs")
    for i in range(3):
        Trainer(Architecture.from_index(i, space), data, recipe, tmp_path / "runs" / str(i)).train()
    archs, accuracy = known_from_trainings(space, tmp_path / "runs")
    assert sorted(a.index for a in archs) == [0, 1, 2]
    assert all(0 <= a <= 100 for a in accuracy)


def test_a_proxy_that_is_not_finite_is_floored_and_flagged(macro):
    archs, accuracy = macro
    # naswot's log-determinant is -inf for a network whose kernel is singular.
    proxy = np.array([5.0, 7.0, -np.inf, 9.0, 3.0, -np.inf, 8.0, 6.0])
    x = encode(archs[:8], {"naswot": proxy})
    value, flag = x[:, -2], x[:, -1]
    assert np.isfinite(x).all()
    assert list(flag) == [0, 0, 1, 0, 0, 1, 0, 0]
    assert value[2] == value[5] < value[[0, 1, 3, 4, 6, 7]].min()
    predictor = Predictor(archs[:8], accuracy[:8], {"naswot": proxy})
    mean, std = predictor.predict(archs[8:10], {"naswot": [-np.inf, 4.0]})
    assert np.isfinite(mean).all() and np.isfinite(std).all()


def test_the_networks_to_train_next(shared_data, tmp_path):
    """After a baseline-relative search with a predictor: the run's networks of the greatest
    expected gain (the chance to keep the floor times the latency saved), none known."""
    from typer.testing import CliRunner

    from rlnas.cli import app
    from rlnas.model.space import get_space
    from rlnas.search.acquisition import next_to_train
    from rlnas.search.config import SearchConfig
    from rlnas.search.run import run_search
    from rlnas.search.run_folder import RunFolder
    from rlnas.search.sources.predictor import fit_predictor, known_from_file

    bench = pd.read_parquet(shared_data / "nbmacro" / "nbmacro_cifar10.parquet")
    strings = [str(from_code(code)) for code in bench["arch"]]
    accuracy_file = tmp_path / "accuracy.parquet"
    pd.DataFrame({"arch_str": strings, "mean_acc": bench["mean_acc"]}).to_parquet(accuracy_file)
    space = get_space("nbmacro")
    archs, accuracy = known_from_file(space, accuracy_file, "mean_acc", "percent", 30, 0)
    predictor, _ = fit_predictor("nbmacro", archs, accuracy, [], None, "ridge")
    a0 = strings[int(np.argsort(bench["mean_acc"].to_numpy())[len(bench) // 2])]
    predictor.save(tmp_path / "p.parquet")
    config = SearchConfig.of(
        space="nbmacro",
        strategy="evolution",
        predictor=tmp_path / "p.parquet",
        baseline=a0,
        accuracy_drop=0.01,
        budget=40,
    )
    run_search(config, tmp_path / "run")
    run = RunFolder.open(tmp_path / "run")
    found = next_to_train(run, 3)
    table, floor, trained = found.table, found.floor, found.trained
    baseline = run.provenance.baseline
    assert baseline is not None and not trained
    assert floor == pytest.approx(0.99 * baseline.accuracy * 100)
    assert 1 <= len(table) <= 3 and (table["expected_gain_ms"] > 0).all()
    assert table["expected_gain_ms"].is_monotonic_decreasing
    assert not set(table["arch"]) & {str(a) for a in archs}
    assert (table["latency_ms"] < baseline.target_ms).all()
    chance = stats.norm.cdf((table["predicted_pct"] - floor) / table["std_pct"])
    np.testing.assert_allclose(table["p_keeps_floor"], chance)

    # a0 trained (its true accuracy among the known): the floor is the trained one.
    index = strings.index(a0)
    with_a0 = predictor.with_known([from_code(bench["arch"][index])], [bench["mean_acc"][index]])
    with_a0.save(tmp_path / "p.parquet")
    found = next_to_train(run, 3)
    assert found.trained and found.floor == pytest.approx(0.99 * bench["mean_acc"][index])
    # The loop's answer so far is a known network (a0 at best, if the search evaluated it).
    assert found.best is None or found.best in {a0, *(str(a) for a in archs)}

    out = tmp_path / "next.csv"
    result = CliRunner().invoke(app, ["predictor", "next", str(run.path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "from a0's trained accuracy" in result.output and out.is_file()
    again = CliRunner().invoke(app, ["predictor", "next", str(run.path), "--out", str(out)])
    assert again.exit_code == 2 and "--force" in again.stderr
    plain = SearchConfig.of(
        space="nbmacro",
        strategy="random",
        latency_ms=5.0,
        budget=5,
        accuracy_file=accuracy_file,
        accuracy_column="mean_acc",
    )
    run_search(plain, tmp_path / "plain")
    zero = CliRunner().invoke(app, ["predictor", "next", str(run.path), "--count", "0"])
    assert zero.exit_code != 0 and "--count must be at least 1, got 0" in zero.output
    (tmp_path / "p.parquet").rename(tmp_path / "moved.parquet")
    gone = CliRunner().invoke(app, ["predictor", "next", str(run.path)])
    assert gone.exit_code != 0 and "p.parquet not found" in gone.output
    bad = CliRunner().invoke(app, ["predictor", "next", str(tmp_path / "plain")])
    assert bad.exit_code != 0 and "is not a baseline-relative search with a predictor" in (
        bad.output
    )
