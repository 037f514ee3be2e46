"""Preprocessing as one ColumnTransformer: imputation with missing indicators, rare labels, encoding, scaling."""

from __future__ import annotations

from typing import Literal

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from ml_project.config import FeaturesConfig, PreprocessingConfig
from ml_project.features import DatetimeFeatures, RareLabelGrouper

Encoding = Literal["onehot", "ordinal"]


def _numeric_steps(scale: bool) -> list[tuple[str, object]]:
    steps: list[tuple[str, object]] = [("impute", SimpleImputer(strategy="median", add_indicator=True))]
    if scale:
        steps.append(("scale", StandardScaler()))
    return steps


def build_preprocessor(features: FeaturesConfig, config: PreprocessingConfig, encoding: Encoding) -> ColumnTransformer:
    """Column-wise preprocessing; `encoding` is one-hot for linear models, ordinal for trees.

    Trees need neither scaling nor one-hot columns, so they get the cheaper ordinal codes and no
    scaler (which also keeps their thresholds exact when exported).
    """
    scale = config.scale_numerical and encoding == "onehot"
    encoder: object
    if encoding == "onehot":
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    else:
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    transformers: list[tuple[str, object, list[str]]] = []
    if features.numerical:
        transformers.append(("numerical", Pipeline(_numeric_steps(scale)), list(features.numerical)))
    if features.categorical:
        categorical = Pipeline([("rare", RareLabelGrouper(config.rare_label_min_frequency)), ("encode", encoder)])
        transformers.append(("categorical", categorical, list(features.categorical)))
    if features.datetime:
        datetime = Pipeline([("parts", DatetimeFeatures()), *_numeric_steps(scale)])
        transformers.append(("datetime", datetime, list(features.datetime)))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=True)
