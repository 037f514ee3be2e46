"""Feature processes are sklearn transformers: they learn in fit and never add or drop rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from ml_project.config import FeaturesConfig, PreprocessingConfig
from ml_project.features import MISSING_LABEL, RARE_LABEL, DatetimeFeatures, RareLabelGrouper
from ml_project.preprocessing import build_preprocessor


def test_datetime_features_expand_each_timestamp() -> None:
    frame = pd.DataFrame({"when": pd.to_datetime(["2010-01-02 13:00", "2010-07-05 00:30", None])})
    out = DatetimeFeatures().fit(frame).transform(frame)
    assert list(out.columns) == ["when_hour", "when_day_of_week", "when_month", "when_day_of_year", "when_is_weekend"]
    assert out.iloc[0].tolist() == [13.0, 5.0, 1.0, 2.0, 1.0]  # a Saturday
    assert out.iloc[1].tolist() == [0.0, 0.0, 7.0, 186.0, 0.0]  # a Monday
    assert out.iloc[2].isna().all()  # a missing timestamp keeps its row, with missing parts
    assert list(out.index) == list(frame.index)


def test_datetime_features_names_and_unknown_parts() -> None:
    frame = pd.DataFrame({"a": pd.to_datetime(["2020-01-01"])})
    transformer = DatetimeFeatures(parts=("hour", "month")).fit(frame)
    assert transformer.get_feature_names_out().tolist() == ["a_hour", "a_month"]
    with pytest.raises(ValueError, match="unknown datetime part 'minute'"):
        DatetimeFeatures(parts=("minute",)).fit(frame)


def test_rare_labels_are_grouped_and_missing_is_a_label() -> None:
    train = pd.DataFrame({"colour": ["red"] * 6 + ["blue"] * 3 + ["green"] + [None] * 2})
    grouper = RareLabelGrouper(min_frequency=0.1).fit(train)
    assert grouper.frequent_labels_ == {"colour": sorted(["red", "blue", MISSING_LABEL])}
    out = grouper.transform(pd.DataFrame({"colour": ["red", "green", None, "purple"]}))
    assert out["colour"].tolist() == ["red", RARE_LABEL, MISSING_LABEL, RARE_LABEL]
    assert grouper.get_feature_names_out().tolist() == ["colour"]


def test_transformers_survive_clone_and_keep_parameters() -> None:
    assert clone(RareLabelGrouper(min_frequency=0.3)).get_params() == {"min_frequency": 0.3}
    assert clone(DatetimeFeatures(parts=("hour",))).get_params() == {"parts": ("hour",)}


@pytest.mark.parametrize("encoding", ["onehot", "ordinal"])
def test_preprocessor_keeps_rows_and_fills_every_gap(encoding: str) -> None:
    features = FeaturesConfig(numerical=["x"], categorical=["c"], datetime=["t"])
    frame = pd.DataFrame(
        {
            "x": [1.0, np.nan, 3.0, 4.0],
            "c": ["a", None, "b", "a"],
            "t": pd.to_datetime(["2020-01-01 00:00", None, "2020-03-01 10:00", "2020-03-02 00:00"]),
        }
    )
    preprocessor = build_preprocessor(features, PreprocessingConfig(), encoding)  # type: ignore[arg-type]
    matrix = preprocessor.fit_transform(frame)
    assert matrix.shape[0] == 4
    assert np.isfinite(matrix).all()
    names = list(preprocessor.get_feature_names_out())
    assert "numerical__missingindicator_x" in names
    assert "datetime__t_hour" in names
    unseen = pd.DataFrame({"x": [2.0], "c": ["zzz"], "t": pd.to_datetime(["2021-01-01"])})
    assert preprocessor.transform(unseen).shape == (1, len(names))


def test_trees_get_no_scaler_and_linear_models_do() -> None:
    features = FeaturesConfig(numerical=["x"])
    ordinal = build_preprocessor(features, PreprocessingConfig(), "ordinal")
    onehot = build_preprocessor(features, PreprocessingConfig(), "onehot")
    assert [name for name, _ in ordinal.transformers[0][1].steps] == ["impute"]
    assert [name for name, _ in onehot.transformers[0][1].steps] == ["impute", "scale"]
