"""Preprocessing as one ColumnTransformer: imputation with missing indicators, rare labels, encoding, scaling.

Rare categories are grouped by the encoders themselves (`min_frequency` = the config's
`rare_label_min_frequency`): a category seen in fewer than that share of training rows joins one
infrequent category. A missing category is first filled with MISSING_LABEL, so it is a category like
any other (grouped too when it is rare). An unknown category is one-hot encoded as the infrequent
column when the column has infrequent categories, and as all zeros otherwise; the ordinal encoder has
no such option in scikit-learn, so there an unknown category is always -1.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from ml_project.config import FeaturesConfig, PreprocessingConfig
from ml_project.features import MISSING_LABEL, DatetimeFeatures

Encoding = Literal["onehot", "ordinal"]
UNKNOWN_CODE = -1


def _numeric_steps(scale: bool) -> list[tuple[str, object]]:
    steps: list[tuple[str, object]] = [("impute", SimpleImputer(strategy="median", add_indicator=True))]
    if scale:
        steps.append(("scale", StandardScaler()))
    return steps


def _categorical_steps(encoding: Encoding, min_frequency: float) -> list[tuple[str, object]]:
    """Missing as its own label, then an encoder that groups labels under `min_frequency` (0: none)."""
    # pd.NA makes the imputer test with pandas.isna, which sees None, NaN, NaT and pd.NA alike.
    impute = SimpleImputer(missing_values=pd.NA, strategy="constant", fill_value=MISSING_LABEL)
    grouping = min_frequency if min_frequency > 0 else None  # sklearn refuses 0.0; None groups nothing
    encoder: object
    if encoding == "onehot":
        encoder = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=grouping, sparse_output=False)
    else:
        encoder = OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=UNKNOWN_CODE, min_frequency=grouping
        )
    return [("impute", impute), ("encode", encoder)]


def build_preprocessor(features: FeaturesConfig, config: PreprocessingConfig, encoding: Encoding) -> ColumnTransformer:
    """Column-wise preprocessing; `encoding` is one-hot for linear models, ordinal for trees.

    Trees need neither scaling nor one-hot columns, so they get the cheaper ordinal codes and no
    scaler (which also keeps their thresholds exact when exported).
    """
    scale = config.scale_numerical and encoding == "onehot"
    transformers: list[tuple[str, object, list[str]]] = []
    if features.numerical:
        transformers.append(("numerical", Pipeline(_numeric_steps(scale)), list(features.numerical)))
    if features.categorical:
        categorical = Pipeline(_categorical_steps(encoding, config.rare_label_min_frequency))
        transformers.append(("categorical", categorical, list(features.categorical)))
    if features.datetime:
        datetime = Pipeline([("parts", DatetimeFeatures()), *_numeric_steps(scale)])
        transformers.append(("datetime", datetime, list(features.datetime)))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=True)
