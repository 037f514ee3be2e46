"""Back-to-back comparison of two model versions: exact counts of changed predictions, label moves and metrics."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from ml_project import evaluation
from ml_project.artifacts import Bundle
from ml_project.comparison import compare
from ml_project.config import ValidationConfig, load_config
from ml_project.ingestion import load_modelling_data
from ml_project.modelling import build_pipeline, split_features_target
from ml_project.validation import infer_schema, schema_from_config, validate

from ..conftest import CONFIGS


@lru_cache(maxsize=None)
def _bundle(use_case: str, algorithm: str) -> Bundle:
    """A bundle fitted in-process on the use case's validated rows (no export, sklearn path)."""
    config = load_config(CONFIGS / f"{use_case}.yaml")
    frame = validate(load_modelling_data(config.data), schema_from_config(config.data), with_target=True).valid
    X, y = split_features_target(frame, config.data)
    pipeline = build_pipeline(algorithm, {}, config.data, config.preprocessing, seed=0).fit(X, y)
    schema = infer_schema(frame, config.data, ValidationConfig())
    return Bundle(pipeline, schema, algorithm, metrics={}, fingerprint={}, version=f"{algorithm}-v1")


@lru_cache(maxsize=None)
def _table(use_case: str) -> pd.DataFrame:
    """The use case's table with one row the schema refuses, one without a label and, for classes, one unknown label."""
    config = load_config(CONFIGS / f"{use_case}.yaml")
    frame = load_modelling_data(config.data).dropna(subset=[config.data.target]).reset_index(drop=True)
    frame = frame.astype({"island": object, config.data.target: object})
    frame.loc[0, "island"] = "Atlantis"
    frame.loc[1, config.data.target] = None
    if config.data.task == "classification":
        frame.loc[2, config.data.target] = "Emperor"
    return frame


def test_a_model_against_itself_changes_nothing() -> None:
    bundle, table = _bundle("penguins_classification", "logistic_regression"), _table("penguins_classification")
    same = compare(bundle, bundle, table)
    assert (same.rows, same.compared, same.labelled) == (len(table), len(table) - 1, len(table) - 3)
    assert (same.changed, same.changed_share, same.label_changes, same.max_probability_shift) == (0, 0.0, {}, 0.0)
    assert {values["delta"] for values in same.metrics.values()} == {0.0}
    assert sorted(same.metrics) == ["accuracy", "balanced_accuracy", "f1_macro", "log_loss", "roc_auc_ovr"]


def test_label_moves_and_metric_deltas_are_counted_on_rows_both_scored() -> None:
    candidate, baseline = _bundle("penguins_classification", "logistic_regression"), _bundle(
        "penguins_classification", "baseline"
    )
    table = _table("penguins_classification")
    result = compare(candidate, baseline, table)
    scored = table.drop(index=0)  # Atlantis is refused by both
    features = scored[candidate.schema.feature_names].astype({"island": str, "sex": object})
    new, old = candidate.pipeline.predict(features), baseline.pipeline.predict(features)
    assert set(old) == {"Adelie"}  # the baseline predicts the most frequent class
    assert result.changed == int((new != old).sum()) and result.changed > 100
    assert result.label_changes == {
        f"Adelie -> {label}": int((new == label).sum()) for label in ("Chinstrap", "Gentoo")
    }
    assert result.changed_share == result.changed / (len(table) - 1)
    labelled = scored.drop(index=[1, 2])
    truth = labelled[candidate.schema.target].astype(str)
    expected = evaluation.score(
        "classification",
        truth,
        candidate.pipeline.predict(features.loc[labelled.index]),
        candidate.pipeline.predict_proba(features.loc[labelled.index]),
        candidate.classes,
    )
    assert result.metrics["accuracy"]["candidate"] == expected["accuracy"]
    assert result.metrics["accuracy"]["delta"] == expected["accuracy"] - result.metrics["accuracy"]["baseline"]
    assert result.lines()[0] == (
        f"candidate logistic_regression-v1 vs baseline-v1: {len(table) - 1} of {len(table)} rows scored by both; "
        f"{result.changed} predictions changed ({result.changed_share:.2%})"
    )
    assert result.lines()[-1 - len(result.metrics)] == f"metrics on the {len(table) - 3} rows with a known label:"


def test_regression_counts_a_change_beyond_the_relative_tolerance() -> None:
    candidate, baseline = _bundle("penguins_regression", "ridge"), _bundle("penguins_regression", "baseline")
    table = _table("penguins_regression")
    result = compare(candidate, baseline, table, regression_tolerance=0.0)
    assert (result.compared, result.labelled, result.label_changes) == (len(table) - 1, len(table) - 2, {})
    assert result.max_probability_shift is None and result.max_value_shift is not None
    assert result.changed == result.compared  # a ridge model and the mean differ on every row
    loose = compare(candidate, baseline, table, regression_tolerance=np.inf)
    assert loose.changed == 0 and loose.max_value_shift == result.max_value_shift
    assert sorted(result.metrics) == ["mae", "mape", "r2", "rmse"]
    assert result.as_dict()["metrics"] == result.metrics


def test_a_regression_prediction_changes_when_it_moves_by_more_than_the_tolerance_of_itself() -> None:
    import copy

    baseline = _bundle("penguins_regression", "ridge")
    shifted = copy.deepcopy(baseline.pipeline)
    shifted[-1].intercept_ += 40.0  # every prediction moves by 40 g
    candidate = Bundle(shifted, baseline.schema, "ridge", metrics={}, fingerprint={}, version="ridge-v2")
    table = _table("penguins_regression")
    old = compare(baseline, baseline, table)
    predicted = baseline.pipeline.predict(split_features_target(table.drop(index=0), load_config(CONFIGS / "penguins_regression.yaml").data)[0])
    result = compare(candidate, baseline, table)  # the default: 1% of the old value
    assert result.regression_tolerance == 0.01 and old.changed == 0
    assert result.max_value_shift == pytest.approx(40.0)
    assert result.changed == int((np.abs(predicted) < 4_000.0).sum()) > 100  # 40 > 0.01 x |old| below 4,000 g
    assert compare(candidate, baseline, table, regression_tolerance=0.0).changed == result.compared
    assert "a predicted value counts as changed when it moves by more than 1.00% of itself" in result.lines()
    classifier = _bundle("penguins_classification", "baseline")
    assert compare(classifier, classifier, _table("penguins_classification")).regression_tolerance is None  # labels: exact
