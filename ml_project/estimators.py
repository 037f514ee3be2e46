"""LightGBM as scikit-learn estimators that stop early on their own rows, so they fit inside one Pipeline.

sklearn's Pipeline has no route for an eval_set, so `fit` holds out a seeded share of the rows it is
given (`validation_fraction`, stratified for classification) and trains on the rest until the
validation loss has not improved for `early_stopping_rounds` rounds (lightgbm.early_stopping). The
model is kept as it was at the best round (`best_iteration_`), with no refit: LightGBM keeps only
the first `best_iteration_` trees, and the held-out rows are not learnt from. Inside a CV fold the
held-out rows come from that fold's training part only, so the fold's validation rows stay unseen.

Categorical inputs are the ordinal codes of preprocessing's "native" encoding (column positions in
`categorical_feature`); LightGBM reads every negative code, such as the encoder's -1 for a category
unseen in training, as missing, which goes to the side of each categorical split that holds no
learnt category. Training is deterministic and seeded by `random_state`, on OpenMP's default number
of threads: inside a search fold that is the fold's threadpoolctl limit (cores / folds at a time), in
the refit every core. With `deterministic` and row-wise histograms LightGBM gives the same trees on 1
or 2 threads (checked to the last bit on 300,000 rows), so the thread count changes the time, not the
model or the bundle's fingerprint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import lightgbm
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.validation import check_array, check_is_fitted

PARALLEL_ROWS = 10_000  # predictions of at least this many rows use more than one thread (see _raw_predict)


class _EarlyStoppedLightGBM(BaseEstimator):
    """What the classifier and the regressor share: the held-out split, the fixed settings and the booster."""

    def __init__(
        self,
        n_estimators: int = 500,
        learning_rate: float = 0.1,
        num_leaves: int = 31,
        min_child_samples: int = 20,
        reg_lambda: float = 0.0,
        colsample_bytree: float = 1.0,
        categorical_feature: Sequence[int] = (),
        validation_fraction: float = 0.1,
        early_stopping_rounds: int = 20,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.reg_lambda = reg_lambda
        self.colsample_bytree = colsample_bytree
        self.categorical_feature = categorical_feature
        self.validation_fraction = validation_fraction
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state

    def _lightgbm_params(self) -> dict[str, Any]:
        """The tuned parameters and the fixed ones: OpenMP's threads, deterministic, silent, seeded."""
        return {
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            # LightGBM's default of 100 rows per category group would keep small tables from splitting on one.
            "min_data_per_group": self.min_child_samples,
            "reg_lambda": self.reg_lambda,
            "colsample_bytree": self.colsample_bytree,
            "random_state": self.random_state,
            "n_jobs": None,
            "num_threads": 0,  # OpenMP's default: the caller's threadpoolctl limit (see the module's docstring)
            "deterministic": True,
            "force_row_wise": True,  # LightGBM's advice with `deterministic`: no timing-dependent choice of layout
            "verbose": -1,
        }

    def _held_out(self, y: np.ndarray, stratify: bool) -> tuple[np.ndarray, np.ndarray]:
        """Row positions to train on and to stop on: a seeded `validation_fraction` (at least one row)."""
        rows = len(y)
        size = max(1, math.ceil(rows * self.validation_fraction))
        if rows - size < 1:
            raise ValueError(f"{type(self).__name__} needs at least 2 rows to hold some out for early stopping, got {rows}")
        positions = np.arange(rows)
        counts = np.unique(y, return_counts=True)[1] if stratify else np.array([])
        # Stratify when every class can be on both sides; otherwise a plain seeded sample.
        by = y if stratify and counts.min() >= 2 and len(counts) <= min(size, rows - size) else None
        train, validation = train_test_split(positions, test_size=size, random_state=self.random_state, stratify=by)
        return np.sort(train), np.sort(validation)

    def _fit_booster(
        self, model: Any, X: np.ndarray, y: np.ndarray, weight: np.ndarray | None, stratify: bool
    ) -> None:
        train, validation = self._held_out(y, stratify)
        model.fit(
            X[train],
            y[train],
            sample_weight=None if weight is None else weight[train],
            eval_X=(X[validation],),
            eval_y=(y[validation],),
            eval_sample_weight=None if weight is None else [weight[validation]],
            categorical_feature=[int(position) for position in self.categorical_feature],
            callbacks=[lightgbm.early_stopping(self.early_stopping_rounds, verbose=False)],
        )
        self.model_ = model
        self.booster_ = model.booster_
        # Without an improvement after the first round, LightGBM reports 0: the model is then its first tree.
        self.best_iteration_ = max(1, int(model.best_iteration_ or model.booster_.current_iteration()))
        self.n_features_in_ = X.shape[1]

    def _raw_predict(self, X: Any) -> np.ndarray:
        """The booster's output at the best round, on a float64 matrix (no sklearn-API checks: ~20 µs a row).

        Fewer than PARALLEL_ROWS rows (a service's requests and micro-batches) are predicted on one
        thread: Booster.predict's OpenMP threads otherwise spin against each other and the server's
        workers (6.6 ms instead of 0.14 ms for 32 rows on a busy 2-core machine). Larger batches (a
        holdout, a batch-scoring chunk) use OpenMP's default threads: 1.6 s instead of 3.1 s for
        100,000 rows x 100 trees of 255 leaves on 2 cores, with the same numbers.
        """
        check_is_fitted(self, "booster_")
        matrix = check_array(X, dtype=np.float64, ensure_all_finite="allow-nan")
        if matrix.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {matrix.shape[1]} features, but {type(self).__name__} was fitted with {self.n_features_in_}")
        threads = 1 if len(matrix) < PARALLEL_ROWS else 0
        return np.asarray(self.booster_.predict(matrix, num_iteration=self.best_iteration_, num_threads=threads))


class LightGBMClassifier(ClassifierMixin, _EarlyStoppedLightGBM):
    """lightgbm.LGBMClassifier stopped early on a stratified share of its rows; `class_weight` as sklearn's."""

    def __init__(
        self,
        n_estimators: int = 500,
        learning_rate: float = 0.1,
        num_leaves: int = 31,
        min_child_samples: int = 20,
        reg_lambda: float = 0.0,
        colsample_bytree: float = 1.0,
        categorical_feature: Sequence[int] = (),
        validation_fraction: float = 0.1,
        early_stopping_rounds: int = 20,
        random_state: int = 0,
        class_weight: str | None = None,
    ) -> None:
        super().__init__(
            n_estimators,
            learning_rate,
            num_leaves,
            min_child_samples,
            reg_lambda,
            colsample_bytree,
            categorical_feature,
            validation_fraction,
            early_stopping_rounds,
            random_state,
        )
        self.class_weight = class_weight

    def fit(self, X: Any, y: Any) -> LightGBMClassifier:
        """Learn the classes, weight them when `class_weight` is "balanced" (over all rows), and boost."""
        matrix = check_array(X, dtype=np.float64, ensure_all_finite="allow-nan")
        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"{type(self).__name__} needs two or more classes, got {len(self.classes_)}")
        weight = compute_sample_weight(self.class_weight, codes) if self.class_weight is not None else None
        self._fit_booster(lightgbm.LGBMClassifier(**self._lightgbm_params()), matrix, codes, weight, stratify=True)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of `classes_`."""
        raw = self._raw_predict(X)
        return np.column_stack((1.0 - raw, raw)) if raw.ndim == 1 else raw

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class."""
        return np.asarray(self.classes_.take(np.argmax(self.predict_proba(X), axis=1)))


class LightGBMRegressor(RegressorMixin, _EarlyStoppedLightGBM):
    """lightgbm.LGBMRegressor (L2 loss) stopped early on a seeded share of its rows."""

    def fit(self, X: Any, y: Any) -> LightGBMRegressor:
        """Boost on all but the held-out rows, stopping where their L2 loss stops improving."""
        matrix = check_array(X, dtype=np.float64, ensure_all_finite="allow-nan")
        target = np.asarray(y, dtype=np.float64)
        self._fit_booster(lightgbm.LGBMRegressor(**self._lightgbm_params()), matrix, target, None, stratify=False)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The predicted values."""
        return self._raw_predict(X)
