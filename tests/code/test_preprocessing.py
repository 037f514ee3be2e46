"""build_preprocessor: exact matrices, rare categories grouped by the encoders, missing and unknown categories."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.utils.estimator_checks import check_estimator

from ml_project.config import FeaturesConfig, PreprocessingConfig
from ml_project.features import MISSING_LABEL, DatetimeFeatures
from ml_project.preprocessing import build_preprocessor

FEATURES = FeaturesConfig(numerical=["x"], categorical=["c"], datetime=["t"])
# 10 rows: 'a' 4, 'b' 3, missing 2 (a None and a NaN: one label), 'z' 1. At min_frequency 0.15 a category
# needs 1.5 rows, so only 'z' is infrequent. Every timestamp is a Saturday, half at 10:00 and half at 23:00.
TRAIN = pd.DataFrame(
    {
        "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, np.nan],
        "c": np.array(["a"] * 4 + ["b"] * 3 + [None, np.nan, "z"], dtype=object),
        "t": pd.to_datetime(["2020-01-04 10:00"] * 5 + ["2020-02-29 23:00"] * 5),
    }
)
SCORE = pd.DataFrame(
    {
        "x": [np.nan, 2.5, 9.0, 0.0, 5.0, 1.0],
        "c": np.array(["a", "b", "z", None, pd.NA, "unseen"], dtype=object),
        "t": pd.to_datetime(
            ["2021-03-01 00:00", None, "2020-01-04 10:00", "2020-01-05 12:00", "2020-12-31 23:59", "2020-02-29 23:00"]
        ),
    }
)
# x and its missing indicator (median 5), then the categories, then hour, day of week, month, day of year,
# weekend; the missing timestamp gets the training medians (16.5, 5, 1.5, 32, 1).
NUMBERS = [[5.0, 1.0], [2.5, 0.0], [9.0, 0.0], [0.0, 0.0], [5.0, 0.0], [1.0, 0.0]]
CALENDAR = [
    [0.0, 0.0, 3.0, 60.0, 0.0],
    [16.5, 5.0, 1.5, 32.0, 1.0],
    [10.0, 5.0, 1.0, 4.0, 1.0],
    [12.0, 6.0, 1.0, 5.0, 1.0],
    [23.0, 3.0, 12.0, 366.0, 0.0],
    [23.0, 5.0, 2.0, 60.0, 1.0],
]
CALENDAR_NAMES = ["datetime__t_hour", "datetime__t_day_of_week", "datetime__t_month", "datetime__t_day_of_year"]
CALENDAR_NAMES += ["datetime__t_is_weekend"]


def _fitted(encoding: str, min_frequency: float = 0.15, train: pd.DataFrame = TRAIN) -> ColumnTransformer:
    config = PreprocessingConfig(rare_label_min_frequency=min_frequency, scale_numerical=False)
    return build_preprocessor(FEATURES, config, encoding).fit(train)  # type: ignore[arg-type]


def _categories(encoding: str, min_frequency: float = 0.15, train: pd.DataFrame = TRAIN) -> list[list[float]]:
    """The categorical block of SCORE's matrix."""
    preprocessor = _fitted(encoding, min_frequency, train)
    return preprocessor.transform(SCORE)[:, preprocessor.output_indices_["categorical"]].tolist()


def test_one_hot_output_of_a_small_frame_is_exact() -> None:
    preprocessor = _fitted("onehot")
    assert preprocessor.get_feature_names_out().tolist() == [
        "numerical__x",
        "numerical__missingindicator_x",
        "categorical__c___missing__",
        "categorical__c_a",
        "categorical__c_b",
        "categorical__c_infrequent_sklearn",
        *CALENDAR_NAMES,
    ]
    # a, b, z (infrequent), None and pd.NA (missing), unseen (grouped with the infrequent)
    categories = [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]]
    expected = [[*numbers, *codes, *calendar] for numbers, codes, calendar in zip(NUMBERS, categories, CALENDAR)]
    assert preprocessor.transform(SCORE).tolist() == expected


def test_ordinal_output_of_a_small_frame_is_exact() -> None:
    preprocessor = _fitted("ordinal")
    assert preprocessor.get_feature_names_out().tolist() == [
        "numerical__x",
        "numerical__missingindicator_x",
        "categorical__c",
        *CALENDAR_NAMES,
    ]
    # codes: __missing__ 0, a 1, b 2, infrequent 3; an unseen category is -1
    codes = [1.0, 2.0, 3.0, 0.0, 0.0, -1.0]
    expected = [[*numbers, code, *calendar] for numbers, code, calendar in zip(NUMBERS, codes, CALENDAR)]
    assert preprocessor.transform(SCORE).tolist() == expected


@pytest.mark.parametrize("encoding", ["onehot", "ordinal"])
def test_the_config_key_is_the_encoders_min_frequency(encoding: str) -> None:
    encoder = _fitted(encoding, 0.25).named_transformers_["categorical"]["encode"]
    assert encoder.min_frequency == 0.25
    assert encoder.categories_[0].tolist() == [MISSING_LABEL, "a", "b", "z"]
    # 2.5 rows needed: the two missing values (one label) join 'z'; 'b' (3 rows) stays
    assert encoder.infrequent_categories_[0].tolist() == [MISSING_LABEL, "z"]
    assert _fitted(encoding, 0.15).named_transformers_["categorical"]["encode"].infrequent_categories_[0].tolist() == [
        "z"
    ]


def test_min_frequency_zero_groups_nothing() -> None:
    encoder = _fitted("onehot", 0.0).named_transformers_["categorical"]["encode"]
    assert encoder.min_frequency is None  # sklearn refuses 0.0; None is its "no grouping"
    assert not hasattr(encoder, "infrequent_categories_")  # sklearn defines it only when grouping is on
    assert _fitted("onehot", 0.0).get_feature_names_out().tolist()[2:6] == [
        "categorical__c___missing__",
        "categorical__c_a",
        "categorical__c_b",
        "categorical__c_z",
    ]


def test_unknown_categories_go_with_the_infrequent_ones_in_one_hot_only() -> None:
    unseen = 5
    assert _categories("onehot", 0.15)[unseen] == [0, 0, 0, 1]  # the infrequent column
    assert _categories("onehot", 0.0)[unseen] == [0, 0, 0, 0]  # no infrequent column: ignored
    assert _categories("ordinal", 0.15)[unseen] == [-1]  # OrdinalEncoder cannot map unknown to infrequent
    assert _categories("ordinal", 0.0)[unseen] == [-1]


def test_every_kind_of_missing_category_is_one_label() -> None:
    missing = np.array([None, np.nan, pd.NA, pd.NaT], dtype=object)
    rows = pd.DataFrame({"x": [1.0] * 4, "c": missing, "t": TRAIN["t"][:4]})
    assert _fitted("onehot").transform(rows)[:, 2:6].tolist() == [[1, 0, 0, 0]] * 4
    assert _fitted("ordinal").transform(rows)[:, 2].tolist() == [0.0] * 4


def test_a_missing_category_never_seen_in_training_is_unknown() -> None:
    complete = TRAIN.assign(c=np.array(["a"] * 4 + ["b"] * 3 + ["z"] * 3, dtype=object))
    missing = [3, 4]  # None and pd.NA in SCORE
    # one-hot: 'z' is frequent now, so there is no infrequent column and a missing value is ignored
    assert [_categories("onehot", 0.15, complete)[row] for row in missing] == [[0, 0, 0], [0, 0, 0]]
    assert [_categories("ordinal", 0.15, complete)[row] for row in missing] == [[-1], [-1]]


@pytest.mark.parametrize("encoding", ["onehot", "ordinal"])
def test_preprocessor_keeps_rows_and_fills_every_gap(encoding: str) -> None:
    frame = pd.DataFrame(
        {
            "x": [1.0, np.nan, 3.0, 4.0],
            "c": ["a", None, "b", "a"],
            "t": pd.to_datetime(["2020-01-01 00:00", None, "2020-03-01 10:00", "2020-03-02 00:00"]),
        }
    )
    preprocessor = build_preprocessor(FEATURES, PreprocessingConfig(), encoding)  # type: ignore[arg-type]
    matrix = preprocessor.fit_transform(frame)
    assert matrix.shape[0] == 4
    assert np.isfinite(matrix).all()
    names = list(preprocessor.get_feature_names_out())
    assert "numerical__missingindicator_x" in names
    assert "datetime__missingindicator_t_hour" in names
    unseen = pd.DataFrame({"x": [2.0], "c": ["zzz"], "t": pd.to_datetime(["2021-01-01"])})
    assert preprocessor.transform(unseen).shape == (1, len(names))


def test_trees_get_no_scaler_and_linear_models_do() -> None:
    features = FeaturesConfig(numerical=["x"], categorical=["c"])
    ordinal = build_preprocessor(features, PreprocessingConfig(), "ordinal")
    onehot = build_preprocessor(features, PreprocessingConfig(), "onehot")
    assert [name for name, _ in ordinal.transformers[0][1].steps] == ["impute"]
    assert [name for name, _ in onehot.transformers[0][1].steps] == ["impute", "scale"]
    assert [name for name, _ in onehot.transformers[1][1].steps] == ["impute", "encode"]


def _steps(preprocessor: ColumnTransformer) -> list[Any]:
    return [step for _, branch, _ in preprocessor.transformers for _, step in branch.steps]


@pytest.mark.parametrize("encoding", ["onehot", "ordinal"])
def test_every_step_is_sklearns_own_or_passes_check_estimator(encoding: str) -> None:
    steps = _steps(build_preprocessor(FEATURES, PreprocessingConfig(), encoding))  # type: ignore[arg-type]
    ours = [step for step in steps if not type(step).__module__.startswith("sklearn.")]
    assert [type(step) for step in ours] == [DatetimeFeatures]
    for step in ours:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the checks feed deliberately odd data
            results = check_estimator(step, on_fail=None)
        assert {result["status"] for result in results if result["check_name"] != "check_array_api_input"} == {
            "passed"
        }


def test_the_numeric_imputer_fills_with_exactly_sklearns_median() -> None:
    from sklearn.impute import SimpleImputer

    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(1_000, 3))  # an even count of present values in some columns
    matrix[rng.random(matrix.shape) < 0.2] = np.nan
    frame = pd.DataFrame(matrix, columns=["x", "y", "z"])
    features = FeaturesConfig(numerical=["x", "y", "z"], categorical=[], datetime=[])
    fitted = build_preprocessor(features, PreprocessingConfig(scale_numerical=False), "onehot").fit(frame)
    reference = SimpleImputer(strategy="median", add_indicator=True).fit(matrix)
    assert fitted.named_transformers_["numerical"].named_steps["impute"].statistics_.tolist() == reference.statistics_.tolist()
    assert np.array_equal(fitted.transform(frame), reference.transform(matrix))
