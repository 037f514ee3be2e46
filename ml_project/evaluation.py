"""Metrics on the holdout and the plots that explain a model, as values (writing is elsewhere)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn import metrics as skm
from sklearn.inspection import permutation_importance
from sklearn.pipeline import Pipeline

from ml_project.config import BINARY_METRICS, METRICS, available_cores


def target_is_positive(y: pd.Series) -> bool:
    """MAPE is only meaningful when every target value is strictly positive."""
    return bool((pd.to_numeric(y, errors="coerce") > 0).all())


def available_metrics(task: str, y: pd.Series) -> tuple[str, ...]:
    """The task's metrics that apply to this target: no MAPE unless it is positive, no roc_auc unless two classes."""
    names = METRICS[task]
    if task == "regression" and not target_is_positive(y):
        return tuple(name for name in names if name != "mape")
    if task == "classification" and y.astype(str).nunique() != 2:
        return tuple(name for name in names if name not in BINARY_METRICS)
    return names


def inapplicable_metric_reason(task: str, metric: str, y: pd.Series) -> str | None:
    """Why `metric` cannot score this target, in words that follow "modelling.metric = '...' ", or None."""
    if metric in available_metrics(task, y):
        return None
    if metric in BINARY_METRICS:
        return f"needs a target of two classes; '{y.name}' has {y.astype(str).nunique()} (use roc_auc_ovr)"
    return f"needs a strictly positive target; '{y.name}' has values <= 0"


def score(task: str, y_true: pd.Series, prediction: np.ndarray, proba: np.ndarray | None, classes: list[str] | None) -> dict[str, float]:
    """Holdout metrics: accuracy, balanced accuracy, F1 macro, log loss, ROC AUC one-vs-rest and, for two
    classes, ROC AUC of the second class (sorted order, as sklearn's scorer); or RMSE, MAE, R², MAPE.

    Without probabilities (`proba` None: e.g. production predictions logged without them), a
    classification gets the metrics that need only labels: accuracy, balanced accuracy and F1 macro.
    """
    if task == "classification":
        result = {
            "accuracy": skm.accuracy_score(y_true, prediction),
            "balanced_accuracy": skm.balanced_accuracy_score(y_true, prediction),
            "f1_macro": skm.f1_score(y_true, prediction, average="macro"),
        }
        if proba is None:
            return {name: float(value) for name, value in result.items()}
        assert classes is not None
        result["log_loss"] = skm.log_loss(y_true, proba, labels=classes)
        present = sorted(set(y_true))
        if len(present) == len(classes) and len(classes) > 1:
            y_score = proba[:, 1] if len(classes) == 2 else proba
            result["roc_auc_ovr"] = skm.roc_auc_score(y_true, y_score, multi_class="ovr", labels=classes)
            if len(classes) == 2:
                result["roc_auc"] = skm.roc_auc_score(y_true, y_score, labels=classes)
        return {name: float(value) for name, value in result.items()}
    result = {
        "rmse": skm.root_mean_squared_error(y_true, prediction),
        "mae": skm.mean_absolute_error(y_true, prediction),
        "r2": skm.r2_score(y_true, prediction),
    }
    if target_is_positive(y_true):
        result["mape"] = skm.mean_absolute_percentage_error(y_true, prediction)
    return {name: float(value) for name, value in result.items()}


def predicted(pipeline: Pipeline, X: pd.DataFrame, task: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The pipeline's predictions of `X`, and its class probabilities (classification), in one model call:
    the label is read off the probabilities, as the service and batch scoring do (prediction.predict_columns;
    every candidate's `predict` is that argmax)."""
    if task != "classification":
        return np.asarray(pipeline.predict(X)), None
    proba = pipeline.predict_proba(X)
    return np.asarray(pipeline.classes_).take(np.argmax(proba, axis=1)), proba


def scored(pipeline: Pipeline, y: pd.Series, prediction: np.ndarray, proba: np.ndarray | None, task: str) -> dict[str, float]:
    """The metrics of predictions already made by `pipeline` (see `predicted`)."""
    if task == "classification":
        return score(task, y.astype(str), prediction, proba, [str(label) for label in pipeline.classes_])
    return score(task, y, prediction, None, None)


def evaluate(pipeline: Pipeline, X: pd.DataFrame, y: pd.Series, task: str) -> dict[str, float]:
    """Score a fitted pipeline once on data it never saw."""
    return scored(pipeline, y, *predicted(pipeline, X, task), task)


def confusion_matrix_figure(classes: list[str], y: pd.Series, prediction: np.ndarray) -> Figure:
    """The holdout's confusion matrix from predictions already made (no second model call)."""
    matrix = skm.confusion_matrix(y.astype(str), np.asarray(prediction).astype(str), labels=classes)
    figure = Figure(figsize=(5, 4.5))
    axes = figure.subplots()
    skm.ConfusionMatrixDisplay(matrix, display_labels=classes).plot(ax=axes, colorbar=False)
    axes.set_title("Holdout confusion matrix")
    figure.tight_layout()
    return figure


def residuals_figure(y: pd.Series, prediction: np.ndarray) -> Figure:
    """Holdout residuals against the predictions already made."""
    figure = Figure(figsize=(5, 4.5))
    axes = figure.subplots()
    axes.scatter(prediction, np.asarray(y) - prediction, s=10, alpha=0.7)
    axes.axhline(0.0, color="black", linewidth=1)
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual − predicted")
    axes.set_title("Holdout residuals")
    figure.tight_layout()
    return figure


IMPORTANCE_ROWS = 2_000  # permutation importance reads at most this many holdout rows (a seeded sample)


def feature_importance(pipeline: Pipeline, X: pd.DataFrame, y: pd.Series, scoring: str, seed: int) -> pd.Series:
    """Permutation importance of each input feature on the holdout (model-agnostic), on at most
    IMPORTANCE_ROWS of its rows: 5 repeats x every feature is 5 x 14 predictions of the whole holdout, which
    on a 200,000-row holdout took longer than the search; the ranking of the features does not need them all
    (5,000 rows of a 1,263-tree LightGBM model still took 36 s on 2 cores, 2,000 take 15 s)."""
    if len(X) > IMPORTANCE_ROWS:
        kept = np.sort(np.random.default_rng(seed).choice(len(X), IMPORTANCE_ROWS, replace=False))
        X, y = X.iloc[kept], y.iloc[kept]
    from joblib import parallel_backend

    target = y.astype(str) if hasattr(pipeline, "classes_") else y
    with parallel_backend("threading"):  # features permuted on every core, in threads: the pipeline is not copied
        result: Any = permutation_importance(
            pipeline, X, target, scoring=scoring, n_repeats=5, random_state=seed, n_jobs=available_cores()
        )
    return pd.Series(result.importances_mean, index=X.columns).sort_values()


def feature_importance_figure(importance: pd.Series) -> Figure:
    figure = Figure(figsize=(6, 0.4 * len(importance) + 1.5))
    axes = figure.subplots()
    axes.barh(importance.index, importance.to_numpy())
    axes.set_xlabel("mean score drop when permuted")
    axes.set_title("Permutation importance (holdout)")
    figure.tight_layout()
    return figure


def leaderboard_figure(leaderboard: pd.DataFrame, metric: str, top: int = 15) -> Figure:
    """The best `top` scored trials (a pruned trial has no score to draw)."""
    scored = leaderboard[leaderboard["state"] == "complete"] if "state" in leaderboard else leaderboard
    rows = scored.head(top).iloc[::-1]
    labels = [f"#{trial} {algorithm}" for trial, algorithm in zip(rows["trial"], rows["algorithm"])]
    figure = Figure(figsize=(7, 0.35 * len(rows) + 1.5))
    axes = figure.subplots()
    axes.barh(labels, rows[f"mean_{metric}"], xerr=rows[f"std_{metric}"], capsize=3)
    axes.set_xlabel(f"CV {metric} (mean ± std)")
    axes.set_title("Leaderboard")
    figure.tight_layout()
    return figure
