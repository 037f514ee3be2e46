"""The LightGBM candidate: it stops early on its own rows, repeats itself, and splits on categories natively."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from ml_project.artifacts import load_bundle, with_fast_path
from ml_project.compiled import compile_pipeline, verify_compiled
from ml_project.config import load_config
from ml_project.estimators import PARALLEL_ROWS, LightGBMClassifier, LightGBMRegressor
from ml_project.modelling import SEARCH_SPACES, build_pipeline, split_features_target
from ml_project.prediction import predict_frame

from ..conftest import make_config


def _noisy_line(rows: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """y = x0 + noise, x1 pure noise: a fast learning rate overfits within a few dozen rounds."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 2))
    return X, X[:, 0] + rng.normal(scale=1.0, size=rows)


def _category_decides(rows: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Column 0 holds codes 0..5 and the class is whether the code is 1, 3 or 4; column 1 is noise."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 6, rows).astype(np.float64)
    return np.column_stack((codes, rng.normal(size=rows))), np.where(np.isin(codes, [1, 3, 4]), "yes", "no")


def test_the_regressor_stops_early_and_predicts_at_its_best_round() -> None:
    X, y = _noisy_line()
    model = LightGBMRegressor(n_estimators=1000, learning_rate=0.3, random_state=0).fit(X, y)
    assert 1 <= model.best_iteration_ < 1000
    validation_loss = model.model_.evals_result_["valid_0"]["l2"]
    assert len(validation_loss) == model.best_iteration_ + model.early_stopping_rounds  # 20 rounds without a gain
    assert min(validation_loss) == validation_loss[model.best_iteration_ - 1]
    assert model.booster_.current_iteration() == model.best_iteration_  # the rounds after the best are not kept
    np.testing.assert_array_equal(model.predict(X), model.booster_.predict(X, num_iteration=model.best_iteration_))


def test_the_held_out_share_is_seeded_and_stratified() -> None:
    y = np.array(["a"] * 90 + ["b"] * 10)
    model = LightGBMClassifier(random_state=3)
    train, validation = model._held_out(y, stratify=True)
    assert len(validation) == 10 and len(train) == 90 and set(train).isdisjoint(validation)
    assert (y[validation] == "b").sum() == 1  # the 10% minority keeps its share
    assert np.array_equal(validation, model._held_out(y, stratify=True)[1])
    assert not np.array_equal(validation, LightGBMClassifier(random_state=4)._held_out(y, stratify=True)[1])


@pytest.mark.parametrize("estimator", [LightGBMClassifier, LightGBMRegressor])
def test_the_same_seed_gives_identical_predictions(estimator: type) -> None:
    X, y = _category_decides() if estimator is LightGBMClassifier else _noisy_line()
    method = "predict_proba" if estimator is LightGBMClassifier else "predict"
    first = getattr(estimator(random_state=7).fit(X, y), method)(X)
    again = getattr(clone(estimator(random_state=7)).fit(X, y), method)(X)
    other = getattr(estimator(random_state=8).fit(X, y), method)(X)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)  # another seed holds out other rows


def test_categories_are_split_on_as_categories_and_an_unseen_one_is_missing() -> None:
    X, y = _category_decides()
    model = LightGBMClassifier(categorical_feature=[0], random_state=0).fit(X, y)
    infos = model.booster_.dump_model()["feature_infos"]
    assert sorted(infos["Column_0"]["values"]) == [-1, 0, 1, 2, 3, 4, 5]  # a category list, -1 for missing/other
    assert infos["Column_1"]["values"] == []  # a number: a range, no categories
    splits = [tree["tree_structure"] for tree in model.booster_.dump_model()["tree_info"]]
    assert splits[0]["decision_type"] == "==" and splits[0]["split_feature"] == 0
    assert set(splits[0]["threshold"].split("||")) in ({"1", "3", "4"}, {"0", "2", "5"})  # one split separates them
    assert list(model.predict(np.array([[1.0, 0.0], [2.0, 0.0]]))) == ["yes", "no"]
    unseen, missing = np.array([[-1.0, 0.0]]), np.array([[np.nan, 0.0]])
    np.testing.assert_array_equal(model.predict_proba(unseen), model.predict_proba(missing))
    assert model.predict_proba(unseen).sum() == pytest.approx(1.0, abs=1e-12)


def test_without_categorical_feature_the_codes_are_numbers() -> None:
    X, y = _category_decides()
    infos = LightGBMClassifier(random_state=0).fit(X, y).booster_.dump_model()["feature_infos"]
    assert infos["Column_0"]["values"] == [] and infos["Column_0"]["max_value"] == 5


def test_balanced_class_weight_lifts_the_minority_class() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 2))
    y = np.where(X[:, 0] + rng.normal(scale=1.5, size=600) > 2.2, "rare", "common")
    plain = LightGBMClassifier(random_state=0).fit(X, y).predict(X)
    balanced = LightGBMClassifier(random_state=0, class_weight="balanced").fit(X, y).predict(X)
    assert (balanced == "rare").sum() > (plain == "rare").sum()


def test_the_penguins_pipeline_passes_its_categorical_columns_and_scores_an_unknown_island() -> None:
    config = load_config()
    frame = pd.read_csv(config.data.path)
    X, y = split_features_target(frame.dropna(subset=[config.data.target]), config.data)
    params = SEARCH_SPACES["classification"]["lightgbm"].defaults
    pipeline = build_pipeline("lightgbm", params, config.data, config.preprocessing, seed=0).fit(X, y)
    names = list(pipeline[:-1].get_feature_names_out())
    assert names[:2] == ["categorical__island", "categorical__sex"] and pipeline[-1].categorical_feature == [0, 1]
    infos = pipeline[-1].booster_.dump_model()["feature_infos"]
    assert [bool(infos[f"Column_{position}"]["values"]) for position in range(4)] == [True, True, False, False]
    row = X.iloc[[0]].assign(island="Atlantis")
    assert pipeline[:-1].transform(row)[0, 0] == -1.0
    assert pipeline.predict_proba(row).sum() == pytest.approx(1.0, abs=1e-12)


def test_a_compiled_copy_that_departs_from_the_lightgbm_bundle_is_logged_and_not_used(
    trained_lightgbm, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture  # type: ignore[no-untyped-def]
) -> None:
    config, report = trained_lightgbm
    bundle = load_bundle(report.bundle.path)
    other = clone(bundle.pipeline).set_params(model__random_state=1, model__learning_rate=0.3)
    other.fit(*split_features_target(pd.read_parquet(bundle.path / "reference.parquet"), config.data))
    reason = verify_compiled(compile_pipeline(other), bundle.pipeline, bundle.schema)  # type: ignore[arg-type]
    assert reason is not None and reason.startswith("predict_proba: ") and reason.endswith(" on 64 rows")
    monkeypatch.setattr("ml_project.compiled.compile_pipeline", lambda pipeline: compile_pipeline(other))
    with caplog.at_level(logging.WARNING, logger="ml_project.artifacts"):
        served = with_fast_path(replace(bundle, compiled=None))
    assert served.compiled is None  # predictions go through the sklearn pipeline
    assert f"compiled path disagrees with scikit-learn ({reason}); not used" in caplog.text


@pytest.fixture(scope="module")
def trained_lightgbm(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from ml_project.training import train

    output: Path = tmp_path_factory.mktemp("lightgbm")
    config = make_config(output, "modelling.algorithms=[baseline, lightgbm]", "tracking.enabled=false")
    return config, train(config, progress=False)


def test_a_penguins_lightgbm_bundle_exports_loads_and_predicts_through_the_compiled_path(
    trained_lightgbm, penguins: pd.DataFrame  # type: ignore[no-untyped-def]
) -> None:
    config, report = trained_lightgbm
    assert report.bundle.card["algorithm"] == "lightgbm"
    assert set(report.bundle.leaderboard["algorithm"]) == {"baseline", "lightgbm"}
    loaded = load_bundle(report.bundle.path)
    assert loaded.compiled is not None  # verified equal to the sklearn pipeline at load
    predictions, quarantine = predict_frame(loaded, penguins.drop(columns=["species"]))
    assert len(predictions) + quarantine["row"].nunique() == len(penguins)
    rows = penguins.loc[predictions.index, config.data.features.all]
    proba = predictions[[f"proba_{label}" for label in loaded.classes]].to_numpy()
    np.testing.assert_array_equal(proba, loaded.pipeline.predict_proba(rows))
    assert list(predictions["prediction"]) == list(loaded.pipeline.predict(rows))
    labelled = penguins.loc[predictions.index, "species"]
    assert (predictions["prediction"] == labelled).mean() > 0.95


def test_prediction_runs_on_one_thread_at_the_best_round(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = _category_decides()
    model = LightGBMClassifier(random_state=0).fit(X, y)
    calls: list[dict[str, object]] = []
    predict = model.booster_.predict
    monkeypatch.setattr(model.booster_, "predict", lambda data, **kwargs: calls.append(kwargs) or predict(data, **kwargs))
    model.predict_proba(X[:32])
    assert calls == [{"num_iteration": model.best_iteration_, "num_threads": 1}]  # fewer than PARALLEL_ROWS rows


def test_a_large_batch_is_predicted_on_every_thread_with_the_same_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = _category_decides(rows=PARALLEL_ROWS)
    model = LightGBMClassifier(random_state=0).fit(X, y)
    one_thread = model.booster_.predict(X, num_iteration=model.best_iteration_, num_threads=1)
    calls: list[dict[str, object]] = []
    predict = model.booster_.predict
    monkeypatch.setattr(model.booster_, "predict", lambda data, **kwargs: calls.append(kwargs) or predict(data, **kwargs))
    proba = model.predict_proba(X)
    assert calls == [{"num_iteration": model.best_iteration_, "num_threads": 0}]  # OpenMP's default
    np.testing.assert_array_equal(proba[:, 1], one_thread)


def test_training_follows_the_callers_thread_limit_and_grows_the_same_trees_on_any() -> None:
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40_000, 6))
    y = np.where(X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(size=40_000) > 0, "a", "b")
    trees = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads, user_api="openmp"):
            model = LightGBMClassifier(n_estimators=30, num_leaves=63, random_state=0).fit(X, y)
        assert model.model_.get_params()["num_threads"] == 0  # the limit above decides, not a fixed count
        trees.append(model.booster_.model_to_string())
    assert trees[0] == trees[1]
