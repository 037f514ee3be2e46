"""Holdout metrics and explanation plots: exact values on small real data, which metrics exist when."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn import metrics as skm
from sklearn.pipeline import Pipeline

from ml_project import evaluation
from ml_project.config import Config, load_config
from ml_project.ingestion import load_modelling_data
from ml_project.modelling import build_pipeline, split_features_target
from ml_project.validation import schema_from_config, validate

from ..conftest import CONFIGS


@lru_cache(maxsize=None)
def _penguins(use_case: str) -> tuple[Config, pd.DataFrame, pd.Series]:
    config = load_config(CONFIGS / f"{use_case}.yaml")
    frame = validate(load_modelling_data(config.data), schema_from_config(config.data), with_target=True).valid
    X, y = split_features_target(frame, config.data)
    return config, X, y


def _fitted(use_case: str, algorithm: str) -> tuple[Pipeline, pd.DataFrame, pd.Series]:
    config, X, y = _penguins(use_case)
    return build_pipeline(algorithm, {}, config.data, config.preprocessing, seed=0).fit(X, y), X, y


def test_classification_scores_are_sklearns_metrics() -> None:
    y = pd.Series(["a", "a", "b", "b"])
    prediction = np.array(["a", "b", "b", "b"])
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])
    scores = evaluation.score("classification", y, prediction, proba, ["a", "b"])
    assert list(scores) == ["accuracy", "balanced_accuracy", "f1_macro", "log_loss", "roc_auc_ovr", "roc_auc"]
    assert scores["accuracy"] == 0.75
    assert scores["balanced_accuracy"] == 0.75  # recall 1/2 of a, 2/2 of b
    assert scores["f1_macro"] == pytest.approx((2 / 3 + 0.8) / 2, rel=1e-12)
    assert scores["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.8, 0.7])), rel=1e-12)
    assert scores["roc_auc_ovr"] == scores["roc_auc"] == 1.0  # every b scored above every a
    assert all(type(value) is float for value in scores.values())


def test_without_probabilities_a_classification_gets_the_label_metrics_only() -> None:
    y = pd.Series(["a", "a", "b", "b"])
    scores = evaluation.score("classification", y, np.array(["a", "b", "b", "b"]), None, ["a", "b"])
    assert scores == {"accuracy": 0.75, "balanced_accuracy": 0.75, "f1_macro": pytest.approx((2 / 3 + 0.8) / 2, rel=1e-12)}


def test_balanced_accuracy_and_binary_roc_auc_equal_sklearns_on_an_imbalanced_example() -> None:
    y = pd.Series(["no"] * 6 + ["yes"] * 2)
    prediction = np.array(["no", "no", "no", "no", "no", "yes", "no", "yes"])
    p_yes = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.8, 0.3, 0.9])  # the 0.3 "yes" beats two "no", ties one
    scores = evaluation.score("classification", y, prediction, np.column_stack((1 - p_yes, p_yes)), ["no", "yes"])
    assert scores["balanced_accuracy"] == skm.balanced_accuracy_score(y, prediction) == (5 / 6 + 1 / 2) / 2
    assert scores["accuracy"] == 0.75  # the majority class hides the missed "yes"
    assert scores["roc_auc"] == skm.roc_auc_score(y == "yes", p_yes)
    assert scores["roc_auc"] == pytest.approx((6 + 2.5) / 12, rel=1e-12)  # 0.9 beats all six; a tie counts half


def test_roc_auc_needs_every_class_in_the_truth() -> None:
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    scores = evaluation.score("classification", pd.Series(["a", "b"]), np.array(["a", "b"]), proba, ["a", "b", "c"])
    assert "roc_auc_ovr" not in scores and "roc_auc" not in scores and scores["accuracy"] == 1.0


def test_roc_auc_applies_to_two_classes_only() -> None:
    three, two = pd.Series(["a", "b", "c", "a"]), pd.Series(["a", "b", "b"])
    assert "roc_auc" not in evaluation.available_metrics("classification", three)
    assert "roc_auc" in evaluation.available_metrics("classification", two)
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.6, 0.2, 0.2]])
    scores = evaluation.score("classification", three, np.array(["a", "b", "c", "a"]), proba, ["a", "b", "c"])
    assert "roc_auc" not in scores and scores["roc_auc_ovr"] == 1.0


def test_regression_scores_and_mape_only_for_positive_targets() -> None:
    scores = evaluation.score("regression", pd.Series([1.0, 2.0, 4.0]), np.array([1.0, 3.0, 2.0]), None, None)
    assert scores == {
        "rmse": math.sqrt(5 / 3),
        "mae": 1.0,
        "r2": pytest.approx(1 - 5 / (14 / 3), rel=1e-12),
        "mape": pytest.approx((0 + 0.5 + 0.5) / 3, rel=1e-12),
    }
    signed = evaluation.score("regression", pd.Series([0.0, 2.0]), np.array([0.0, 2.0]), None, None)
    assert set(signed) == {"rmse", "mae", "r2"}
    assert evaluation.available_metrics("regression", pd.Series([0.0, 2.0])) == ("rmse", "mae", "r2")
    assert evaluation.available_metrics("regression", pd.Series([1.0])) == ("rmse", "mae", "r2", "mape")
    assert evaluation.target_is_positive(pd.Series(["3", "x"])) is False  # text that is no number: not positive


def test_evaluate_scores_a_fitted_pipeline_on_its_rows() -> None:
    pipeline, X, y = _fitted("penguins_classification", "logistic_regression")
    scores = evaluation.evaluate(pipeline, X, y, "classification")
    classes = [str(label) for label in pipeline.classes_]
    assert scores == evaluation.score("classification", y, pipeline.predict(X), pipeline.predict_proba(X), classes)
    assert scores["accuracy"] >= 0.95  # logistic regression separates the three species on its training rows
    baseline, _, _ = _fitted("penguins_classification", "baseline")
    assert evaluation.evaluate(baseline, X, y, "classification")["accuracy"] == (y == y.mode()[0]).mean()


def test_feature_importance_covers_every_input_and_is_zero_for_a_constant_model() -> None:
    pipeline, X, y = _fitted("penguins_classification", "logistic_regression")
    importance = evaluation.feature_importance(pipeline, X, y, "accuracy", seed=0)
    assert sorted(importance.index) == sorted(X.columns) and importance.is_monotonic_increasing
    assert importance.idxmax() in {"bill_length_mm", "flipper_length_mm", "bill_depth_mm", "island"}
    baseline, _, _ = _fitted("penguins_classification", "baseline")
    assert (evaluation.feature_importance(baseline, X, y, "accuracy", seed=0) == 0.0).all()


def test_figures_are_titled_and_hold_one_mark_per_item() -> None:
    pipeline, X, y = _fitted("penguins_classification", "logistic_regression")
    classes = [str(label) for label in pipeline.classes_]
    prediction, proba = evaluation.predicted(pipeline, X, "classification")
    assert proba is not None and (prediction == pipeline.predict(X)).all() and (proba == pipeline.predict_proba(X)).all()
    assert evaluation.scored(pipeline, y, prediction, proba, "classification") == evaluation.evaluate(pipeline, X, y, "classification")
    confusion = evaluation.confusion_matrix_figure(classes, y, prediction)
    assert isinstance(confusion, Figure) and confusion.axes[0].get_title() == "Holdout confusion matrix"
    cells = [int(text.get_text()) for text in confusion.axes[0].texts]
    assert len(cells) == len(classes) ** 2 and sum(cells) == len(y)  # every holdout row in one cell
    regressor, Xr, yr = _fitted("penguins_regression", "ridge")
    predicted_values, no_proba = evaluation.predicted(regressor, Xr, "regression")
    assert no_proba is None
    assert evaluation.residuals_figure(yr, predicted_values).axes[0].collections[0].get_offsets().shape == (len(Xr), 2)
    importance = pd.Series([0.1, 0.3], index=["a", "b"])
    assert len(evaluation.feature_importance_figure(importance).axes[0].patches) == 2
    leaderboard = pd.DataFrame(
        {"trial": range(20), "algorithm": ["ridge"] * 20, "mean_rmse": np.arange(20.0), "std_rmse": np.ones(20)}
    )
    figure = evaluation.leaderboard_figure(leaderboard, "rmse", top=15)
    labels = [label.get_text() for label in figure.axes[0].get_yticklabels()]
    assert len(figure.axes[0].patches) == 15 and labels[-1] == "#0 ridge" and labels[0] == "#14 ridge"
