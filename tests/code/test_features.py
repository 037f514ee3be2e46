"""Feature processes are sklearn transformers: they learn in fit, never add or drop rows, refuse wrong columns."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.utils.estimator_checks import check_estimator

from ml_project.compiled import compile_pipeline
from ml_project.features import MISSING_LABEL, RARE_LABEL, DatetimeFeatures, RareLabelGrouper

LEGACY_PIPELINES = Path(__file__).parent / "fixtures" / "legacy_rare_label_pipelines.joblib"
# Made by the package as it was before the encoders' min_frequency replaced RareLabelGrouper: two fitted
# pipelines (one-hot + logistic regression, ordinal + random forest), rows to score and what they gave.

# RareLabelGrouper outputs text labels (its encoder reads them), and these checks compare outputs as numbers.
LEGACY_GROUPER_FAILS = {
    "check_estimators_pickle": "compares outputs with assert_allclose, which cannot subtract text labels",
    "check_fit_idempotent": "compares outputs with assert_allclose, which cannot subtract text labels",
    "check_methods_sample_order_invariance": "compares outputs with assert_allclose on text labels",
    "check_methods_subset_invariance": "compares outputs with assert_allclose on text labels",
    "check_pipeline_consistency": "compares outputs with assert_allclose on text labels",
    "check_transformer_data_not_an_array": "compares outputs with assert_allclose on text labels",
    "check_transformer_general": "compares outputs with assert_allclose on text labels",
}


def _check_results(estimator: Any) -> dict[str, set[str]]:
    """Each status of sklearn's check_estimator and the checks that ended in it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the checks feed deliberately odd data
        results = check_estimator(estimator, on_fail=None)
    statuses: dict[str, set[str]] = {}
    for result in results:
        statuses.setdefault(result["status"], set()).add(result["check_name"])
    return statuses


def test_datetime_features_expand_each_timestamp() -> None:
    frame = pd.DataFrame({"when": pd.to_datetime(["2010-01-02 13:00", "2010-07-05 00:30", None])})
    out = DatetimeFeatures().fit(frame).transform(frame)
    assert out.dtype == np.float64 and out.shape == (3, 5)
    assert out[0].tolist() == [13.0, 5.0, 1.0, 2.0, 1.0]  # a Saturday
    assert out[1].tolist() == [0.0, 0.0, 7.0, 186.0, 0.0]  # a Monday
    assert np.isnan(out[2]).all()  # a missing timestamp keeps its row, with missing parts


def test_datetime_features_read_text_and_give_a_frame_on_request() -> None:
    frame = pd.DataFrame({"when": ["2010-01-02 13:00", "not a date"]}, index=[7, 9])
    transformer = DatetimeFeatures(parts=("hour", "is_weekend")).set_output(transform="pandas")
    out = transformer.fit(frame).transform(frame)
    assert list(out.columns) == ["when_hour", "when_is_weekend"]
    assert list(out.index) == [7, 9]
    assert out.loc[7].tolist() == [13.0, 1.0]
    assert out.loc[9].isna().all()


def test_datetime_features_names_and_unknown_parts() -> None:
    frame = pd.DataFrame({"a": pd.to_datetime(["2020-01-01"])})
    transformer = DatetimeFeatures(parts=("hour", "month")).fit(frame)
    assert transformer.get_feature_names_out().tolist() == ["a_hour", "a_month"]
    array_fitted = DatetimeFeatures(parts=("hour",)).fit(frame.to_numpy())
    assert array_fitted.get_feature_names_out().tolist() == ["x0_hour"]
    with pytest.raises(ValueError, match="unknown datetime part 'minute'"):
        DatetimeFeatures(parts=("minute",)).fit(frame)


@pytest.mark.parametrize("transformer", [DatetimeFeatures(), RareLabelGrouper()])
def test_transform_refuses_unexpected_and_missing_columns(transformer: Any) -> None:
    frame = pd.DataFrame({"a": pd.to_datetime(["2020-01-01", "2020-01-02"]), "b": pd.to_datetime(["2020-01-03"] * 2)})
    fitted = clone(transformer).fit(frame)
    name = type(transformer).__name__
    with pytest.raises(ValueError, match=f"^{name} got unexpected column\\(s\\) c \\(fitted on: a, b\\)$"):
        fitted.transform(frame.assign(c=frame["a"]))
    with pytest.raises(ValueError, match=f"^{name} got missing column\\(s\\) b and unexpected column\\(s\\) c "):
        fitted.transform(frame.rename(columns={"b": "c"}))
    with pytest.raises(ValueError, match=f"^{name} got missing column\\(s\\) a \\(fitted on: a, b\\)$"):
        fitted.transform(frame[["b"]])
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        with pytest.raises(ValueError, match="expecting 2 features as input"):
            fitted.transform(frame[["a"]].to_numpy())
    reordered = fitted.transform(frame[["b", "a"]])  # the same columns in another order are the same input
    np.testing.assert_array_equal(np.asarray(reordered), np.asarray(fitted.transform(frame)))


def test_datetime_features_work_inside_a_column_transformer_of_a_wider_frame() -> None:
    frame = pd.DataFrame({"when": pd.to_datetime(["2010-01-02 13:00"]), "other": ["x"]})
    columns = ColumnTransformer([("datetime", DatetimeFeatures(parts=("hour", "month")), ["when"])])
    assert columns.fit_transform(frame).tolist() == [[13.0, 1.0]]
    assert columns.get_feature_names_out().tolist() == ["datetime__when_hour", "datetime__when_month"]


def test_datetime_features_pass_every_check_estimator_check() -> None:
    statuses = _check_results(DatetimeFeatures())
    assert set(statuses) == {"passed", "skipped"}
    assert statuses["skipped"] == {"check_array_api_input"}  # only runs with SCIPY_ARRAY_API=1 set
    assert len(statuses["passed"]) == 43


def test_the_legacy_grouper_fails_only_the_listed_checks() -> None:
    statuses = _check_results(RareLabelGrouper())
    assert statuses["failed"] == set(LEGACY_GROUPER_FAILS)
    assert statuses["skipped"] == {"check_array_api_input"}
    assert set(statuses) == {"passed", "failed", "skipped"}


def test_legacy_rare_labels_are_grouped_and_missing_is_a_label() -> None:
    train = pd.DataFrame({"colour": ["red"] * 6 + ["blue"] * 3 + ["green"] + [None] * 2})
    grouper = RareLabelGrouper(min_frequency=0.1).fit(train)
    assert grouper.frequent_labels_ == {"colour": sorted(["red", "blue", MISSING_LABEL])}
    out = grouper.transform(pd.DataFrame({"colour": ["red", "green", None, "purple"]}, index=[4, 5, 6, 7]))
    assert out["colour"].tolist() == ["red", RARE_LABEL, MISSING_LABEL, RARE_LABEL]
    assert list(out.index) == [4, 5, 6, 7]
    assert grouper.get_feature_names_out().tolist() == ["colour"]


def test_transformers_survive_clone_and_keep_parameters() -> None:
    assert clone(RareLabelGrouper(min_frequency=0.3)).get_params() == {"min_frequency": 0.3}
    assert clone(DatetimeFeatures(parts=("hour",))).get_params() == {"parts": ("hour",)}


@pytest.mark.parametrize("encoding", ["onehot", "ordinal"])
def test_pipelines_saved_with_the_legacy_grouper_load_and_predict_the_same(encoding: str) -> None:
    saved = joblib.load(LEGACY_PIPELINES)
    pipeline, score = saved[encoding]["pipeline"], saved["score"]
    assert type(pipeline[0].named_transformers_["categorical"][0]) is RareLabelGrouper
    for loaded in (pipeline, pickle.loads(pickle.dumps(pipeline))):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # in particular no "X does not have valid feature names" per call
            np.testing.assert_array_equal(loaded[:-1].transform(score), saved[encoding]["matrix"])
            np.testing.assert_array_equal(loaded.predict(score), saved[encoding]["predict"])
            np.testing.assert_array_equal(loaded.predict_proba(score), saved[encoding]["proba"])
    compiled = compile_pipeline(pipeline)  # the fast path still knows the legacy grouper
    assert compiled is not None
    np.testing.assert_array_equal(compiled.transform(score), saved[encoding]["matrix"])
    np.testing.assert_array_equal(compiled.predict(score), saved[encoding]["predict"])
    np.testing.assert_array_equal(compiled.predict_proba(score), saved[encoding]["proba"])
