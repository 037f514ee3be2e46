"""Holdout splits and the leaderboard's ranking rules."""

from __future__ import annotations

import pandas as pd
import pytest

from ml_project.config import ConfigError, load_config
from ml_project.modelling import SEARCH_SPACES, build_pipeline, check_feasible, split_holdout

from ..conftest import CONFIGS


def test_random_holdout_is_stratified_and_seeded(penguins: pd.DataFrame) -> None:
    config = load_config()
    modelling, holdout = split_holdout(penguins, config.data, config.modelling)
    again, _ = split_holdout(penguins, config.data, config.modelling)
    assert len(holdout) == 69 and len(modelling) == 275
    assert list(modelling.index) == list(again.index)
    assert holdout["species"].value_counts().to_dict() == {"Adelie": 30, "Gentoo": 25, "Chinstrap": 14}


def test_latest_holdout_takes_the_most_recent_rows() -> None:
    config = load_config(CONFIGS / "seattle_temps_regression.yaml", ["modelling.holdout_split=latest", "modelling.holdout_fraction=0.25"])
    frame = pd.DataFrame({"date": pd.to_datetime(["2010-01-03", "2010-01-01", None, "2010-01-04", "2010-01-02"]), "temp": [3, 1, 9, 4, 2]})
    modelling, holdout = split_holdout(frame, config.data, config.modelling)
    assert holdout["temp"].tolist() == [4]  # round(5 × 0.25) = 1 row, the latest
    assert modelling["temp"].tolist() == [9, 1, 2, 3]  # a missing time never lands in the holdout


def test_one_table_of_names_one_of_search_spaces_and_one_direction_per_metric() -> None:
    from ml_project.config import ALGORITHM_NAMES, LOWER_IS_BETTER, METRICS, greater_is_better
    from ml_project.modelling import SCORERS, SEARCH_SPACES

    tabular = {task: names for task, names in ALGORITHM_NAMES.items() if task != "forecasting"}  # forecasters.FORECASTERS
    assert {task: tuple(spaces) for task, spaces in SEARCH_SPACES.items()} == tabular
    every_metric = [metric for task, metrics in METRICS.items() if task != "forecasting" for metric in metrics]
    assert sorted(SCORERS) == sorted(every_metric)
    # scikit-learn negates exactly the metrics where lower is better; the leaderboard turns them back.
    assert sorted(m for m in every_metric if SCORERS[m].startswith("neg_")) == sorted(LOWER_IS_BETTER - {"mase", "smape"})
    assert set(METRICS["forecasting"]) <= LOWER_IS_BETTER  # every forecasting metric is an error
    assert [greater_is_better(m) for m in ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "roc_auc_ovr", "r2")] == [True] * 6
    assert [greater_is_better(m) for m in ("log_loss", "rmse", "mae", "mape")] == [False] * 4


def test_balanced_class_weight_reaches_every_estimator_that_takes_one() -> None:
    config = load_config(overrides=["modelling.class_weight=balanced"])
    weights = {}
    for algorithm, spec in SEARCH_SPACES["classification"].items():
        model = build_pipeline(algorithm, spec.defaults, config.data, config.preprocessing, 0, config.modelling.class_weight)[-1]
        weights[algorithm] = model.get_params().get("class_weight", "no such parameter")
    assert weights == {
        "baseline": "no such parameter",  # its prior is the class mix itself
        "random_forest": "balanced",
        "hist_gradient_boosting": "balanced",
        "logistic_regression": "balanced",
        "lightgbm": "balanced",
    }
    unweighted = build_pipeline("random_forest", {}, config.data, config.preprocessing, 0)[-1]
    assert unweighted.get_params()["class_weight"] is None
    regression = load_config(CONFIGS / "penguins_regression.yaml")
    for algorithm in SEARCH_SPACES["regression"]:
        model = build_pipeline(algorithm, {}, regression.data, regression.preprocessing, 0)[-1]
        assert "class_weight" not in model.get_params()


def test_lightgbm_is_told_which_columns_hold_categories() -> None:
    config = load_config()
    pipeline = build_pipeline("lightgbm", {}, config.data, config.preprocessing, 0)
    assert pipeline[-1].categorical_feature == [0, 1]  # island, sex: first in the native encoding
    assert [name for name, _, _ in pipeline[0].transformers] == ["categorical", "numerical"]
    forest = build_pipeline("random_forest", {}, config.data, config.preprocessing, 0)
    assert [name for name, _, _ in forest[0].transformers] == ["numerical", "categorical"]  # unchanged


def test_roc_auc_is_refused_for_three_classes_and_accepted_for_two(penguins: pd.DataFrame) -> None:
    config = load_config(overrides=["modelling.metric=roc_auc"])
    with pytest.raises(ConfigError) as raised:
        check_feasible(penguins["species"], config.data, config.modelling)
    assert str(raised.value) == (
        "config error: modelling.metric = 'roc_auc' needs a target of two classes; 'species' has 3 (use roc_auc_ovr)"
    )
    two = penguins.loc[penguins["species"] != "Chinstrap", "species"]
    check_feasible(two, config.data, config.modelling)
