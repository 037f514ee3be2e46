"""A numpy copy of a fitted pipeline, for predictions where sklearn's per-call overhead dominates.

The ColumnTransformer, pandas and input checks cost about 4 ms per call however few the rows, which
is most of a single-record prediction. `compile_pipeline` reads the learnt attributes of the steps
this project builds once, and replays the same arithmetic on plain arrays; any step it does not
know makes it return None, so callers keep sklearn for that pipeline. `verify_compiled` checks a
compiled copy against sklearn on a synthetic sample before it is trusted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from ml_project.features import DATETIME_PARTS, MISSING_LABEL, RARE_LABEL, DatetimeFeatures, RareLabelGrouper

if TYPE_CHECKING:
    from ml_project.validation import InputSchema

Columns = Mapping[str, Any]
MatrixStep = Callable[[np.ndarray], np.ndarray]

# Below this many rows a Python dict lookup per value beats pandas' hash table, whose call costs ~10 µs.
SHORT_COLUMN_ROWS = 256
# Forests: one vectorised walk of all trees at once wins on a few rows, a loop over the trees' own
# predict up to a few thousand rows, and above that sklearn itself, which can use every core.
FOREST_WALK_MAX_ROWS = 32
FOREST_LOOP_MAX_ROWS = 4096
RTOL, ATOL = 1e-9, 1e-12
UNSEEN_CATEGORY = "__unseen_in_training__"


class _Unsupported(Exception):
    """A step, or a setting of one, that this module does not replay."""


def _column(columns: Columns, name: str) -> np.ndarray:
    """One input column as a 1-D numpy array, from a DataFrame or a dict of arrays alike."""
    values = columns[name]
    array = values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"input column '{name}' must be 1-D, got shape {array.shape}")
    return array


def _is_missing(value: Any) -> bool:
    """Missing as pandas' fillna sees it: None, NaN, NaT or pd.NA."""
    missing = pd.isna(value)
    return isinstance(missing, (bool, np.bool_)) and bool(missing)


@dataclass(frozen=True)
class _Numbers:
    """Numerical input columns as one float64 matrix, missing values as NaN."""

    names: tuple[str, ...]

    def __call__(self, columns: Columns, rows: int) -> np.ndarray:
        matrix = np.empty((rows, len(self.names)))
        for position, name in enumerate(self.names):
            matrix[:, position] = np.asarray(_column(columns, name), dtype=np.float64)
        if np.isinf(matrix).any():  # as sklearn's imputer and scaler, which accept NaN but not infinity
            name = self.names[int(np.argwhere(np.isinf(matrix))[0][1])]
            raise ValueError(f"input column '{name}' contains infinity")
        return matrix


def _datetimes(values: np.ndarray, name: str, columns: Columns) -> np.ndarray:
    """Timestamps as naive datetime64, parsed like DatetimeFeatures when they are not datetime64 already."""
    if values.dtype.kind == "M":
        return values
    original = columns[name]
    stamps = pd.to_datetime(original if isinstance(original, pd.Series) else pd.Series(values), errors="coerce")
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_localize(None)  # DatetimeFeatures reads the parts in the column's own time zone
    return np.asarray(stamps.to_numpy(dtype="datetime64[ns]"))


@dataclass(frozen=True)
class _DatetimeParts:
    """DatetimeFeatures in numpy: calendar parts per column, NaN for a missing timestamp."""

    names: tuple[str, ...]
    parts: tuple[str, ...]

    def __call__(self, columns: Columns, rows: int) -> np.ndarray:
        matrix = np.empty((rows, len(self.names) * len(self.parts)))
        for position, name in enumerate(self.names):
            stamps = _datetimes(_column(columns, name), name, columns)
            days = stamps.astype("datetime64[D]")
            day_number = days.astype(np.int64)
            day_of_week = (day_number + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0 as in pandas
            values = {
                "hour": (stamps - days).astype("timedelta64[h]").astype(np.int64),
                "day_of_week": day_of_week,
                "month": stamps.astype("datetime64[M]").astype(np.int64) % 12 + 1,
                "day_of_year": (days - stamps.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.int64) + 1,
                "is_weekend": day_of_week >= 5,
            }
            missing = np.isnat(stamps)
            for offset, part in enumerate(self.parts):
                out = matrix[:, position * len(self.parts) + offset]
                out[:] = values[part]
                out[missing] = np.nan
        return matrix


@dataclass(frozen=True)
class _Codes:
    """How one categorical column maps raw values to positions in the encoder's categories (-1: none)."""

    lookup: dict[str, int]
    missing: int
    other: int
    stringify: bool  # the legacy rare-label grouper compares str(value); an encoder compares the value itself

    def unmatched(self, value: Any) -> int:
        """Code of a value that is not a plain str: a str subclass, a missing value, or anything else."""
        if isinstance(value, str):  # np.str_ and other subclasses hash and compare as their text
            return self.lookup.get(value, self.other)
        if _is_missing(value):
            return self.missing
        if not self.stringify:  # the categories are text, so no other value equals one
            return self.other
        label = value.decode() if isinstance(value, bytes) else str(value)  # as pandas' astype(str)
        return self.lookup.get(label, self.other)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        get, other, unmatched = self.lookup.get, self.other, self.unmatched
        if len(values) > SHORT_COLUMN_ROWS:
            positions, uniques = pd.factorize(values)
            # Hashing merges 1, 1.0 and True, which str() tells apart: only all-str uniques are safe.
            if all(type(unique) is str for unique in uniques):
                table = np.fromiter((get(unique, other) for unique in uniques), np.intp, len(uniques))
                return np.append(table, self.missing)[positions]
        codes = [get(value, other) if type(value) is str else unmatched(value) for value in values]
        return np.fromiter(codes, np.intp, len(values))


def _string_categories(encoder: Any, names: Sequence[str]) -> list[list[str]]:
    """The encoder's categories per column, when they are all text and nothing else changes the output."""
    categories = [list(values) for values in encoder.categories_]
    if len(categories) != len(names) or not all(isinstance(value, str) for column in categories for value in column):
        raise _Unsupported("encoder categories must be text, one list per column")
    if np.dtype(encoder.dtype) != np.float64:
        raise _Unsupported("a non-float64 encoder")
    return categories


def _encoded_positions(encoder: Any, column: int, categories: list[str]) -> tuple[dict[str, int], int]:
    """Each category's code in the encoder's output for `column`, and an unknown category's (-1: none).

    With `min_frequency` or `max_categories`, sklearn's `_default_to_infrequent_mappings` sends every
    infrequent category to one code after the frequent ones; the one-hot encoder's
    handle_unknown="infrequent_if_exist" sends unknown categories there too, when the column has any.
    """
    mapping = encoder._default_to_infrequent_mappings[column] if encoder._infrequent_enabled else None
    codes = list(range(len(categories))) if mapping is None else [int(code) for code in mapping]
    unknown = -1
    if mapping is not None and type(encoder) is OneHotEncoder and encoder.handle_unknown == "infrequent_if_exist":
        unknown = int(mapping[encoder._infrequent_indices[column][0]])
    return dict(zip(categories, codes)), unknown


def _column_codes(
    grouper: RareLabelGrouper | None, encoded: tuple[dict[str, int], int], name: str, missing_label: str | None
) -> _Codes:
    """One column's lookup: the encoder's codes, after the imputer's missing label or the legacy grouper."""
    position, unknown = encoded
    if grouper is None:
        missing = unknown if missing_label is None else position.get(missing_label, unknown)
        return _Codes(position, missing=missing, other=unknown, stringify=False)
    frequent = grouper.frequent_labels_[name]
    lookup = {label: position.get(label, unknown) for label in frequent}
    other = position.get(RARE_LABEL, unknown)
    return _Codes(lookup, missing=lookup.get(MISSING_LABEL, other), other=other, stringify=True)


@dataclass(frozen=True)
class _OneHot:
    """A missing-label imputer or the legacy RareLabelGrouper (optional) and a dense OneHotEncoder, as lookups."""

    names: tuple[str, ...]
    codes: tuple[_Codes, ...]
    offsets: np.ndarray
    width: int

    def __call__(self, columns: Columns, rows: int) -> np.ndarray:
        matrix = np.zeros((rows, self.width))
        flat = matrix.reshape(-1)
        starts = np.arange(rows) * self.width
        for name, codes, offset in zip(self.names, self.codes, self.offsets):
            code = codes(_column(columns, name))
            known = code >= 0
            flat[starts[known] + offset + code[known]] = 1.0
        return matrix


@dataclass(frozen=True)
class _Ordinal:
    """A missing-label imputer or the legacy RareLabelGrouper (optional) and an OrdinalEncoder, as lookups."""

    names: tuple[str, ...]
    codes: tuple[_Codes, ...]
    unknown_value: float

    def __call__(self, columns: Columns, rows: int) -> np.ndarray:
        matrix = np.empty((rows, len(self.names)))
        for position, (name, codes) in enumerate(zip(self.names, self.codes)):
            code = codes(_column(columns, name))
            matrix[:, position] = np.where(code >= 0, code, self.unknown_value)
        return matrix


@dataclass(frozen=True)
class _Imputer:
    """SimpleImputer on NaN: fill with the learnt statistics, then append the missing indicators."""

    statistics: np.ndarray
    kept: np.ndarray  # columns with a statistic; sklearn drops the others
    indicated: np.ndarray | None  # columns that had missing values in fit, when add_indicator

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        missing = np.isnan(matrix)
        filled = np.where(missing[:, self.kept], self.statistics, matrix[:, self.kept])
        if self.indicated is None:
            return filled
        return np.hstack((filled, missing[:, self.indicated]))


@dataclass(frozen=True)
class _Scaler:
    """StandardScaler: subtract the mean, divide by the scale, each when it was fitted."""

    mean: np.ndarray | None
    scale: np.ndarray | None

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        if self.mean is not None:
            matrix = matrix - self.mean
        if self.scale is not None:
            matrix = matrix / self.scale
        return matrix


@dataclass(frozen=True)
class _Branch:
    """Read the columns of one ColumnTransformer entry, then apply its matrix steps in order."""

    read: Callable[[Columns, int], np.ndarray]
    steps: tuple[MatrixStep, ...]

    def __call__(self, columns: Columns, rows: int) -> np.ndarray:
        matrix = self.read(columns, rows)
        for step in self.steps:
            matrix = step(matrix)
        return matrix


def _compile_imputer(imputer: SimpleImputer, width: int) -> tuple[MatrixStep, int]:
    """SimpleImputer's statistics, kept columns and indicator columns, and its output width."""
    statistics = np.asarray(imputer.statistics_)
    nan_marker = isinstance(imputer.missing_values, float) and np.isnan(imputer.missing_values)
    if not nan_marker or statistics.dtype.kind != "f" or len(statistics) != width:
        raise _Unsupported("SimpleImputer must impute NaN with numbers, one per column")
    kept = np.arange(width) if imputer.keep_empty_features else np.flatnonzero(~np.isnan(statistics))
    indicated = None
    if imputer.add_indicator:
        indicator = imputer.indicator_
        if indicator.error_on_new:
            raise _Unsupported("a missing indicator that raises on new missing columns")
        missing_only = indicator.features == "missing-only"
        indicated = np.asarray(indicator.features_, dtype=np.intp) if missing_only else np.arange(width)
    step = _Imputer(statistics[kept].astype(np.float64), kept, indicated)
    return step, len(kept) + (0 if indicated is None else len(indicated))


def _compile_matrix_step(step: Any, width: int) -> tuple[MatrixStep, int]:
    """A step that maps a float64 matrix to a float64 matrix, and its output width."""
    if type(step) is SimpleImputer:
        return _compile_imputer(step, width)
    if type(step) is StandardScaler:
        if step.n_features_in_ != width:
            raise _Unsupported("StandardScaler fitted on another width")
        mean = np.array(step.mean_, dtype=np.float64) if step.with_mean else None
        scale = np.array(step.scale_, dtype=np.float64) if step.with_std and step.scale_ is not None else None
        return _Scaler(mean, scale), width
    raise _Unsupported(f"step {type(step).__name__}")


def _missing_label(imputer: SimpleImputer, names: tuple[str, ...]) -> str:
    """The text a SimpleImputer puts for every missing category, as preprocessing builds it."""
    constant = imputer.strategy == "constant" and isinstance(imputer.fill_value, str)
    if not constant or imputer.missing_values is not pd.NA or imputer.add_indicator:
        raise _Unsupported("a categorical SimpleImputer must fill pd.NA (any missing value) with a text constant")
    if imputer.n_features_in_ != len(names):
        raise _Unsupported("a categorical SimpleImputer fitted on another width")
    return str(imputer.fill_value)


def _compile_encoder(
    grouper: RareLabelGrouper | None, encoder: Any, names: tuple[str, ...], missing_label: str | None = None
) -> tuple[Callable[[Columns, int], np.ndarray], int]:
    """An optional legacy RareLabelGrouper or missing-label fill and an encoder, as one reader and its width."""
    if grouper is not None and list(grouper.feature_names_in_) != list(names):
        raise _Unsupported("RareLabelGrouper fitted on other columns")
    categories = _string_categories(encoder, names)
    encoded = [_encoded_positions(encoder, index, column) for index, column in enumerate(categories)]
    codes = tuple(_column_codes(grouper, column, name, missing_label) for column, name in zip(encoded, names))
    if type(encoder) is OneHotEncoder:
        known = encoder.handle_unknown in ("ignore", "infrequent_if_exist")
        if encoder.drop_idx_ is not None or encoder.sparse_output or not known:
            raise _Unsupported("OneHotEncoder must be dense, without drop, and ignore or group unknown categories")
        widths = [len(set(lookup.values())) for lookup, _ in encoded]
        return _OneHot(names, codes, np.cumsum([0, *widths[:-1]]), sum(widths)), sum(widths)
    if type(encoder) is OrdinalEncoder:
        if encoder.handle_unknown != "use_encoded_value":
            raise _Unsupported("OrdinalEncoder must encode unknown categories")
        return _Ordinal(names, codes, float(encoder.unknown_value)), len(names)
    raise _Unsupported("a categorical step must be followed by OneHotEncoder or OrdinalEncoder")


def _active_steps(steps: Sequence[tuple[str, Any]]) -> list[Any]:
    """Pipeline steps without the ones sklearn skips (None and "passthrough")."""
    return [step for _, step in steps if step is not None and not (isinstance(step, str) and step == "passthrough")]


def _compile_reader(steps: list[Any], names: tuple[str, ...]) -> tuple[Callable[[Columns, int], np.ndarray], int, int]:
    """How a branch reads its input columns into a float64 matrix: (reader, its width, steps it covers)."""
    first = steps[0]
    if type(first) is DatetimeFeatures:
        if list(first.feature_names_in_) != list(names) or not set(first.parts_) <= set(DATETIME_PARTS):
            raise _Unsupported("DatetimeFeatures fitted on other columns")
        return _DatetimeParts(names, tuple(first.parts_)), len(names) * len(first.parts_), 1
    if type(first) is RareLabelGrouper:
        if len(steps) < 2:
            raise _Unsupported("RareLabelGrouper must be followed by an encoder")
        read, width = _compile_encoder(first, steps[1], names)
        return read, width, 2
    if type(first) is SimpleImputer and len(steps) > 1 and type(steps[1]) in (OneHotEncoder, OrdinalEncoder):
        read, width = _compile_encoder(None, steps[1], names, _missing_label(first, names))
        return read, width, 2
    if type(first) in (OneHotEncoder, OrdinalEncoder):
        read, width = _compile_encoder(None, first, names)
        return read, width, 1
    return _Numbers(names), len(names), 0


def _compile_branch(transformer: Any, names: tuple[str, ...]) -> tuple[_Branch, int]:
    """One ColumnTransformer entry: a reader of its input columns, then float64 matrix steps."""
    steps = _active_steps(transformer.steps) if type(transformer) is Pipeline else [transformer]
    if not steps:
        raise _Unsupported("an empty branch")
    read, width, covered = _compile_reader(steps, names)
    matrix_steps = []
    for step in steps[covered:]:
        compiled, width = _compile_matrix_step(step, width)
        matrix_steps.append(compiled)
    return _Branch(read, tuple(matrix_steps)), width


def _selected_names(columns: Any, feature_names: np.ndarray | None) -> tuple[str, ...]:
    """A ColumnTransformer column selection as names; integer positions need the fitted names."""
    selection = list(columns) if isinstance(columns, (list, tuple, np.ndarray, pd.Index)) else None
    if selection is None:
        raise _Unsupported(f"column selection {columns!r}")
    if all(isinstance(name, str) for name in selection):
        return tuple(selection)
    if feature_names is not None and all(isinstance(position, (int, np.integer)) for position in selection):
        return tuple(str(feature_names[position]) for position in selection)
    raise _Unsupported(f"column selection {columns!r}")


def _compile_column_transformer(transformer: Any) -> tuple[list[tuple[tuple[str, ...], _Branch]], int]:
    """Each entry's input names and compiled branch, in sklearn's output order, and the total width."""
    output = getattr(transformer, "_sklearn_output_config", {}).get("transform", "default")
    if transformer.sparse_output_ or output not in (None, "default"):
        raise _Unsupported("ColumnTransformer with sparse or pandas output")
    feature_names = getattr(transformer, "feature_names_in_", None)
    branches: list[tuple[tuple[str, ...], _Branch]] = []
    total = 0
    for name, step, columns in transformer.transformers_:
        names = _selected_names(columns, feature_names)
        if (isinstance(step, str) and step == "drop") or not names:
            continue
        if isinstance(step, str):
            raise _Unsupported(f"ColumnTransformer entry '{name}' = {step!r}")
        branch, width = _compile_branch(step, names)
        expected = transformer.output_indices_[name]
        if (expected.start, expected.stop) != (total, total + width):
            raise _Unsupported(f"ColumnTransformer entry '{name}' has another output width in sklearn")
        branches.append((names, branch))
        total += width
    if not branches:
        raise _Unsupported("a ColumnTransformer without output")
    return branches, total


class _Estimator:
    """The final sklearn estimator, called directly on the float64 matrix.

    No sklearn.config_context: assume_finite saves ~6 µs of ~90 µs on a 1-row logistic regression
    but would let a non-finite value through silently, and skip_parameter_validation only adds the
    context's own ~4 µs, since predict methods validate no parameters.
    """

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        """The estimator's own predict_proba."""
        return np.asarray(self.estimator.predict_proba(matrix))

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """The estimator's own predict."""
        return np.asarray(self.estimator.predict(matrix))


class _Forest(_Estimator):
    """A single-output random forest without joblib: the same trees, summed in sklearn's order."""

    def __init__(self, forest: Any) -> None:
        super().__init__(forest)
        trees = [member.tree_ for member in forest.estimators_]
        self.trees = trees
        self.classes = forest.classes_ if is_classifier(forest) else None
        self.n_classes = 1 if self.classes is None else len(self.classes)
        starts = np.cumsum([0] + [tree.node_count for tree in trees])
        leaf = np.concatenate([tree.children_left < 0 for tree in trees])
        nodes = np.arange(starts[-1])
        left = np.concatenate([tree.children_left + start for tree, start in zip(trees, starts)])
        right = np.concatenate([tree.children_right + start for tree, start in zip(trees, starts)])
        left[leaf], right[leaf] = nodes[leaf], nodes[leaf]  # a leaf points to itself, so extra steps stay put
        self.children = np.stack([right, left], axis=1).reshape(-1)  # node * 2 + (goes left)
        self.feature = np.where(leaf, 0, np.concatenate([tree.feature for tree in trees]))
        self.threshold = np.concatenate([tree.threshold for tree in trees])
        self.value = np.concatenate([tree.value[:, 0, : self.n_classes] for tree in trees])
        self.roots = starts[:-1]
        self.depth = max(tree.max_depth for tree in trees)

    def _walk(self, matrix: np.ndarray) -> np.ndarray:
        """All trees at once, one level per step: each tree's leaf value per row, shape (trees, rows, k)."""
        flat = matrix.reshape(-1)
        row_starts = (np.arange(matrix.shape[0]) * matrix.shape[1])[:, None]
        nodes = np.tile(self.roots, (matrix.shape[0], 1))
        for _ in range(self.depth):
            goes_left = flat[row_starts + self.feature[nodes]] <= self.threshold[nodes]
            nodes = self.children[2 * nodes + goes_left]
        return self.value[nodes.T]

    def _mean(self, matrix: np.ndarray) -> np.ndarray | None:
        """Mean of the trees' outputs exactly as sklearn sums them, or None to let sklearn do it."""
        rows = matrix.shape[0]
        if rows > FOREST_LOOP_MAX_ROWS:
            return None
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        if rows <= FOREST_WALK_MAX_ROWS and not np.isnan(matrix).any():
            # cumsum adds tree after tree like sklearn's loop; a sum could pair them and round differently.
            total = np.cumsum(self._walk(matrix), axis=0)[-1]
        else:
            total = np.zeros((rows, self.n_classes))
            for tree in self.trees:
                total += tree.predict(matrix)[:, : self.n_classes]
        total /= len(self.trees)
        return total

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        """Mean class probabilities of the trees, as RandomForestClassifier.predict_proba."""
        proba = self._mean(matrix) if self.classes is not None else None
        return super().predict_proba(matrix) if proba is None else proba

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """The most probable class, or the mean value, as the forest's predict."""
        mean = self._mean(matrix)
        if mean is None:
            return super().predict(matrix)
        if self.classes is None:
            return mean[:, 0]
        return np.asarray(self.classes.take(np.argmax(mean, axis=1), axis=0))


def _compile_estimator(estimator: Any, width: int) -> _Estimator:
    """The final estimator, with a joblib-free path for single-output random forests."""
    if not hasattr(estimator, "predict") or hasattr(estimator, "feature_names_in_"):
        raise _Unsupported(f"final step {type(estimator).__name__}")
    if getattr(estimator, "n_features_in_", width) != width:
        raise _Unsupported("the estimator was fitted on another width")
    forest = type(estimator) in (RandomForestClassifier, RandomForestRegressor)
    if forest and estimator.n_outputs_ == 1:
        return _Forest(estimator)
    return _Estimator(estimator)


class CompiledPipeline:
    """A fitted pipeline replayed in numpy: the same matrix, probabilities and predictions as sklearn."""

    def __init__(
        self, branches: list[tuple[tuple[str, ...], _Branch]], steps: list[MatrixStep], estimator: _Estimator
    ) -> None:
        self._branches = branches
        self._steps = steps
        self._estimator = estimator
        model = estimator.estimator
        self.classes_: np.ndarray | None = np.asarray(model.classes_) if is_classifier(model) else None
        self._names = [name for names, _ in branches for name in names]

    def _rows(self, columns: Columns) -> int:
        """The common length of the input columns."""
        if isinstance(columns, pd.DataFrame):
            return len(columns)
        lengths = {name: len(columns[name]) for name in self._names}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"input columns differ in length: {lengths}")
        return next(iter(lengths.values()))

    def transform(self, columns: Columns) -> np.ndarray:
        """The float64 matrix sklearn's preprocessing makes from `columns` (name -> 1-D values)."""
        rows = self._rows(columns)
        parts = [branch(columns, rows) for _, branch in self._branches]
        matrix = parts[0] if len(parts) == 1 else np.hstack(parts)
        for step in self._steps:
            matrix = step(matrix)
        return matrix

    def predict_proba(self, columns: Columns) -> np.ndarray:
        """Class probabilities, columns in the order of `classes_`."""
        if self.classes_ is None or not hasattr(self._estimator.estimator, "predict_proba"):
            raise AttributeError(f"{type(self._estimator.estimator).__name__} has no predict_proba")
        matrix = self.transform(columns)
        if matrix.shape[0] == 0:  # sklearn estimators refuse zero rows
            return np.empty((0, len(self.classes_)))
        return self._estimator.predict_proba(matrix)

    def predict(self, columns: Columns) -> np.ndarray:
        """Labels for a classifier, values for a regressor."""
        matrix = self.transform(columns)
        if matrix.shape[0] == 0:
            return self.classes_[:0] if self.classes_ is not None else np.empty(0)
        return self._estimator.predict(matrix)


def compile_pipeline(pipeline: Any) -> CompiledPipeline | None:
    """None when the pipeline holds a step this module does not know (callers fall back to sklearn)."""
    try:
        if type(pipeline) is not Pipeline:
            raise _Unsupported(f"{type(pipeline).__name__} is not a Pipeline")
        steps = _active_steps(pipeline.steps)
        if len(steps) < 2 or type(steps[0]) is not ColumnTransformer:
            raise _Unsupported("a pipeline must start with a ColumnTransformer and end with an estimator")
        branches, width = _compile_column_transformer(steps[0])
        matrix_steps = []
        for step in steps[1:-1]:
            compiled, width = _compile_matrix_step(step, width)
            matrix_steps.append(compiled)
        return CompiledPipeline(branches, matrix_steps, _compile_estimator(steps[-1], width))
    except (_Unsupported, AttributeError, KeyError):  # AttributeError, KeyError: not fitted, or fitted differently
        return None


def _synthetic_sample(schema: InputSchema, rows: int, seed: int) -> pd.DataFrame:
    """Rows typed as validation passes them, covering every category and a missing value in every column.

    Numbers are uniform within the schema's range, categories cycle through all known ones plus one
    unseen, datetimes spread over seven years; the k-th column is missing in row k (mod rows) and in
    about 10% of the others.
    """
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for position, spec in enumerate(schema.columns):
        missing = rng.random(rows) < 0.1
        missing[position % rows] = True
        if spec.kind == "numerical":
            low = 0.0 if spec.minimum is None else spec.minimum
            high = low + 1.0 if spec.maximum is None else spec.maximum
            data[spec.name] = np.where(missing, np.nan, rng.uniform(low, high, rows))
        elif spec.kind == "categorical":
            pool = [*(spec.categories or []), UNSEEN_CATEGORY]
            labels = np.array([pool[index % len(pool)] for index in rng.permutation(rows)], dtype=object)
            labels[missing] = None
            data[spec.name] = labels
        else:
            seconds = rng.integers(0, 7 * 366 * 86_400, rows).astype("timedelta64[s]")
            stamps = (np.datetime64("2008-01-01T00:00:00") + seconds).astype("datetime64[ns]")
            data[spec.name] = np.where(missing, np.datetime64("NaT"), stamps)
    return pd.DataFrame(data)


def _difference(output: str, ours: np.ndarray, theirs: np.ndarray) -> str | None:
    """Where a compiled output departs from sklearn's, in one line, or None when they agree."""
    theirs = np.asarray(theirs)
    if ours.shape != theirs.shape:
        return f"{output}: shape {ours.shape} instead of sklearn's {theirs.shape}"
    if theirs.dtype.kind in "fc":
        agree = np.isclose(ours, theirs, rtol=RTOL, atol=ATOL, equal_nan=True)
    else:
        agree = ours == theirs
    if agree.all():
        return None
    where = tuple(int(index) for index in np.argwhere(~agree)[0])
    ours_value, theirs_value = ours[where].item(), theirs[where].item()
    return f"{output}: {ours_value!r} instead of sklearn's {theirs_value!r} at {where} ({int((~agree).sum())} differ)"


def _compare(compiled: CompiledPipeline, pipeline: Any, frame: pd.DataFrame) -> str | None:
    """The first output (transform, predict_proba, predict) where the copy departs from sklearn, as a reason."""
    outputs: list[tuple[str, Callable[[Any], np.ndarray], Callable[[Any], Any]]] = [
        ("transform", compiled.transform, pipeline[:-1].transform),
        ("predict", compiled.predict, pipeline.predict),
    ]
    if compiled.classes_ is not None and hasattr(pipeline, "predict_proba"):
        outputs.insert(1, ("predict_proba", compiled.predict_proba, pipeline.predict_proba))
    for output, ours, theirs in outputs:
        try:
            expected = theirs(frame)
        except Exception as error:  # any failure is a reason not to trust the copy, not a crash at load
            return f"sklearn {output} failed on the synthetic sample: {type(error).__name__}: {error}"
        try:
            reason = _difference(output, ours(frame), expected)
        except Exception as error:
            return f"compiled {output} failed on the synthetic sample: {type(error).__name__}: {error}"
        if reason is not None:
            return f"{reason} on {len(frame)} rows"
    return None


def verify_compiled(
    compiled: CompiledPipeline, pipeline: Any, schema: InputSchema, rows: int = 64, seed: int = 0
) -> str | None:
    """Compare compiled and sklearn outputs on a synthetic sample drawn from the schema; None when they agree.

    The sample holds numbers within the numerical ranges, every category, missing values in every
    column and datetimes over several years; it is checked whole, as its first row alone, and as
    zero rows (shapes only: sklearn refuses those). Outputs agree when allclose (rtol 1e-9, atol
    1e-12) and labels are identical; otherwise the answer is a one-line reason.
    """
    frame = _synthetic_sample(schema, rows, seed)
    for sample in (frame, frame.iloc[:1]):
        reason = _compare(compiled, pipeline, sample)
        if reason is not None:
            return reason
    try:
        empty = frame.iloc[:0]
        width = compiled.transform(frame).shape[1]
        shapes = (compiled.transform(empty).shape, compiled.predict(empty).shape)
    except Exception as error:
        return f"compiled pipeline failed on zero rows: {type(error).__name__}: {error}"
    if shapes != ((0, width), (0,)):
        return f"compiled pipeline gives shapes {shapes} on zero rows instead of ((0, {width}), (0,))"
    return None
