"""Holdout split and the candidate pipelines: every algorithm a table's model may be, its defaults and
the space its hyperparameters are searched in (the search itself is ml_project/search.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from ml_project.config import ConfigError, DataConfig, ModellingConfig, PreprocessingConfig
from ml_project.ingestion import DataError
from ml_project.preprocessing import Encoding, build_preprocessor, categorical_positions

logger = logging.getLogger(__name__)

# sklearn scorer per metric name; the "neg_" ones are flipped back so the leaderboard reads naturally.
SCORERS = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced_accuracy",
    "f1_macro": "f1_macro",
    "roc_auc": "roc_auc",
    "roc_auc_ovr": "roc_auc_ovr",
    "log_loss": "neg_log_loss",
    "rmse": "neg_root_mean_squared_error",
    "mae": "neg_mean_absolute_error",
    "r2": "r2",
    "mape": "neg_mean_absolute_percentage_error",
}


@dataclass(frozen=True)
class Algorithm:
    """A candidate estimator: how to build it, its defaults, and how HPO samples its parameters."""

    build: Callable[[dict[str, Any], int], Any]
    encoding: Encoding
    defaults: dict[str, Any]
    sample: Callable[[Any], dict[str, Any]]


def _lightgbm(task: str) -> Any:
    """ml_project.estimators' LightGBM class of `task`, imported when a lightgbm candidate is built (lightgbm is
    not loaded by unpickling a forecaster, which imports this module)."""
    from ml_project.estimators import LightGBMClassifier, LightGBMRegressor

    return LightGBMClassifier if task == "classification" else LightGBMRegressor


def _no_params(trial: Any) -> dict[str, Any]:
    return {}


def _forest_space(trial: Any) -> dict[str, Any]:
    return {
        "n_estimators": trial.suggest_int("random_forest.n_estimators", 25, 300, step=25),
        "max_depth": trial.suggest_int("random_forest.max_depth", 2, 20),
        "min_samples_leaf": trial.suggest_int("random_forest.min_samples_leaf", 1, 10),
        "max_features": trial.suggest_categorical("random_forest.max_features", ["sqrt", 0.5, 1.0]),
    }


def _boosting_space(trial: Any) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("hist_gradient_boosting.learning_rate", 0.01, 0.3, log=True),
        "max_iter": trial.suggest_int("hist_gradient_boosting.max_iter", 50, 300, step=50),
        "max_leaf_nodes": trial.suggest_int("hist_gradient_boosting.max_leaf_nodes", 4, 48),
        "l2_regularization": trial.suggest_float("hist_gradient_boosting.l2_regularization", 1e-6, 1.0, log=True),
    }


def _lightgbm_space(trial: Any) -> dict[str, Any]:
    """n_estimators is an upper bound: each fit stops early on its own held-out rows (estimators.py).
    Leaves reach 1,024: on large tables fewer, larger trees score better and fit and predict faster
    (800,000 rows: 31 leaves stopped at 1,665 trees, holdout f1_macro 0.9372; 511 leaves at 211, 0.9395)."""
    return {
        "learning_rate": trial.suggest_float("lightgbm.learning_rate", 0.02, 0.3, log=True),
        "n_estimators": trial.suggest_int("lightgbm.n_estimators", 500, 4000, step=500),
        "num_leaves": trial.suggest_int("lightgbm.num_leaves", 8, 1024, log=True),
        "min_child_samples": trial.suggest_int("lightgbm.min_child_samples", 5, 100, log=True),
        "reg_lambda": trial.suggest_float("lightgbm.reg_lambda", 1e-6, 10.0, log=True),
        "colsample_bytree": trial.suggest_float("lightgbm.colsample_bytree", 0.5, 1.0),
    }


def _logistic_space(trial: Any) -> dict[str, Any]:
    return {"C": trial.suggest_float("logistic_regression.C", 1e-3, 1e2, log=True)}


def _ridge_space(trial: Any) -> dict[str, Any]:
    return {"alpha": trial.suggest_float("ridge.alpha", 1e-3, 1e3, log=True)}


FOREST_DEFAULTS = {"n_estimators": 100, "max_depth": 12, "min_samples_leaf": 1, "max_features": "sqrt"}
BOOSTING_DEFAULTS = {"learning_rate": 0.1, "max_iter": 100, "max_leaf_nodes": 31, "l2_regularization": 1e-6}
LIGHTGBM_DEFAULTS = {  # early stopping decides the trees; min_child_samples bounds the leaves of a small table
    "learning_rate": 0.1,
    "n_estimators": 2000,
    "num_leaves": 255,
    "min_child_samples": 20,
    "reg_lambda": 1e-6,
    "colsample_bytree": 1.0,
}

SEARCH_SPACES: dict[str, dict[str, Algorithm]] = {
    "classification": {
        "baseline": Algorithm(lambda p, seed: DummyClassifier(strategy="prior"), "onehot", {}, _no_params),
        "random_forest": Algorithm(
            lambda p, seed: RandomForestClassifier(**p, random_state=seed), "ordinal", FOREST_DEFAULTS, _forest_space
        ),
        "hist_gradient_boosting": Algorithm(
            lambda p, seed: HistGradientBoostingClassifier(**p, random_state=seed),
            "ordinal",
            BOOSTING_DEFAULTS,
            _boosting_space,
        ),
        "logistic_regression": Algorithm(
            lambda p, seed: LogisticRegression(**p, max_iter=2000), "onehot", {"C": 1.0}, _logistic_space
        ),
        "lightgbm": Algorithm(
            lambda p, seed: _lightgbm("classification")(**p, random_state=seed), "native", LIGHTGBM_DEFAULTS, _lightgbm_space
        ),
    },
    "regression": {
        "baseline": Algorithm(lambda p, seed: DummyRegressor(strategy="mean"), "onehot", {}, _no_params),
        "random_forest": Algorithm(
            lambda p, seed: RandomForestRegressor(**p, random_state=seed), "ordinal", FOREST_DEFAULTS, _forest_space
        ),
        "hist_gradient_boosting": Algorithm(
            lambda p, seed: HistGradientBoostingRegressor(**p, random_state=seed),
            "ordinal",
            BOOSTING_DEFAULTS,
            _boosting_space,
        ),
        "ridge": Algorithm(lambda p, seed: Ridge(**p), "onehot", {"alpha": 1.0}, _ridge_space),
        "lightgbm": Algorithm(
            lambda p, seed: _lightgbm("regression")(**p, random_state=seed), "native", LIGHTGBM_DEFAULTS, _lightgbm_space
        ),
    },
}


def split_features_target(frame: pd.DataFrame, data: DataConfig) -> tuple[pd.DataFrame, pd.Series]:
    # a copy either way: a column of a frame is a view into its block, which would keep the frame's every row alive
    y = frame[data.target].astype(str) if data.task == "classification" else frame[data.target].copy()
    return frame[data.features.all], y


def check_feasible(y: pd.Series, data: DataConfig, modelling: ModellingConfig) -> None:
    """Refuse, with the key to change, a table too small for the holdout and folds asked for, or a metric
    that cannot score its target (roc_auc of three classes, MAPE of a target with zeros)."""
    rows = len(y)
    holdout = round(rows * modelling.holdout_fraction)
    if rows == 0:
        raise DataError(f"data error: {data.path} has no valid row left after validation (see the quarantine reasons in the log)")
    if holdout < 1 or rows - holdout < 2 * modelling.n_folds:
        raise ConfigError(
            f"config error: modelling.holdout_fraction = {modelling.holdout_fraction} and modelling.n_folds = "
            f"{modelling.n_folds} do not fit {rows} valid rows (holdout {holdout}, modelling {rows - holdout})"
        )
    if data.task == "classification":
        _check_classes(y, data, modelling)
    # matplotlib, through evaluation: imported here, so unpickling a forecaster (forecasters imports
    # modelling) in a deployed folder without it works
    from ml_project.evaluation import inapplicable_metric_reason

    unfit = inapplicable_metric_reason(data.task, modelling.metric, y)
    if unfit is not None:
        raise ConfigError(f"config error: modelling.metric = '{modelling.metric}' {unfit}")


def _check_classes(y: pd.Series, data: DataConfig, modelling: ModellingConfig) -> None:
    """Two classes or more, each with enough rows for every fold."""
    counts = y.astype(str).value_counts()
    if len(counts) < 2:
        raise DataError(f"data error: data.target '{data.target}' has a single class '{counts.index[0]}'; classification needs two or more")
    smallest, label = int(counts.min()), str(counts.idxmin())
    if smallest * (1 - modelling.holdout_fraction) < modelling.n_folds or smallest < 2:
        raise ConfigError(
            f"config error: modelling.n_folds = {modelling.n_folds} needs every class in each fold; class '{label}' "
            f"of '{data.target}' has only {smallest} valid rows (lower n_folds, or drop or merge that class)"
        )


def split_holdout(frame: pd.DataFrame, data: DataConfig, modelling: ModellingConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out `holdout_fraction` of rows: a seeded random sample (stratified for classification),
    or with `holdout_split: latest` the most recent rows, so a forecast is judged on the future."""
    if modelling.holdout_split == "latest":
        ordered = frame.sort_values(data.features.datetime[0], kind="stable", na_position="first")
        cut = len(ordered) - max(1, round(len(ordered) * modelling.holdout_fraction))
        return ordered.iloc[:cut], ordered.iloc[cut:]
    stratify = frame[data.target].astype(str) if data.task == "classification" else None
    modelling_rows, holdout_rows = train_test_split(
        frame, test_size=modelling.holdout_fraction, random_state=modelling.seed, stratify=stratify
    )
    return modelling_rows, holdout_rows


def build_pipeline(
    algorithm: str,
    params: dict[str, Any],
    data: DataConfig,
    preprocessing: PreprocessingConfig,
    seed: int,
    class_weight: str | None = None,
) -> Pipeline:
    """Features, preprocessing and estimator as ONE pipeline: the artifact that is exported and served.

    `class_weight` (modelling.class_weight) goes to every estimator that takes one (not the baseline,
    whose prior is the class mix itself); a "native" estimator is told which columns hold categories.
    """
    spec = SEARCH_SPACES[data.task][algorithm]
    model = spec.build(params, seed)
    if class_weight is not None and "class_weight" in model.get_params():
        model.set_params(class_weight=class_weight)
    if spec.encoding == "native":
        model.set_params(categorical_feature=categorical_positions(data.features))
    return Pipeline([("preprocess", build_preprocessor(data.features, preprocessing, spec.encoding)), ("model", model)])
