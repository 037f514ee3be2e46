"""Feature processes as scikit-learn transformers: they learn in `fit`, never add or drop rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

RARE_LABEL = "__rare__"
MISSING_LABEL = "__missing__"
DATETIME_PARTS = ("hour", "day_of_week", "month", "day_of_year", "is_weekend")


def _as_frame(X: Any, columns: list[str] | None = None) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    return pd.DataFrame(X, columns=columns)


class DatetimeFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Expand each datetime column into hour, day of week, month, day of year and a weekend flag.

    Missing timestamps give missing parts (imputed downstream), so the row count never changes.
    """

    def __init__(self, parts: tuple[str, ...] = DATETIME_PARTS) -> None:
        self.parts = parts

    def fit(self, X: Any, y: Any = None) -> DatetimeFeatures:
        unknown = [part for part in self.parts if part not in DATETIME_PARTS]
        if unknown:
            raise ValueError(f"unknown datetime part '{unknown[0]}'; known: {', '.join(DATETIME_PARTS)}")
        frame = _as_frame(X)
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = frame.shape[1]
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        check_is_fitted(self, "feature_names_in_")
        frame = _as_frame(X, list(self.feature_names_in_))
        out: dict[str, pd.Series] = {}
        for column in self.feature_names_in_:
            stamps = pd.to_datetime(frame[column], errors="coerce")
            parts = {
                "hour": stamps.dt.hour,
                "day_of_week": stamps.dt.dayofweek,
                "month": stamps.dt.month,
                "day_of_year": stamps.dt.dayofyear,
                "is_weekend": (stamps.dt.dayofweek >= 5).where(stamps.notna()),
            }
            for part in self.parts:
                out[f"{column}_{part}"] = parts[part].astype("float64")
        return pd.DataFrame(out, index=frame.index)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "feature_names_in_")
        return np.asarray([f"{column}_{part}" for column in self.feature_names_in_ for part in self.parts], dtype=object)


class RareLabelGrouper(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Replace categories seen in less than `min_frequency` of training rows by one rare label.

    Missing values become their own label, so encoders downstream see them as a category.
    """

    def __init__(self, min_frequency: float = 0.02) -> None:
        self.min_frequency = min_frequency

    def fit(self, X: Any, y: Any = None) -> RareLabelGrouper:
        frame = _as_frame(X)
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = frame.shape[1]
        self.frequent_labels_: dict[str, list[str]] = {}
        for column in frame.columns:
            shares = frame[column].fillna(MISSING_LABEL).astype(str).value_counts(normalize=True)
            self.frequent_labels_[str(column)] = sorted(shares[shares >= self.min_frequency].index)
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        check_is_fitted(self, "frequent_labels_")
        frame = _as_frame(X, list(self.feature_names_in_))
        out = {}
        for column in self.feature_names_in_:
            labels = frame[column].fillna(MISSING_LABEL).astype(str)
            out[column] = labels.where(labels.isin(self.frequent_labels_[str(column)]), RARE_LABEL)
        return pd.DataFrame(out, index=frame.index)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "feature_names_in_")
        return np.asarray(self.feature_names_in_, dtype=object)
