"""The compiled numpy path gives exactly sklearn's matrix, probabilities and predictions, or declines."""

from __future__ import annotations

import re
import warnings
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

from ml_project.compiled import CompiledPipeline, compile_pipeline, verify_compiled
from ml_project.config import Config, FeaturesConfig, PreprocessingConfig, ValidationConfig, load_config
from ml_project.ingestion import load_modelling_data
from ml_project.modelling import SEARCH_SPACES, build_pipeline, split_features_target
from ml_project.preprocessing import build_preprocessor
from ml_project.validation import InputSchema, infer_schema, schema_from_config, validate

from ..conftest import CONFIGS

PENGUINS = "penguins_classification"
TASKS = {PENGUINS: "classification", "penguins_regression": "regression", "seattle_temps_regression": "regression"}
CASES = [(use_case, algorithm) for use_case, task in TASKS.items() for algorithm in SEARCH_SPACES[task]]
SMALL = {"random_forest": {"n_estimators": 20}, "hist_gradient_boosting": {"max_iter": 20}}
RARE_IN_TRAINING = "Tiny"  # 3 of ~340 rows: under the 2% min_frequency, so the encoders group it as infrequent
REASON = re.compile(r"^transform: .+ instead of sklearn's .+ at \(\d+, \d+\) \(\d+ differ\) on 64 rows$")


@lru_cache(maxsize=None)
def _training(use_case: str) -> tuple[Config, pd.DataFrame, pd.Series, InputSchema]:
    """Validated training rows with a rare category and missing values, so every branch meets them in fit."""
    config = load_config(CONFIGS / f"{use_case}.yaml")
    data = config.data
    frame = validate(load_modelling_data(data), schema_from_config(data), with_target=True).valid.copy()
    if data.features.categorical:
        frame.loc[frame.index[:3], data.features.categorical[0]] = RARE_IN_TRAINING
    if len(data.features.numerical) > 1:  # a column with missing values next to ones without: indicators for some
        frame.loc[frame.index[3:5], data.features.numerical[1]] = np.nan
    for name in data.features.datetime:
        frame.loc[frame.index[:5], name] = pd.NaT
    X, y = split_features_target(frame, data)
    return config, X, y, infer_schema(frame, data, ValidationConfig())


@lru_cache(maxsize=None)
def _fitted(use_case: str, algorithm: str) -> Pipeline:
    config, X, y, _ = _training(use_case)
    params = {**SEARCH_SPACES[config.data.task][algorithm].defaults, **SMALL.get(algorithm, {})}
    return build_pipeline(algorithm, params, config.data, config.preprocessing, seed=0).fit(X, y)


def _compiled(use_case: str, algorithm: str) -> CompiledPipeline:
    compiled = compile_pipeline(_fitted(use_case, algorithm))
    assert compiled is not None
    return compiled


def _scoring_rows(use_case: str) -> pd.DataFrame:
    """All training rows; the first seven hold every odd case: missing, unknown, rare, leap day, pre-1970."""
    config, X, _, _ = _training(use_case)
    features, rows = config.data.features, X.copy()
    first = rows.index[:7]
    for name in features.numerical:
        rows.loc[first[1], name] = np.nan
    if features.numerical:
        rows.loc[first[6], features.numerical[0]] = np.nan
    for name in features.categorical:
        rows.loc[first[1], name] = None
        rows.loc[first[2], name] = "Atlantis"
        rows.loc[first[3], name] = RARE_IN_TRAINING
    for name in features.datetime:
        rows.loc[first[0], name] = pd.Timestamp("2012-02-29 13:45")
        rows.loc[first[1], name] = pd.NaT
        rows.loc[first[4], name] = pd.Timestamp("1969-12-31 23:30")
        rows.loc[first[5], name] = pd.Timestamp("2010-01-03 00:00")  # a Sunday, at midnight
    return rows


def _assert_same_as_sklearn(compiled: CompiledPipeline, pipeline: Pipeline, rows: pd.DataFrame) -> None:
    np.testing.assert_array_equal(compiled.transform(rows), pipeline[:-1].transform(rows))
    np.testing.assert_array_equal(compiled.predict(rows), pipeline.predict(rows))
    if compiled.classes_ is not None:
        np.testing.assert_array_equal(compiled.predict_proba(rows), pipeline.predict_proba(rows))


@pytest.mark.parametrize("use_case, algorithm", CASES)
def test_compiled_outputs_equal_sklearn_bit_for_bit(use_case: str, algorithm: str) -> None:
    # Forests take all three paths: the tree walk (<= 32 rows), the loop (penguins), sklearn (8759 Seattle rows).
    pipeline, compiled, rows = _fitted(use_case, algorithm), _compiled(use_case, algorithm), _scoring_rows(use_case)
    for position in range(7):
        _assert_same_as_sklearn(compiled, pipeline, rows.iloc[[position]])
    _assert_same_as_sklearn(compiled, pipeline, rows.head(7))
    _assert_same_as_sklearn(compiled, pipeline, rows)


@pytest.mark.parametrize("algorithm", SEARCH_SPACES["classification"])
def test_the_exact_cases_include_infrequent_and_missing_categories(algorithm: str) -> None:
    encoder = _fitted(PENGUINS, algorithm)[0].named_transformers_["categorical"]["encode"]
    infrequent = [None if column is None else list(column) for column in encoder.infrequent_categories_]
    assert infrequent == [[RARE_IN_TRAINING], None]  # island has one, sex none
    assert encoder.categories_[1].tolist() == ["__missing__", "female", "male"]  # sex has missing values


@pytest.mark.parametrize("use_case, algorithm", CASES)
def test_a_dict_of_arrays_predicts_like_the_frame(use_case: str, algorithm: str) -> None:
    compiled, rows = _compiled(use_case, algorithm), _scoring_rows(use_case)
    arrays = {name: rows[name].to_numpy() for name in rows.columns}
    np.testing.assert_array_equal(compiled.transform(arrays), compiled.transform(rows))
    np.testing.assert_array_equal(compiled.predict(arrays), compiled.predict(rows))


@pytest.mark.parametrize("use_case, algorithm", CASES)
def test_zero_rows_give_empty_outputs(use_case: str, algorithm: str) -> None:
    compiled, rows = _compiled(use_case, algorithm), _scoring_rows(use_case)
    width = compiled.transform(rows.head(1)).shape[1]
    assert compiled.transform(rows.iloc[:0]).shape == (0, width)
    assert compiled.predict(rows.iloc[:0]).shape == (0,)
    if compiled.classes_ is not None:
        assert compiled.predict_proba(rows.iloc[:0]).shape == (0, len(compiled.classes_))
        assert compiled.predict(rows.iloc[:0]).dtype == compiled.classes_.dtype


def test_classes_are_the_estimators_and_regressors_have_none() -> None:
    classes = _compiled(PENGUINS, "logistic_regression").classes_
    assert classes is not None and classes.tolist() == ["Adelie", "Chinstrap", "Gentoo"]
    assert _compiled("penguins_regression", "ridge").classes_ is None
    with pytest.raises(AttributeError, match="^Ridge has no predict_proba$"):
        _compiled("penguins_regression", "ridge").predict_proba(_scoring_rows("penguins_regression"))


def test_infinity_is_refused_as_sklearn_refuses_it() -> None:
    rows = _scoring_rows(PENGUINS).head(2).copy()
    rows.loc[rows.index[0], "body_mass_g"] = np.inf
    with pytest.raises(ValueError, match="^input column 'body_mass_g' contains infinity$"):
        _compiled(PENGUINS, "logistic_regression").predict(rows)
    with pytest.raises(ValueError, match="infinity"):
        _fitted(PENGUINS, "logistic_regression").predict(rows)


def test_timestamps_as_text_or_in_a_time_zone_are_read_as_sklearn_reads_them() -> None:
    pipeline, compiled = _fitted("seattle_temps_regression", "ridge"), _compiled("seattle_temps_regression", "ridge")
    text = pd.Series(["2010-01-02 13:00", "2010-07-04 23:30", None, "not a date"], dtype=object)
    zoned = pd.to_datetime(text, errors="coerce").dt.tz_localize("America/Los_Angeles")
    for stamps in (text, zoned):
        rows = pd.DataFrame({"date": stamps})
        np.testing.assert_array_equal(compiled.transform(rows), pipeline[:-1].transform(rows))
        np.testing.assert_array_equal(compiled.predict(rows), pipeline.predict(rows))


def test_a_column_missing_throughout_training_is_dropped_as_sklearn_drops_it() -> None:
    _, X, y, _ = _training(PENGUINS)
    X = X.assign(empty=np.nan)
    imputer = SimpleImputer(strategy="median", add_indicator=True)
    preprocess = ColumnTransformer([("numerical", imputer, ["bill_length_mm", "empty"])])
    pipeline = Pipeline([("preprocess", preprocess), ("model", DummyClassifier())])
    with pytest.warns(UserWarning, match="^Skipping features without any observed values"):
        expected = pipeline.fit(X, y)[:-1].transform(X)
    compiled = compile_pipeline(pipeline)
    assert compiled is not None
    assert expected.shape == (len(X), 3)  # bill_length_mm and both missing indicators
    np.testing.assert_array_equal(compiled.transform(X), expected)


def _grades_pipeline(preprocess: Any) -> Pipeline:
    """A model of a text column holding digits, to see values that are not text at prediction."""
    grades = pd.DataFrame({"grade": np.array(["1", "2", "3", "4"] * 30 + ["5"], dtype=object)})
    return Pipeline([("preprocess", preprocess), ("model", LogisticRegression())]).fit(grades, np.arange(121) % 2)


@pytest.mark.parametrize("encoding", ["onehot", "ordinal"])
def test_values_that_are_not_text_are_encoded_as_sklearn_encodes_them(encoding: str) -> None:
    features = FeaturesConfig(categorical=["grade"])
    preprocessor = build_preprocessor(features, PreprocessingConfig(), encoding)  # type: ignore[arg-type]
    pipeline = _grades_pipeline(preprocessor)
    compiled = compile_pipeline(pipeline)
    assert compiled is not None
    odd = [1, np.int64(2), 3.0, "3", np.str_("4"), "5", b"4", None, np.nan, pd.NA, True, "x"]
    for values in (odd, odd * 30):  # short columns go through a dict, long ones through pandas' hashing
        rows = pd.DataFrame({"grade": np.array(values, dtype=object)})
        np.testing.assert_array_equal(compiled.transform(rows), pipeline[:-1].transform(rows))
        np.testing.assert_array_equal(compiled.predict_proba(rows), pipeline.predict_proba(rows))


@pytest.mark.parametrize(
    "encoder",
    [
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
        OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
    ],
)
def test_a_bare_encoder_compares_values_as_they_are(encoder: Any) -> None:
    pipeline = _grades_pipeline(ColumnTransformer([("categorical", encoder, ["grade"])]))
    compiled = compile_pipeline(pipeline)
    assert compiled is not None
    odd = [1, "2", np.str_("4"), 3.0, "3", None, np.nan, "x"]
    for values in (odd, odd * 50):
        rows = pd.DataFrame({"grade": np.array(values, dtype=object)})
        np.testing.assert_array_equal(compiled.transform(rows), pipeline[:-1].transform(rows))


def _categories_pipeline(*steps: Any, missing: Any = None) -> Pipeline:
    """A model of one text column with a rare and a missing category, behind the given categorical steps."""
    labels = np.array(["a"] * 60 + ["b"] * 57 + ["rare"] * 2 + [missing] * 2, dtype=object)
    named = [(f"step{index}", step) for index, step in enumerate(steps)]
    preprocess = ColumnTransformer([("categorical", Pipeline(named), ["grade"])])
    pipeline = Pipeline([("preprocess", preprocess), ("model", LogisticRegression())])
    return pipeline.fit(pd.DataFrame({"grade": labels}), np.arange(121) % 2)


MISSING_FILL = SimpleImputer(missing_values=pd.NA, strategy="constant", fill_value="__missing__")
ORDINAL = OrdinalEncoder()


@pytest.mark.parametrize(
    "steps",
    [
        [MISSING_FILL, OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=0.05, sparse_output=False)],
        [MISSING_FILL, OneHotEncoder(handle_unknown="ignore", min_frequency=0.05, sparse_output=False)],
        [MISSING_FILL, OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=2, sparse_output=False)],
        [MISSING_FILL, OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, min_frequency=0.05)],
        [MISSING_FILL, OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-7, max_categories=3)],
        [OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=3, sparse_output=False)],
    ],
    ids=["onehot-grouped-unknown", "onehot-ignored-unknown", "onehot-max-categories", "ordinal", "ordinal-max", "bare"],
)
def test_infrequent_categories_are_compiled_exactly(steps: list[Any]) -> None:
    bare = len(steps) == 1  # a bare encoder that saw None would have None among its categories: not compiled
    pipeline = _categories_pipeline(*steps, missing="rarer" if bare else None)
    assert pipeline[0].named_transformers_["categorical"][len(steps) - 1]._infrequent_enabled
    compiled = compile_pipeline(pipeline)
    assert compiled is not None
    odd = ["a", "b", "rare", None, np.nan, pd.NA, "unseen", "__missing__"]
    for values in (odd, odd * 40):
        rows = pd.DataFrame({"grade": np.array(values, dtype=object)})
        np.testing.assert_array_equal(compiled.transform(rows), pipeline[:-1].transform(rows))
        np.testing.assert_array_equal(compiled.predict_proba(rows), pipeline.predict_proba(rows))


@pytest.mark.parametrize(
    "steps",
    [
        [MISSING_FILL, OneHotEncoder(handle_unknown="warn", min_frequency=0.05, sparse_output=False)],
        [MISSING_FILL, OneHotEncoder(drop="first", handle_unknown="ignore", min_frequency=0.05, sparse_output=False)],
        [SimpleImputer(strategy="constant", fill_value="__missing__"), OneHotEncoder(sparse_output=False)],
        [SimpleImputer(missing_values=pd.NA, strategy="most_frequent"), OneHotEncoder(sparse_output=False)],
        [SimpleImputer(missing_values=pd.NA, strategy="constant", fill_value="m", add_indicator=True), ORDINAL],
        [OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=3, sparse_output=False)],
    ],
    ids=["warn-on-unknown", "drop", "imputer-of-nan-only", "most-frequent", "indicator", "encoder-that-saw-None"],
)
def test_categorical_settings_it_does_not_replay_fall_back_to_sklearn(steps: list[Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some of these settings warn in fit
        pipeline = _categories_pipeline(*steps)
    assert compile_pipeline(pipeline) is None


def _numbers_pipeline(preprocess: ColumnTransformer, *middle: Any) -> Pipeline:
    """A logistic regression on the complete rows of three measurements, behind the given steps."""
    _, X, y, _ = _training(PENGUINS)
    X = X[["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]].dropna()
    steps = [("preprocess", preprocess), *[(f"step{index}", step) for index, step in enumerate(middle)]]
    return Pipeline([*steps, ("model", LogisticRegression(max_iter=1000))]).fit(X, y.loc[X.index])


def test_pipelines_with_unknown_steps_are_not_compiled() -> None:
    numbers = ["bill_length_mm", "bill_depth_mm"]
    config = _training(PENGUINS)[0]

    def scaled(**kwargs: Any) -> ColumnTransformer:
        return ColumnTransformer([("numerical", StandardScaler(), numbers)], **kwargs)

    unknown_in_branch = ColumnTransformer([("numerical", FunctionTransformer(), numbers)])
    unfitted = build_pipeline("logistic_regression", {}, config.data, config.preprocessing, seed=0)
    assert compile_pipeline(_numbers_pipeline(scaled())) is not None  # the control: each case below changes one thing
    assert compile_pipeline(_numbers_pipeline(unknown_in_branch)) is None
    assert compile_pipeline(_numbers_pipeline(scaled(), FunctionTransformer())) is None
    assert compile_pipeline(_numbers_pipeline(scaled(remainder="passthrough"))) is None
    assert compile_pipeline(unfitted) is None
    assert compile_pipeline(_fitted(PENGUINS, "logistic_regression")[-1]) is None


@pytest.mark.parametrize("use_case, algorithm", CASES)
def test_verify_accepts_a_faithful_copy(use_case: str, algorithm: str) -> None:
    schema = _training(use_case)[3]
    assert verify_compiled(_compiled(use_case, algorithm), _fitted(use_case, algorithm), schema) is None


def test_verify_names_a_tampered_scaler_mean() -> None:
    compiled, schema = _compiled(PENGUINS, "logistic_regression"), _training(PENGUINS)[3]
    _, numerical = compiled._branches[0]
    numerical.steps[-1].mean[0] += 0.5  # type: ignore[attr-defined]
    reason = verify_compiled(compiled, _fitted(PENGUINS, "logistic_regression"), schema)
    assert reason is not None and REASON.match(reason), reason


def test_verify_names_a_tampered_category_code() -> None:
    compiled, schema = _compiled(PENGUINS, "random_forest"), _training(PENGUINS)[3]
    _, categorical = compiled._branches[1]
    categorical.read.codes[0].lookup["Dream"] = 0  # type: ignore[attr-defined]
    reason = verify_compiled(compiled, _fitted(PENGUINS, "random_forest"), schema)
    assert reason is not None and REASON.match(reason), reason


def test_verify_names_a_copy_of_another_model() -> None:
    forest, schema = _compiled(PENGUINS, "random_forest"), _training(PENGUINS)[3]
    reason = verify_compiled(forest, _fitted(PENGUINS, "logistic_regression"), schema)
    assert reason == "transform: shape (64, 10) instead of sklearn's (64, 15) on 64 rows"
