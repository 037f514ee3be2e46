"""Holdout splits and the leaderboard's ranking rules."""

from __future__ import annotations

import pandas as pd

from ml_project.config import load_config
from ml_project.modelling import split_holdout

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
    assert [greater_is_better(m) for m in ("accuracy", "f1_macro", "roc_auc_ovr", "r2")] == [True] * 4
    assert [greater_is_better(m) for m in ("log_loss", "rmse", "mae", "mape")] == [False] * 4
