"""Feature processes as scikit-learn transformers: they learn in `fit`, never add or drop rows.

DatetimeFeatures is written here because scikit-learn has no transformer that extracts calendar parts
from timestamps. Rare categories need nothing of ours: the encoders group them (`min_frequency`, see
`ml_project.preprocessing`); RareLabelGrouper stays only so bundles saved before that change unpickle.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

RARE_LABEL = "__rare__"
MISSING_LABEL = "__missing__"
DATETIME_PARTS = ("hour", "day_of_week", "month", "day_of_year", "is_weekend")


def _fitted_input(estimator: BaseEstimator, X: Any) -> np.ndarray:
    """X as a 2-D array in the fitted column order; a frame must hold exactly the fitted columns.

    A ColumnTransformer hands each transformer only its own columns, so an extra or a missing one is a
    caller's mistake: it is refused in one line naming them, never silently dropped.
    """
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None and isinstance(X, pd.DataFrame):
        fitted, given = [str(name) for name in names], [str(column) for column in X.columns]
        missing = [name for name in fitted if name not in given]
        unexpected = [column for column in given if column not in fitted]
        if missing or unexpected:
            found = [f"missing column(s) {', '.join(missing)}"] if missing else []
            found += [f"unexpected column(s) {', '.join(unexpected)}"] if unexpected else []
            raise ValueError(
                f"{type(estimator).__name__} got {' and '.join(found)} (fitted on: {', '.join(fitted)})"
            )
        X = X[list(names)]
    return np.asarray(validate_data(estimator, X, reset=False, dtype=None, ensure_all_finite=False))


class DatetimeFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Expand each datetime column into hour, day of week, month, day of year and a weekend flag.

    Missing or unparseable timestamps give missing parts (imputed downstream), so the row count never
    changes. The output is a float64 array; `set_output(transform="pandas")` gives a frame.
    """

    def __init__(self, parts: tuple[str, ...] = DATETIME_PARTS) -> None:
        self.parts = parts

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # a missing timestamp is a missing part, not an error
        tags.input_tags.string = True  # timestamps may arrive as text
        return tags

    def fit(self, X: Any, y: Any = None) -> DatetimeFeatures:
        unknown = [part for part in self.parts if part not in DATETIME_PARTS]
        if unknown:
            raise ValueError(f"unknown datetime part '{unknown[0]}'; known: {', '.join(DATETIME_PARTS)}")
        validate_data(self, X, reset=True, dtype=None, ensure_all_finite=False)
        self.parts_ = tuple(self.parts)
        return self

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle; one fitted before it returned arrays (no `parts_`) keeps giving the frame it gave then.

        The steps after it in an old bundle were fitted on that frame's column names, and would warn
        on every prediction if they got an array instead.
        """
        legacy = "n_features_in_" in state and "parts_" not in state
        super().__setstate__({**state, "parts_": tuple(state["parts"])} if legacy else state)
        if legacy:
            self.set_output(transform="pandas")

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "parts_")
        values = _fitted_input(self, X)
        # Column-major as a frame's values were before this returned an array: the steps after it keep
        # that layout, and a linear model's dot product rounds by layout, so predictions stay the same.
        out = np.empty((values.shape[0], values.shape[1] * len(self.parts_)), order="F")
        for position in range(values.shape[1]):
            stamps = pd.to_datetime(pd.Series(values[:, position]), errors="coerce")
            parts = {
                "hour": stamps.dt.hour,
                "day_of_week": stamps.dt.dayofweek,
                "month": stamps.dt.month,
                "day_of_year": stamps.dt.dayofyear,
                "is_weekend": (stamps.dt.dayofweek >= 5).where(stamps.notna()),
            }
            for offset, part in enumerate(self.parts_):
                out[:, position * len(self.parts_) + offset] = parts[part].to_numpy(dtype="float64", na_value=np.nan)
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "parts_")
        columns = _check_feature_names_in(self, input_features)
        return np.asarray([f"{column}_{part}" for column in columns for part in self.parts_], dtype=object)


class RareLabelGrouper(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Legacy: kept only so bundles saved before the encoders' own `min_frequency` unpickle and predict.

    New pipelines never use it (see `ml_project.preprocessing`). It replaces categories seen in less
    than `min_frequency` of training rows by one rare label, and missing values by their own label.
    """

    def __init__(self, min_frequency: float = 0.02) -> None:
        self.min_frequency = min_frequency

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # a missing value is a label of its own
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = []  # it outputs text labels, whatever came in
        return tags

    def _names(self) -> list[Any]:
        """The fitted column names, or positions for an array; the keys of `frequent_labels_` as text."""
        return list(getattr(self, "feature_names_in_", range(self.n_features_in_)))

    def fit(self, X: Any, y: Any = None) -> RareLabelGrouper:
        values = validate_data(self, X, reset=True, dtype=None, ensure_all_finite=False)
        frame = pd.DataFrame(values, columns=self._names())
        self.frequent_labels_: dict[str, list[str]] = {}
        for column in frame.columns:
            shares = frame[column].fillna(MISSING_LABEL).astype(str).value_counts(normalize=True)
            self.frequent_labels_[str(column)] = sorted(shares[shares >= self.min_frequency].index)
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        check_is_fitted(self, "frequent_labels_")
        index = X.index if isinstance(X, pd.DataFrame) else None
        frame = pd.DataFrame(_fitted_input(self, X), columns=self._names(), index=index)
        out = {}
        for column in frame.columns:
            labels = frame[column].fillna(MISSING_LABEL).astype(str)
            out[column] = labels.where(labels.isin(self.frequent_labels_[str(column)]), RARE_LABEL)
        return pd.DataFrame(out, index=frame.index)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        return np.asarray(_check_feature_names_in(self, input_features), dtype=object)
